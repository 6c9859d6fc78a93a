"""NIfTI files with scl_slope/scl_inter read as float32 without a float64 copy."""

from __future__ import annotations

import os
import tracemalloc

import nibabel as nib
import numpy as np

from napari_medseg.io.volumes import read_nifti


def test_real_scaled_4d_file_matches_nibabel():
    path = os.path.join(os.path.dirname(nib.__file__), "tests", "data", "functional.nii")
    ref = nib.load(path).get_fdata(dtype=np.float32)
    vols = read_nifti(path)
    assert len(vols) == ref.shape[3]
    for c in (0, ref.shape[3] - 1):
        arr = vols[c].array
        assert arr.dtype == np.float32 and arr.size == ref[..., c].size
        np.testing.assert_allclose(np.sort(arr.ravel()), np.sort(ref[..., c].ravel()), rtol=1e-6)


def test_scaled_read_peaks_at_most_1_5x_the_output(tmp_path):
    rng = np.random.default_rng(0)
    raw = rng.integers(-1000, 3000, (64, 128, 128), dtype=np.int16)
    img = nib.Nifti1Image(raw, np.eye(4))
    img.header.set_slope_inter(0.25, -1024.0)
    path = tmp_path / "scaled.nii.gz"
    nib.save(img, path)
    (vol,) = read_nifti(path)
    tracemalloc.start()
    arr = vol.array  # first access reads the file
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    ref = nib.load(path).get_fdata(dtype=np.float32)
    np.testing.assert_allclose(np.sort(arr.ravel()), np.sort(ref.ravel()), rtol=1e-6)
    assert peak <= 1.5 * arr.nbytes + 2**18, peak / arr.nbytes  # nibabel: 2.4x and more
