"""DICOM SEG export: validated by dciodvfy, re-read with highdicom (an independent reader)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from napari_medseg.cli import main
from napari_medseg.core.labelmap import Label, LabelMap
from napari_medseg.io.detect import open_dataset
from napari_medseg.io.dicom_write import write_dicom_series
from napari_medseg.io.masks import mask_path, write_mask

LABELS = LabelMap([Label(0, "background", (0, 0, 0)), Label(1, "spleen", (200, 40, 40)),
                   Label(3, "lesion", (30, 160, 250))])  # fmt: skip


def ct_series(folder: Path, n: int = 8) -> Path:
    arr = np.random.default_rng(0).integers(-1000, 1000, (n, 32, 40))
    write_dicom_series(folder, arr, (2.5, 0.8, 0.7), origin=(-20.0, -30.0, 50.0))
    return folder


def case_mask(ref) -> np.ndarray:
    mask = np.zeros(ref.shape, np.uint8)
    mask[1:4, 5:15, 3:20] = 1
    mask[5:7, 20:30, 25:38] = 3
    return mask


def curated(data: Path, out: Path) -> tuple[str, object, np.ndarray]:
    """A curated masks folder (``<case id>.nii.gz``) for the one case of ``data``."""
    ds = open_dataset(data)
    cid = ds.case_ids()[0]
    ref = ds.load_case(cid).reference_image()
    mask = case_mask(ref)
    write_mask(ref, mask, mask_path(out, cid))
    return cid, ref, mask


def dciodvfy_errors(path: Path) -> list[str]:
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed")
    res = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    return [line for line in (res.stdout + res.stderr).splitlines() if line.startswith("Error")]


def seg_on_source(seg, ref, files) -> np.ndarray:
    """The SEG's label map on the source frames (highdicom), put in display order."""
    import pydicom

    uids = [str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files]
    numbers = seg.get_pixels_by_source_instance(
        uids, combine_segments=True, relabel=False, skip_overlap_checks=True
    )
    return ref.source.transform.to_display(np.asarray(numbers))


def relabel(mask: np.ndarray) -> np.ndarray:
    """Label ids as consecutive segment numbers (the SEG numbers segments 1..N in id order)."""
    lut = np.zeros(int(mask.max()) + 1, np.uint16)
    for number, lid in enumerate(sorted(set(np.unique(mask).tolist()) - {0}), 1):
        lut[lid] = number
    return lut[mask]


def export_case(data: Path, out: Path, **kw):
    from napari_medseg.export import ExportItem, export_masks

    ds = open_dataset(data)
    cid = ds.case_ids()[0]
    ref = ds.load_case(cid).reference_image()
    mask = case_mask(ref)
    notes: list[str] = []
    item = ExportItem(cid, mask, reference=ref, source=data)
    written = export_masks("dicom-seg", out, [item], LABELS, notes=notes, **kw)
    return cid, ref, mask, written, notes


def test_export_passes_dciodvfy_and_rereads_with_highdicom(tmp_path):
    import highdicom as hd
    import pydicom

    data = ct_series(tmp_path / "ct")
    cid, ref, mask, written, notes = export_case(data, tmp_path / "out")
    assert written == [tmp_path / "out" / f"{cid}.seg.dcm"] and notes == []
    assert dciodvfy_errors(written[0]) == []
    seg = hd.seg.segread(written[0])
    files = open_dataset(data)._cases[cid]["image"].files
    src = pydicom.dcmread(files[0], stop_before_pixels=True)
    assert seg.FrameOfReferenceUID == src.FrameOfReferenceUID
    assert seg.StudyInstanceUID == src.StudyInstanceUID
    assert seg.SegmentationType == "BINARY"
    ref_series = seg.ReferencedSeriesSequence[0]
    assert ref_series.SeriesInstanceUID == src.SeriesInstanceUID
    assert len(ref_series.ReferencedInstanceSequence) == ref.shape[0]
    segments = list(seg.SegmentSequence)
    assert [s.SegmentLabel for s in segments] == ["spleen", "lesion"]
    assert all(s.SegmentAlgorithmType == "MANUAL" for s in segments)
    rgb = [hd.color.CIELabColor(*_lab(s)).to_rgb() for s in segments]
    assert np.abs(np.subtract(rgb, [(200, 40, 40), (30, 160, 250)])).max() <= 1
    np.testing.assert_array_equal(seg_on_source(seg, ref, files), relabel(mask))
    # Our own reader (io.dicom_seg) puts it back with the same names and colours.
    from napari_medseg.io.dicom_seg import read_dicom_seg

    labels, labelmap = read_dicom_seg(written[0], open_dataset(data)._cases[cid]["image"])
    np.testing.assert_array_equal(labels, relabel(mask))
    assert [lab.name for lab in labelmap.foreground()] == ["spleen", "lesion"]


def test_compressed_seg_is_jpeg2000_and_reads_back(tmp_path):
    import highdicom as hd

    from napari_medseg.io.dicom_seg import read_dicom_seg

    data = ct_series(tmp_path / "ct")
    cid, ref, mask, written, _ = export_case(data, tmp_path / "out", compress=True)
    seg = hd.seg.segread(written[0])
    assert seg.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.90"
    assert dciodvfy_errors(written[0]) == []
    labels, _ = read_dicom_seg(written[0], open_dataset(data)._cases[cid]["image"])
    np.testing.assert_array_equal(labels, relabel(mask))


def _lab(segment) -> tuple[float, float, float]:
    """DICOM's scaled CIELab (0..65535) back to L*, a*, b*."""
    v = np.asarray(segment.RecommendedDisplayCIELabValue, float) / 65535.0
    return v[0] * 100.0, v[1] * 255.0 - 128.0, v[2] * 255.0 - 128.0


def test_cli_presegmentation_is_automatic_with_the_engine_name(tmp_path):
    import highdicom as hd

    data = ct_series(tmp_path / "ct")
    args = [
        "--engine",
        "threshold",
        "--method",
        "otsu",
        "--workers",
        "0",
        "--out",
        str(tmp_path / "pre"),
    ]
    assert main(["presegment", str(data), *args]) == 0
    out = tmp_path / "out"
    rc = main(["export", str(data), "--format", "dicom-seg", "--masks", str(tmp_path / "pre"),
               "--out", str(out), "--json"])  # fmt: skip
    assert rc == 0
    (path,) = out.glob("*.seg.dcm")
    segment = hd.seg.segread(path).SegmentSequence[0]
    assert segment.SegmentAlgorithmType == "AUTOMATIC"
    assert segment.SegmentAlgorithmName == "threshold"
    assert dciodvfy_errors(path) == []


def test_missing_uids_are_generated_consistently_and_recorded(tmp_path, capsys):
    import highdicom as hd
    import pydicom

    data = ct_series(tmp_path / "ct", n=4)
    for f in data.iterdir():  # an anonymised export: no instance or frame of reference UIDs
        ds = pydicom.dcmread(f)
        for key in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
                    "FrameOfReferenceUID"):  # fmt: skip
            delattr(ds, key)
        ds.save_as(f)
    cid, ref, mask, written, notes = export_case(data, tmp_path / "a")
    _, _, _, again, _ = export_case(data, tmp_path / "b")
    assert len(notes) == 1 and "SOPInstanceUID" in notes[0] and "uids.json" in notes[0]
    record = json.loads((tmp_path / "a" / f"{cid}.uids.json").read_text())
    assert record == json.loads((tmp_path / "b" / f"{cid}.uids.json").read_text())
    gen = record["generated"]
    assert set(gen) == {"StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID",
                        "SOPInstanceUID"}  # fmt: skip
    seg = hd.seg.segread(written[0])
    assert seg.StudyInstanceUID == gen["StudyInstanceUID"]
    assert seg.FrameOfReferenceUID == gen["FrameOfReferenceUID"]
    refs = {
        r.ReferencedSOPInstanceUID
        for r in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    }
    assert refs == set(gen["SOPInstanceUID"].values())
    assert dciodvfy_errors(written[0]) == []


def test_nifti_case_is_refused_unless_a_derived_series_is_asked_for(tmp_path, capsys):
    import highdicom as hd

    from napari_medseg.synthetic.msd import make_msd

    data = make_msd(tmp_path / "data", "Task09_Spleen")
    cid = open_dataset(data).case_ids()[0]
    args = [
        "export",
        str(data),
        "--case",
        cid,
        "--format",
        "dicom-seg",
        "--out",
        str(tmp_path / "o"),
    ]
    assert main(args) == 2
    assert "not DICOM-sourced" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())
    assert main([*args, "--derive-series"]) == 0
    series = tmp_path / "o" / f"{cid}_series"
    ds = open_dataset(series)
    derived = ds.load_case(ds.case_ids()[0]).reference_image()
    case = open_dataset(data).load_case(cid)
    assert np.allclose(
        derived.geometry.affine(), case.reference_image().geometry.affine(), atol=1e-3
    )
    seg = hd.seg.segread(tmp_path / "o" / f"{cid}.seg.dcm")
    got = seg_on_source(seg, derived, ds._cases[ds.case_ids()[0]]["image"].files)
    np.testing.assert_array_equal(got, relabel(case.masks[0].array))


def test_real_pydicom_ct_slice(tmp_path):
    import highdicom as hd
    from pydicom.data import get_testdata_file

    data = tmp_path / "ct"
    data.mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), data / "CT_small.dcm")
    ds = open_dataset(data)
    cid = ds.case_ids()[0]
    ref = ds.load_case(cid).reference_image()
    mask = np.zeros(ref.shape, np.uint8)
    mask[0, 40:80, 30:90] = 1
    from napari_medseg.export import ExportItem, export_masks

    item = ExportItem(cid, mask, reference=ref, source=data)
    (path,) = export_masks("dicom-seg", tmp_path / "out", [item], LABELS)
    assert dciodvfy_errors(path) == []
    seg = hd.seg.segread(path)
    np.testing.assert_array_equal(seg_on_source(seg, ref, [data / "CT_small.dcm"]), mask)


def test_napari_writer_saves_a_labels_layer_as_dicom_seg(tmp_path):
    import highdicom as hd

    from napari_medseg._writer import write_dicom_seg

    data = ct_series(tmp_path / "ct")
    ds = open_dataset(data)
    cid = ds.case_ids()[0]
    ref = ds.load_case(cid).reference_image()
    mask = case_mask(ref)
    meta = {"name": "mask", "metadata": {"medseg": {"volume": ref, "case": cid, "root": str(data),
            "labelmap": LABELS, "engine": "sam"}}}  # fmt: skip
    (written,) = write_dicom_seg(str(tmp_path / "out" / "saved.dcm"), mask, meta)
    seg = hd.seg.segread(written)
    assert [s.SegmentAlgorithmType for s in seg.SegmentSequence] == ["SEMIAUTOMATIC"] * 2
    assert seg.SegmentSequence[0].SegmentAlgorithmName == "sam"
    with pytest.raises(Exception, match="source data"):
        write_dicom_seg(str(data / "inside.dcm"), mask, meta)


def test_multiframe_source_is_refused_clearly(tmp_path):
    """Enhanced multi-frame (nibabel's real Philips MPRAGE): refused, not mis-ordered."""
    import gzip

    import nibabel

    from napari_medseg.core.errors import MedsegError
    from napari_medseg.export import ExportItem, export_masks

    src = Path(nibabel.__file__).parent / "nicom" / "tests" / "data" / "philips_mprage.dcm.gz"
    data = tmp_path / "mr"
    data.mkdir()
    (data / "mprage.dcm").write_bytes(gzip.decompress(src.read_bytes()))
    ds = open_dataset(data)
    cid = ds.case_ids()[0]
    ref = ds.load_case(cid).reference_image()
    mask = np.zeros(ref.shape[:3], np.uint8)
    mask[1, 2:5, 2:5] = 1
    with pytest.raises(MedsegError, match="multi-frame .* not supported yet"):
        export_masks(
            "dicom-seg",
            tmp_path / "out",
            [ExportItem(cid, mask, reference=ref, source=data)],
            LABELS,
        )
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
