"""Masks on disk: ``<out>/<case id>.nii.gz`` on the source grid, the convention every command
that writes masks follows (presegment, review, export --masks, qa --masks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_medseg.core.atomic import atomic_path
from napari_medseg.core.errors import ReadError, WriteError
from napari_medseg.core.geometry import RAS_TO_LPS, reverse_axes
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.model import Case, Volume
from napari_medseg.io.volumes import read_volume

MASK_SUFFIX = ".nii.gz"


def mask_path(folder: str | Path, case_id: str) -> Path:
    return Path(folder) / f"{case_id}{MASK_SUFFIX}"


def _as_3d(reference: Volume, mask: np.ndarray) -> np.ndarray:
    nsp = reference.spatial_ndim
    if mask.shape != tuple(reference.shape[:nsp]):
        raise WriteError(f"mask shape {mask.shape} differs from image shape {reference.shape[:nsp]}")
    return mask[None] if nsp == 2 else mask


def _display_ras_affine(reference: Volume) -> np.ndarray:
    """RAS affine for a display-order (z, y, x) array written as NIfTI (i, j, k) = (x, y, z)."""
    geom = reference.geometry
    if reference.spatial_ndim == 2:
        from napari_medseg.core.geometry import Geometry

        geom = Geometry((1.0, *geom.spacing), (0.0, *geom.origin), np.eye(3))
    return RAS_TO_LPS @ reverse_axes(geom.lps_affine())


def source_layout(reference: Volume, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mask as the reference file lays out its voxels, and that file's RAS affine."""
    src = reference.source
    if src is not None and src.kind == "nifti" and reference.spatial_ndim == 3:
        return src.transform.to_source(mask), src.affine
    if src is not None and src.kind == "itk" and reference.spatial_ndim == 3:
        zyx = src.transform.to_source(mask)
        return zyx.transpose(2, 1, 0), RAS_TO_LPS @ src.affine
    return _as_3d(reference, mask).transpose(2, 1, 0), _display_ras_affine(reference)


def label_dtype(mask: np.ndarray) -> np.dtype:
    hi = int(mask.max()) if mask.size else 0
    return np.dtype(np.uint8 if hi < 256 else np.uint16 if hi < 65536 else np.uint32)


def write_mask(reference: Volume, mask: np.ndarray, path: str | Path) -> Path:
    """Write a display-order mask onto ``reference``'s source grid, atomically.

    ``.nii.gz``/``.nii`` keep a NIfTI source's affine and header exactly; ``.mha``/``.nrrd``
    carry the LPS geometry. The file is complete or absent, never half-written.
    """
    import nibabel as nib

    path = Path(path)
    mask = np.asarray(mask)
    nsp = reference.spatial_ndim
    if mask.shape != tuple(reference.shape[:nsp]):
        raise WriteError(f"mask shape {mask.shape} differs from image shape {tuple(reference.shape[:nsp])}", path)
    data, affine = source_layout(reference, mask)
    data = np.ascontiguousarray(data, dtype=label_dtype(mask))
    name = path.name.lower()
    with atomic_path(path) as tmp:
        if name.endswith((".nii.gz", ".nii")):
            src = reference.source
            header = src.header.copy() if src is not None and src.kind == "nifti" else None
            img = nib.Nifti1Image(data, affine, header=header)
            img.set_data_dtype(data.dtype)
            img.header["scl_slope"], img.header["scl_inter"] = 1.0, 0.0
            if header is None:
                img.set_sform(affine, code=1)
                img.set_qform(affine, code=1)
            nib.save(img, str(tmp))
        elif name.endswith((".mha", ".mhd", ".nrrd")):
            import SimpleITK as sitk

            img = sitk.GetImageFromArray(data.transpose(2, 1, 0))  # back to (z, y, x)
            lps = RAS_TO_LPS @ affine
            spacing = np.linalg.norm(lps[:3, :3], axis=0)
            img.SetSpacing(tuple(float(s) for s in spacing))
            img.SetOrigin(tuple(float(o) for o in lps[:3, 3]))
            img.SetDirection(tuple(float(v) for v in (lps[:3, :3] / spacing).ravel()))
            sitk.WriteImage(img, str(tmp), True)
        else:
            raise WriteError("unsupported mask format (use .nii.gz, .mha or .nrrd)", path)
    return path


def read_mask(path: str | Path, reference: Volume, labelmap: LabelMap | None = None) -> Volume:
    """Read a mask file and check it lies on ``reference``'s grid (shape and geometry)."""
    path = Path(path)
    vol = read_volume(path, name=reference.name + "_mask", labelmap=labelmap or LabelMap.from_names({}))[0]
    nsp = reference.spatial_ndim
    ref_shape = tuple(reference.shape[:nsp])
    shape = vol.shape if nsp == 3 else vol.shape[1:]
    if tuple(shape) != ref_shape:
        on_grid = _read_in_source_layout(path, reference, vol)
        if on_grid is None:
            raise ReadError(f"mask shape {tuple(shape)} differs from image shape {ref_shape}", path)
        return on_grid
    if nsp == 3 and reference.source is not None and reference.source.kind != "pixels":
        same = np.allclose(vol.geometry.affine(), reference.geometry.affine(), atol=1e-3)
        if not same:
            raise ReadError("mask affine differs from the image's (not on the same grid)", path)
    if nsp == 2:
        load3 = vol.loader
        vol = Volume(vol.name, ref_shape, vol.dtype, reference.geometry, lambda: load3()[0],
                     labelmap=vol.labelmap, source=vol.source)  # fmt: skip
    else:
        vol.geometry = reference.geometry
    return vol


def _read_in_source_layout(path: Path, reference: Volume, vol: Volume) -> Volume | None:
    """A NIfTI mask that :func:`write_mask` put on an ITK/DICOM reference whose display layout is
    not the radiological one (e.g. sagittal LSS slices kept as acquired); None if it is not one."""
    import nibabel as nib

    from napari_medseg.io.volumes import as_label_array

    src = reference.source
    if src is None or src.kind != "itk" or reference.spatial_ndim != 3 or vol.source is None:
        return None
    if vol.source.kind != "nifti" or not np.allclose(vol.source.affine, RAS_TO_LPS @ src.affine, atol=1e-3):
        return None
    img = nib.load(str(path))
    if src.transform.display_shape(tuple(img.shape[:3])[::-1]) != tuple(reference.shape[:3]):
        return None

    def load():
        return as_label_array(src.transform.to_display(np.asanyarray(img.dataobj).transpose(2, 1, 0)), path)

    return Volume(vol.name, tuple(reference.shape[:3]), vol.dtype, reference.geometry, load,
                  labelmap=vol.labelmap, source=vol.source)  # fmt: skip


def case_mask_from_folder(folder: str | Path, case: Case, labelmap: LabelMap | None = None) -> Volume | None:
    """The curated mask ``<folder>/<case id>.nii.gz`` for ``case``, or None when absent."""
    path = mask_path(folder, case.id)
    if not path.exists():
        return None
    lm = labelmap or case.labelmap or LabelMap.from_names({1: "foreground"})
    return read_mask(path, case.reference_image(), lm)
