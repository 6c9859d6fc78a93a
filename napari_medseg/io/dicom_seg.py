"""Masks stored as DICOM: SEG objects (read with highdicom) on their referenced series' grid.

Each SEG frame holds one segment on one plane; the plane is placed on the referenced series by
its ``ImagePositionPatient`` (per-frame functional groups), so the mask lands voxel for voxel
on the image whatever order the frames are in. Segment numbers become label ids and segment
labels/colours the label names/colours. Where segments overlap, the higher number wins.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_medseg.core.errors import ReadError
from napari_medseg.core.labelmap import Label, LabelMap, default_color
from napari_medseg.core.model import Source, Volume
from napari_medseg.io.dicom import DicomSeries, lps_to_index, read_series
from napari_medseg.io.volumes import guarded

GRID_TOLERANCE = 0.05  # voxels: how far a frame may sit from the series' planes


def _color(item, number: int) -> tuple[int, int, int]:
    lab = item.get("RecommendedDisplayCIELabValue")
    if lab is None:
        return default_color(number)
    from highdicom.color import CIELabColor

    return tuple(int(c) for c in CIELabColor.from_dicom_value([int(v) for v in lab]).to_rgb())


def seg_labelmap(hdr) -> LabelMap:
    """Label ids, names and colours from a SEG's ``SegmentSequence`` (headers only)."""
    labels = [Label(0, "background", default_color(0))]
    for item in hdr.SegmentSequence:
        n = int(item.SegmentNumber)
        name = str(item.get("SegmentLabel", "") or f"segment {n}")
        labels.append(Label(n, name, _color(item, n)))
    return LabelMap(labels)


def _frame_slices(seg, series: DicomSeries, path: Path) -> list[tuple[int, int]]:
    """(segment number, slice index) of every frame, checked against the series grid."""
    rows, cols = int(series.headers[0].Rows), int(series.headers[0].Columns)
    if (int(seg.Rows), int(seg.Columns)) != (rows, cols):
        raise ReadError(
            f"SEG frames are {seg.Rows}x{seg.Columns}, the referenced series is {rows}x{cols}",
            path,
        )
    shared = (
        seg.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in seg else {}
    )
    out = []
    for f, item in enumerate(seg.PerFrameFunctionalGroupsSequence):
        ident = item.get("SegmentIdentificationSequence") or shared.get(
            "SegmentIdentificationSequence"
        )
        number = int(ident[0].ReferencedSegmentNumber)
        ipp = [float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient]
        i, j, k = lps_to_index(series, ipp)[0]
        kk = int(round(k))
        if max(abs(i), abs(j), abs(k - kk)) > GRID_TOLERANCE or not 0 <= kk < len(series.files):
            raise ReadError(
                f"SEG frame {f + 1} does not lie on a slice of the referenced series "
                f"(at voxel {i:.2f}, {j:.2f}, {k:.2f})",
                path,
            )
        out.append((number, kk))
    return out


def read_dicom_seg(path: str | Path, series: DicomSeries) -> tuple[np.ndarray, LabelMap]:
    """A DICOM SEG as a label array on ``series``' grid.

    Parameters
    ----------
    path
        The SEG file.
    series
        The series it references (from :func:`~napari_medseg.io.dicom.find_series`).

    Returns
    -------
    (labels, labelmap)
        ``labels`` in the display order of ``read_series(series)`` (z, y, x), segment numbers
        as values; ``labelmap`` with the segment labels and colours.
    """
    import highdicom as hd

    path = Path(path)
    try:
        seg = hd.seg.segread(path, lazy_frame_retrieval=True)
    except Exception as exc:  # noqa: BLE001 - any parser failure means an unreadable SEG
        raise ReadError(f"not a readable DICOM SEG ({type(exc).__name__}: {exc})", path) from exc
    labelmap = seg_labelmap(seg)
    rows, cols = int(seg.Rows), int(seg.Columns)
    dtype = np.uint8 if max(labelmap.ids) < 256 else np.uint16
    out = np.zeros((len(series.files), rows, cols), dtype)
    fractional = str(seg.SegmentationType).upper() == "FRACTIONAL"
    threshold = float(seg.get("MaximumFractionalValue", 1)) / 2 if fractional else 0
    for f, (number, k) in enumerate(_frame_slices(seg, series, path)):
        frame = np.asarray(seg.get_stored_frame(f + 1)).reshape(rows, cols)
        out[k][frame > threshold] = number
    transform = read_series(series).source.transform
    return transform.to_display(out), labelmap


def dicom_mask_volume(path: Path, series: DicomSeries, image: Volume) -> Volume:
    """A SEG or RTSTRUCT beside ``series`` as a lazily loaded mask on ``image``'s grid."""
    import pydicom

    try:
        hdr = pydicom.dcmread(path, stop_before_pixels=True)
        modality = str(hdr.get("Modality", "")).upper()
        if modality == "SEG":
            labelmap = seg_labelmap(hdr)
        else:
            from napari_medseg.io.dicom_rtstruct import rtstruct_labelmap

            labelmap = rtstruct_labelmap(hdr)
    except ReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure means an unreadable file
        raise ReadError(f"unreadable {type(exc).__name__}: {exc}", path) from exc

    def load() -> np.ndarray:
        if modality == "SEG":
            return read_dicom_seg(path, series)[0]
        from napari_medseg.io.dicom_rtstruct import read_rtstruct

        return read_rtstruct(path, series)[0]

    name = str(hdr.get("SeriesDescription", "") or modality)
    dtype = np.dtype(np.uint8 if max(labelmap.ids) < 256 else np.uint16)
    src = image.source
    return Volume(
        name, image.shape, dtype, image.geometry, guarded(path, load),
        labelmap=labelmap, source=Source(src.path, src.kind, src.transform, src.affine),
        metadata={"dicom_mask": str(path), "dicom_modality": modality},
    )  # fmt: skip
