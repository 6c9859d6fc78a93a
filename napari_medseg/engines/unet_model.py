"""The 2D U-Net of Buda et al. (brain-segmentation-pytorch) and its checkpoints.

The module and parameter names follow the published model exactly, so its released
``unet.pt`` (a bare state dict: ``encoder1.enc1conv1.weight``, ...) loads unchanged. The
same class with ``in_channels=N, out_channels=K`` is our multi-class variant. ``forward``
returns logits: the published model applies a sigmoid inside ``forward``, which has no
parameters, so the state dict is the same and the engine applies sigmoid/softmax itself.

Checkpoints we write hold ``{"state_dict", "config"}`` where ``config`` records what the
network needs to be used again: channel counts, the labelmap, which case images feed it and
how their intensities are normalised.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from napari_medseg.core.atomic import atomic_path
from napari_medseg.core.errors import ReadError
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.limits import check_bytes
from napari_medseg.core.validate import validated

# The LGG FLAIR-abnormality network: the Kaggle TIFFs' three channels, in file order.
LGG_CHANNELS = ["pre-contrast", "FLAIR", "post-contrast"]
# brain-segmentation-pytorch's normalize_volume: clip to the volume's 10th-99th
# percentiles (all channels together), then z-score each channel.
LGG_NORMALISATION = {"method": "percentile_zscore", "lower": 10.0, "upper": 99.0, "joint": True}
# Its dataset.py crops each volume to voxels >= 10% of the maximum, pads square and resizes
# to 256 x 256 before normalising; inference.py keeps the largest connected component.
LGG_CROP = {"fraction": 0.1, "size": 256}
DEFAULT_NORMALISATION = {"method": "percentile_zscore", "lower": 0.5, "upper": 99.5, "joint": False}
DEPTH = 4  # pooling steps: slice height and width are padded to a multiple of 2**DEPTH


class UNet(nn.Module):
    """2D U-Net with batch norm; same layer names as the published model."""

    def __init__(self, in_channels: int = 3, out_channels: int = 1, init_features: int = 32):
        super().__init__()
        f = init_features
        self.encoder1 = UNet._block(in_channels, f, name="enc1")
        self.pool1 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.encoder2 = UNet._block(f, f * 2, name="enc2")
        self.pool2 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.encoder3 = UNet._block(f * 2, f * 4, name="enc3")
        self.pool3 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.encoder4 = UNet._block(f * 4, f * 8, name="enc4")
        self.pool4 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.bottleneck = UNet._block(f * 8, f * 16, name="bottleneck")
        self.upconv4 = nn.ConvTranspose2d(f * 16, f * 8, kernel_size=2, stride=2)
        self.decoder4 = UNet._block(f * 16, f * 8, name="dec4")
        self.upconv3 = nn.ConvTranspose2d(f * 8, f * 4, kernel_size=2, stride=2)
        self.decoder3 = UNet._block(f * 8, f * 4, name="dec3")
        self.upconv2 = nn.ConvTranspose2d(f * 4, f * 2, kernel_size=2, stride=2)
        self.decoder2 = UNet._block(f * 4, f * 2, name="dec2")
        self.upconv1 = nn.ConvTranspose2d(f * 2, f, kernel_size=2, stride=2)
        self.decoder1 = UNet._block(f * 2, f, name="dec1")
        self.conv = nn.Conv2d(in_channels=f, out_channels=out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        enc1 = self.encoder1(x)
        enc2 = self.encoder2(self.pool1(enc1))
        enc3 = self.encoder3(self.pool2(enc2))
        enc4 = self.encoder4(self.pool3(enc3))
        bottleneck = self.bottleneck(self.pool4(enc4))
        dec4 = self.decoder4(torch.cat((self.upconv4(bottleneck), enc4), dim=1))
        dec3 = self.decoder3(torch.cat((self.upconv3(dec4), enc3), dim=1))
        dec2 = self.decoder2(torch.cat((self.upconv2(dec3), enc2), dim=1))
        dec1 = self.decoder1(torch.cat((self.upconv1(dec2), enc1), dim=1))
        return self.conv(dec1)  # logits

    @staticmethod
    def _block(in_channels: int, features: int, name: str) -> nn.Sequential:
        return nn.Sequential(
            OrderedDict(
                [
                    (
                        name + "conv1",
                        nn.Conv2d(in_channels, features, kernel_size=3, padding=1, bias=False),
                    ),
                    (name + "norm1", nn.BatchNorm2d(num_features=features)),
                    (name + "relu1", nn.ReLU(inplace=True)),
                    (
                        name + "conv2",
                        nn.Conv2d(features, features, kernel_size=3, padding=1, bias=False),
                    ),
                    (name + "norm2", nn.BatchNorm2d(num_features=features)),
                    (name + "relu2", nn.ReLU(inplace=True)),
                ]
            )
        )


@dataclass
class UNetConfig:
    """What a checkpoint needs besides its weights.

    ``out_channels == 1`` is a sigmoid network for the single foreground label of
    ``labels``; otherwise output channel ``i`` is the softmax score of ``labels``' i-th id
    (background first). ``channels`` names the case images that feed the network, in order.
    """

    in_channels: int = 3
    out_channels: int = 1
    init_features: int = 32
    labels: list[dict] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    normalisation: dict = field(default_factory=lambda: dict(DEFAULT_NORMALISATION))
    crop: dict = field(default_factory=dict)  # {"fraction", "size"}: see engines.unet.ContentCrop
    postprocess: str = ""  # "largest_component" keeps the largest 3D connected component

    @property
    def labelmap(self) -> LabelMap:
        return LabelMap.from_json(self.labels)

    @property
    def class_ids(self) -> list[int]:
        """Label id of each predicted class index (index 0 is background)."""
        ids = self.labelmap.ids
        return ids[:2] if self.out_channels == 1 else ids

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def lgg(cls) -> UNetConfig:
        """The published LGG FLAIR-abnormality model."""
        labels = LabelMap.from_names({1: "FLAIR abnormality"}).to_json()
        return cls(
            3,
            1,
            32,
            labels,
            list(LGG_CHANNELS),
            dict(LGG_NORMALISATION),
            dict(LGG_CROP),
            "largest_component",
        )


def build_model(config: UNetConfig, path: str | Path | None = None) -> UNet:
    """The network for ``config``, refused when its sizes are not positive or its weights
    would not fit in memory (a checkpoint's config decides them)."""
    sizes = (config.in_channels, config.out_channels, config.init_features)
    if min(sizes) < 1:
        raise ReadError(f"U-Net channels and features must be positive, got {sizes}", path)
    f = config.init_features  # 7.76 M parameters at f=32 (Buda et al.): ~7600 f^2 + channels
    params = 7600 * f * f + 9 * f * config.in_channels + f * config.out_channels
    check_bytes(4 * params, f"a U-Net with init_features={f}", path)
    return UNet(config.in_channels, config.out_channels, config.init_features)


def _bare_config(state: dict, path: Path) -> UNetConfig:
    """Infer the config of a bare published-style state dict from its tensor shapes."""
    try:
        first, head = state["encoder1.enc1conv1.weight"], state["conv.weight"]
    except KeyError as exc:
        raise ReadError(f"not a U-Net checkpoint (no {exc.args[0]!r} weights)", path) from None
    n_in, features, n_out = int(first.shape[1]), int(first.shape[0]), int(head.shape[0])
    if (n_in, n_out) == (3, 1):
        cfg = UNetConfig.lgg()
        cfg.init_features = features
        return cfg
    names = {1: "foreground"} if n_out == 1 else {i: f"label_{i}" for i in range(1, n_out)}
    return UNetConfig(n_in, n_out, features, LabelMap.from_names(names).to_json())


def load_checkpoint(path: str | Path, map_location="cpu") -> tuple[UNet, UNetConfig]:
    """Load one of our checkpoints or a bare published state dict (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise ReadError("no such U-Net checkpoint", path)
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt, truncated or unsafe pickles all mean "bad file"
        raise ReadError(
            f"cannot read U-Net checkpoint ({type(exc).__name__}: {exc})", path
        ) from exc
    if not isinstance(obj, dict):
        raise ReadError(f"not a U-Net checkpoint (holds {type(obj).__name__})", path)
    if "state_dict" in obj:
        state = obj["state_dict"]
        config = validated(UNetConfig, obj.get("config", {}), path)
    else:
        state = obj
        if state and all(str(k).startswith("module.") for k in state):  # saved from DataParallel
            state = {k[len("module.") :]: v for k, v in state.items()}
        config = _bare_config(state, path)
    model = build_model(config, path)
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError) as exc:
        summary = str(exc).splitlines()[0][:300]
        raise ReadError(f"weights do not fit the U-Net architecture ({summary})", path) from exc
    return model.eval(), config


def save_checkpoint(
    model: UNet, config: UNetConfig, path: str | Path, extra: dict | None = None
) -> Path:
    """Write ``{"state_dict", "config", ...extra}`` atomically (complete or absent)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({"state_dict": state, "config": config.to_json(), **(extra or {})}, tmp)
    return Path(path)
