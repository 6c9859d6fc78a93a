"""DICOM SEG export with highdicom: one segment per label, on the source series' frames.

A mask on a DICOM-sourced case becomes ``<out>/<case id>.seg.dcm``, a BINARY Segmentation
(1 bit per voxel, empty frames omitted; with ``compress``, JPEG 2000 lossless, the one
compression the standard allows for BINARY SEG - not every viewer decodes it) that references
the source series and each source frame by UID and keeps the source Frame of Reference.
Segments carry the label's name, its colour as CIELab and the algorithm type: MANUAL for
reviewed or dataset masks, AUTOMATIC or SEMIAUTOMATIC with the engine name for
pre-segmentations (see :func:`algorithm_of`).

Source files without Study/Series/SOP Instance or Frame of Reference UIDs (anonymised
exports) get deterministic UIDs derived from the case id and file names, recorded in
``<out>/<case id>.uids.json`` and reported. A NIfTI-sourced case has no series to reference:
it is refused unless ``derive_series`` asks for a derived DICOM series, written to
``<out>/<case id>_series/`` beside the SEG that references it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_medseg.core.atomic import atomic_dir, atomic_path, check_output_dir, write_text
from napari_medseg.core.errors import MedsegError, WriteError
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.model import Volume
from napari_medseg.core.safe_names import case_file
from napari_medseg.export import ExportItem

SEG_SUFFIX = ".seg.dcm"
UIDS_SUFFIX = ".uids.json"
UID_ROOT_TEXT = "napari-medseg"
UID_KEYS = ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID")
# Type 2 patient/study attributes highdicom copies from the source (empty when absent).
TYPE2_KEYS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate",
              "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName")  # fmt: skip
# Engines that need a person's prompts are semi-automatic; the others run unattended.
SEMIAUTOMATIC_ENGINES = {"sam", "sam2"}


@dataclass
class Algorithm:
    """How the mask was made: ``MANUAL``, or ``AUTOMATIC``/``SEMIAUTOMATIC`` by ``name``."""

    type: str = "MANUAL"
    name: str = ""

    @classmethod
    def of_engine(cls, engine: str | None) -> Algorithm:
        """Manual without an engine; semi-automatic for prompted engines, else automatic."""
        if not engine:
            return cls()
        kind = "SEMIAUTOMATIC" if engine in SEMIAUTOMATIC_ENGINES else "AUTOMATIC"
        return cls(kind, engine)


@dataclass
class SegResult:
    """What one export wrote, and the UIDs it had to invent for the source (in ``uids``)."""

    path: Path
    generated_uids: dict = field(default_factory=dict)
    uids: Path | None = None
    derived_series: Path | None = None


def algorithm_of(masks: str | Path | None) -> Algorithm:
    """The algorithm behind a masks folder: a pre-segmentation folder (its ``summary.json``
    names the engine) is automatic; a review folder or the dataset's own masks are manual."""
    if masks is None or not Path(masks).is_dir():
        return Algorithm()
    summary = Path(masks) / "summary.json"
    if not summary.exists() or (Path(masks) / "session.json").exists():
        return Algorithm()
    try:
        engine = str(json.loads(summary.read_text(encoding="utf-8")).get("engine") or "")
    except (OSError, ValueError, AttributeError):
        engine = ""
    return Algorithm.of_engine(engine)


def is_dicom_sourced(vol: Volume | None) -> bool:
    from napari_medseg.io.dicom import is_dicom

    src = vol.source if vol is not None else None
    return src is not None and src.kind == "itk" and is_dicom(src.path)


def source_series(reference: Volume):
    """The :class:`~napari_medseg.io.dicom.DicomSeries` a DICOM-sourced volume was read from."""
    from napari_medseg.io.dicom import find_series

    first = reference.source.path
    for series in find_series(first.parent):
        if first in series.files:
            return series
    raise MedsegError("the source DICOM series is no longer there", first.parent)


def fill_missing_uids(datasets: list, case_id: str) -> dict:
    """Give ``datasets`` (one series) the UIDs they lack, deterministically for ``case_id``.

    Returns what was generated: ``{tag: uid}`` plus ``SOPInstanceUID: {file: uid}``.
    """
    from pydicom.uid import generate_uid

    generated: dict = {}
    for key in UID_KEYS:
        if not all(str(ds.get(key, "") or "") for ds in datasets):
            uid = generate_uid(entropy_srcs=[UID_ROOT_TEXT, case_id, key])
            generated[key] = uid
            for ds in datasets:
                setattr(ds, key, uid)
    sops = {}
    for ds in datasets:
        for key in TYPE2_KEYS:
            if key not in ds:
                setattr(ds, key, "")
        if not str(ds.get("SOPInstanceUID", "") or ""):
            name = Path(str(ds.filename)).name if ds.filename else str(len(sops))
            ds.SOPInstanceUID = generate_uid(entropy_srcs=[UID_ROOT_TEXT, case_id, name])
            sops[name] = ds.SOPInstanceUID
    if sops:
        generated["SOPInstanceUID"] = sops
    return generated


def _segment_descriptions(labels, algorithm: Algorithm):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from napari_medseg import __version__

    ident = None
    if algorithm.type != "MANUAL":
        family = (
            codes.cid7162.HistogramAnalysis
            if algorithm.name == "threshold"
            else codes.cid7162.ArtificialIntelligence
        )
        ident = hd.AlgorithmIdentificationSequence(algorithm.name, family, __version__)
    return [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=lab.name[:64],
            segmented_property_category=codes.SCT.AnatomicalStructure,
            segmented_property_type=codes.SCT.Tissue,
            algorithm_type=algorithm.type,
            algorithm_identification=ident,
            display_color=hd.color.CIELabColor.from_rgb(*lab.color),
        )
        for number, lab in enumerate(labels, 1)
    ]


def build_seg(reference: Volume, classes: np.ndarray, labelmap: LabelMap, datasets: list,
              algorithm: Algorithm, case_id: str, compress: bool = False):  # fmt: skip
    """The highdicom Segmentation of a display-order class mask over ``datasets`` (the series
    in the order :func:`~napari_medseg.io.dicom.read_series` stacked it)."""
    import highdicom as hd
    from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, generate_uid

    from napari_medseg import __version__

    present = {int(v) for v in np.unique(classes)} - {0}
    labels = [lab for lab in labelmap.ensure(present).foreground() if lab.id in present]
    if not labels:
        raise MedsegError(f"case {case_id!r}: the mask is empty; a DICOM SEG needs a segment")
    lut = np.zeros(int(classes.max()) + 1, np.uint16)
    for number, lab in enumerate(labels, 1):
        lut[lab.id] = number
    frames = reference.source.transform.to_source(lut[classes])  # (slice, row, column)
    if len(datasets) != frames.shape[0]:
        raise MedsegError(
            f"case {case_id!r}: {len(datasets)} source files for {frames.shape[0]} slices"
        )
    series_uid = generate_uid(entropy_srcs=[UID_ROOT_TEXT, case_id, "seg", *map(str, labels)])
    return hd.seg.Segmentation(
        source_images=datasets,
        pixel_array=np.ascontiguousarray(frames),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=_segment_descriptions(labels, algorithm),
        series_instance_uid=series_uid,
        series_number=int(datasets[0].get("SeriesNumber", 0) or 0) + 1000,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="napari-medseg",
        manufacturer_model_name="napari-medseg",
        software_versions=__version__,
        device_serial_number="0",
        content_label="SEGMENTATION",
        content_description=f"{case_id} mask"[:64],
        series_description=f"SEG {case_id}"[:64],
        transfer_syntax_uid=JPEG2000Lossless if compress else ExplicitVRLittleEndian,
    )


def _derive_series(item: ExportItem, folder: Path) -> Volume:
    """Write the reference image as a DICOM series in ``folder``; return it as read back."""
    from napari_medseg.io.dicom import find_series, read_series
    from napari_medseg.io.dicom_write import write_dicom_series

    ref = item.reference
    if ref is None or ref.spatial_ndim != 3 or ref.rgb:
        raise MedsegError(f"case {item.case_id!r}: a derived DICOM series needs a 3D image")
    lps = ref.geometry.lps_affine()
    step = lps[:3, 0]
    row, col = lps[:3, 2] / ref.spacing[2], lps[:3, 1] / ref.spacing[1]
    if not np.allclose(np.cross(row, col) * ref.spacing[0], step, atol=1e-3):
        raise MedsegError(f"case {item.case_id!r}: slices are sheared; no DICOM series fits")
    modality = "CT" if ref.modality.upper() == "CT" else "MR"
    with atomic_dir(folder) as tmp:
        write_dicom_series(
            tmp, np.asarray(ref.array), ref.spacing, modality, (*row, *col), tuple(lps[:3, 3]),
            patient_id=item.case_id, description=f"derived from {ref.source.path.name}"[:64]
            if ref.source is not None else "derived",
        )  # fmt: skip
    derived = read_series(find_series(folder)[0])
    if derived.shape != ref.shape:
        raise WriteError("the derived series does not match the image", folder)
    return derived


def export_dicom_seg(out_dir: str | Path, item: ExportItem, labelmap: LabelMap,
                     algorithm: Algorithm | None = None, derive_series: bool = False,
                     compress: bool = False) -> SegResult:  # fmt: skip
    """Write ``<out_dir>/<case id>.seg.dcm`` for one item (see the module docstring)."""
    path = case_file(out_dir, item.case_id, SEG_SUFFIX)
    return write_seg_file(path, item, labelmap, algorithm, derive_series, compress)


def write_seg_file(path: str | Path, item: ExportItem, labelmap: LabelMap,
                   algorithm: Algorithm | None = None, derive_series: bool = False,
                   compress: bool = False) -> SegResult:  # fmt: skip
    """Write one DICOM SEG file at ``path``; generated UIDs and a derived series go beside it."""
    import pydicom

    path = Path(path)
    out_dir = path.parent
    if item.source is not None:
        check_output_dir(out_dir, item.source)
    ref, derived = item.reference, None
    if not is_dicom_sourced(ref):
        where = ref.source.path if ref is not None and ref.source is not None else None
        if not derive_series:
            raise MedsegError(
                f"case {item.case_id!r} is not DICOM-sourced: a DICOM SEG has no series to "
                "reference (ask for a derived DICOM series to write one with it)",
                where,
            )
        derived = case_file(out_dir, item.case_id, "_series")
        ref = _derive_series(item, derived)
    nsp = ref.spatial_ndim
    if item.classes.shape != tuple(ref.shape[:nsp]) or nsp != 3:
        raise MedsegError(
            f"case {item.case_id!r}: mask {item.classes.shape} is not on the 3D series grid "
            f"{tuple(ref.shape[:nsp])}"
        )
    first = pydicom.dcmread(ref.source.path, stop_before_pixels=True)
    if int(first.get("NumberOfFrames", 1) or 1) > 1:  # frame order against ours unverified
        raise MedsegError(
            f"case {item.case_id!r}: DICOM SEG export needs one file per slice; multi-frame "
            "(enhanced) and mosaic source series are not supported yet",
            ref.source.path,
        )
    series = source_series(ref)
    datasets = series.headers  # read for this export only: safe to complete in place
    generated = fill_missing_uids(datasets, item.case_id)
    try:
        seg = build_seg(
            ref, item.classes, labelmap, datasets, algorithm or Algorithm(), item.case_id, compress
        )
    except ValueError as exc:  # highdicom's checks on the source series
        raise MedsegError(f"case {item.case_id!r}: {exc}", series.folder) from exc
    with atomic_path(path) as tmp:
        seg.save_as(tmp)
    if generated:
        record = {"case": item.case_id, "source": str(series.folder), "generated": generated}
        uids = case_file(out_dir, item.case_id, UIDS_SUFFIX)
        write_text(uids, json.dumps(record, indent=2) + "\n")
        return SegResult(path, generated, derived_series=derived, uids=uids)
    return SegResult(path, generated, derived_series=derived)
