"""Enhanced multi-frame, Siemens MOSAIC and 4D series, checked against nibabel's DICOM reader
on the real files nibabel ships, and against known synthetic volumes."""

from __future__ import annotations

import dataclasses
import gzip
import json
import shutil
from pathlib import Path

import nibabel
import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from napari_medseg.cli import main
from napari_medseg.core.errors import ReadError
from napari_medseg.io.dicom import find_series, index_to_lps, read_series
from napari_medseg.io.dicom_4d import split_volumes
from napari_medseg.io.dicom_write import write_dicom_series
from napari_medseg.synthetic.phantom import torso
from napari_medseg.viewer_state import state_for

NICOM = Path(nibabel.__file__).parent / "nicom" / "tests" / "data"


def _unzip(name: str, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(gzip.decompress((NICOM / name).read_bytes()))
    return dest


def _with_pattern(path: Path, seed: int) -> np.ndarray:
    """Replace a real file's (anonymised, all-zero) pixels with a random 12-bit pattern."""
    ds = pydicom.dcmread(path)
    shape = (int(ds.get("NumberOfFrames", 1) or 1), int(ds.Rows), int(ds.Columns))
    pattern = np.random.default_rng(seed).integers(0, 4096, shape, dtype=np.uint16)
    ds.PixelData = pattern.tobytes()
    ds.save_as(path)
    return pattern


def _first_volume(series):
    split = split_volumes(series)
    idx = split[0][0] if split else range(len(series.files))
    return dataclasses.replace(
        series,
        files=[series.files[k] for k in idx],
        headers=[series.headers[k] for k in idx],
        positions=[series.positions[k] for k in idx],
    )


def _assert_matches_nibabel(vol, series, path: Path, time_index=None, rescale=(1.0, 0.0)):
    """Voxels and affine equal nibabel's wrapper (its voxel order is row, column, slice);
    ``rescale`` is the Modality LUT nibabel leaves out for enhanced files."""
    from nibabel.nicom import dicomwrappers

    wrapper = dicomwrappers.wrapper_from_file(str(path))
    ref = np.asarray(wrapper.get_data()).transpose(2, 0, 1) * rescale[0] + rescale[1]
    ref_affine = wrapper.affine[:, [1, 0, 2, 3]]  # to (column, row, slice) like ours
    ours_affine = index_to_lps(_first_volume(series))
    if ours_affine[:3, 2] @ ref_affine[:3, 2] < 0:  # same grid, slices counted the other way
        ref = ref[::-1]
        ref_affine = ref_affine.copy()
        ref_affine[:3, 3] += ref_affine[:3, 2] * (ref.shape[0] - 1)
        ref_affine[:3, 2] *= -1
    # nibabel extrapolates the far end from the nominal spacing; we use the frames' positions
    np.testing.assert_allclose(ours_affine, ref_affine, atol=2e-3)
    src = vol.source.transform.to_source(vol.array)
    np.testing.assert_allclose(src if time_index is None else src[time_index], ref, rtol=1e-5)


def test_philips_enhanced_mr_matches_nibabel(tmp_path):
    path = _unzip("philips_mprage.dcm.gz", tmp_path / "enh" / "mprage.dcm")
    _with_pattern(path, seed=0)
    [series] = find_series(tmp_path / "enh")
    assert len(series.files) == 176  # one slice per frame
    vol = read_series(series)
    assert vol.shape == (256, 256, 176)  # a sagittal acquisition in display order
    frames = pydicom.dcmread(path, stop_before_pixels=True).PerFrameFunctionalGroupsSequence
    lut = {
        (float(t.RescaleSlope), float(t.RescaleIntercept))
        for t in (f.PixelValueTransformationSequence[0] for f in frames)
    }
    [rescale] = lut  # one Modality LUT for all frames in this file
    _assert_matches_nibabel(vol, series, path, rescale=rescale)


def test_enhanced_ct_built_with_highdicom_is_split_like_the_classic_series(tmp_path):
    import highdicom as hd

    ct, _, _ = torso((7, 30, 26), seed=4)
    ct = np.clip(ct, -1024, 3071).astype(np.int16)
    files = write_dicom_series(tmp_path / "classic", ct, (2.0, 0.8, 0.7))
    localiser = write_dicom_series(
        tmp_path / "classic_loc",
        ct[:2],
        (2.0, 0.8, 0.7),
        orientation=(1, 0, 0, 0, 0, -1),
        series_number=2,
    )
    legacy = [pydicom.dcmread(f) for f in files + localiser]
    for ds in legacy:
        ds.SeriesInstanceUID = legacy[0].SeriesInstanceUID  # a localiser in the same object
        ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.1"
    enhanced = hd.legacy.LegacyConvertedEnhancedCTImage(
        legacy, generate_uid(), 5, generate_uid(), 1
    )
    (tmp_path / "enh").mkdir()
    enhanced.save_as(tmp_path / "enh" / "ct.dcm")
    stacks = find_series(tmp_path / "enh")
    assert sorted(len(s.files) for s in stacks) == [2, 7]  # split by orientation
    main_stack = max(stacks, key=lambda s: len(s.files))
    vol = read_series(main_stack)
    classic = read_series(find_series(tmp_path / "classic")[0])
    np.testing.assert_array_equal(vol.array, ct)
    assert vol.spacing == pytest.approx(classic.spacing)
    assert vol.geometry.origin == pytest.approx(classic.geometry.origin)


def test_siemens_mosaic_matches_nibabel(tmp_path):
    path = _unzip("siemens_dwi_1000.dcm.gz", tmp_path / "dwi" / "b1000.dcm")
    _with_pattern(path, seed=1)
    [series] = find_series(tmp_path / "dwi")
    assert len(series.files) == 48  # 48 slices from one 896x896 file, never one flat slice
    vol = read_series(series)
    assert vol.shape == (48, 128, 128)
    _assert_matches_nibabel(vol, series, path)


def test_mosaic_without_slice_count_is_refused(tmp_path):
    path = _unzip("siemens_dwi_0.dcm.gz", tmp_path / "bad" / "b0.dcm")
    ds = pydicom.dcmread(path)
    for tag in [e.tag for e in ds if e.tag.group == 0x0029 or e.tag == (0x0019, 0x100A)]:
        del ds[tag]  # no CSA header, no NumberOfImagesInMosaic
    ds.save_as(path)
    with pytest.raises(ReadError, match="MOSAIC without NumberOfImagesInMosaic"):
        find_series(tmp_path / "bad")


def test_dwi_mosaics_open_as_4d(tmp_path, capsys):
    for name, seed in (("siemens_dwi_0.dcm.gz", 2), ("siemens_dwi_1000.dcm.gz", 3)):
        path = _unzip(name, tmp_path / "dwi" / name.replace(".gz", ""))
        _with_pattern(path, seed)
    [series] = find_series(tmp_path / "dwi")
    vol = read_series(series)
    assert vol.shape == (2, 48, 128, 128)
    assert "acquisition number" in vol.metadata["volumes"]
    b1000 = tmp_path / "dwi" / "siemens_dwi_1000.dcm"
    _assert_matches_nibabel(vol, series, b1000, time_index=1)  # acquisition 2 is the b=1000
    assert main(["info", str(tmp_path / "dwi"), "--json"]) == 0
    [case] = json.loads(capsys.readouterr().out)["cases"]
    assert case["images"][0]["shape"] == [2, 48, 128, 128]


def _write_4d(folder: Path, volumes: np.ndarray, tag: str | None) -> None:
    uid = generate_uid()
    for t, vol in enumerate(volumes):
        files = write_dicom_series(
            folder, vol, (3.0, 0.9, 0.9), modality="MR", series_uid=uid, prefix=f"T{t}_", seed=t
        )
        for f in files:
            ds = pydicom.dcmread(f)
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            if tag:
                setattr(ds, tag, [t + 1, 40.0 * t + 5][tag == "TriggerTime"])
            ds.save_as(f)


@pytest.mark.parametrize("tag", ["TemporalPositionIdentifier", "TriggerTime"])
def test_classic_4d_series_in_time_order(tmp_path, tag):
    rng = np.random.default_rng(5)
    volumes = rng.integers(0, 1000, (3, 5, 12, 10)).astype(np.uint16)
    _write_4d(tmp_path, volumes, tag)
    [series] = find_series(tmp_path)
    vol = read_series(series)
    assert vol.shape == (3, 5, 12, 10) and vol.spacing == pytest.approx((1.0, 3.0, 0.9, 0.9))
    np.testing.assert_array_equal(vol.array, volumes)


def test_unorderable_4d_is_refused_accurately(tmp_path):
    volumes = np.zeros((2, 4, 8, 8), np.uint16)
    _write_4d(tmp_path, volumes, None)
    [series] = find_series(tmp_path)
    with pytest.raises(ReadError, match="4 slice positions each hold 2 slices, and neither"):
        read_series(series)


def test_series_copied_twice_is_not_taken_for_4d(tmp_path):
    files = write_dicom_series(tmp_path / "a", np.zeros((3, 8, 8), np.uint16), (2.0, 1.0, 1.0))
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    [series] = find_series(tmp_path)
    assert len(series.files) == 2 * len(files)
    with pytest.raises(ReadError, match="3 slices are copies of others"):
        read_series(series)


def test_4d_case_opens_with_a_time_slider(make_napari_viewer, tmp_path):
    volumes = np.random.default_rng(6).integers(0, 1000, (3, 5, 12, 10)).astype(np.uint16)
    _write_4d(tmp_path / "dce", volumes, "TemporalPositionIdentifier")
    viewer = make_napari_viewer()
    viewer.open(str(tmp_path / "dce"), plugin="napari-medseg")
    assert viewer.dims.ndim == 4 and viewer.dims.nsteps[0] == 3
    assert not viewer.layers[0].rgb
    state = state_for(viewer)
    state.set_dataset(tmp_path / "dce")
    state.show(state.load(state.dataset.case_ids()[0]))
    assert viewer.dims.current_step[1] == 2  # the middle slice of the 5
    viewer.dims.set_current_step(0, 2)  # the time slider reaches the last volume
    [layer] = viewer.layers
    t, z = viewer.dims.current_step[:2]
    np.testing.assert_array_equal(np.asarray(layer.data)[t, z], volumes[2, 2])
