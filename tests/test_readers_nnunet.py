"""nnU-Net v2 raw reader: AutoPET channel roles by value range, regions, 2D RGB, dataset key."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from napari_medseg.cli import main
from napari_medseg.core.errors import ReadError
from napari_medseg.io.datasets.nnunet import NnUNetDataset, region_labelmap
from napari_medseg.io.detect import open_dataset, sniff_format
from napari_medseg.synthetic.nnunet import STUDIES, case_volumes, make_nnunet

SHAPE = (12, 32, 32)
SPACING = (3.0, 2.0, 2.0)


def test_autopet2_ids_channels_and_geometry(tmp_path):
    folder = make_nnunet(tmp_path, "autopet2", shape=SHAPE, spacing=SPACING)
    assert sniff_format(folder) is NnUNetDataset
    ds = open_dataset(folder)
    assert ds.format == "nnunet"
    assert ds.case_ids() == list(STUDIES)  # name minus "_XXXX.nii.gz", spaces kept
    case = ds.load_case(STUDIES[0])
    assert [(v.name, v.channel, v.modality) for v in case.images] == [
        ("CT", "CT", "CT"),
        ("SUV", "SUV", "PET"),
    ]
    assert case.metadata == {
        "split": "training",
        "dataset": "AutoPETII_2023",
        "channels_from": "value range",
    }
    assert all(not v.loaded for v in case.images + case.masks)
    channels, label = case_volumes("autopet2", 0, SHAPE)
    for vol, expected in zip(case.images, channels, strict=True):
        assert vol.shape == SHAPE and vol.spacing == pytest.approx(SPACING)
        np.testing.assert_array_equal(vol.array, expected)
    assert case.masks[0].labelmap.names() == {0: "background", 1: "tumor"}
    np.testing.assert_array_equal(case.masks[0].array, label)
    test = ds.load_case(STUDIES[2])
    assert test.metadata["split"] == "test" and test.masks == []


@pytest.mark.parametrize("ending", [".nii.gz", ".mha", ".nrrd"])
def test_autopet1_order_found_by_value_range(tmp_path, ending):
    folder = make_nnunet(tmp_path, "autopet1", shape=SHAPE, spacing=SPACING, file_ending=ending)
    ds = open_dataset(folder)
    case = ds.load_case(STUDIES[1])
    assert [(v.name, v.modality) for v in case.images] == [("SUV", "PET"), ("CT", "CT")]
    assert case.images[0].source.path.name == f"{STUDIES[1]}_0000{ending}"
    channels, label = case_volumes("autopet1", 1, SHAPE)
    np.testing.assert_array_equal(case.images[0].array, channels[0])
    assert case.images[0].array.min() >= 0 and case.images[1].array.min() < -500
    np.testing.assert_array_equal(case.masks[0].array, label)
    assert case.images[1].spacing == pytest.approx(SPACING)


def test_unambiguous_names_are_trusted(tmp_path):
    folder = make_nnunet(tmp_path, "autopet1", shape=SHAPE)
    meta = json.loads((folder / "dataset.json").read_text())
    meta["channel_names"] = {"0": "PET", "1": "CT"}
    (folder / "dataset.json").write_text(json.dumps(meta))
    case = open_dataset(folder).load_case(STUDIES[0])
    assert [(v.name, v.modality) for v in case.images] == [("PET", "PET"), ("CT", "CT")]
    assert "channels_from" not in case.metadata


def test_brats_regions_show_integer_classes(tmp_path):
    folder = make_nnunet(tmp_path, "brats", shape=SHAPE)
    ds = open_dataset(folder)
    assert ds.case_ids() == ["BraTS2021_00000", "BraTS2021_00001", "BraTS2021_00002"]
    case = ds.load_case("BraTS2021_00001")
    assert [(v.name, v.modality) for v in case.images] == [
        ("T1", "MR"),
        ("T1ce", "MR"),
        ("T2", "MR"),
        ("Flair", "MR"),
    ]
    lm = case.masks[0].labelmap
    assert lm.names() == {0: "background", 1: "whole tumor", 2: "tumor core", 3: "enhancing tumor"}
    assert lm[2].attributes["regions"] == ["whole tumor", "tumor core"]
    channels, label = case_volumes("brats", 1, SHAPE)
    np.testing.assert_array_equal(case.images[3].array, channels[3])
    np.testing.assert_array_equal(case.masks[0].array, label)


def test_3d_tif_with_json_spacing(tmp_path):
    folder = make_nnunet(tmp_path, "brats", shape=SHAPE, spacing=SPACING, file_ending=".tif")
    assert (folder / "imagesTr" / "BraTS2021_00000_0002.json").is_file()
    case = open_dataset(folder).load_case("BraTS2021_00000")
    channels, label = case_volumes("brats", 0, SHAPE)
    assert [v.shape for v in case.images] == [SHAPE] * 4
    assert case.images[2].spacing == SPACING and case.masks[0].spacing == SPACING
    np.testing.assert_array_equal(case.images[2].array, channels[2])
    np.testing.assert_array_equal(case.masks[0].array, label)


def test_region_labels_with_plain_ints_and_ignore():
    lm = region_labelmap({"background": 0, "edema": 1, "core": [2, 3], "enhancing": 3, "ignore": 4})
    assert lm.names() == {0: "background", 1: "edema", 2: "core", 3: "enhancing", 4: "ignore"}


def test_2d_rgb_png(tmp_path):
    folder = make_nnunet(tmp_path, "rgb", shape=SHAPE)
    ds = open_dataset(folder)
    assert ds.format == "nnunet" and ds.case_ids() == ["img-1", "img-2", "img-3"]
    case = ds.load_case("img-2")
    (img,) = case.images
    assert (img.name, img.rgb, img.shape, img.modality) == ("RGB", True, (32, 32, 3), "")
    channels, label = case_volumes("rgb", 1, SHAPE)
    np.testing.assert_array_equal(img.array, channels[0])
    assert case.masks[0].shape == (32, 32) and case.masks[0].labelmap.names()[1] == "road"
    np.testing.assert_array_equal(case.masks[0].array, label)


def test_dataset_key_overrides_scanning(tmp_path):
    folder = make_nnunet(tmp_path, "autopet2", shape=SHAPE, dataset_key=".")
    ds = open_dataset(folder)
    assert ds.case_ids() == list(STUDIES[:2])  # the imagesTs case is not in the "dataset" entry
    case = ds.load_case(STUDIES[1])
    assert case.images[1].source.path == folder / "imagesTr" / f"{STUDIES[1]}_0001.nii.gz"
    assert [v.name for v in case.images] == ["CT", "SUV"]


def test_dataset_key_never_expands_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("NNUNET_RAW_TEST", str(tmp_path))
    folder = make_nnunet(
        tmp_path, "autopet2", shape=SHAPE, dataset_key="$NNUNET_RAW_TEST/Dataset221_AutoPETII_2023"
    )
    with pytest.raises(ReadError, match=r"dataset\.json: dataset\..*images\[0\].*outside"):
        open_dataset(folder)


def test_junk_files_are_skipped(tmp_path):
    folder = make_nnunet(tmp_path, "autopet2", shape=SHAPE)
    (folder / "imagesTr" / f"._{STUDIES[0]}_0000.nii.gz").write_bytes(b"\x00\x05\x16\x07")
    assert open_dataset(folder).case_ids() == list(STUDIES)


def test_info_json(tmp_path, capsys):
    folder = make_nnunet(tmp_path, "autopet2", shape=SHAPE, spacing=SPACING)
    assert main(["info", str(folder), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["format"] == "nnunet"
    assert [c["id"] for c in report["cases"]] == list(STUDIES)
    images = report["cases"][0]["images"]
    assert [(i["name"], i["shape"], i["spacing"], i["dtype"], i["modality"]) for i in images] == [
        ("CT", list(SHAPE), list(SPACING), "int16", "CT"),
        ("SUV", list(SHAPE), list(SPACING), "float32", "PET"),
    ]
    assert report["cases"][0]["masks"][0]["labels"] == {"0": "background", "1": "tumor"}
    assert report["cases"][0]["boxes"] == 0
    assert main(["info", str(folder), "--json", "--case", STUDIES[0]]) == 0
    (case,) = json.loads(capsys.readouterr().out)["cases"]
    _, label = case_volumes("autopet2", 0, SHAPE)
    assert case["masks"][0]["voxels"] == {"0": int((label == 0).sum()), "1": int(label.sum())}
    assert case["images"][1]["stats"]["min"] >= 0


def test_truncated_and_missing_channel(tmp_path):
    folder = make_nnunet(tmp_path, "autopet2", shape=SHAPE)
    bad = folder / "imagesTr" / f"{STUDIES[0]}_0001.nii.gz"
    bad.write_bytes(gzip.compress(gzip.decompress(bad.read_bytes())[:600]))
    (folder / "imagesTr" / f"{STUDIES[1]}_0001.nii.gz").unlink()
    ds = open_dataset(folder)
    with pytest.raises(ReadError, match="_0001.nii.gz"):
        _ = ds.load_case(STUDIES[0]).images[1].array
    with pytest.raises(ReadError, match="missing"):
        ds.load_case(STUDIES[1])
    assert [v.name for v in ds.load_case(STUDIES[2]).images] == ["CT", "SUV"]
