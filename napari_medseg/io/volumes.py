"""Single-file volume readers: NIfTI (nibabel), MHA/MHD/NRRD (SimpleITK), 2D image stacks.

Each reader reads the header now and the voxels on first use, and records a
:class:`~napari_medseg.core.model.Source` so masks can be written back on the file's grid.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from napari_medseg.core.errors import ReadError
from napari_medseg.core.geometry import (
    RAS_TO_LPS,
    DisplayTransform,
    Geometry,
    orient_for_display,
    reverse_axes,
    sitk_index_to_lps,
)
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.model import Source, Volume

NIFTI_SUFFIXES = (".nii.gz", ".nii")
ITK_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr")
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
VOLUME_SUFFIXES = NIFTI_SUFFIXES + ITK_SUFFIXES


def has_suffix(path: Path | str, suffixes: Sequence[str]) -> bool:
    name = str(path).lower()
    return any(name.endswith(s) for s in suffixes)


def strip_suffix(name: str, suffixes: Sequence[str] = VOLUME_SUFFIXES + IMAGE_SUFFIXES) -> str:
    low = name.lower()
    for s in sorted(suffixes, key=len, reverse=True):
        if low.endswith(s):
            return name[: -len(s)]
    return name


def guarded(path: Path, load: Callable[[], np.ndarray]) -> Callable[[], np.ndarray]:
    """Wrap a loader so any failure becomes a ReadError that names the file."""

    def run() -> np.ndarray:
        try:
            return load()
        except ReadError:
            raise
        except (Exception, MemoryError) as exc:  # noqa: BLE001 - any reader failure is a bad file
            raise ReadError(f"cannot read voxel data ({type(exc).__name__}: {exc})", path) from exc

    return run


def as_label_array(arr: np.ndarray, path: Path) -> np.ndarray:
    """Integer labels from a mask array (float masks are accepted when integral)."""
    if np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
        out = arr
    else:
        rounded = np.rint(arr)
        if not np.allclose(rounded, arr, atol=1e-3):
            raise ReadError("mask holds non-integer values", path)
        out = rounded
    hi = int(out.max()) if out.size else 0
    lo = int(out.min()) if out.size else 0
    if lo < 0:
        raise ReadError(f"mask holds negative label {lo}", path)
    dtype = np.uint8 if hi < 256 else np.uint16 if hi < 65536 else np.uint32
    return np.asarray(out, dtype=dtype)


def _mask_loader(load, path, labelmap):
    if labelmap is None:
        return load
    return lambda: as_label_array(load(), path)


def scale_float32(raw: np.ndarray, proxy) -> np.ndarray:
    """``raw * scl_slope + scl_inter`` computed straight into float32 (nibabel's ``dataobj``
    and ``get_fdata`` go through float64, 2.4x the output's bytes at peak)."""
    out = np.multiply(raw, np.float32(proxy.slope), dtype=np.float32)
    if proxy.inter:
        out += np.float32(proxy.inter)
    return out


def read_nifti(
    path: Path | str,
    name: str | None = None,
    modality: str = "",
    channel_names: Sequence[str] | None = None,
    labelmap: LabelMap | None = None,
) -> list[Volume]:
    """Read a NIfTI file; a 4D file gives one volume per channel (last axis)."""
    import nibabel as nib

    path = Path(path)
    try:
        img = nib.load(str(path))
        shape = tuple(int(s) for s in img.shape)
        affine = np.asarray(img.affine, dtype=float)
        dtype = np.dtype(img.get_data_dtype())
    except Exception as exc:  # noqa: BLE001 - nibabel raises many kinds for bad headers
        raise ReadError(f"not a readable NIfTI file ({exc})", path) from exc
    name = name or strip_suffix(path.name)
    if len(shape) == 2:
        shape = shape + (1,)
    if len(shape) not in (3, 4) or (len(shape) == 4 and shape[3] == 1 and False):
        raise ReadError(f"expected a 3D or 4D image, got shape {shape}", path)
    spatial = shape[:3]
    transform, geometry = orient_for_display(RAS_TO_LPS @ affine, spatial)
    scaled = img.dataobj.slope != 1 or img.dataobj.inter != 0
    if scaled:
        dtype = np.dtype(np.float32)
    if labelmap is not None:
        dtype = np.dtype(np.uint8)
    source = Source(path, "nifti", transform, affine, img.header)
    nchan = shape[3] if len(shape) == 4 else 1

    def loader(c: int | None):
        def load():
            if scaled:  # raw values, then float32 scaling: no float64 copy (peak 1.5x output)
                raw = np.asanyarray(img.dataobj.get_unscaled())
                arr = scale_float32(raw if c is None else raw[..., c], img.dataobj)
                del raw
            else:
                arr = np.asanyarray(img.dataobj if c is None else img.dataobj[..., c])
            if arr.ndim == 2:
                arr = arr[..., None]
            if arr.ndim == 4 and arr.shape[3] == 1:
                arr = arr[..., 0]
            return transform.to_display(arr)

        return guarded(path, _mask_loader(load, path, labelmap))

    display_shape = transform.display_shape(spatial)
    if nchan == 1:
        return [
            Volume(name, display_shape, dtype, geometry, loader(None), modality=modality,
                   channel=(channel_names or [""])[0], labelmap=labelmap, source=source)
        ]  # fmt: skip
    names = list(channel_names or [str(i) for i in range(nchan)])
    if len(names) != nchan:
        names = [str(i) for i in range(nchan)]
    return [
        Volume(f"{name}_{names[c]}" if names[c] else f"{name}_{c}", display_shape, dtype, geometry,
               loader(c), modality=modality, channel=names[c], labelmap=labelmap, source=source,
               metadata={"channel_index": c})
        for c in range(nchan)
    ]  # fmt: skip


def itk_header(path: Path, kind: str = "image"):
    """A SimpleITK file reader of ``path`` with its header read (voxels not yet)."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise ReadError(
            f"not a readable {kind} file ({str(exc).strip().splitlines()[-1]})", path
        ) from exc
    return reader


def read_itk(
    path: Path | str,
    name: str | None = None,
    modality: str = "",
    channel: str = "",
    labelmap: LabelMap | None = None,
) -> Volume:
    """Read an MHA/MHD/NRRD file with SimpleITK (header now, voxels later)."""
    import SimpleITK as sitk

    path = Path(path)
    reader = itk_header(path)
    size = reader.GetSize()
    ncomp = reader.GetNumberOfComponents()
    if len(size) == 2:
        spacing, origin = reader.GetSpacing() + (1.0,), reader.GetOrigin() + (0.0,)
        d2 = np.asarray(reader.GetDirection()).reshape(2, 2)
        direction = np.eye(3)
        direction[:2, :2] = d2
        size = size + (1,)
    elif len(size) == 3:
        spacing, origin, direction = reader.GetSpacing(), reader.GetOrigin(), reader.GetDirection()
    else:
        raise ReadError(f"expected a 2D or 3D image, got {len(size)} dimensions", path)
    index_to_lps = sitk_index_to_lps(spacing, origin, direction)
    array_shape = tuple(reversed(size))  # SimpleITK arrays are (z, y, x)
    transform, geometry = orient_for_display(reverse_axes(index_to_lps), array_shape)
    probe = sitk.Image([1] * len(reader.GetSize()), reader.GetPixelID(), ncomp)
    dtype = np.dtype(sitk.GetArrayFromImage(probe).dtype)
    if labelmap is not None:
        dtype = np.dtype(np.uint8)

    def load():
        arr = sitk.GetArrayFromImage(reader.Execute())
        if arr.ndim == 2 or (ncomp > 1 and arr.ndim == 3):
            arr = arr[None]
        return transform.to_display(arr)

    shape = transform.display_shape(array_shape) + ((ncomp,) if ncomp > 1 else ())
    return Volume(
        name or strip_suffix(path.name), shape, dtype, geometry,
        guarded(path, _mask_loader(load, path, labelmap)), modality=modality, channel=channel,
        rgb=ncomp in (3, 4), labelmap=labelmap, source=Source(path, "itk", transform, index_to_lps),
    )  # fmt: skip


def read_volume(path: Path | str, **kw) -> list[Volume]:
    """Read any single-file volume by suffix."""
    path = Path(path)
    if has_suffix(path, NIFTI_SUFFIXES):
        kw.pop("channel", None)
        return read_nifti(path, **kw)
    if has_suffix(path, ITK_SUFFIXES):
        kw.pop("channel_names", None)
        return [read_itk(path, **kw)]
    if has_suffix(path, IMAGE_SUFFIXES):
        return [read_image_stack([path], name=kw.get("name"), labelmap=kw.get("labelmap"))]
    raise ReadError("unsupported file type", path)


def image_size(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a 2D image file without decoding the pixels."""
    if has_suffix(path, (".tif", ".tiff")):
        import tifffile

        try:
            with tifffile.TiffFile(path) as tif:
                page = tif.pages[0]
                return tuple(int(s) for s in page.shape), np.dtype(page.dtype)
        except Exception as exc:  # noqa: BLE001
            raise ReadError(f"not a readable TIFF ({exc})", path) from exc
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
            mode = im.mode
    except Exception as exc:  # noqa: BLE001
        raise ReadError(f"not a readable image ({exc})", path) from exc
    bands = {"RGB": 3, "RGBA": 4, "CMYK": 4, "LA": 2}.get(mode, 1)
    dtype = (
        np.dtype(np.uint16)
        if mode.startswith("I;16")
        else np.dtype(np.int32)
        if mode == "I"
        else np.dtype(np.uint8)
    )
    return ((h, w, bands) if bands > 1 else (h, w)), dtype


def read_image_file(path: Path) -> np.ndarray:
    """Decode one 2D image (palette images are expanded to RGB)."""
    try:
        if has_suffix(path, (".tif", ".tiff")):
            import tifffile

            return np.asarray(tifffile.imread(path))
        from PIL import Image

        with Image.open(path) as im:
            if im.mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            return np.asarray(im)
    except Exception as exc:  # noqa: BLE001
        raise ReadError(f"not a readable image ({exc})", path) from exc


def read_image_stack(
    files: Sequence[Path],
    name: str | None = None,
    labelmap: LabelMap | None = None,
    modality: str = "",
    channel: int | None = None,
) -> Volume:
    """Stack 2D image files (in the given order) into a (z, y, x[, c]) volume.

    A single file gives a 2D (y, x[, c]) image. ``channel`` picks one colour channel.
    """
    files = [Path(f) for f in files]
    if not files:
        raise ReadError("no image files to stack")
    shape0, dtype = image_size(files[0])
    rgb = len(shape0) == 3 and channel is None and labelmap is None
    frame_shape = shape0 if rgb else shape0[:2]

    def load():
        frames = []
        for f in files:
            arr = read_image_file(f)
            if arr.ndim == 3 and not rgb:
                arr = (
                    arr[..., channel or 0]
                    if labelmap is None or channel is not None
                    else arr[..., 0]
                )
            if arr.shape != frame_shape:
                raise ReadError(f"image is {arr.shape}, the others are {frame_shape}", f)
            frames.append(arr)
        stack = np.stack(frames) if len(frames) > 1 else frames[0]
        return as_label_array(stack, files[0]) if labelmap is not None else stack

    shape = ((len(files),) if len(files) > 1 else ()) + tuple(frame_shape)
    nsp = len(shape) - (1 if rgb else 0)
    return Volume(
        name or strip_suffix(files[0].name), shape, np.dtype(np.uint8) if labelmap is not None else dtype,
        Geometry.pixels(nsp), guarded(files[0], load), modality=modality, rgb=rgb, labelmap=labelmap,
        source=Source(files[0], "pixels", DisplayTransform.identity(nsp)),
    )  # fmt: skip
