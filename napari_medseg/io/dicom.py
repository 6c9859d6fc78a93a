"""DICOM series: discovery from headers only, geometry from positions, lazy voxels, CT HU, PET SUV.

Files are recognised by the ``DICM`` magic at byte 128, grouped by ``SeriesInstanceUID`` and
split again by orientation, echo and matrix size (so a localiser filed in the same series
becomes its own stack). Slices are ordered by their position along the slice normal, never
by ``InstanceNumber``, and the slice spacing comes from those positions, not from
``SliceThickness``. A gap in the positions (a missing file) is an error, not a silent stretch.

Helpers with one job each: ``dicom_pixels`` (decoding), ``dicom_enhanced`` and ``dicom_mosaic``
(files holding many slices), ``dicom_4d`` (several volumes at the same positions),
``dicom_suv`` (PET SUV), ``dicom_seg`` and ``dicom_rtstruct`` (masks stored as DICOM).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from napari_medseg.core.errors import ReadError
from napari_medseg.core.geometry import DisplayTransform, Geometry, orient_for_display, reverse_axes
from napari_medseg.core.model import Source, Volume
from napari_medseg.io.dicom_pixels import frame_values
from napari_medseg.io.dicom_suv import suv_factor
from napari_medseg.io.listing import visible
from napari_medseg.io.volumes import guarded

DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
# Objects that are not image slices: structured reports, presentation states, segmentations...
SKIPPED_MODALITIES = {
    "SR",
    "PR",
    "SEG",
    "RTSTRUCT",
    "RTPLAN",
    "RTDOSE",
    "RTRECORD",
    "KO",
    "REG",
    "DOC",
}
MASK_MODALITIES = ("SEG", "RTSTRUCT")
MODALITY_KIND = {"CT": "CT", "PT": "PET", "MR": "MR"}
SLICE_GAP_TOLERANCE = 0.05  # relative deviation from the median step that counts as a gap


@dataclass
class DicomSeries:
    """One stack of slices, sorted along the slice normal (headers read, no pixels).

    ``positions`` are the slice positions in mm along the normal (None when the files carry
    no ``ImagePositionPatient``; they are then ordered by ``InstanceNumber`` as a last resort).
    ``mask_files`` are the DICOM SEG and RTSTRUCT files found beside it that reference it.
    """

    folder: Path
    files: list[Path]
    headers: list
    case_id: str
    modality: str
    description: str
    series_uid: str
    positions: list[float] | None
    problems: list[str] = field(default_factory=list)
    mask_files: list[Path] = field(default_factory=list)  # DICOM SEG / RTSTRUCT referencing it


def is_dicom(path: Path) -> bool:
    """True when ``path`` carries the ``DICM`` magic at byte 128 (the extension is irrelevant)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def safe_id(text: str) -> str:
    """A filesystem-safe identifier (letters, digits, ``.``, ``-``, ``_``)."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("_.") or "series"


def _orientation(hdr) -> tuple[np.ndarray, np.ndarray] | None:
    v = _floats(hdr.get("ImageOrientationPatient"), 6)
    return None if v is None else (v[:3], v[3:])


def _position(hdr) -> np.ndarray | None:
    return _floats(hdr.get("ImagePositionPatient"), 3)


def _floats(value, n: int) -> np.ndarray | None:
    """A multi-valued decimal tag as floats, or None when absent or malformed."""
    try:
        out = np.asarray([float(x) for x in value], dtype=float)
    except (TypeError, ValueError):
        return None
    return out if out.shape == (n,) and np.isfinite(out).all() else None


def _is_image(hdr) -> bool:
    """True for image slices; False for DICOMDIR, reports, presentation states, segmentations.

    Raises ValueError for a file that should be an image but has no matrix (truncated).
    """
    meta = getattr(hdr, "file_meta", None)
    if meta is not None and str(meta.get("MediaStorageSOPClassUID", "")) == DICOMDIR_SOP_CLASS:
        return False
    if str(hdr.get("Modality", "")).upper() in SKIPPED_MODALITIES:
        return False
    if "Rows" not in hdr or "Columns" not in hdr:
        raise ValueError("no Rows/Columns (truncated, or not an image)")
    return True


def _stack_key(hdr) -> tuple:
    """Slices of one stack share orientation, echo, enhanced stack id and matrix size."""
    ori = _orientation(hdr)
    ori_key = tuple(np.round(np.concatenate(ori), 3)) if ori else None
    echo = str(hdr.get("EchoNumbers", "") or hdr.get("EchoTime", "") or "")
    return (ori_key, echo, str(hdr.get("StackID", "")), int(hdr.Rows), int(hdr.Columns))


def find_series(
    folder: str | Path, progress: Callable[[int, int], None] | None = None
) -> list[DicomSeries]:
    """Every image stack under ``folder`` (searched recursively), reading headers only.

    Returns the stacks sorted by patient, series number and description. Unreadable files
    with a DICOM magic are listed in the ``problems`` of the stacks found beside them.
    """
    import pydicom

    folder = Path(folder)
    files = [p for p in sorted(folder.rglob("*")) if p.is_file() and visible(p) and is_dicom(p)]
    groups: dict[tuple, list[tuple[Path, object]]] = {}
    masks: dict[str, list[Path]] = {}  # referenced series UID -> SEG/RTSTRUCT files
    bad: list[tuple[Path, str]] = []
    for n, path in enumerate(files):
        try:
            hdr = pydicom.dcmread(path, stop_before_pixels=True)
            if _is_image(hdr):  # pydicom parses elements lazily: bad values surface here
                uid = str(hdr.get("SeriesInstanceUID", "")) or str(path.parent)
                for h in _virtual_slices(hdr):
                    groups.setdefault((uid, *_stack_key(h)), []).append((path, h))
            elif str(hdr.get("Modality", "")).upper() in MASK_MODALITIES:
                ref = referenced_series_uid(hdr)
                if ref:
                    masks.setdefault(ref, []).append(path)
        except ReadError as exc:  # a file we understand but must refuse (e.g. a bad mosaic)
            bad.append((path, exc.problem))
        except Exception as exc:  # noqa: BLE001 - any parser failure means an unreadable file
            bad.append((path, f"unreadable DICOM header ({type(exc).__name__}: {exc})"))
        if progress:
            progress(n + 1, len(files))
    if not groups and bad:
        raise ReadError(bad[0][1], bad[0][0])
    by_uid: dict[str, list[list[tuple[Path, object]]]] = {}
    for key, members in groups.items():
        by_uid.setdefault(key[0], []).append(members)
    out: list[DicomSeries] = []
    for uid, stacks in by_uid.items():
        stacks.sort(
            key=len, reverse=True
        )  # the main stack keeps the plain id; localisers get _2, _3
        for k, members in enumerate(stacks):
            out.append(_make_series(uid, members, k, bad))
        out[-len(stacks)].mask_files = masks.get(uid, [])  # the main stack
    out.sort(key=lambda s: s.case_id)
    seen: dict[str, int] = {}
    for s in out:  # two series with the same patient/number/description stay distinct
        if s.case_id in seen:
            seen[s.case_id] += 1
            s.case_id = f"{s.case_id}_{seen[s.case_id]}"
        else:
            seen[s.case_id] = 1
    return out


def referenced_series_uid(hdr) -> str | None:
    """The image series a DICOM SEG or RTSTRUCT was drawn on (headers only)."""
    try:
        if "ReferencedSeriesSequence" in hdr:  # SEG
            return str(hdr.ReferencedSeriesSequence[0].SeriesInstanceUID)
        study = hdr.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0]
        return str(study.RTReferencedSeriesSequence[0].SeriesInstanceUID)  # RTSTRUCT
    except (AttributeError, IndexError, KeyError):
        return None


def _make_series(uid: str, members: list, k: int, bad: list[tuple[Path, str]]) -> DicomSeries:
    hdr0 = members[0][1]
    ori = _orientation(hdr0)
    positions = None
    if ori is not None and all(_position(h) is not None for _, h in members):
        normal = np.cross(*ori)
        pos = [float(_position(h) @ normal) for _, h in members]
        order = np.argsort(pos, kind="stable")
        positions = [pos[i] for i in order]
    else:
        order = np.argsort(
            [int(h.get("InstanceNumber", 0) or 0) for _, h in members], kind="stable"
        )
    members = [members[i] for i in order]
    files = [p for p, _ in members]
    folder = Path(*_common_parts([f.parent for f in files]))
    desc = str(hdr0.get("SeriesDescription", "") or "")
    parts = [
        str(hdr0.get("PatientID", "") or "anon"),
        str(hdr0.get("SeriesNumber", "") or ""),
        desc,
    ]
    case_id = safe_id("_".join(p for p in parts if p))
    if k:
        case_id += f"_{k + 1}"
    problems = [f"{p.name}: {msg}" for p, msg in bad if p.parent == folder]
    if positions is None and len(members) > 1:  # never guess the slice spacing silently
        h = next(
            (v[0] for t in ("SpacingBetweenSlices", "SliceThickness")
             if (v := _floats([members[0][1].get(t)], 1)) is not None),
            None,
        )  # fmt: skip
        lacking = [p.name for p, m in members if _position(m) is None]
        what = (
            f"{len(lacking)} of {len(members)} slices ({lacking[0]}, ...) lack ImagePositionPatient"
            if lacking
            else "no ImageOrientationPatient"
        )
        problems.append(
            f"{what}: slices ordered by InstanceNumber, spacing "
            + (f"taken from the header ({h:g} mm), not measured" if h else "unknown (1 mm)")
        )
    return DicomSeries(
        folder,
        files,
        [h for _, h in members],
        case_id,
        str(hdr0.get("Modality", "")),
        desc,
        uid,
        positions,
        problems,
    )


def _common_parts(paths: list[Path]) -> tuple[str, ...]:
    parts = paths[0].parts
    for p in paths[1:]:
        n = 0
        while n < min(len(parts), len(p.parts)) and parts[n] == p.parts[n]:
            n += 1
        parts = parts[:n]
    return parts


def _slice_step(series: DicomSeries, normal: np.ndarray) -> np.ndarray:
    """Vector between consecutive slices; a missing or duplicated slice is a ReadError."""
    hdrs, pos = series.headers, series.positions
    if len(hdrs) == 1 or pos is None:
        h = hdrs[0]
        thick = float(h.get("SpacingBetweenSlices", 0) or h.get("SliceThickness", 0) or 1.0)
        return normal * thick
    steps = np.diff(pos)
    median = float(np.median(steps))
    for i, s in enumerate(steps):
        if s < 1e-4 or abs(s - median) > max(SLICE_GAP_TOLERANCE * median, 1e-3):
            a, b = series.files[i].name, series.files[i + 1].name
            what = "two slices at the same position" if s < 1e-4 else "missing slice"
            raise ReadError(
                f"{what}: slice positions jump by {s:.4g} mm between {a} and {b} "
                f"(at {pos[i]:.4g} mm) where the other slices are {median:.4g} mm apart",
                series.folder,
            )
    return (_position(hdrs[-1]) - _position(hdrs[0])) / (len(hdrs) - 1)


def index_to_lps(series: DicomSeries) -> np.ndarray:
    """4x4 matrix from file index (i=column, j=row, k=slice) to LPS millimetres."""
    hdr = series.headers[0]
    ori = _orientation(hdr) or (np.array([1.0, 0, 0]), np.array([0, 1.0, 0]))
    row, col = ori
    ps = [
        float(v) for v in (hdr.get("PixelSpacing") or hdr.get("ImagerPixelSpacing") or (1.0, 1.0))
    ]
    out = np.eye(4)
    out[:3, 0] = row * ps[1]  # columns advance along the row direction by the column spacing
    out[:3, 1] = col * ps[0]  # rows advance along the column direction by the row spacing
    out[:3, 2] = _slice_step(series, np.cross(row, col))
    origin = _position(hdr)
    out[:3, 3] = origin if origin is not None else 0.0
    return out


def lps_to_index(series: DicomSeries, points) -> np.ndarray:
    """LPS millimetres (n, 3) to continuous file indices (i=column, j=row, k=slice), (n, 3)."""
    pts = np.atleast_2d(np.asarray(points, dtype=float))
    homog = np.c_[pts, np.ones(len(pts))]
    return (np.linalg.inv(index_to_lps(series)) @ homog.T).T[:, :3]


def _rescale(hdrs) -> tuple[list[float], list[float]]:
    slopes = [float(h.get("RescaleSlope", 1) or 1) for h in hdrs]
    inters = [float(h.get("RescaleIntercept", 0) or 0) for h in hdrs]
    return slopes, inters


def _output_dtype(hdrs, slopes, inters, scaled: bool) -> np.dtype:
    """int16 for integer-rescaled CT or values that fit; the stored type when not rescaled."""
    h = hdrs[0]
    if scaled or any(s != 1 for s in slopes) or any(b != round(b) for b in inters):
        return np.dtype(np.float32)
    bits, signed = int(h.get("BitsStored", 16) or 16), int(h.get("PixelRepresentation", 0) or 0)
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    lo, hi = lo + min(inters), hi + max(inters)
    if not any(inters):
        alloc = int(h.get("BitsAllocated", 16) or 16)
        return np.dtype(f"{'i' if signed else 'u'}{max(alloc, 8) // 8}")
    if str(h.get("Modality", "")).upper() == "CT":
        return np.dtype(np.int16)
    for dt in (np.int16, np.int32):
        if np.iinfo(dt).min <= lo and hi <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.float32)


def _limits(dtype: np.dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def _virtual_slices(hdr) -> list:
    """The slice headers a file holds: itself, one per enhanced frame, or one per mosaic tile."""
    from napari_medseg.io.dicom_enhanced import frame_headers, is_enhanced
    from napari_medseg.io.dicom_mosaic import is_mosaic, mosaic_headers

    if is_enhanced(hdr):
        return frame_headers(hdr)
    if is_mosaic(hdr):
        return mosaic_headers(hdr)
    return [hdr]


def _all_frames(ds) -> np.ndarray:
    """(frames, rows, cols) stored values of an enhanced multi-frame file or a mosaic."""
    from napari_medseg.io.dicom_enhanced import enhanced_frames, is_enhanced
    from napari_medseg.io.dicom_mosaic import demosaic

    return enhanced_frames(ds) if is_enhanced(ds) else demosaic(ds)


def _slice_reader(files: list[Path], hdrs: list, rows: int, cols: int):
    """``read(k)``: stored values of slice k; a multi-slice file is decoded once in a row."""
    import pydicom

    cache: dict[Path, np.ndarray] = {}

    def read(k: int) -> np.ndarray:
        path, frame = files[k], getattr(hdrs[k], "frame_index", None)
        try:
            if frame is None:
                return frame_values(pydicom.dcmread(path), rows, cols)
            if path not in cache:
                cache.clear()
                cache[path] = _all_frames(pydicom.dcmread(path))
            return cache[path][frame]
        except ReadError:
            raise
        except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file
            raise ReadError(
                f"cannot decode pixel data ({type(exc).__name__}: {exc})", path
            ) from exc

    return read


def _with_time_axis(transform: DisplayTransform, geometry: Geometry):
    """Transform and geometry of a (t, z, y, x) volume whose spatial part is ``geometry``."""
    perm = (0, *(p + 1 for p in transform.perm))
    direction = np.eye(4)
    direction[1:, 1:] = geometry.direction
    return DisplayTransform(perm, (False, *transform.flips)), Geometry(
        (1.0, *geometry.spacing), (0.0, *geometry.origin), direction
    )


def read_series(series: DicomSeries, native: bool = False) -> Volume:
    """The series as a lazily loaded volume (headers only now); (t, z, y, x) for a 4D series.

    Parameters
    ----------
    series
        A stack from :func:`find_series`.
    native
        Keep the acquisition layout (slice, row, column) instead of the radiological
        (z, y, x) display order; used for sagittal series whose annotations live on
        the acquired slices (LSS). The geometry is then in pixels times spacing.
    """
    from napari_medseg.io.dicom_4d import split_volumes

    hdrs = series.headers
    h = hdrs[0]
    if int(h.get("NumberOfFrames", 1) or 1) > 1 and not hasattr(h, "frame_index"):
        raise ReadError(
            "multi-frame DICOM without per-frame functional groups is not supported",
            series.files[0],
        )
    split = split_volumes(series)
    volumes, order = split if split else ([list(range(len(series.files)))], "")
    first = replace(
        series,
        files=[series.files[k] for k in volumes[0]],
        headers=[hdrs[k] for k in volumes[0]],
        positions=[series.positions[k] for k in volumes[0]] if series.positions else None,
    )
    rows, cols = int(h.Rows), int(h.Columns)
    rgb = int(h.get("SamplesPerPixel", 1) or 1) == 3
    affine = index_to_lps(first)
    array_shape = (len(volumes[0]), rows, cols)
    if native:
        transform = DisplayTransform.identity(3)
        spacing = tuple(float(np.linalg.norm(affine[:3, a])) for a in (2, 1, 0))
        geometry = Geometry(spacing, (0.0, 0.0, 0.0), np.eye(3))
    else:
        transform, geometry = orient_for_display(reverse_axes(affine), array_shape)
    kind = MODALITY_KIND.get(series.modality.upper(), series.modality.upper())
    slopes, inters = _rescale(hdrs)
    factor, note = suv_factor(hdrs) if kind == "PET" else (None, "")
    dtype = np.dtype(np.uint8) if rgb else _output_dtype(hdrs, slopes, inters, factor is not None)
    read = _slice_reader(list(series.files), hdrs, rows, cols)
    lo, hi = _limits(dtype) if dtype.kind in "iu" else (0, 0)
    nt = len(volumes)
    if nt > 1:
        transform, geometry = _with_time_axis(transform, geometry)

    def load() -> np.ndarray:
        out = np.empty((nt, *array_shape) + ((3,) if rgb else ()), dtype)
        for t, slices in enumerate(volumes):
            for z, k in enumerate(slices):
                pixels = read(k)
                if pixels.shape[:2] != (rows, cols):
                    raise ReadError(
                        f"slice is {pixels.shape[:2]}, the series is {(rows, cols)}",
                        series.files[k],
                    )
                if rgb:
                    out[t, z] = pixels
                    continue
                if dtype.kind == "f":
                    values = pixels * slopes[k] + inters[k]
                else:  # integer rescale (CT HU): exact, clipped rather than wrapped on overflow
                    values = pixels.astype(np.int32) + int(inters[k])
                    if values.min() < lo or values.max() > hi:
                        np.clip(values, lo, hi, out=values)
                out[t, z] = values * factor if factor is not None else values
        return transform.to_display(out if nt > 1 else out[0])

    metadata = {
        "series_uid": series.series_uid,
        "description": series.description,
        "dicom_modality": series.modality,
    }
    if nt > 1:
        metadata["volumes"] = f"{nt} volumes ordered by {order}"
    if str(h.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        metadata["photometric"] = (
            "MONOCHROME1 (low values bright: shown inverted, values unchanged)"
        )
    channel = ""
    if kind == "PET":
        channel = "SUV" if factor is not None else "activity"
        metadata["suv"] = note
    shape = ((nt,) if nt > 1 else ()) + array_shape
    return Volume(
        series.description or series.case_id,
        transform.display_shape(shape) + ((3,) if rgb else ()),
        dtype,
        geometry,
        guarded(series.folder, load),
        modality=kind,
        channel=channel,
        rgb=rgb,
        source=Source(series.files[0], "itk", transform, affine),
        metadata=metadata,
    )
