"""LGG (Kaggle kaggle_3m) reader on a synthetic copy of the extracted Kaggle zip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_medseg.cli import main
from napari_medseg.core.errors import ReadError
from napari_medseg.io.detect import open_dataset, sniff_format
from napari_medseg.synthetic.lgg import CASES, COLUMNS, lgg_volumes, make_lgg

SHAPE = (11, 32, 32)


@pytest.fixture
def lgg_root(tmp_path):
    return make_lgg(tmp_path / "archive", shape=SHAPE)


def test_detects_outer_root_inner_folder_and_case_folder(lgg_root):
    from napari_medseg.io.datasets.lgg import LGGDataset

    data = lgg_root / "kaggle_3m"
    for path in (lgg_root, data, lgg_root / "lgg-mri-segmentation", data / CASES[0]):
        assert sniff_format(path) is LGGDataset, path
    ds = open_dataset(lgg_root)
    assert ds.format == "lgg"
    assert ds.case_ids() == list(CASES)
    # the outer zip root uses kaggle_3m/, never the duplicated nested copy
    assert all(p.parent == data for p in ds.folders.values())
    assert open_dataset(data / CASES[1]).case_ids() == [CASES[1]]


def test_case_channels_mask_and_slice_order(lgg_root):
    ds = open_dataset(lgg_root)
    case = ds.load_case(CASES[0])
    images, masks = ds.slices(CASES[0])
    assert [f.name for f in images][8:11] == [f"{CASES[0]}_{n}.tif" for n in (9, 10, 11)]
    assert masks[9].name == f"{CASES[0]}_10_mask.tif"
    assert [v.name for v in case.images] == ["pre-contrast", "FLAIR", "post-contrast"]
    assert {v.modality for v in case.images} == {"MR"}
    assert all(not v.loaded for v in case.images + case.masks)  # headers only
    rgb, mask = lgg_volumes(0, SHAPE)
    for c, vol in enumerate(case.images):
        assert vol.shape == SHAPE and vol.spacing == (1.0, 1.0, 1.0)
        np.testing.assert_array_equal(vol.array, rgb[..., c])
    (m,) = case.masks
    assert m.labelmap.names() == {0: "background", 1: "FLAIR abnormality"}
    np.testing.assert_array_equal(m.array, (mask > 0).astype(np.uint8))
    assert set(np.unique(m.array)) == {0, 1}


def test_metadata_from_data_csv(lgg_root):
    case = open_dataset(lgg_root / "kaggle_3m").load_case(CASES[2])
    assert case.metadata["Patient"] == "TCGA_DU_5849"
    assert set(COLUMNS) <= set(case.metadata)
    assert case.metadata["age_at_initial_pathologic"] == "47"
    assert case.metadata["slices"] == SHAPE[0]
    # the missing pre-contrast is FLAIR again, as in the real data
    np.testing.assert_array_equal(case.images[0].array, case.images[1].array)


def test_info_json(lgg_root, capsys):
    assert main(["info", str(lgg_root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["format"] == "lgg"
    assert [c["id"] for c in report["cases"]] == list(CASES)
    img = report["cases"][0]["images"][1]
    assert (img["name"], img["shape"], img["spacing"], img["dtype"], img["modality"]) == (
        "FLAIR",
        list(SHAPE),
        [1.0, 1.0, 1.0],
        "uint8",
        "MR",
    )
    mask = report["cases"][0]["masks"][0]
    assert mask["shape"] == list(SHAPE) and mask["labels"] == {
        "0": "background",
        "1": "FLAIR abnormality",
    }
    assert report["cases"][0]["boxes"] == 0
    assert main(["info", str(lgg_root), "--json", "--case", CASES[1]]) == 0
    (case,) = json.loads(capsys.readouterr().out)["cases"]
    _, mask = lgg_volumes(1, SHAPE)
    assert case["masks"][0]["voxels"] == {"0": int((mask == 0).sum()), "1": int((mask > 0).sum())}
    assert case["images"][0]["stats"]["max"] <= 255


def test_corrupt_tif_names_the_file(lgg_root):
    ds = open_dataset(lgg_root)
    bad = lgg_root / "kaggle_3m" / CASES[0] / f"{CASES[0]}_1.tif"
    bad.write_bytes(b"II*\x00garbage")
    with pytest.raises(ReadError, match=bad.name):
        ds.load_case(CASES[0])
    ok = ds.load_case(CASES[1])
    assert ok.images[0].array.shape == SHAPE
    mid = lgg_root / "kaggle_3m" / CASES[1] / f"{CASES[1]}_5_mask.tif"
    mid.write_bytes(mid.read_bytes()[:50])
    case = ds.load_case(CASES[1])
    with pytest.raises(ReadError, match=mid.name):
        _ = case.masks[0].array
