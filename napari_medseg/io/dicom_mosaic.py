"""Siemens MOSAIC: one file holding a grid of slices (fMRI, DWI), split as dcm2niix does.

``NumberOfImagesInMosaic`` (CSA image header, or the public-private tag 0019,100A) gives the
slice count n; the tiles form a ceil(sqrt(n)) square grid in row-major order. The file's
``ImagePositionPatient`` is the corner of the whole mosaic, so the first slice's corner is
shifted by half the mosaic-minus-tile size along the rows and columns; each further slice
moves by the slice spacing along the CSA ``SliceNormalVector``. Without these the file is
refused, never read as one flat slice.
"""

from __future__ import annotations

import math

import numpy as np

from napari_medseg.core.errors import ReadError
from napari_medseg.io.dicom_pixels import frame_values

N_MOSAIC_TAG = (0x0019, 0x100A)


def is_mosaic(hdr) -> bool:
    image_type = hdr.get("ImageType") or []
    return any(str(v).upper() == "MOSAIC" for v in image_type)


def _csareader():
    """nibabel's CSA reader (its package warns on import that it is experimental: hush)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        from nibabel.nicom import csareader
    return csareader


def _csa(hdr) -> dict:
    csareader = _csareader()
    try:
        return csareader.get_csa_header(hdr, "image") or {}
    except csareader.CSAReadError:
        return {}


def _n_mosaic(hdr, csa: dict) -> int | None:
    try:
        n = _csareader().get_n_mosaic(csa) if csa else None
    except KeyError:
        n = None
    if not n and N_MOSAIC_TAG in hdr:
        n = hdr[N_MOSAIC_TAG].value
    return int(n) if n else None


def mosaic_headers(hdr) -> list:
    """One header per slice of the mosaic (``frame_index`` = tile number), with its own
    ``ImagePositionPatient`` and the tile's ``Rows``/``Columns``."""
    from pydicom.dataset import Dataset

    csa = _csa(hdr)
    n = _n_mosaic(hdr, csa)
    if not n:
        raise ReadError(
            "Siemens MOSAIC without NumberOfImagesInMosaic: cannot split it into slices"
        )
    normal = _csareader().get_slice_normal(csa) if csa else None
    if normal is None:
        raise ReadError("Siemens MOSAIC without a CSA SliceNormalVector: cannot place its slices")
    rows, cols = int(hdr.Rows), int(hdr.Columns)
    size = math.ceil(math.sqrt(n))
    if rows % size or cols % size:
        raise ReadError(
            f"Siemens MOSAIC of {rows}x{cols} pixels cannot hold {n} slices in a {size}x{size} grid"
        )
    iop = np.asarray([float(v) for v in hdr.ImageOrientationPatient]).reshape(2, 3)
    ps = np.asarray([float(v) for v in hdr.PixelSpacing])  # (row spacing, column spacing)
    ipp = np.asarray([float(v) for v in hdr.ImagePositionPatient])
    tile_r, tile_c = rows // size, cols // size
    # move from the mosaic's corner to the tile's: columns along the row direction (iop[0])
    corner = ipp + iop[0] * ps[1] * (cols - tile_c) / 2 + iop[1] * ps[0] * (rows - tile_r) / 2
    spacing = float(hdr.get("SpacingBetweenSlices") or hdr.get("SliceThickness") or 1.0)
    out = []
    for k in range(n):
        fh = Dataset()
        for elem in hdr:
            if elem.tag.group != 0x7FE0 and elem.tag != N_MOSAIC_TAG and not elem.tag.is_private:
                fh.add_new(elem.tag, elem.VR, elem.value)  # own element: values change per slice
        fh.Rows, fh.Columns = tile_r, tile_c
        fh.ImagePositionPatient = [float(v) for v in corner + k * spacing * np.asarray(normal)]
        fh.frame_index = k
        out.append(fh)
    return out


def demosaic(ds) -> np.ndarray:
    """The stored values of every slice, (n, tile rows, tile cols)."""
    csa = _csa(ds)
    n = _n_mosaic(ds, csa)
    rows, cols = int(ds.Rows), int(ds.Columns)
    size = math.ceil(math.sqrt(n))
    mosaic = frame_values(ds, rows, cols)
    tiles = mosaic.reshape(size, rows // size, size, cols // size).transpose(0, 2, 1, 3)
    return tiles.reshape(size * size, rows // size, cols // size)[:n]
