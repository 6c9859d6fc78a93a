"""MedMNIST npz (classification labels as text, never masks) and MedSegBench-style npz (masks)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_medseg.core.errors import ReadError
from napari_medseg.io.datasets.medmnist import MedMNISTDataset, class_text
from napari_medseg.io.detect import open_dataset, sniff_format
from napari_medseg.layers import case_layers
from napari_medseg.synthetic.medmnist import make_medmnist, make_medsegbench


def test_grey_2d_splits_with_class_text(tmp_path):
    path = make_medmnist(tmp_path, "pneumoniamnist")
    assert path.name == "pneumoniamnist.npz"
    ds = open_dataset(path)
    assert ds.format == "medmnist" and ds.case_ids() == ["train", "val", "test"]
    case = ds.load_case("train")
    [img] = case.images
    assert img.shape == (6, 28, 28) and img.dtype == np.uint8 and not img.rgb and not img.loaded
    assert case.masks == []  # classification labels are never a mask
    with np.load(path) as npz:
        labels, images = npz["train_labels"], npz["train_images"]
    names = {0: "normal", 1: "pneumonia"}
    assert case.metadata["slice_labels"] == [f"{int(v)}: {names[int(v)]}" for v in labels[:, 0]]
    np.testing.assert_array_equal(img.array, images)
    kinds = [layer[2] for layer in case_layers(case)]
    assert kinds == ["image", "points"]  # the class text rides on a points layer, not labels


def test_rgb_and_multilabel_sets(tmp_path):
    case = open_dataset(make_medmnist(tmp_path / "a", "pathmnist", size=64)).load_case("val")
    [img] = case.images
    assert img.rgb and img.shape == (2, 64, 64, 3) and img.spatial_ndim == 3
    assert all(t.split(": ", 1)[1] for t in case.metadata["slice_labels"])
    assert class_text("pathmnist", np.array([8])) == "8: colorectal adenocarcinoma epithelium"
    chest = open_dataset(make_medmnist(tmp_path / "b", "chestmnist")).load_case("train")
    with np.load(tmp_path / "b" / "chestmnist.npz") as npz:
        first = npz["train_labels"][0]
    text = chest.metadata["slice_labels"][0]
    assert text == "none" if not first.any() else text.count(",") == int(first.sum()) - 1
    assert (
        class_text("chestmnist", np.eye(14, dtype=np.uint8)[2] + np.eye(14, dtype=np.uint8)[13])
        == "effusion, hernia"
    )


def test_3d_set_gives_one_case_per_sample(tmp_path):
    path = make_medmnist(tmp_path, "organmnist3d", size=64, counts=(2, 1, 2))
    ds = open_dataset(path)
    assert ds.case_ids() == ["train_0000", "train_0001", "val_0000", "test_0000", "test_0001"]
    case = ds.load_case("test_0001")
    [img] = case.images
    assert img.shape == (64, 64, 64)
    with np.load(path) as npz:
        np.testing.assert_array_equal(img.array, npz["test_images"][1])
        label = int(npz["test_labels"][1, 0])
    assert case.metadata["label"].startswith(f"{label}: ")
    assert case.metadata["slice_labels"] == [case.metadata["label"]] * 64


def test_medsegbench_masks_are_labels(tmp_path):
    path = make_medsegbench(tmp_path)
    ds = open_dataset(path)
    case = ds.load_case("test")
    [mask] = case.masks
    assert mask.is_mask and mask.shape == case.images[0].shape == (2, 32, 32)
    with np.load(path) as npz:
        np.testing.assert_array_equal(mask.array, npz["test_label"])
    assert "slice_labels" not in case.metadata
    assert [layer[2] for layer in case_layers(case)] == ["image", "labels"]


def test_folder_of_npz_files_and_detection(tmp_path, monkeypatch):
    make_medmnist(tmp_path / "many", "dermamnist")
    make_medmnist(tmp_path / "many", "octmnist", size=64)
    ds = open_dataset(tmp_path / "many")
    assert ds.format == "medmnist"
    assert ds.case_ids()[:3] == ["dermamnist_train", "dermamnist_val", "dermamnist_test"]
    assert "octmnist_64_test" in ds.case_ids()
    np.savez(
        tmp_path / "many" / "other.npz", x=np.zeros(3)
    )  # not a split file: the folder is not MedMNIST
    assert not MedMNISTDataset.detect(tmp_path / "many")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 truncated")
    assert not MedMNISTDataset.detect(tmp_path / "bad.npz")  # never raises

    def no_voxels(*a, **k):
        raise AssertionError("np.load called while listing cases")

    monkeypatch.setattr(np, "load", no_voxels)  # detection and case listing read npy headers only
    assert MedMNISTDataset.detect(tmp_path / "many" / "dermamnist.npz")
    assert len(MedMNISTDataset(tmp_path / "many" / "dermamnist.npz").case_ids()) == 3


def test_pickled_arrays_are_refused(tmp_path):
    arrays = {
        f"{s}_{k}": np.array([object()] * 2)
        for s in ("train", "val", "test")
        for k in ("images", "labels")
    }
    np.savez(tmp_path / "evil.npz", **arrays)
    with pytest.raises(ReadError, match="pickles are refused"):
        open_dataset(tmp_path / "evil.npz")


def test_info_cli_json(tmp_path, capsys):
    from napari_medseg.cli import main

    path = make_medmnist(tmp_path, "bloodmnist")
    assert sniff_format(path) is MedMNISTDataset
    assert main(["info", str(path), "--json", "--case", "test"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["format"] == "medmnist"
    [case] = report["cases"]
    [img] = case["images"]
    assert img["shape"] == [3, 28, 28, 3] and img["dtype"] == "uint8" and case["masks"] == []
    assert case["boxes"] == 0 and 0 <= img["stats"]["min"] <= img["stats"]["max"] <= 255
    assert (
        sum(case["metadata"]["class_counts"].values()) == 3
    )  # a count per class, not one entry per image
    assert path.stat().st_size < 400_000
