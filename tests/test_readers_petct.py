"""FDG-PET-CT-Lesions (TCIA NIfTI) and our synthetic PET/CT layout."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_medseg.core.errors import ReadError
from napari_medseg.io.datasets.petct import PetCtLesionsDataset
from napari_medseg.io.detect import open_dataset, sniff_format
from napari_medseg.io.masks import read_mask, write_mask
from napari_medseg.synthetic.petct import make_petct_lesions, make_synthetic_petct
from napari_medseg.synthetic.phantom import torso

PET_SHAPE = (10, 20, 20)


@pytest.fixture
def lesions(tmp_path):
    return make_petct_lesions(tmp_path / "FDG-PET-CT-Lesions", pet_shape=PET_SHAPE)


def _studies(root):
    return sorted(s for p in root.glob("PETCT_*") for s in p.iterdir())


def test_layout_cases_and_ids(lesions):
    ds = open_dataset(lesions)
    assert isinstance(ds, PetCtLesionsDataset)
    studies = _studies(lesions)
    assert len(ds.case_ids()) == 3
    assert any("  " in s.name for s in studies)  # the double space of the real folder names
    for cid in ds.case_ids():
        assert " " not in cid and cid.startswith("PETCT_")
    first = studies[0]
    expected = f"{first.parent.name}_{first.name}".replace("  ", " ").replace(" ", "_")
    assert expected in ds.case_ids()


def test_images_masks_and_orientation(lesions):
    ds = open_dataset(lesions)
    cid = sorted(ds.case_ids())[0]
    case = ds.load_case(cid)
    assert [v.name for v in case.images] == ["CTres", "SUV", "PET", "CT"]
    assert [v.modality for v in case.images] == ["CT", "PET", "PET", "CT"]
    assert case.images[1].channel == "SUV" and case.images[2].channel == "activity"
    assert all(not v.loaded for v in case.images + case.masks)
    [seg] = case.masks
    assert seg.labelmap.names() == {0: "background", 1: "lesion"}
    ctres, suv, pet, ct = case.images
    assert ctres.shape == suv.shape == pet.shape == seg.shape == PET_SHAPE
    assert ct.shape == tuple(2 * n for n in PET_SHAPE)  # the original CT keeps its finer grid
    assert case.reference_image() is ctres
    # Files are LAS (dicom2nifti): the display must still be the phantom, radiological.
    k = (
        int(case.metadata["study"].rsplit("-", 1)[1]) - 10445
    ) // 37  # the generator's study index = seed
    _, phantom_suv, labels = torso(PET_SHAPE, seed=k)
    np.testing.assert_allclose(suv.array, phantom_suv, atol=1e-6)
    np.testing.assert_array_equal(seg.array, (labels == 3).astype(np.uint8))
    assert (
        suv.array[seg.array == 1].mean() > 3 * suv.array[(seg.array == 0) & (suv.array > 0)].mean()
    )
    # CT and CTres cover the same box in world space.
    for a in range(3):
        end_ct = ct.geometry.origin[a] + (ct.shape[a] - 0.5) * ct.spacing[a]
        end_pet = ctres.geometry.origin[a] + (ctres.shape[a] - 0.5) * ctres.spacing[a]
        assert end_ct == pytest.approx(end_pet)
    # CTres is the CT resampled onto the PET grid: body and air agree.
    assert (
        ctres.array.min() >= -1024 - 40
        and abs(float(ctres.array.mean()) - float(ct.array.mean())) < 60
    )


def test_metadata_csv_and_opening_subfolders(lesions):
    ds = open_dataset(lesions)
    cid = sorted(ds.case_ids())[0]
    case = ds.load_case(cid)
    assert case.metadata["diagnosis"] in ("MELANOMA", "LYMPHOMA", "LUNG_CANCER", "NEGATIVE")
    assert case.metadata["sex"] in ("F", "M") and case.metadata["age"].endswith("Y")
    study = _studies(lesions)[0]
    one = open_dataset(study)
    assert one.format == "fdg_pet_ct_lesions" and len(one.case_ids()) == 1
    assert one.load_case(one.case_ids()[0]).metadata.get("diagnosis")
    patient = open_dataset(study.parent)
    assert patient.format == "fdg_pet_ct_lesions" and set(patient.case_ids()) <= set(ds.case_ids())


def test_broken_study_fails_alone(lesions):
    studies = _studies(lesions)
    (studies[0] / "SUV.nii.gz").write_bytes(b"not a nifti")
    (studies[1] / "SEG.nii.gz").unlink()
    ds = open_dataset(lesions)
    ids = sorted(ds.case_ids())
    by_folder = {ds._studies[c]: c for c in ids}
    with pytest.raises(ReadError, match="SUV.nii.gz"):
        ds.load_case(by_folder[studies[0]])
    case = ds.load_case(by_folder[studies[1]])
    assert not case.masks and "no SEG.nii.gz" in case.problems
    assert ds.load_case(by_folder[studies[2]]).masks


def test_info_cli_json(lesions, capsys):
    from napari_medseg.cli import main

    ds = open_dataset(lesions)
    cid = ds.case_ids()[0]
    assert main(["info", str(lesions), "--json", "--case", cid]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["format"] == "fdg_pet_ct_lesions"
    [case] = report["cases"]
    images = {i["name"]: i for i in case["images"]}
    assert images["SUV"]["modality"] == "PET" and images["SUV"]["dtype"] == "float32"
    assert images["SUV"]["stats"]["min"] >= 0 and images["SUV"]["stats"]["max"] > 4
    assert images["CTres"]["spacing"] == [4.0, 5.0, 5.0] and images["CT"]["spacing"] == [
        2.0,
        2.5,
        2.5,
    ]
    assert case["masks"][0]["labels"] == {"0": "background", "1": "lesion"}
    assert case["masks"][0]["voxels"]["1"] > 0


def test_mask_written_on_the_pet_grid(lesions, tmp_path):
    case = open_dataset(lesions).load_case(open_dataset(lesions).case_ids()[0])
    ref = case.reference_image()
    out = write_mask(ref, case.masks[0].array, tmp_path / "out" / f"{case.id}.nii.gz")
    back = read_mask(out, ref)
    np.testing.assert_array_equal(back.array, case.masks[0].array)


def test_synthetic_petct_layout(tmp_path, capsys):
    root = make_synthetic_petct(tmp_path / "sample", n_cases=2, shape=(12, 24, 28), seed=3)
    meta = json.loads((root / "synthetic.json").read_text())
    assert meta["generator"] == "napari-medseg synthetic-petct" and meta["version"] == 1
    ds = open_dataset(root)
    assert ds.format == "synthetic_petct" and ds.case_ids() == ["synpet_000", "synpet_001"]
    case = ds.load_case("synpet_001")
    ct, suv = case.images
    assert (ct.modality, suv.modality, suv.channel) == ("CT", "PET", "SUV")
    assert case.masks[0].labelmap.names() == {0: "background", 1: "liver", 2: "spleen", 3: "lesion"}
    ct_p, suv_p, lab_p = torso((12, 24, 28), seed=4)
    np.testing.assert_array_equal(ct.array, ct_p)
    np.testing.assert_allclose(suv.array, suv_p)
    np.testing.assert_array_equal(case.masks[0].array, lab_p)
    assert sniff_format(root / "synpet_000").format == "synthetic_petct"
    assert open_dataset(root / "synpet_000").case_ids() == ["synpet_000"]
    total = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    assert total < 400_000
