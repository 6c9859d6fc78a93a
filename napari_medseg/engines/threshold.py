"""Classical pre-segmentation, no model needed: PET SUV thresholds, Otsu and fixed values.

``suv``: every connected region with SUV >= ``threshold`` (default 2.5).
``suv41``: each such region is redrawn at 41% of its own SUVmax (the EANM fixed-fraction
rule), grown from its peak within a margin around the region so that a faint lesion
cannot leak into the whole liver.
``otsu`` / ``value``: voxels at or above Otsu's threshold or a given value, for MRI or CT.
All methods then drop components smaller than ``min_size`` voxels and fill enclosed holes.
Without a method, each case gets :func:`default_method` (the CLI and the panel share it).
"""

from __future__ import annotations

import numpy as np

from napari_medseg.core.errors import MedsegError
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.model import Case, Volume
from napari_medseg.engines.base import Progress, SegmentationResult

METHODS = ("suv", "suv41", "otsu", "value")
DEFAULT_SUV = 2.5
SUV_FRACTION = 0.41
MARGIN_MM = 10.0  # how far a 41% region may grow beyond its absolute-threshold seed
PET_MODALITIES = ("PET", "SUV")


def is_pet(volume: Volume) -> bool:
    return not volume.rgb and volume.modality.upper() in PET_MODALITIES


def default_method(case: Case) -> str:
    """The one default rule: ``suv`` for a case with a PET image, ``otsu`` otherwise."""
    return "suv" if any(is_pet(v) for v in case.images) else "otsu"


def pick_image(case: Case, channel: str | None, pet: bool) -> Volume:
    """The image to threshold: ``channel`` by name/channel/modality, else PET or the first image."""
    images = [v for v in case.images if not v.rgb]
    if channel:
        want = channel.lower()
        for v in images:
            if want in {n.lower() for n in (v.name, v.channel, v.modality) if n}:
                return v
        have = ", ".join(v.name for v in images) or "none"
        raise MedsegError(f"case {case.id!r} has no image {channel!r} (it has {have})")
    if pet:
        for v in images:
            if is_pet(v):
                return v
        raise MedsegError(
            f"case {case.id!r} has no PET image for an SUV threshold; "
            "choose another image, or method otsu or value"
        )
    if not images:
        raise MedsegError(f"case {case.id!r} has no greyscale image to threshold")
    return images[0]


def clean(mask: np.ndarray, min_size: int, fill_holes: bool) -> np.ndarray:
    """Drop connected components under ``min_size`` voxels, then fill enclosed holes."""
    from scipy import ndimage as ndi

    if min_size > 1 and mask.any():
        comps, _ = ndi.label(mask)
        sizes = np.bincount(comps.ravel())
        keep = sizes >= min_size
        keep[0] = False
        mask = keep[comps]
    if fill_holes:
        mask = ndi.binary_fill_holes(mask)
    return mask


def suv41(suv: np.ndarray, threshold: float, spacing) -> np.ndarray:
    """Each region with SUV >= ``threshold``, redrawn at 41% of its SUVmax around its peak."""
    from scipy import ndimage as ndi

    seeds, n = ndi.label(suv >= threshold)
    out = np.zeros(suv.shape, bool)
    margin = [max(1, int(np.ceil(MARGIN_MM / s))) for s in spacing]
    for i, box in enumerate(ndi.find_objects(seeds), start=1):
        if box is None:
            continue
        grown = tuple(
            slice(max(0, b.start - m), min(dim, b.stop + m))
            for b, m, dim in zip(box, margin, suv.shape, strict=True)
        )
        local = suv[grown]
        in_seed = seeds[grown] == i
        peak = np.unravel_index(np.argmax(np.where(in_seed, local, -np.inf)), local.shape)
        level = SUV_FRACTION * float(local[peak])
        regions, _ = ndi.label(local >= level)
        out[grown] |= regions == regions[peak]
    return out


LESION_WORDS = ("lesion", "tumor", "tumour", "cancer")


class ThresholdEngine:
    """Threshold + connected components; see the module docstring for the methods."""

    name = "threshold"

    def __init__(
        self,
        method: str | None = None,
        threshold: float | None = None,
        min_size: int = 10,
        fill_holes: bool = True,
        channel: str | None = None,
    ):
        if method is not None and method not in METHODS:
            raise MedsegError(
                f"unknown threshold method {method!r}; choose one of {', '.join(METHODS)}"
            )
        if method == "value" and threshold is None:
            raise MedsegError("threshold method 'value' needs a threshold value")
        self.method, self.threshold, self.min_size = method, threshold, int(min_size)
        self.fill_holes, self.channel = bool(fill_holes), channel

    @classmethod
    def from_options(cls, method=None, threshold=None, min_size=10, fill_holes=True, channel=None):
        return cls(method, threshold, 10 if min_size is None else min_size, fill_holes, channel)

    def segment_case(self, case: Case, progress: Progress | None = None) -> SegmentationResult:
        method = self.method or default_method(case)
        vol = pick_image(case, self.channel, method.startswith("suv"))
        ref = case.reference_image()
        nsp = ref.spatial_ndim
        if vol.shape[: vol.spatial_ndim] != ref.shape[:nsp]:
            raise MedsegError(
                f"case {case.id!r}: image {vol.name!r} is not on the reference image's grid"
            )
        img = np.asarray(vol.array, dtype=np.float32)
        if method == "otsu":
            from skimage.filters import threshold_otsu

            level = float(threshold_otsu(img))
        else:
            level = float(self.threshold if self.threshold is not None else DEFAULT_SUV)
        mask = suv41(img, level, vol.spacing) if method == "suv41" else img >= level
        mask = clean(mask, self.min_size, self.fill_holes)
        if progress:
            progress(1, 1)
        info = {
            "engine": self.name,
            "method": method,
            "threshold": level,
            "image": vol.name,
            "min_size": self.min_size,
            "fill_holes": self.fill_holes,
        }
        label_id, labelmap = self.output_label(case, method)
        return SegmentationResult(mask.astype(np.uint8) * np.uint8(label_id), labelmap, info)

    @staticmethod
    def output_label(case: Case, method: str) -> tuple[int, LabelMap]:
        """The id to write: the case's own lesion/tumour label when its labelmap has one
        (so QA and review compare like with like), else 1 named after the method."""
        pet = method.startswith("suv")
        labelmap = case.labelmap
        if labelmap is not None and pet:
            for lab in labelmap.foreground():
                if any(word in lab.name.lower() for word in LESION_WORDS):
                    return lab.id, labelmap
        return 1, LabelMap.from_names({1: "lesion" if pet else "foreground"})
