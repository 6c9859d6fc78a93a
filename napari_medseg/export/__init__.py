"""Mask exports (CVAT Segmentation mask 1.1, NIfTI/MHA/NRRD on the source grid, COCO RLE,
DICOM SEG, 3D Slicer ``.seg.nrrd``).

This module holds what every export shares: the items to export, 8-bit windowing, and
:func:`export_masks`, the one entry point of the CLI, the writers and the widget.

A 3D volume is cut along one display axis (0 axial, 1 coronal, 2 sagittal) into named 2D
items: see :mod:`napari_medseg.formats.slices`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_medseg.core.errors import MedsegError
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.model import INSTANCES, Volume
from napari_medseg.formats.cvat import is_cvat_export

FORMATS = ("cvat", "nifti", "coco", "dicom-seg", "slicer")


@dataclass
class ExportItem:
    """One case to export: its class mask, optional instance ids and image, in display order.

    ``reference`` is the source volume (for exports on the source grid); ``source`` the data
    folder that must not receive the output.
    """

    case_id: str
    classes: np.ndarray
    instances: np.ndarray | None = None
    image: np.ndarray | None = None
    window: tuple[float, float] | None = None
    reference: Volume | None = None
    source: Path | None = None

    def __post_init__(self):
        self.classes = np.asarray(self.classes)
        if self.classes.dtype == bool:
            self.classes = self.classes.astype(np.uint8)
        if self.classes.ndim not in (2, 3):
            raise MedsegError(
                f"case {self.case_id!r}: mask must be 2D or 3D, got shape {self.classes.shape}"
            )
        if not np.issubdtype(self.classes.dtype, np.integer) and self.classes.dtype != bool:
            raise MedsegError(
                f"case {self.case_id!r}: mask must hold integer labels, got {self.classes.dtype}"
            )
        if self.instances is not None and np.shape(self.instances) != self.classes.shape:
            raise MedsegError(
                f"case {self.case_id!r}: instance mask shape {np.shape(self.instances)} "
                f"differs from the class mask {self.classes.shape}"
            )
        if (
            self.image is not None
            and np.shape(self.image)[: self.classes.ndim] != self.classes.shape
        ):
            raise MedsegError(
                f"case {self.case_id!r}: image shape {np.shape(self.image)} "
                f"differs from the mask {self.classes.shape}"
            )


def to_uint8(image: np.ndarray, window: tuple[float, float] | None) -> np.ndarray:
    """Window an image slice to 8 bit (RGB uint8 images pass through)."""
    if image.dtype == np.uint8 and window is None:
        return image
    lo, hi = window if window is not None else (float(image.min()), float(image.max()))
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    out = (image.astype(np.float32) - lo) * scale
    return np.clip(out, 0, 255).round().astype(np.uint8)


def image_window(vol: Volume | None, arr: np.ndarray) -> tuple[float, float] | None:
    """One 8-bit window for all exported slices: the viewer's CT window, else robust limits."""
    from napari_medseg.core.intensity import CT_WINDOW, robust_limits

    if arr.dtype == np.uint8:
        return None
    return CT_WINDOW if vol is not None and vol.modality.upper() == "CT" else robust_limits(arr)


def item_from_case(
    case, source: Path | None = None, masks: str | Path | None = None, with_image: bool = False
) -> tuple[ExportItem, LabelMap]:
    """The export item of a dataset case and its labelmap.

    ``masks`` replaces the dataset's own mask: a folder of curated ``<case id>.nii.gz`` (read
    with :func:`~napari_medseg.io.masks.case_mask_from_folder`) or a CVAT export (folder or zip),
    whose instance ids come along.
    """
    from napari_medseg.core.errors import ReadError

    ref = case.reference_image() if case.images else None
    labelmap = case.labelmap or LabelMap.from_names({1: "foreground"})
    instances = None
    if masks is not None and is_cvat_export(masks):
        from napari_medseg.export.cvat import import_cvat

        shape = tuple(ref.shape[: ref.spatial_ndim]) if ref is not None else None
        classes, instances, labelmap = import_cvat(masks, case.id, labelmap, shape)
    elif masks is not None:
        from napari_medseg.io.masks import case_mask_from_folder, mask_path

        vol = case_mask_from_folder(masks, case, labelmap)
        if vol is None:
            raise ReadError(f"no curated mask for case {case.id!r}", mask_path(masks, case.id))
        classes = vol.array
    else:
        own = [m for m in case.masks if m.name != INSTANCES]
        if not own:
            raise ReadError(f"case {case.id!r} has no mask to export (use --masks)", source)
        classes = own[0].array
        labelmap = own[0].labelmap or labelmap
        inst = next((m for m in case.masks if m.name == INSTANCES), None)
        instances = inst.array if inst is not None else None
    image = window = None
    if with_image and ref is not None:
        image = ref.array
        window = image_window(ref, image)
    item = ExportItem(case.id, classes, instances, image, window, reference=ref, source=source)
    return item, labelmap


def export_masks(
    fmt: str,
    out: str | Path,
    items: list[ExportItem],
    labelmap: LabelMap,
    *,
    axis: int | str = 0,
    components: str = "2d",
    images: bool = False,
    as_zip: bool = False,
    suffix: str = ".nii.gz",
    algorithm=None,
    derive_series: bool = False,
    compress: bool = False,
    notes: list[str] | None = None,
    progress=None,
) -> list[Path]:
    """Export ``items`` as ``fmt`` (cvat, nifti, coco) under ``out``; returns what was written.

    ``cvat``: ``out`` is the export root (``out/labelmap.txt``), or ``out.zip`` with ``as_zip``;
    ``nifti``: ``out/<case id><suffix>`` (``"native"``: MHA/NRRD sources keep their format);
    ``coco``: ``out/instances_default.json``;
    ``dicom-seg``: ``out/<case id>.seg.dcm`` made by ``algorithm``
    (:class:`~napari_medseg.export.dicom_seg.Algorithm`), plus a derived series for
    NIfTI-sourced cases with ``derive_series``, JPEG 2000 lossless with ``compress``;
    ``slicer``: ``out/<case id>.seg.nrrd`` with 3D Slicer's segment metadata, on the source grid.
    Messages the user should see (UIDs generated for the source) are appended to ``notes``.
    """
    out = Path(out)
    if fmt == "cvat":
        from napari_medseg.export.cvat import export_cvat

        if as_zip and out.suffix.lower() != ".zip":
            out = out.with_name(out.name + ".zip")
        res = export_cvat(
            out, items, labelmap, axis=axis, components=components, images=images, progress=progress
        )
        return [res.path]
    if fmt == "nifti":
        from napari_medseg.export.nifti import export_nifti

        return export_nifti(out, items, suffix=suffix, progress=progress)
    if fmt == "coco":
        from napari_medseg.export.coco import export_coco

        return [
            export_coco(out, items, labelmap, axis=axis, components=components, progress=progress)
        ]
    if fmt == "dicom-seg":
        from napari_medseg.export.dicom_seg import export_dicom_seg
        from napari_medseg.export.manifest import claim, record

        ours = claim(out, [item.source for item in items if item.source is not None])
        written = []
        for done, item in enumerate(items, 1):
            res = export_dicom_seg(out, item, labelmap, algorithm, derive_series, compress)
            written += [p for p in (res.derived_series, res.path) if p is not None]
            if res.generated_uids and notes is not None:
                notes.append(
                    f"case {item.case_id}: the source series lacks "
                    f"{', '.join(res.generated_uids)}; generated them (recorded in {res.uids})"
                )
            if progress is not None:
                progress(done, len(items))
            record(out, ours, written)
        return written
    if fmt == "slicer":
        from napari_medseg.export.nifti import export_nifti

        return export_nifti(out, items, ".seg.nrrd", progress, labelmap)
    raise MedsegError(f"unknown export format {fmt!r} (use {', '.join(FORMATS)})")
