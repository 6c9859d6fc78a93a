"""ISPY1-Tumor-SEG-Radiomics reader: DCE phases on the resampled grid, three mask kinds."""

from __future__ import annotations

import gzip
import json

import nibabel as nib
import numpy as np
import pytest

from napari_medseg.cli import main
from napari_medseg.core.errors import ReadError
from napari_medseg.io.datasets.ispy1 import IMAGES, ISPY1Dataset
from napari_medseg.io.detect import open_dataset, sniff_format
from napari_medseg.synthetic.ispy1 import CASES, ispy1_volumes, make_ispy1
from napari_medseg.synthetic.msd import write_nifti

SHAPE = (12, 32, 32)


@pytest.fixture
def ispy(tmp_path):
    return make_ispy1(tmp_path / "tcia", shape=SHAPE)


def test_detect_and_case_ids(ispy):
    assert sniff_format(ispy) is ISPY1Dataset
    assert sniff_format(ispy.parent) is ISPY1Dataset  # the download folder holding NIfTI-Files/
    ds = open_dataset(ispy)
    assert ds.format == "ispy1"
    assert ds.case_ids() == list(CASES[:2])


def test_phases_from_resampled_grid_and_masks(ispy):
    case = open_dataset(ispy).load_case("ISPY1_1002")
    assert [v.name for v in case.images] == ["pre-contrast", "post-contrast 1", "post-contrast 2"]
    assert {v.modality for v in case.images} == {"MR"}
    assert all(v.source.path.parent.parent.name == IMAGES for v in case.images)
    assert all(not v.loaded for v in case.images + case.masks)
    phases, masks = ispy1_volumes(0, SHAPE)
    for vol, expected in zip(case.images, phases, strict=True):
        assert vol.shape == SHAPE and vol.spacing == (1.0, 1.0, 1.0)
        np.testing.assert_array_equal(vol.array, expected)
    assert [m.name for m in case.masks] == ["STV manual", "STV ResUNet", "FTV"]
    assert case.labelmap.names() == {0: "background", 1: "tumour (STV manual)"}
    assert case.reference_image() is case.images[0]
    np.testing.assert_array_equal(case.masks[0].array, masks["stv_manual"])
    np.testing.assert_array_equal(case.masks[1].array, masks["stv_resunet"])
    np.testing.assert_array_equal(case.masks[2].array, (masks["ftv"] > 0).astype(np.uint8))
    assert set(np.unique(case.masks[2].array)) == {0, 1}
    # the second case has no FTV mask
    assert [m.name for m in open_dataset(ispy).load_case("ISPY1_1003").masks] == [
        "STV manual",
        "STV ResUNet",
    ]


def test_documented_n3_nii_names(ispy):
    folder = ispy / IMAGES / "ISPY1_1003"
    for f in sorted(folder.glob("*_N3_zscored.nii.gz")):
        nib.save(nib.load(f), str(f.parent / f.name.replace("_N3_zscored.nii.gz", "_N3.nii")))
        f.unlink()
    case = open_dataset(ispy).load_case("ISPY1_1003")
    assert [v.source.path.name for v in case.images] == [
        f"ISPY1_1003_DCE_000{p}_N3.nii" for p in range(3)
    ]
    phases, _ = ispy1_volumes(1, SHAPE)
    np.testing.assert_array_equal(case.images[2].array, phases[2])


def test_ftv_on_another_grid_is_reported_not_shown(ispy):
    write_nifti(
        ispy / "masks_ftv" / "ISPY1_1003.nii.gz", np.zeros((6, 32, 32), np.uint8), (2.0, 1.0, 1.0)
    )
    case = open_dataset(ispy).load_case("ISPY1_1003")
    assert [m.name for m in case.masks] == ["STV manual", "STV ResUNet"]
    assert "masks_ftv" in case.problems[0]


def test_info_json(ispy, capsys):
    assert main(["info", str(ispy), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["format"] == "ispy1"
    c0 = report["cases"][0]
    assert c0["id"] == "ISPY1_1002" and c0["boxes"] == 0
    img = c0["images"][1]
    assert (img["name"], img["shape"], img["spacing"], img["dtype"], img["modality"]) == (
        "post-contrast 1",
        list(SHAPE),
        [1.0, 1.0, 1.0],
        "float32",
        "MR",
    )
    assert [m["labels"]["1"] for m in c0["masks"]] == [
        "tumour (STV manual)",
        "tumour (STV ResUNet)",
        "functional tumour volume (FTV)",
    ]
    assert main(["info", str(ispy), "--json", "--case", "ISPY1_1002"]) == 0
    (case,) = json.loads(capsys.readouterr().out)["cases"]
    _, masks = ispy1_volumes(0, SHAPE)
    assert case["masks"][2]["voxels"]["1"] == int((masks["ftv"] > 0).sum())
    assert "stats" in case["images"][0]


def test_truncated_mask_names_the_file(ispy):
    bad = ispy / "masks_stv_manual" / "ISPY1_1002.nii.gz"
    bad.write_bytes(gzip.compress(gzip.decompress(bad.read_bytes())[:600]))
    ds = open_dataset(ispy)
    with pytest.raises(ReadError, match="ISPY1_1002.nii.gz"):
        _ = ds.load_case("ISPY1_1002").masks[0].array
    broken = ispy / "masks_stv_resunet" / "ISPY1_1003.nii.gz"
    broken.write_bytes(b"not a nifti")
    with pytest.raises(ReadError, match="ISPY1_1003.nii.gz"):
        ds.load_case("ISPY1_1003")
    (ispy / "masks_stv_manual" / "ISPY1_1010.nii.gz").write_bytes(b"")  # a case without images
    assert "ISPY1_1010" in ds.__class__(ispy).case_ids()
    with pytest.raises(ReadError, match="ISPY1_1010"):
        ds.__class__(ispy).load_case("ISPY1_1010")
