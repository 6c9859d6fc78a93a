"""Image/mask pairs in one folder (pyradiomics' ``brain1_image.nrrd`` + ``brain1_label.nrrd``)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from napari_medseg.io.detect import open_dataset


def _write(path, array, spacing=(0.9, 0.9, 2.5)):
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(spacing)
    sitk.WriteImage(img, str(path))


def test_image_label_pairs_are_cases_with_masks(tmp_path):
    rng = np.random.default_rng(0)
    expected = {}
    for case, suffix in (("brain1", "label"), ("breast1", "seg"), ("lung1", "mask")):
        image = rng.integers(0, 500, (6, 12, 10)).astype(np.int16)
        mask = (image > 250).astype(np.uint8)
        _write(tmp_path / f"{case}_image.nrrd", image)
        _write(tmp_path / f"{case}_{suffix}.nrrd", mask)
        expected[case] = mask
    _write(tmp_path / "plain.nrrd", np.zeros((6, 12, 10), np.int16))  # an image alone
    ds = open_dataset(tmp_path)
    assert ds.format == "generic"
    assert sorted(ds.case_ids()) == ["brain1", "breast1", "lung1", "plain"]
    for case_id, mask in expected.items():
        case = ds.load_case(case_id)
        assert len(case.images) == 1 and len(case.masks) == 1
        vol = case.masks[0]
        truth = sitk.GetArrayFromImage(sitk.ReadImage(str(vol.source.path)))  # independent reader
        np.testing.assert_array_equal(truth, mask)
        np.testing.assert_array_equal(vol.source.transform.to_source(vol.array), truth)
    assert not open_dataset(tmp_path).load_case("plain").masks
