"""Masks on disk: ``<out>/<case id>.nii.gz`` on the source grid, the convention every command
that writes masks follows (presegment, review, export --masks, qa --masks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_medseg.core.atomic import atomic_path
from napari_medseg.core.errors import ReadError, WriteError
from napari_medseg.core.geometry import RAS_TO_LPS, reverse_axes, sitk_index_to_lps
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.model import Case, Volume
from napari_medseg.core.safe_names import case_file
from napari_medseg.io.volumes import (
    NIFTI_SUFFIXES,
    as_label_array,
    guarded,
    has_suffix,
    read_volume,
)

MASK_SUFFIX = ".nii.gz"


def mask_path(folder: str | Path, case_id: str) -> Path:
    """``<folder>/<case id>.nii.gz``, the id made a safe file name (see :mod:`.safe_names`)."""
    return case_file(folder, case_id, MASK_SUFFIX)


def _as_3d(reference: Volume, mask: np.ndarray) -> np.ndarray:
    nsp = reference.spatial_ndim
    if mask.shape != tuple(reference.shape[:nsp]):
        raise WriteError(
            f"mask shape {mask.shape} differs from image shape {reference.shape[:nsp]}"
        )
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


def itk_image(data: np.ndarray, affine: np.ndarray):
    """A SimpleITK image of file-layout (i, j, k) ``data`` with RAS ``affine`` (LPS inside)."""
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(data.transpose(2, 1, 0))  # back to (z, y, x)
    lps = RAS_TO_LPS @ affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    img.SetSpacing(tuple(float(s) for s in spacing))
    img.SetOrigin(tuple(float(o) for o in lps[:3, 3]))
    img.SetDirection(tuple(float(v) for v in (lps[:3, :3] / spacing).ravel()))
    return img


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
        raise WriteError(
            f"mask shape {mask.shape} differs from image shape {tuple(reference.shape[:nsp])}", path
        )
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

            sitk.WriteImage(itk_image(data, affine), str(tmp), True)
        else:
            raise WriteError("unsupported mask format (use .nii.gz, .mha or .nrrd)", path)
    return path


def source_grid(reference: Volume) -> tuple[tuple[int, ...], np.ndarray]:
    """Shape (i, j, k) and RAS affine of the file :func:`write_mask` writes for ``reference``."""
    src = reference.source
    nsp = reference.spatial_ndim
    display = tuple(reference.shape[:nsp])
    if src is not None and src.kind in ("nifti", "itk") and nsp == 3:
        source = [0, 0, 0]
        for d, axis in enumerate(src.transform.perm):
            source[axis] = display[d]
        if src.kind == "nifti":
            return tuple(source), src.affine
        return tuple(source[::-1]), RAS_TO_LPS @ src.affine
    zyx = display if nsp == 3 else (1, *display)
    return tuple(zyx[::-1]), _display_ras_affine(reference)


def to_display(reference: Volume, data: np.ndarray) -> np.ndarray:
    """Inverse of :func:`source_layout`: a file-layout (i, j, k) mask in ``reference``'s display order."""
    src = reference.source
    if src is not None and src.kind == "nifti" and reference.spatial_ndim == 3:
        return src.transform.to_display(data)
    if src is not None and src.kind == "itk" and reference.spatial_ndim == 3:
        return src.transform.to_display(data.transpose(2, 1, 0))
    zyx = data.transpose(2, 1, 0)
    return zyx if reference.spatial_ndim == 3 else zyx[0]


def _file_grid(path: Path):
    """Shape (i, j, k), RAS affine and an (i, j, k) loader of a NIfTI/MHA/NRRD mask file."""
    if has_suffix(path, NIFTI_SUFFIXES):
        import nibabel as nib

        img = nib.load(str(path))
        return tuple(img.shape[:3]), img.affine, lambda: np.asanyarray(img.dataobj)
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    lps = sitk_index_to_lps(reader.GetSpacing(), reader.GetOrigin(), reader.GetDirection())
    return (
        tuple(reader.GetSize()),
        RAS_TO_LPS @ lps,
        lambda: sitk.GetArrayFromImage(reader.Execute()).transpose(2, 1, 0),
    )


def read_mask(path: str | Path, reference: Volume, labelmap: LabelMap | None = None) -> Volume:
    """Read a mask file onto ``reference``'s grid, refusing one that lies on another grid.

    A file on the reference's own source grid (what :func:`write_mask` writes, or a label file
    from the same scanner export) maps back voxel for voxel; a file stored in another voxel
    order is accepted when its world geometry matches after reorientation.
    """
    path = Path(path)
    labelmap = labelmap or LabelMap.from_names({})
    nsp = reference.spatial_ndim
    ref_shape = tuple(reference.shape[:nsp])
    try:
        shape, affine, load_raw = _file_grid(path)
    except Exception as exc:  # noqa: BLE001 - any header failure means a bad file
        raise ReadError(f"not a readable mask file ({exc})", path) from exc
    want_shape, want_affine = source_grid(reference)
    if shape == want_shape and np.allclose(affine, want_affine, atol=1e-3):
        load = guarded(path, lambda: as_label_array(to_display(reference, load_raw()), path))
        return Volume(reference.name + "_mask", ref_shape, np.dtype(np.uint8), reference.geometry, load,
                      labelmap=labelmap)  # fmt: skip
    vol = read_volume(path, name=reference.name + "_mask", labelmap=labelmap)[0]
    if nsp != 3 or tuple(vol.shape) != ref_shape:
        raise ReadError(f"mask shape {tuple(vol.shape)} differs from image shape {ref_shape}", path)
    if not np.allclose(vol.geometry.affine(), reference.geometry.affine(), atol=1e-3):
        raise ReadError("mask affine differs from the image's (not on the same grid)", path)
    vol.geometry = reference.geometry
    return vol


def case_mask_from_folder(
    folder: str | Path, case: Case, labelmap: LabelMap | None = None
) -> Volume | None:
    """The curated mask ``<folder>/<case id>.nii.gz`` for ``case``, or None when absent."""
    path = mask_path(folder, case.id)
    if not path.exists():
        return None
    lm = labelmap or case.labelmap or LabelMap.from_names({1: "foreground"})
    return read_mask(path, case.reference_image(), lm)
