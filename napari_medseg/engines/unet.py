"""U-Net pre-segmentation: slice-by-slice batched inference on the case's own grid.

The checkpoint says which case images feed the network and how they are normalised
(:class:`~napari_medseg.engines.unet_model.UNetConfig`), so the same preparation is used in
training (:mod:`napari_medseg.engines.training`) and inference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_medseg.core.errors import MedsegError
from napari_medseg.core.model import Case, Volume
from napari_medseg.engines.base import Progress, SegmentationResult
from napari_medseg.engines.device import pick_device


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


@dataclass
class ContentCrop:
    """brain-segmentation-pytorch's preprocessing (``crop_sample``, ``pad_sample``,
    ``resize_sample``) and its inverse for the prediction.

    Voxels under ``fraction`` of the volume's maximum are zeroed, the volume is cropped to
    what remains, padded square and resized to ``size`` x ``size`` (images order 2, masks
    order 0); :meth:`restore` puts a prediction back on the full grid.
    """

    box: tuple[slice, ...]
    pad: tuple[tuple[int, int], tuple[int, int]]
    size: int
    full: tuple[int, ...]

    @classmethod
    def fit(cls, x: np.ndarray, fraction: float, size: int) -> tuple[ContentCrop, np.ndarray]:
        """The crop of ``x`` (C, Z, Y, X), and ``x`` with its dim voxels zeroed."""
        from scipy import ndimage as ndi

        x = np.where(x < x.max() * fraction, 0, x)
        found = ndi.find_objects((x.max(axis=0) > 0).astype(np.uint8))
        box = found[0] if found else tuple(slice(0, n) for n in x.shape[1:])
        ny, nx = box[1].stop - box[1].start, box[2].stop - box[2].start
        half = abs(ny - nx) / 2
        pad = (math.floor(half), math.ceil(half))
        pads = (pad, (0, 0)) if ny < nx else ((0, 0), pad)
        return cls(box, pads, size, x.shape[1:]), x

    def _resize(self, a: np.ndarray, side: int, order: int) -> np.ndarray:
        from skimage.transform import resize

        shape = (*a.shape[:-2], side, side)
        out = resize(
            a, shape, order=order, mode="constant", anti_aliasing=False, preserve_range=True
        )
        return out.astype(a.dtype, copy=False)

    def image(self, x: np.ndarray) -> np.ndarray:
        """(C, Z, Y, X) on the full grid -> (C, Z', size, size)."""
        cropped = np.pad(x[(slice(None), *self.box)], ((0, 0), (0, 0), *self.pad))
        return self._resize(cropped, self.size, order=2)

    def mask(self, m: np.ndarray) -> np.ndarray:
        """(Z, Y, X) labels on the full grid -> (Z', size, size)."""
        return self._resize(np.pad(m[self.box], ((0, 0), *self.pad)), self.size, order=0)

    def restore(self, classes: np.ndarray) -> np.ndarray:
        """(Z', size, size) prediction -> (Z, Y, X) on the full grid (zero outside the crop)."""
        (py0, py1), (px0, px1) = self.pad
        side = self.box[1].stop - self.box[1].start + py0 + py1
        square = self._resize(classes, side, order=0)
        out = np.zeros(self.full, classes.dtype)
        out[self.box] = square[:, py0 : side - py1, px0 : side - px1]
        return out


def case_input(case: Case, config) -> tuple[np.ndarray, Volume, ContentCrop | None]:
    """Normalised network input (C, Z, Y, X) float32, the volume whose grid the case's
    prediction goes on, and the crop to undo (when the config asks for one)."""
    vols = input_volumes(case, config.channels, config.in_channels)
    shapes = {v.shape[: v.spatial_ndim] for v in vols}
    if len(shapes) != 1:
        raise MedsegError(
            f"case {case.id!r}: the model's input images are on different grids {sorted(shapes)}"
        )
    x = np.stack([np.asarray(v.array, dtype=np.float32) for v in vols])
    if vols[0].spatial_ndim == 2:
        x = x[:, None]
    crop = None
    if config.crop:
        crop, x = ContentCrop.fit(x, config.crop.get("fraction", 0.1), config.crop.get("size", 256))
        x = crop.image(x)
    return normalise(x, config.normalisation), vols[0], crop


def largest_component(mask: np.ndarray) -> np.ndarray:
    """Keep the largest 3D connected foreground component (the published post-processing)."""
    from scipy import ndimage as ndi

    comps, n = ndi.label(mask > 0)
    if n < 2:
        return mask
    biggest = 1 + int(np.argmax(np.bincount(comps.ravel())[1:]))
    return np.where(comps == biggest, mask, 0).astype(mask.dtype)


def _pad_to(n: int) -> int:
    from napari_medseg.engines.unet_model import DEPTH

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
    def from_options(cls, checkpoint=None, device=None, batch_size=16) -> UNetEngine:
        if not checkpoint:
            raise MedsegError("the unet engine needs a checkpoint (--checkpoint MODEL.pt)")
        if not Path(checkpoint).is_file():  # before torch loads (seconds)
            raise MedsegError("no such U-Net checkpoint", checkpoint)
        from napari_medseg.engines.unet_model import load_checkpoint

        device = pick_device(device)
        model, config = load_checkpoint(checkpoint, map_location="cpu")
        return cls(model.to(device), config, Path(checkpoint), device, int(batch_size))

    def segment_case(self, case: Case, progress: Progress | None = None) -> SegmentationResult:
        x, grid, crop = case_input(case, self.config)
        classes = predict_volume(
            self.model, x, batch_size=self.batch_size, device=self.device, progress=progress
        )
        if crop is not None:
            classes = crop.restore(classes)
        if self.config.postprocess == "largest_component":
            classes = largest_component(classes)
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
