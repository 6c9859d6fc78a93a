"""BraTS reader: 2020/2021 and 2023/2024 naming schemes, label tables, validation cases."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from napari_medseg.cli import main
from napari_medseg.core.errors import ReadError
from napari_medseg.io.datasets.brats import BratsDataset
from napari_medseg.io.detect import open_dataset, sniff_format
from napari_medseg.synthetic.brats import brats_volumes, case_name, make_brats

SHAPE = (16, 40, 40)


def test_2021_top_folder_and_case_folder(tmp_path):
    top = make_brats(tmp_path, "2021", shape=SHAPE)
    assert sniff_format(top) is BratsDataset
    ds = open_dataset(top)
    assert ds.format == "brats"
    assert ds.case_ids() == ["BraTS2021_00000", "BraTS2021_00001"]
    single = open_dataset(top / "BraTS2021_00001")
    assert single.format == "brats" and single.case_ids() == ["BraTS2021_00001"]
    case = ds.load_case("BraTS2021_00001")
    assert [v.name for v in case.images] == ["T1", "T1c", "T2", "FLAIR"]
    assert [v.channel for v in case.images] == ["T1", "T1c", "T2", "FLAIR"]
    assert {v.modality for v in case.images} == {"MR"}
    assert all(not v.loaded for v in case.images + case.masks)
    images, labels = brats_volumes("2021", 1, SHAPE)
    for vol, expected in zip(case.images, images, strict=True):
        assert vol.shape == SHAPE and vol.spacing == (1.0, 1.0, 1.0)
        np.testing.assert_array_equal(vol.array, expected)  # BraTS's diag(-1,-1,1) affine honoured
    (seg,) = case.masks
    assert seg.labelmap.names() == {0: "background", 1: "NCR", 2: "ED", 4: "ET"}
    np.testing.assert_array_equal(seg.array, labels)
    assert set(np.unique(seg.array)) == {0, 1, 2, 4}
    assert case.metadata["label_table"] == "BraTS 2021"


def test_2020_uncompressed_and_misnamed_seg(tmp_path):
    top = make_brats(tmp_path, "2020", shape=(8, 24, 24))
    ds = open_dataset(top)
    assert ds.format == "brats"
    assert ds.case_ids() == ["BraTS20_Training_001", "BraTS20_Training_002"]
    folder = top / "BraTS20_Training_002"
    (folder / "BraTS20_Training_002_seg.nii").rename(folder / "W39_1998.09.19_Segm.nii")
    case = ds.load_case("BraTS20_Training_002")
    _, labels = brats_volumes("2020", 1, (8, 24, 24))
    np.testing.assert_array_equal(case.masks[0].array, labels)
    assert case.masks[0].labelmap.names()[4] == "ET"


@pytest.mark.parametrize(("scheme", "names"), [
    ("2023", {0: "background", 1: "NCR/NETC", 2: "ED/SNFH", 3: "ET"}),
    ("2024", {0: "background", 1: "NETC", 2: "SNFH", 3: "ET", 4: "RC"}),
])  # fmt: skip
def test_hyphen_scheme_label_tables(tmp_path, scheme, names):
    top = make_brats(tmp_path, scheme, shape=SHAPE)
    ds = open_dataset(top)
    cid = case_name(scheme, 0)
    assert ds.case_ids() == [cid, case_name(scheme, 1)]
    case = ds.load_case(cid)
    assert [v.name for v in case.images] == ["T1", "T1c", "T2", "FLAIR"]
    assert case.masks[0].labelmap.names() == names
    images, labels = brats_volumes(scheme, 0, SHAPE)
    np.testing.assert_array_equal(case.images[3].array, images[3])
    np.testing.assert_array_equal(case.masks[0].array, labels)
    assert set(np.unique(labels)) <= set(names)
    # a single case folder keeps the 2024 rule, since the path still names the release
    assert open_dataset(top / cid).load_case(cid).masks[0].labelmap.names() == names


def test_validation_cases_have_no_seg(tmp_path):
    top = make_brats(tmp_path, "2023", with_seg=False, shape=SHAPE)
    assert "Validation" in top.name
    case = open_dataset(top).load_case(case_name("2023", 1))
    assert len(case.images) == 4 and case.masks == [] and case.labelmap is None


def test_info_json(tmp_path, capsys):
    top = make_brats(tmp_path, "2021", shape=SHAPE)
    assert main(["info", str(top), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["format"] == "brats"
    c0 = report["cases"][0]
    assert c0["id"] == "BraTS2021_00000" and c0["boxes"] == 0
    assert [(i["name"], i["shape"], i["spacing"], i["dtype"], i["modality"]) for i in c0["images"]][
        0
    ] == ("T1", list(SHAPE), [1.0, 1.0, 1.0], "int16", "MR")
    assert c0["masks"][0]["labels"] == {"0": "background", "1": "NCR", "2": "ED", "4": "ET"}
    assert main(["info", str(top), "--json", "--case", "BraTS2021_00000"]) == 0
    (case,) = json.loads(capsys.readouterr().out)["cases"]
    _, labels = brats_volumes("2021", 0, SHAPE)
    assert case["masks"][0]["voxels"] == {
        str(v): int((labels == v).sum()) for v in np.unique(labels)
    }
    assert case["images"][0]["stats"]["min"] >= 0


def test_truncated_file_names_it(tmp_path):
    top = make_brats(tmp_path, "2021", shape=SHAPE)
    bad = top / "BraTS2021_00000" / "BraTS2021_00000_t2.nii.gz"
    bad.write_bytes(gzip.compress(gzip.decompress(bad.read_bytes())[:400]))
    ds = open_dataset(top)
    with pytest.raises(ReadError, match="BraTS2021_00000_t2.nii.gz"):
        case = ds.load_case("BraTS2021_00000")
        _ = case.images[2].array
    assert ds.load_case("BraTS2021_00001").images[2].array.shape == SHAPE
