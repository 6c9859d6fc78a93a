"""The viewer takes whatever the readers take: narrow volumes stay grayscale, every slice is
reachable whatever the float noise in the spacing, and a sagittal series opens sagittal."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from napari_medseg.io.dicom_write import SAGITTAL, write_dicom_series
from napari_medseg.viewer_state import state_for


def _image_layers(viewer):
    return [ly for ly in viewer.layers if ly.metadata["medseg"]["role"] == "image"]


def test_four_slice_sagittal_series_opens_grayscale_in_its_plane(make_napari_viewer, tmp_path):
    mr = np.random.default_rng(0).integers(0, 1000, (4, 20, 24)).astype(np.uint16)
    write_dicom_series(tmp_path / "sag", mr, (4.0, 0.9, 0.9), modality="MR", orientation=SAGITTAL)
    viewer = make_napari_viewer()
    viewer.open(str(tmp_path / "sag"), plugin="napari-medseg")
    [layer] = _image_layers(viewer)
    assert not layer.rgb and layer.data.ndim == 3
    assert layer.data.shape[2] == 4  # slices run left-right: x is the 4-wide axis
    state = state_for(viewer)
    state.set_dataset(tmp_path / "sag")
    state.show(state.load(state.dataset.case_ids()[0]))
    [layer] = _image_layers(viewer)
    assert viewer.dims.order[0] == 2  # the slider steps through the 4 acquired slices
    assert viewer.dims.nsteps[2] == 4
    assert str(viewer.camera.orientation2d[0]) == "up"  # superior at the top
    viewer.dims.order = (0, 1, 2)  # one click to axial: anterior back at the top
    assert str(viewer.camera.orientation2d[0]) == "down"


def test_three_voxel_wide_volume_is_not_rgb(make_napari_viewer, tmp_path):
    data = np.arange(3 * 16 * 10, dtype=np.int16).reshape(3, 16, 10)  # nibabel (i, j, k)
    nib.save(nib.Nifti1Image(data, np.diag([1.0, 1.0, 2.0, 1.0])), tmp_path / "narrow.nii.gz")
    viewer = make_napari_viewer()
    viewer.open(str(tmp_path / "narrow.nii.gz"), plugin="napari-medseg")
    [layer] = _image_layers(viewer)
    assert not layer.rgb and layer.data.shape == (10, 16, 3)
    assert layer.colormap.name == "gray"


def test_slider_reaches_every_slice_with_float_noise_spacing(make_napari_viewer, tmp_path):
    img = sitk.GetImageFromArray(np.arange(25 * 8 * 8, dtype=np.int16).reshape(25, 8, 8))
    img.SetSpacing((0.7, 0.7, 6.499999999999998))
    sitk.WriteImage(img, str(tmp_path / "noisy.nrrd"))
    viewer = make_napari_viewer()
    viewer.open(str(tmp_path / "noisy.nrrd"), plugin="napari-medseg")
    [layer] = _image_layers(viewer)
    assert viewer.dims.nsteps[0] == 25
    viewer.dims.set_current_step(0, 24)
    assert round(layer.world_to_data(viewer.dims.point)[0]) == 24
