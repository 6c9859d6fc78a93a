"""Masks on the source grid: NIfTI (``.nii.gz``) with the source affine, MHA/NRRD, or 3D
Slicer ``.seg.nrrd``.

Geometry comes entirely from :func:`napari_medseg.io.masks.write_mask`, so nibabel and
SimpleITK read the mask back aligned with the image.
"""

from __future__ import annotations

from pathlib import Path

from napari_medseg.core.atomic import check_output_dir
from napari_medseg.core.errors import MedsegError
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.model import Volume
from napari_medseg.core.safe_names import case_file
from napari_medseg.export import ExportItem
from napari_medseg.export.manifest import check_replace, claim, record
from napari_medseg.io.masks import MASK_SUFFIX, write_mask
from napari_medseg.io.slicer_seg import is_seg_nrrd, write_seg_nrrd
from napari_medseg.io.volumes import has_suffix


def native_suffix(reference: Volume) -> str:
    """``.mha``/``.nrrd`` for sources in those formats, else ``.nii.gz``."""
    src = reference.source
    if src is not None and src.kind == "itk":
        for suffix in (".mha", ".nrrd"):
            if has_suffix(src.path, (suffix, ".mhd" if suffix == ".mha" else ".nhdr")):
                return suffix
    return MASK_SUFFIX


def export_nifti(
    out_dir: str | Path,
    items: list[ExportItem],
    suffix: str = MASK_SUFFIX,
    progress=None,
    labelmap: LabelMap | None = None,
) -> list[Path]:
    """Write ``<out_dir>/<case id><suffix>`` per item, each on its reference volume's grid.

    ``suffix`` ``"native"`` picks ``.mha``/``.nrrd`` for sources in those formats;
    ``".seg.nrrd"`` writes 3D Slicer segmentations named after ``labelmap``. The folder must be
    empty or hold an earlier export of ours (:mod:`.manifest`); only our files are replaced.
    """
    out_dir = Path(out_dir)
    ours = claim(out_dir, [item.source for item in items if item.source is not None])
    written = []
    try:
        for done, item in enumerate(items, 1):
            ext = suffix
            if suffix == "native":
                ext = native_suffix(item.reference) if item.reference is not None else MASK_SUFFIX
            path = check_replace(out_dir, case_file(out_dir, item.case_id, ext), ours)
            written.append(write_file(path, item, labelmap))
            if progress is not None:
                progress(done, len(items))
    finally:
        if written:
            record(out_dir, ours, written)
    return written


def write_file(path: str | Path, item: ExportItem, labelmap: LabelMap | None = None) -> Path:
    """One mask file on ``item.reference``'s grid (pixel grid when there is none); a
    ``.seg.nrrd`` path gets 3D Slicer's segment names and colours from ``labelmap``."""
    if item.reference is None:
        item.reference = Volume.from_array(item.case_id, item.classes)
    if item.source is not None:
        check_output_dir(Path(path).parent, item.source)
    if item.classes.shape != tuple(item.reference.shape[: item.reference.spatial_ndim]):
        raise MedsegError(
            f"case {item.case_id!r}: mask shape {item.classes.shape} differs from its image "
            f"{tuple(item.reference.shape[: item.reference.spatial_ndim])}"
        )
    if is_seg_nrrd(path):
        lm = labelmap or LabelMap.from_names({})
        return write_seg_nrrd(item.reference, item.classes, lm, path)
    return write_mask(item.reference, item.classes, path)
