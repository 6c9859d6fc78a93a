"""RTSTRUCT contours rasterised onto the referenced series' grid, one label per ROI.

Labels are numbered 1..N in the order of ``StructureSetROISequence`` and carry the ROI's name,
``ROIDisplayColor`` and ``ROINumber``. Closed planar contours are filled on the slice they lie
on (voxel centres inside the polygon); several contours of one ROI on one slice combine by
exclusive or, so an inner contour is a hole. Where ROIs overlap, the smaller ROI wins, so
organs stay visible inside a body outline whatever the order of the ROIs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_medseg.core.errors import ReadError
from napari_medseg.core.labelmap import Label, LabelMap, default_color
from napari_medseg.io.dicom import DicomSeries, lps_to_index, read_series

PLANE_TOLERANCE = 0.1  # voxels: how far a contour may sit from a slice of the series


def _rois(hdr) -> list[tuple[int, str]]:
    return [
        (int(item.ROINumber), str(item.get("ROIName", "") or f"ROI {item.ROINumber}"))
        for item in hdr.get("StructureSetROISequence", [])
    ]


def rtstruct_labelmap(hdr) -> LabelMap:
    """One label per ROI: name, display colour, and the ROI number as an attribute."""
    colors = {
        int(c.ReferencedROINumber): tuple(int(v) for v in c.ROIDisplayColor)
        for c in hdr.get("ROIContourSequence", [])
        if "ROIDisplayColor" in c
    }
    labels = [Label(0, "background", default_color(0))]
    for n, (number, name) in enumerate(_rois(hdr), start=1):
        labels.append(Label(n, name, colors.get(number, default_color(n)), {"roi_number": number}))
    return LabelMap(labels)


def _fill(points_ij: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from skimage.draw import polygon

    mask = np.zeros(shape, bool)
    rr, cc = polygon(points_ij[:, 1], points_ij[:, 0], shape)
    mask[rr, cc] = True
    return mask


def read_rtstruct(path: str | Path, series: DicomSeries) -> tuple[np.ndarray, LabelMap]:
    """An RTSTRUCT as a label array on ``series``' grid, in ``read_series`` display order."""
    import pydicom

    path = Path(path)
    try:
        hdr = pydicom.dcmread(path)
    except Exception as exc:  # noqa: BLE001 - any parser failure means an unreadable file
        raise ReadError(f"not a readable RTSTRUCT ({type(exc).__name__}: {exc})", path) from exc
    labelmap = rtstruct_labelmap(hdr)
    label_of = {lab.attributes["roi_number"]: lab.id for lab in labelmap.foreground()}
    rows, cols = int(series.headers[0].Rows), int(series.headers[0].Columns)
    nslices = len(series.files)
    out = np.zeros((nslices, rows, cols), np.uint8 if len(labelmap) < 256 else np.uint16)
    painted: list[tuple[int, int, dict[int, np.ndarray]]] = []  # (voxels, label, slices)
    for roi in hdr.get("ROIContourSequence", []):
        label = label_of.get(int(roi.ReferencedROINumber))
        if label is None:
            continue
        filled: dict[int, np.ndarray] = {}
        for contour in roi.get("ContourSequence", []):
            kind = str(contour.get("ContourGeometricType", "CLOSED_PLANAR")).upper()
            data = np.asarray([float(v) for v in contour.ContourData]).reshape(-1, 3)
            ijk = lps_to_index(series, data)
            k = float(np.mean(ijk[:, 2]))
            kk = int(round(k))
            if np.abs(ijk[:, 2] - kk).max() > PLANE_TOLERANCE or not 0 <= kk < nslices:
                raise ReadError(
                    f"a contour of ROI {roi.ReferencedROINumber} does not lie on a slice of "
                    f"the referenced series (slice index {k:.2f})",
                    path,
                )
            if kind == "POINT" or len(ijk) < 3:
                continue  # points and lines have no area
            mask = _fill(ijk[:, :2], (rows, cols))
            filled[kk] = filled[kk] ^ mask if kk in filled else mask
        painted.append((sum(int(m.sum()) for m in filled.values()), label, filled))
    for _, label, filled in sorted(painted, key=lambda p: -p[0]):  # small ROIs end on top
        for kk, mask in filled.items():
            out[kk][mask] = label
    transform = read_series(series).source.transform
    return transform.to_display(out), labelmap
