"""DICOM series: discovery, slice order, geometry, HU, SUV, gaps, masks written on the grid."""

from __future__ import annotations

import json
import math

import numpy as np
import pydicom
import pytest

from napari_medseg.core.errors import ReadError
from napari_medseg.io.detect import open_dataset
from napari_medseg.io.dicom import find_series, read_series
from napari_medseg.io.dicom_write import SAGITTAL, write_dicom_series
from napari_medseg.io.masks import write_mask
from napari_medseg.synthetic.phantom import torso

SPACING = (3.0, 0.8, 0.7)  # slice step, row, column


@pytest.fixture
def phantom():
    ct, pet, labels = torso((10, 32, 36), seed=1)
    return np.clip(ct, -1024, 3071), pet, labels


def test_ct_values_spacing_and_shuffled_names(tmp_path, phantom):
    ct, _, _ = phantom
    files = write_dicom_series(
        tmp_path / "ct", ct, SPACING, suffix=""
    )  # no extension: found by magic
    (tmp_path / "ct" / "notes.txt").write_text("not dicom")
    assert [f.name for f in files] != sorted(f.name for f in files)
    [series] = find_series(tmp_path)
    assert series.files == files  # slice order from positions, not names or InstanceNumber
    vol = read_series(series)
    assert not vol.loaded
    assert vol.modality == "CT" and vol.dtype == np.int16
    assert vol.spacing == pytest.approx(SPACING)  # 3.0 from IPP, not SliceThickness (4.5)
    np.testing.assert_array_equal(vol.array, ct)


def test_orientation_is_radiological_whatever_the_file_layout(tmp_path, phantom):
    ct, _, _ = phantom
    nz, ny, nx = ct.shape
    # Rows run to the patient's right, columns anterior: the files hold the phantom flipped.
    origin = ((nx - 1) * SPACING[2], (ny - 1) * SPACING[1], 0.0)
    write_dicom_series(
        tmp_path, ct[:, ::-1, ::-1], SPACING, orientation=(-1, 0, 0, 0, -1, 0), origin=origin
    )
    vol = read_series(find_series(tmp_path)[0])
    np.testing.assert_array_equal(vol.array, ct)
    assert vol.geometry.origin == pytest.approx((0.0, 0.0, 0.0), abs=1e-3)
    assert vol.geometry.is_axis_aligned


def test_localiser_in_the_same_series_is_split_off(tmp_path, phantom):
    ct, _, _ = phantom
    write_dicom_series(tmp_path, ct, SPACING, series_uid="1.2.3.4.5")
    scout = np.zeros((1, 20, 24), np.int16)
    write_dicom_series(
        tmp_path, scout, (1.0, 1.0, 1.0), orientation=SAGITTAL, series_uid="1.2.3.4.5", prefix="LOC"
    )
    main, loc = find_series(tmp_path)
    assert len(main.files) == ct.shape[0] and len(loc.files) == 1
    assert loc.case_id == main.case_id + "_2"
    assert read_series(main).shape == ct.shape


def test_missing_slice_is_an_error_naming_the_folder_and_gap(tmp_path, phantom):
    ct, _, _ = phantom
    files = write_dicom_series(tmp_path / "series", ct, SPACING)
    files[4].unlink()
    [series] = find_series(tmp_path)
    with pytest.raises(ReadError, match="missing slice") as err:
        read_series(series)
    assert str(tmp_path / "series") in str(err.value) and "6 mm" in str(err.value)


def test_pet_suv_matches_an_independent_computation(tmp_path, phantom):
    _, pet, _ = phantom
    write_dicom_series(
        tmp_path, pet, SPACING, modality="PT", pet={"weight": 82.0, "dose": 3.1e8, "delay": 4500}
    )
    [series] = find_series(tmp_path)
    vol = read_series(series)
    assert vol.modality == "PET" and vol.channel == "SUV" and vol.dtype == np.float32
    # By hand from one file: SUV = Bq/ml * weight[g] / (dose decayed from injection to scan).
    ds = pydicom.dcmread(series.files[5])
    info = ds.RadiopharmaceuticalInformationSequence[0]
    t_scan = 10 * 3600
    t_inj = (
        int(info.RadiopharmaceuticalStartTime[:2]) * 3600
        + int(info.RadiopharmaceuticalStartTime[2:4]) * 60
    )
    dose = float(info.RadionuclideTotalDose) * math.exp(
        -math.log(2) * (t_scan - t_inj) / float(info.RadionuclideHalfLife)
    )
    bqml = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    expected = bqml * float(ds.PatientWeight) * 1000 / dose
    np.testing.assert_allclose(vol.array[5], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        vol.array, pet, atol=0.002
    )  # the phantom's SUV, up to 16-bit storage


def test_pet_without_dose_stays_activity(tmp_path, phantom):
    _, pet, _ = phantom
    files = write_dicom_series(tmp_path, pet, SPACING, modality="PT")
    for f in files:
        ds = pydicom.dcmread(f)
        del ds.PatientWeight
        ds.save_as(f)
    vol = read_series(find_series(tmp_path)[0])
    assert vol.channel == "activity" and "PatientWeight" in vol.metadata["suv"]


def test_open_dataset_and_info_cli(tmp_path, phantom, capsys):
    from napari_medseg.cli import main

    ct, pet, _ = phantom
    write_dicom_series(tmp_path / "study" / "ct", ct, SPACING, patient_id="P 7/x")
    write_dicom_series(
        tmp_path / "study" / "pet",
        pet,
        SPACING,
        modality="PT",
        series_number=4,
        description="PET AC",
        patient_id="P 7/x",
    )
    ds = open_dataset(tmp_path / "study")
    assert ds.format == "generic"
    assert ds.case_ids() == ["P_7_x_1_synthetic", "P_7_x_4_PET_AC"]
    assert main(["info", str(tmp_path / "study"), "--json", "--case", "P_7_x_4_PET_AC"]) == 0
    report = json.loads(capsys.readouterr().out)
    [img] = report["cases"][0]["images"]
    assert (
        img["modality"] == "PET" and img["shape"] == list(pet.shape) and img["dtype"] == "float32"
    )
    assert img["stats"]["max"] == pytest.approx(float(pet.max()), abs=0.01)


def test_truncated_header_is_reported_and_leaves_a_gap(tmp_path, phantom):
    ct, _, _ = phantom
    files = write_dicom_series(tmp_path, ct, SPACING)
    files[4].write_bytes(files[4].read_bytes()[:400])  # cut inside the header
    [series] = find_series(tmp_path)
    assert any(files[4].name in p and "truncated" in p for p in series.problems)
    with pytest.raises(ReadError, match="missing slice"):
        read_series(series)


def test_truncated_slice_is_a_read_error_naming_the_file(tmp_path, phantom):
    ct, _, _ = phantom
    files = write_dicom_series(tmp_path, ct, SPACING)
    data = files[3].read_bytes()
    files[3].write_bytes(data[: len(data) - 500])  # pixel data cut short; the header is intact
    vol = read_series(find_series(tmp_path)[0])  # headers only: fine
    with pytest.raises(ReadError, match=files[3].name):
        _ = vol.array


@pytest.mark.parametrize("flipped", [False, True])
def test_mask_round_trip_lies_on_the_dicom_grid(tmp_path, phantom, flipped):
    import nibabel as nib
    import SimpleITK as sitk

    ct, _, labels = phantom
    nz, ny, nx = ct.shape
    if flipped:
        origin = ((nx - 1) * SPACING[2], (ny - 1) * SPACING[1], 0.0)
        write_dicom_series(
            tmp_path / "ct",
            ct[:, ::-1, ::-1],
            SPACING,
            orientation=(-1, 0, 0, 0, -1, 0),
            origin=origin,
        )
    else:
        write_dicom_series(tmp_path / "ct", ct, SPACING, origin=(-10.0, 20.0, 30.0))
    vol = read_series(find_series(tmp_path / "ct")[0])
    out = write_mask(vol, labels, tmp_path / "masks" / "case.nii.gz")
    # SimpleITK reads the DICOM series and the mask onto the same physical grid.
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path / "ct")))
    dicom = reader.Execute()
    mask = sitk.ReadImage(str(out))
    assert mask.GetSize() == dicom.GetSize()
    np.testing.assert_allclose(mask.GetOrigin(), dicom.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(mask.GetSpacing(), dicom.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(mask.GetDirection(), dicom.GetDirection(), atol=1e-4)
    ct_zyx, mask_zyx = sitk.GetArrayFromImage(dicom), sitk.GetArrayFromImage(mask)
    np.testing.assert_array_equal(mask_zyx, labels[:, ::-1, ::-1] if flipped else labels)
    assert (
        ct_zyx[mask_zyx == 3].mean() < ct_zyx[mask_zyx == 1].mean()
    )  # lesion darker than liver, in place
    # nibabel in RAS canonical order: i runs to the right, so display x (toward left) is reversed.
    canon = nib.as_closest_canonical(nib.load(str(out)))
    np.testing.assert_array_equal(
        np.asarray(canon.dataobj).transpose(2, 1, 0), labels[:, ::-1, ::-1]
    )


def test_sagittal_series_native_layout(tmp_path):
    slices = np.arange(4 * 6 * 8, dtype=np.uint16).reshape(4, 6, 8)
    write_dicom_series(tmp_path, slices, (4.0, 0.5, 0.5), modality="MR", orientation=SAGITTAL)
    series = find_series(tmp_path)[0]
    native = read_series(series, native=True)
    np.testing.assert_array_equal(native.array, slices)
    assert native.spacing == pytest.approx((4.0, 0.5, 0.5))
    display = read_series(series)  # radiological: (S, P, L) axes
    assert display.shape == (6, 8, 4)
