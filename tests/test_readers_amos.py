"""AMOS 2022 reader: splits, CT vs MRI by id, label names, metadata CSV, __MACOSX junk."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from napari_medseg.cli import main
from napari_medseg.core.errors import ReadError
from napari_medseg.io.datasets.amos import AmosDataset
from napari_medseg.io.detect import open_dataset, sniff_format
from napari_medseg.synthetic.amos import CT_SPACING, LABELS, amos_volumes, make_amos

SHAPE = (12, 32, 32)
IDS = ["amos_0001", "amos_0507", "amos_0008", "amos_0002"]


@pytest.fixture
def amos(tmp_path):
    return make_amos(tmp_path / "extracted", shape=SHAPE)


def test_detected_before_msd_from_folder_and_zip_root(amos):
    assert sniff_format(amos) is AmosDataset  # MSD would also accept this dataset.json
    assert sniff_format(amos.parent) is AmosDataset
    for path in (amos, amos.parent):
        ds = open_dataset(path)
        assert ds.format == "amos"
        assert ds.case_ids() == IDS  # nothing from __MACOSX/


def test_ct_and_mri_cases(amos):
    ds = open_dataset(amos)
    ct = ds.load_case("amos_0001")
    assert [(v.name, v.modality) for v in ct.images] == [("CT", "CT")]
    assert not ct.images[0].loaded
    image, labels = amos_volumes(1, SHAPE)
    np.testing.assert_array_equal(ct.images[0].array, image)
    np.testing.assert_array_equal(ct.masks[0].array, labels)
    assert ct.images[0].spacing == pytest.approx(CT_SPACING)
    names = ct.masks[0].labelmap.names()
    assert names == {int(k): v for k, v in LABELS.items()}
    assert names[8] == "arota" and names[15] == "prostate/uterus"
    mr = ds.load_case("amos_0507")
    assert [(v.name, v.modality) for v in mr.images] == [("MR", "MR")]
    image, labels = amos_volumes(507, SHAPE)
    np.testing.assert_array_equal(mr.images[0].array, image)  # stored in another orientation
    np.testing.assert_array_equal(mr.masks[0].array, labels)
    assert mr.images[0].spacing == (1.0, 1.0, 1.0)


def test_splits_and_metadata(amos):
    ds = open_dataset(amos)
    splits = {cid: ds.load_case(cid).metadata["split"] for cid in IDS}
    assert splits == {
        "amos_0001": "training",
        "amos_0507": "training",
        "amos_0008": "validation",
        "amos_0002": "test",
    }
    va = ds.load_case("amos_0008")
    assert va.masks and va.masks[0].source.path.parent.name == "labelsVa"
    ts = ds.load_case("amos_0002")
    assert ts.masks == [] and ts.images[0].source.path.parent.name == "imagesTs"
    meta = ds.load_case("amos_0507").metadata
    assert (
        meta["Patient's Sex"] == "F"
        and meta["Patient's Age"] == "046Y"
        and meta["Manufacturer"] == "Philips"
    )


def test_info_json(amos, capsys):
    assert main(["info", str(amos), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["format"] == "amos"
    assert [c["id"] for c in report["cases"]] == IDS
    img = report["cases"][0]["images"][0]
    assert (img["name"], img["shape"], img["dtype"], img["modality"]) == (
        "CT",
        list(SHAPE),
        "int16",
        "CT",
    )
    assert img["spacing"] == pytest.approx(list(CT_SPACING))
    assert report["cases"][0]["masks"][0]["labels"]["8"] == "arota"
    assert report["cases"][0]["boxes"] == 0
    assert main(["info", str(amos), "--json", "--case", "amos_0001"]) == 0
    (case,) = json.loads(capsys.readouterr().out)["cases"]
    _, labels = amos_volumes(1, SHAPE)
    assert case["masks"][0]["voxels"] == {
        str(v): int((labels == v).sum()) for v in np.unique(labels)
    }
    assert case["images"][0]["stats"]["min"] < -900


def test_truncated_and_missing_files(amos):
    bad = amos / "imagesTr" / "amos_0001.nii.gz"
    bad.write_bytes(gzip.compress(gzip.decompress(bad.read_bytes())[:500]))
    (amos / "imagesVa" / "amos_0008.nii.gz").unlink()
    ds = open_dataset(amos)
    with pytest.raises(ReadError, match="amos_0001.nii.gz"):
        _ = ds.load_case("amos_0001").images[0].array
    with pytest.raises(ReadError, match="amos_0008.nii.gz"):
        ds.load_case("amos_0008")
    assert ds.load_case("amos_0507").masks[0].array.shape == SHAPE


def test_partial_download_without_imagesva_is_still_amos(amos):
    import shutil

    for folder in ("imagesVa", "labelsVa", "imagesTs"):
        shutil.rmtree(amos / folder)
    assert sniff_format(amos) is AmosDataset
    ds = open_dataset(amos)
    assert ds.case_ids() == ["amos_0001", "amos_0507"]  # splits not downloaded are not listed
    mr = ds.load_case("amos_0507")
    assert [(v.name, v.modality) for v in mr.images] == [("MR", "MR")]
    assert mr.masks and not mr.problems
