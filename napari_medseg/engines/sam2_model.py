"""Load a SAM 2.1 (or MedSAM2) checkpoint from a local file with the ``sam2`` package's own
configs and classes.

The published SAM 2.1 files are ``{"model": state_dict}``; their Hiera size (T, S, B+, L) is
read from the state dict (patch-embedding width and block count) and matched to the package's
``configs/sam2.1/*.yaml``. A file may instead name its config and Hydra overrides (``config``
and ``overrides`` beside ``model``), which is how the tests' tiny random models are saved.
``variant="medsam2"`` selects MedSAM2's 512 px input (its ``sam2.1_hiera_t512.yaml``). A
segment-anything (SAM 1) state dict is refused here, and a SAM 2 one by the SAM 1 loader.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_medseg.core.errors import MedsegError
from napari_medseg.engines.device import pick_device
from napari_medseg.engines.sam_model import checkpoint_fingerprint

# (patch-embedding width, Hiera blocks) of the published SAM 2.1 image encoders.
KNOWN_MODELS = {
    (96, 12): ("hiera_t", "configs/sam2.1/sam2.1_hiera_t.yaml"),
    (96, 16): ("hiera_s", "configs/sam2.1/sam2.1_hiera_s.yaml"),
    (112, 24): ("hiera_b+", "configs/sam2.1/sam2.1_hiera_b+.yaml"),
    (144, 48): ("hiera_l", "configs/sam2.1/sam2.1_hiera_l.yaml"),
}
VARIANTS = ("sam2", "medsam2")
# The video predictor's post-processing, as sam2.build_sam.build_sam2_video_predictor sets it.
POSTPROCESSING = [
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.98",
    "++model.binarize_mask_from_pts_for_mem_enc=true",
    "++model.fill_hole_area=8",
]
# A correction click on a propagated slice becomes a conditioning frame of its object (else
# the next propagation through that slice overwrites it).
CORRECTIONS = ["++model.add_all_frames_to_correct_as_cond=true"]
TRACKER = "++model._target_=napari_medseg.engines.sam2_tracker.Sam2Tracker"


def size_overrides(image_size: int) -> list[str]:
    """Hydra overrides for another input size (MedSAM2: 512; the tests: 128)."""
    grid = image_size // 16
    attn = "++model.memory_attention.layer"
    return [
        f"++model.image_size={image_size}",
        f"{attn}.self_attention.feat_sizes=[{grid},{grid}]",
        f"{attn}.cross_attention.feat_sizes=[{grid},{grid}]",
    ]


# A SAM 2.1 small enough for tests: Hiera with 6 blocks from width 16, 64-wide
# memory and prompt features, at 128 px.
TINY_OVERRIDES = [
    *size_overrides(128),
    "++model.image_encoder.trunk.embed_dim=16",
    "++model.image_encoder.trunk.stages=[1,2,2,1]",
    "++model.image_encoder.trunk.global_att_blocks=[2,4]",
    "++model.image_encoder.trunk.window_spec=[4,4,4,4]",
    "++model.image_encoder.neck.backbone_channel_list=[128,64,32,16]",
    "++model.image_encoder.neck.d_model=64",
    "++model.image_encoder.neck.position_encoding.num_pos_feats=64",
    "++model.memory_attention.d_model=64",
    "++model.memory_attention.num_layers=1",
    "++model.memory_attention.layer.d_model=64",
    "++model.memory_attention.layer.dim_feedforward=64",
    "++model.memory_attention.layer.self_attention.embedding_dim=64",
    "++model.memory_attention.layer.cross_attention.embedding_dim=64",
    "++model.memory_encoder.in_dim=64",
    "++model.memory_encoder.mask_downsampler.embed_dim=64",
    "++model.memory_encoder.fuser.layer.dim=64",
    "++model.memory_encoder.fuser.num_layers=1",
]


@dataclass
class LoadedSam2:
    """A ready SAM 2.1 video predictor with what identifies it in the embedding cache."""

    model: object  # napari_medseg.engines.sam2_tracker.Sam2Tracker (a SAM2VideoPredictor)
    model_type: str  # hiera_t, hiera_s, hiera_b+, hiera_l or custom
    variant: str  # sam2 or medsam2
    config: str
    overrides: list[str]
    fingerprint: str
    path: Path
    _image_predictor: object = field(default=None, repr=False)
    _position_codes: dict = field(default_factory=dict, repr=False)

    @property
    def model_id(self) -> str:
        return f"sam2.1-{self.variant}-{self.model_type}-{self.fingerprint[:16]}"

    @property
    def device(self):
        return self.model.device

    @property
    def image_size(self) -> int:
        return int(self.model.image_size)

    @property
    def image_predictor(self):
        """The package's SAM2ImagePredictor on the same weights (single-slice prompts)."""
        if self._image_predictor is None:
            self._image_predictor = image_predictor(self.model)
        return self._image_predictor


def position_codes(loaded: LoadedSam2, levels: list) -> list:
    """The image encoder's position codes for backbone ``levels`` of one slice (they depend
    only on the levels' shapes: computed once per model)."""
    key = tuple(tuple(lv.shape) for lv in levels)
    if key not in loaded._position_codes:
        import torch

        pe = loaded.model.image_encoder.neck.position_encoding
        with torch.inference_mode():
            loaded._position_codes[key] = [pe(lv).to(lv.dtype) for lv in levels]
    return list(loaded._position_codes[key])


def default_batch_size(loaded: LoadedSam2) -> int:
    """Slices per encoder call: 1 on CPU (batching is no faster there), more on a GPU."""
    if not str(loaded.device).startswith("cuda"):
        return 1
    return {"hiera_t": 16, "hiera_s": 16, "hiera_b+": 8}.get(loaded.model_type, 4)


def warm_up(loaded: LoadedSam2) -> None:
    """Decode one box on blank features, so that the first real click does not pay for
    torch's first-call set-up and the image transforms' import (about 2 s on a laptop CPU)."""
    import torch
    from torchvision.transforms import functional  # noqa: F401 - imported once, here

    pred, size = loaded.image_predictor, loaded.image_size
    dim = loaded.model.sam_mask_decoder.transformer_dim
    dev = loaded.device
    with torch.inference_mode():
        pred._features = {
            "image_embed": torch.zeros(1, dim, size // 16, size // 16, device=dev),
            "high_res_feats": [
                torch.zeros(1, dim // 8, size // 4, size // 4, device=dev),
                torch.zeros(1, dim // 4, size // 8, size // 8, device=dev),
            ],
        }
        pred._orig_hw, pred._is_image_set, pred._is_batch = [(size, size)], True, False
        pred.predict(box=np.array([0, 0, size // 2, size // 2]), multimask_output=True)
    pred.reset_predictor()


def image_predictor(model):
    """A ``SAM2ImagePredictor`` whose feature sizes follow the model's input size (the
    package hard-codes those of 1024 px)."""
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    with warnings.catch_warnings():  # its transforms use torch.jit.script, now deprecated
        warnings.simplefilter("ignore", FutureWarning)
        pred = SAM2ImagePredictor(model)
    hires = model.image_size // 4
    pred._bb_feat_sizes = [(hires // 2**k,) * 2 for k in range(3)]
    return pred


def build_model(config: str, overrides: list[str], tracker: bool = True):
    """A SAM 2.1 video predictor with random weights, built as the sam2 package builds it."""
    import sam2  # noqa: F401 - initialises Hydra with the package's config module
    from hydra import compose
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    target = TRACKER if tracker else "++model._target_=sam2.sam2_video_predictor.SAM2VideoPredictor"
    extra = [*POSTPROCESSING, *CORRECTIONS]
    cfg = compose(config_name=config, overrides=[target, *overrides, *extra])
    OmegaConf.resolve(cfg)
    return instantiate(cfg.model, _recursive_=True).eval()


def prepare(model):
    """Channels-last upscaling convolutions in the mask decoder (as for SAM 1: faster
    transposed convolutions on CPU, the same masks)."""
    import torch

    model.sam_mask_decoder.output_upscaling.to(memory_format=torch.channels_last)
    return model


def is_sam1_state(state: dict) -> bool:
    return "image_encoder.pos_embed" in state and any(
        k.startswith("image_encoder.blocks.") for k in state
    )


def is_sam2_state(state: dict) -> bool:
    return any(k.startswith("image_encoder.trunk.") for k in state)


def is_sam2_checkpoint(path: str | os.PathLike) -> bool:
    """Whether the file at ``path`` holds a SAM 2.1 state dict (read memory-mapped: cheap)."""
    import torch

    try:
        data = torch.load(Path(path).expanduser(), map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - unreadable files are reported by the loader that gets them
        return False
    state = data.get("model", data) if isinstance(data, dict) else None
    return isinstance(state, dict) and is_sam2_state(state)


def read_checkpoint(path: Path) -> tuple[dict, str | None, list[str]]:
    """The state dict, and the config and overrides a custom file names (else None, [])."""
    import torch

    if not path.is_file():
        raise MedsegError("SAM 2.1 checkpoint not found", path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a corrupt file makes torch.load raise almost anything
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MedsegError(f"cannot read SAM 2.1 checkpoint ({first})", path) from None
    if not isinstance(data, dict):
        raise MedsegError("not a SAM 2.1 checkpoint (no state dict)", path)
    state = data.get("model", data)
    if not isinstance(state, dict):
        raise MedsegError("not a SAM 2.1 checkpoint (no state dict)", path)
    if is_sam1_state(state):
        raise MedsegError(
            "this is a SAM 1 (segment-anything) checkpoint, not SAM 2.1; use --engine sam", path
        )
    if not is_sam2_state(state):
        raise MedsegError("not a SAM 2.1 checkpoint (no Hiera image encoder in it)", path)
    config, overrides = data.get("config"), data.get("overrides") or []
    return state, (str(config) if config else None), [str(o) for o in overrides]


def identify(state: dict, path: Path) -> tuple[str, str]:
    """(model type, package config) of a published SAM 2.1 state dict."""
    try:
        width = state["image_encoder.trunk.patch_embed.proj.weight"].shape[0]
    except (KeyError, AttributeError, IndexError):
        raise MedsegError("not a SAM 2.1 checkpoint (no Hiera patch embedding)", path) from None
    rx = re.compile(r"image_encoder\.trunk\.blocks\.(\d+)\.")
    blocks = len({m.group(1) for k in state if (m := rx.match(k))})
    if (width, blocks) not in KNOWN_MODELS:
        raise MedsegError(
            f"unknown SAM 2.1 image encoder (width {width}, {blocks} blocks); expected "
            "Hiera-T, S, B+ or L, or a file naming its config",
            path,
        )
    return KNOWN_MODELS[(width, blocks)]


_MODELS: dict[tuple, LoadedSam2] = {}


def load_sam2(
    checkpoint: str | os.PathLike, device: str | None = None, variant: str | None = None
) -> LoadedSam2:
    """Load (once per process) the SAM 2.1 / MedSAM2 checkpoint at ``checkpoint``."""
    variant = variant or "sam2"
    if variant not in VARIANTS:
        raise MedsegError(f"unknown SAM 2.1 variant {variant!r}; use {', '.join(VARIANTS)}")
    path = Path(checkpoint).expanduser()
    dev = pick_device(device)
    key = (str(path.resolve()), dev, variant, path.stat().st_mtime_ns if path.is_file() else 0)
    if key in _MODELS:
        return _MODELS[key]
    state, config, overrides = read_checkpoint(path)
    model_type = "custom"
    if config is None:
        model_type, config = identify(state, path)
        if variant == "medsam2":
            overrides = size_overrides(512)
    model = build_model(config, overrides)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise MedsegError(
            f"SAM 2.1 checkpoint does not match the {model_type} architecture "
            f"({str(exc).splitlines()[0]})",
            path,
        ) from None
    loaded = LoadedSam2(
        prepare(model.to(dev)),
        model_type,
        variant,
        config,
        overrides,
        checkpoint_fingerprint(path),
        path,
    )
    warm_up(loaded)
    _MODELS[key] = loaded
    return loaded


def save_tiny_sam2(path: str | os.PathLike, seed: int = 0) -> Path:
    """Write a tiny random-weight SAM 2.1 checkpoint (tests, benchmarks of the mechanics)."""
    import torch

    torch.manual_seed(seed)
    config = "configs/sam2.1/sam2.1_hiera_t.yaml"
    model = build_model(config, TINY_OVERRIDES, tracker=False)
    path = Path(path)
    torch.save({"model": model.state_dict(), "config": config, "overrides": TINY_OVERRIDES}, path)
    return path


def describe(loaded: LoadedSam2) -> dict:
    """Model provenance for summaries and cache metadata."""
    return {
        "model_type": f"sam2.1-{loaded.model_type}",
        "variant": loaded.variant,
        "checkpoint": str(loaded.path),
        "fingerprint": loaded.fingerprint,
        "config": loaded.config,
        "overrides": loaded.overrides,
    }
