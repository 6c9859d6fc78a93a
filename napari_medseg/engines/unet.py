"""U-Net pre-segmentation: slice-by-slice batched inference on the case's own grid.

The checkpoint says which case images feed the network and how they are normalised
(:class:`~napari_medseg.engines.unet_model.UNetConfig`), so the same preparation is used in
training (:mod:`napari_medseg.engines.training`) and inference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_medseg.core.errors import MedsegError
from napari_medseg.core.model import Case, Volume
from napari_medseg.engines.base import Progress, SegmentationResult
from napari_medseg.engines.unet_model import DEPTH


def pick_device(device: str | None = None) -> str:
    """``device`` or the best available: CUDA, then Apple MPS, then CPU."""
    import torch

    if device:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise MedsegError(f"device {device!r} requested but CUDA is not available")
        return device
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _volume_names(vol: Volume) -> set[str]:
    return {n.lower() for n in (vol.name, vol.channel, vol.modality) if n}


def input_volumes(case: Case, channels: list[str], n_in: int) -> list[Volume]:
    """The case images that feed an ``n_in``-channel network, in the checkpoint's order.

    Images are matched by name, channel or modality (case-insensitive); a case with exactly
    ``n_in`` images and no name match is taken in its own order (e.g. an LGG reader that
    names the three TIFF channels differently).
    """
    images = [v for v in case.images if not v.rgb]
    picked = []
    for want in channels:
        match = next((v for v in images if want.lower() in _volume_names(v)), None)
        if match is None:
            break
        picked.append(match)
    if len(picked) == n_in:
        return picked
    if len(images) == n_in:
        return images
    have = ", ".join(v.name for v in case.images) or "none"
    need = ", ".join(channels) if channels else f"{n_in} images"
    raise MedsegError(f"case {case.id!r}: the model needs {need}; the case has {have}")


def normalise(x: np.ndarray, spec: dict) -> np.ndarray:
    """Clip ``x`` (C, ...) to a window (``clip``) or percentiles, then z-score each channel."""
    if spec.get("method", "percentile_zscore") != "percentile_zscore":
        raise MedsegError(f"unknown input normalisation {spec.get('method')!r} in the checkpoint")
    x = x.astype(np.float32, copy=False)
    q = (spec.get("lower", 0.5), spec.get("upper", 99.5))
    axes = tuple(range(1, x.ndim))
    if spec.get("clip"):  # a fixed window, e.g. CT in HU: percentiles would be set by air and bone
        lo, hi = spec["clip"]
    elif spec.get("joint"):
        lo, hi = np.percentile(x, q)
    else:
        lo, hi = np.percentile(x, q, axis=axes, keepdims=True)
    x = np.clip((x - lo) / np.maximum(hi - lo, 1e-6), 0.0, 1.0)
    mean, std = x.mean(axis=axes, keepdims=True), x.std(axis=axes, keepdims=True)
    return ((x - mean) / np.maximum(std, 1e-6)).astype(np.float32, copy=False)


def case_input(case: Case, config) -> tuple[np.ndarray, Volume]:
    """Normalised network input (C, Z, Y, X) float32 and the volume whose grid it is on."""
    vols = input_volumes(case, config.channels, config.in_channels)
    shapes = {v.shape[: v.spatial_ndim] for v in vols}
    if len(shapes) != 1:
        raise MedsegError(
            f"case {case.id!r}: the model's input images are on different grids {sorted(shapes)}"
        )
    x = np.stack([np.asarray(v.array, dtype=np.float32) for v in vols])
    if vols[0].spatial_ndim == 2:
        x = x[:, None]
    return normalise(x, config.normalisation), vols[0]


def _pad_to(n: int) -> int:
    step = 2**DEPTH
    return (n + step - 1) // step * step


def predict_volume(
    model,
    x: np.ndarray,
    *,
    batch_size: int = 16,
    device: str = "cpu",
    progress: Progress | None = None,
) -> np.ndarray:
    """Class index per voxel (Z, Y, X) uint8 for a normalised input (C, Z, Y, X).

    Slices go through the network ``batch_size`` at a time, padded to a multiple of 16,
    under autocast (bfloat16) on CUDA.
    """
    import torch
    import torch.nn.functional as F

    _, nz, ny, nx = x.shape
    py, px = _pad_to(ny) - ny, _pad_to(nx) - nx
    out = np.empty((nz, ny, nx), np.uint8)
    cuda = device.startswith("cuda")
    model = model.to(device).eval()
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
        for z0 in range(0, nz, batch_size):
            batch = torch.from_numpy(
                np.ascontiguousarray(x[:, z0 : z0 + batch_size].transpose(1, 0, 2, 3))
            )
            if cuda:
                batch = batch.pin_memory()
            batch = F.pad(batch.to(device, non_blocking=True), (0, px, 0, py))
            logits = model(batch)[..., :ny, :nx]
            labels = (logits[:, 0] > 0) if logits.shape[1] == 1 else logits.argmax(1)
            out[z0 : z0 + len(labels)] = labels.to(torch.uint8).cpu().numpy()
            if progress:
                progress(min(z0 + batch_size, nz), nz)
    return out


def to_label_ids(classes: np.ndarray, class_ids: list[int]) -> np.ndarray:
    """Map class indices to the labelmap's ids (they need not be 0..K-1)."""
    lut = np.asarray(class_ids, dtype=np.uint16 if max(class_ids) > 255 else np.uint8)
    return lut[classes]


class UNetEngine:
    """Pre-segment cases with a U-Net checkpoint (ours or the published LGG one)."""

    name = "unet"

    def __init__(self, model, config, checkpoint: Path, device: str, batch_size: int = 16):
        self.model, self.config, self.checkpoint = model, config, checkpoint
        self.device, self.batch_size = device, batch_size

    @classmethod
    def from_options(cls, checkpoint=None, device=None, batch_size=16, **ignored) -> UNetEngine:
        if not checkpoint:
            raise MedsegError("the unet engine needs a checkpoint (--checkpoint MODEL.pt)")
        from napari_medseg.engines.unet_model import load_checkpoint

        device = pick_device(device)
        model, config = load_checkpoint(checkpoint, map_location="cpu")
        return cls(model.to(device), config, Path(checkpoint), device, int(batch_size))

    def segment_case(self, case: Case, progress: Progress | None = None) -> SegmentationResult:
        x, grid = case_input(case, self.config)
        classes = predict_volume(
            self.model, x, batch_size=self.batch_size, device=self.device, progress=progress
        )
        mask = to_label_ids(classes, self.config.class_ids)
        ref = case.reference_image()
        if grid.spatial_ndim == 2:
            mask = mask[0]
        if mask.shape != tuple(ref.shape[: ref.spatial_ndim]):
            raise MedsegError(
                f"case {case.id!r}: the model's input images are not on the reference image's grid"
            )
        info = {
            "engine": self.name,
            "checkpoint": str(self.checkpoint),
            "device": self.device,
            "inputs": [
                v.name for v in input_volumes(case, self.config.channels, self.config.in_channels)
            ],
        }
        return SegmentationResult(mask, self.config.labelmap, info)
