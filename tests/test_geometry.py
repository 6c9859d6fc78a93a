"""Display orientation and exact source round trips for NIfTI and SimpleITK geometry."""

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from napari_medseg.core.geometry import RAS_TO_LPS, DisplayTransform, orient_for_display
from napari_medseg.io.masks import read_mask, write_mask
from napari_medseg.io.volumes import read_itk, read_nifti
from napari_medseg.synthetic.phantom import display_to_nifti, nifti_affine, torso


def test_transform_is_exactly_invertible():
    t = DisplayTransform((2, 0, 1), (True, False, True))
    src = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    disp = t.to_display(src)
    assert disp.shape == t.display_shape(src.shape) == (4, 2, 3)
    np.testing.assert_array_equal(t.to_source(disp), src)


@pytest.mark.parametrize(
    "affine",
    [
        np.diag([2.0, 3.0, 4.0, 1.0]),  # RAS
        np.diag(
            [-2.0, -3.0, 4.0, 1.0]
        ),  # LPS (DICOM-style written by dicom2nifti without reorient)
        np.array([[0, 0, 2.0, 0], [3.0, 0, 0, 0], [0, -4.0, 0, 0], [0, 0, 0, 1]]),  # permuted axes
    ],
)
def test_display_is_radiological_for_any_nifti_layout(tmp_path, affine):
    """Whatever the file layout, the display array is (S, P, L) with the same world geometry."""
    ct, _, _ = torso((6, 10, 12))
    base = nib.Nifti1Image(display_to_nifti(ct), nifti_affine((4.0, 3.0, 2.0)))
    # Re-express the same physical image with another voxel layout.
    target = nib.orientations.io_orientation(affine)
    source = nib.orientations.io_orientation(base.affine)
    xform = nib.orientations.ornt_transform(source, target)
    img = base.as_reoriented(xform)
    nib.save(img, tmp_path / "x.nii.gz")
    vol = read_nifti(tmp_path / "x.nii.gz")[0]
    np.testing.assert_array_equal(vol.array, ct)
    assert vol.spacing == pytest.approx((4.0, 3.0, 2.0))
    # A mask written from the display array lands exactly on the file's own layout and affine.
    write_mask(vol, (ct > 0).astype(np.uint8), tmp_path / "m.nii.gz")
    m = nib.load(tmp_path / "m.nii.gz")
    np.testing.assert_array_equal(m.affine, img.affine)
    np.testing.assert_array_equal(np.asanyarray(m.dataobj), (np.asanyarray(img.dataobj) > 0))


def test_world_origin_matches_nifti_affine(tmp_path):
    aff = nifti_affine((2.5, 1.0, 1.0), origin=(10.0, 20.0, 30.0))
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6), np.int16), aff), tmp_path / "a.nii.gz")
    vol = read_nifti(tmp_path / "a.nii.gz")[0]
    assert vol.shape == (6, 5, 4)
    lps = vol.geometry.lps_affine()
    ras = nib.load(tmp_path / "a.nii.gz").affine
    for z, y, x in [(0, 0, 0), (5, 4, 3), (1, 2, 3)]:
        # The same voxel in the file: i runs right-to-left flipped (L), j flipped (P), k is z.
        src = np.array([3 - x, 4 - y, z, 1.0])
        np.testing.assert_allclose(RAS_TO_LPS @ ras @ src, lps @ np.array([z, y, x, 1.0]))


def test_oblique_affine_keeps_full_direction():
    theta = np.deg2rad(20)
    rot = np.array(
        [[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]]
    )
    aff = np.eye(4)
    aff[:3, :3] = rot * np.array([1.0, 1.0, 2.0])
    transform, geom = orient_for_display(aff, (5, 6, 7))
    assert not geom.is_axis_aligned
    assert geom.spacing == pytest.approx((2.0, 1.0, 1.0))


def test_mha_source_round_trip(tmp_path):
    ct, _, labels = torso((6, 10, 12))
    img = sitk.GetImageFromArray(ct)
    img.SetSpacing((0.7, 0.8, 3.0))
    img.SetOrigin((-5.0, 4.0, 100.0))
    img.SetDirection((-1, 0, 0, 0, 1, 0, 0, 0, 1))  # x axis runs toward the patient's right
    sitk.WriteImage(img, str(tmp_path / "ct.mha"))
    vol = read_itk(tmp_path / "ct.mha", modality="CT")
    np.testing.assert_array_equal(
        vol.array, ct[:, :, ::-1]
    )  # shown with patient left on screen right
    assert vol.spacing == pytest.approx((3.0, 0.8, 0.7))
    mask = (vol.array > 0).astype(np.uint8)
    for suffix in (".mha", ".nii.gz"):
        out = write_mask(vol, mask, tmp_path / f"mask{suffix}")
        back = sitk.ReadImage(str(out))
        assert back.GetSize() == img.GetSize()
        np.testing.assert_allclose(back.GetOrigin(), img.GetOrigin(), atol=1e-4)
        np.testing.assert_allclose(back.GetDirection(), img.GetDirection(), atol=1e-6)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(back), (ct > 0))
        np.testing.assert_array_equal(read_mask(out, vol).array, mask)


def test_mask_stored_in_another_voxel_order_is_reoriented(tmp_path):
    """A mask saved by another tool in a different voxel order still lands on the image."""
    ct, _, labels = torso((6, 10, 12))
    nib.save(
        nib.Nifti1Image(display_to_nifti(ct), nifti_affine((4.0, 3.0, 2.0))), tmp_path / "ct.nii.gz"
    )
    image = read_nifti(tmp_path / "ct.nii.gz")[0]
    ras_mask = nib.Nifti1Image(display_to_nifti(labels), nifti_affine((4.0, 3.0, 2.0)))
    lps_mask = ras_mask.as_reoriented(
        np.array([[0, -1], [1, -1], [2, 1]])
    )  # stored L/P-first, like DICOM tools
    nib.save(lps_mask, tmp_path / "mask.nii.gz")
    np.testing.assert_array_equal(read_mask(tmp_path / "mask.nii.gz", image).array, labels)
