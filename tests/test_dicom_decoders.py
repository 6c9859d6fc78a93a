"""Every common transfer syntax decodes, checked against pydicom/SimpleITK; 12-bit data is masked."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

from napari_medseg.io.dicom import find_series, read_series
from napari_medseg.io.dicom_pixels import fit_stored_bits
from napari_medseg.io.dicom_write import write_dicom_series
from napari_medseg.synthetic.phantom import torso

# pydicom's bundled files (no network): one per transfer syntax / bit layout
BUNDLED = [
    "CT_small.dcm",  # explicit little endian, signed 16-bit
    "MR_small_implicit.dcm",  # implicit little endian
    "MR_small_bigendian.dcm",  # explicit big endian
    "image_dfl.dcm",  # deflated explicit little endian
    "MR_small_RLE.dcm",  # RLE lossless
    "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS lossless
    "JPEGLSNearLossless_16.dcm",  # JPEG-LS near-lossless
    "MR_small_jp2klossless.dcm",  # JPEG 2000 lossless
    "693_J2KI.dcm",  # JPEG 2000, 14-bit signed CT
    "J2K_pixelrep_mismatch.dcm",  # JPEG 2000 whose codestream sign differs from the header
    "JPGExtended.dcm",  # JPEG extended (process 2 and 4), 12-bit
    "SC_rgb_jpeg_gdcm.dcm",  # JPEG baseline, YBR colour
    "examples_overlay.dcm",  # 12 of 16 bits stored, uncompressed
]


def _expected(path) -> np.ndarray:
    """pydicom's own decode plus rescale: the independent reference."""
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array
    if int(ds.get("SamplesPerPixel", 1)) == 3:
        return arr
    return arr * float(ds.get("RescaleSlope", 1) or 1) + float(ds.get("RescaleIntercept", 0) or 0)


def _file_layout(vol) -> np.ndarray:
    return vol.source.transform.to_source(vol.array)


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_transfer_syntaxes_match_pydicom(tmp_path, name):
    src = get_testdata_file(name)
    shutil.copy(src, tmp_path / name)
    [series] = find_series(tmp_path)
    vol = read_series(series)
    got = _file_layout(vol)[0]
    np.testing.assert_allclose(got, _expected(src), rtol=1e-6)


@pytest.fixture
def ct():
    ct, _, _ = torso((6, 40, 36), seed=3)
    return np.clip(ct, -1024, 3071).astype(np.int16)


def _sitk_array(folder) -> np.ndarray:
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return sitk.GetArrayFromImage(reader.Execute())


@pytest.mark.parametrize("syntax", [JPEGLSLossless, JPEG2000Lossless, RLELossless])
def test_compressed_series_matches_truth_and_gdcm(tmp_path, ct, syntax):
    files = write_dicom_series(tmp_path / "s", ct, (2.0, 0.9, 0.9))
    for f in files:
        ds = pydicom.dcmread(f)
        ds.compress(syntax)
        ds.save_as(f)
    vol = read_series(find_series(tmp_path / "s")[0])
    np.testing.assert_array_equal(vol.array, ct)
    np.testing.assert_array_equal(vol.array, _sitk_array(tmp_path / "s"))


@pytest.mark.skipif(shutil.which("dcmcjpeg") is None, reason="dcmtk's dcmcjpeg not installed")
def test_jpeg_lossless_process14_series(tmp_path, ct):
    """JPEG Lossless SV1, the most common PACS syntax (pydicom has no encoder: dcmtk writes it)."""
    files = write_dicom_series(tmp_path / "s", ct, (2.0, 0.9, 0.9))
    for f in files:
        subprocess.run(["dcmcjpeg", "+e1", str(f), str(f)], check=True)
    assert pydicom.dcmread(files[0]).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.70"
    vol = read_series(find_series(tmp_path / "s")[0])
    np.testing.assert_array_equal(vol.array, ct)
    np.testing.assert_array_equal(vol.array, _sitk_array(tmp_path / "s"))


def test_12_bit_with_high_bits_set_reads_the_stored_bits(tmp_path, ct):
    """Unused high bits (overlays, noise) must not leak into the values."""
    files = write_dicom_series(tmp_path / "s", ct, (2.0, 0.9, 0.9))  # 12-bit, intercept -1024
    for k, f in enumerate(files):
        ds = pydicom.dcmread(f)
        raw = np.frombuffer(ds.PixelData, np.uint16).copy()
        raw[k % 2 :: 2] |= 0xF000
        ds.PixelData = raw.tobytes()
        ds.save_as(f)
    vol = read_series(find_series(tmp_path / "s")[0])
    np.testing.assert_array_equal(vol.array, ct)
    pyd = np.stack([_expected(f) for f in files])  # pydicom masks the same way
    np.testing.assert_array_equal(vol.array, pyd)


def test_signed_12_bit_is_sign_extended(tmp_path):
    values = np.arange(-2048, 2048, 16, dtype=np.int16).reshape(1, 16, 16)
    [f] = write_dicom_series(tmp_path, np.zeros_like(values), (1.0, 1.0, 1.0), modality="MR")
    ds = pydicom.dcmread(f)
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, 1
    raw = values.view(np.uint16) & 0x0FFF | 0xA000  # garbage above bit 11
    ds.PixelData = raw.tobytes()
    ds.save_as(f)
    vol = read_series(find_series(tmp_path)[0])
    np.testing.assert_array_equal(_file_layout(vol), values)
    np.testing.assert_array_equal(_file_layout(vol)[0], _expected(f))


def test_fit_stored_bits_patterns():
    raw = np.array([0xFF0F, 0x0F0F, 0x0FFF], np.uint16)
    assert fit_stored_bits(raw, 12, 11, False).tolist() == [0x0F0F, 0x0F0F, 0x0FFF]
    assert fit_stored_bits(raw, 12, 11, True).tolist() == [0x0F0F - 4096, 0x0F0F - 4096, -1]
    assert fit_stored_bits(np.array([0x0FF0], np.uint16), 8, 11, False).tolist() == [0xFF]


def test_monochrome1_is_flagged_and_shown_inverted(tmp_path):
    from napari_medseg.core.model import Case
    from napari_medseg.layers import image_layer

    values = np.arange(256, dtype=np.uint16).reshape(1, 16, 16)
    [f] = write_dicom_series(tmp_path, values, (1.0, 1.0, 1.0), modality="MR")
    ds = pydicom.dcmread(f)
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(f)
    vol = read_series(find_series(tmp_path)[0])
    np.testing.assert_array_equal(_file_layout(vol), values)  # values kept as stored
    assert "MONOCHROME1" in vol.metadata["photometric"]
    _, kwargs, _ = image_layer(vol, Case("c", [vol]))
    assert kwargs["colormap"] == "gray_r" and kwargs["rgb"] is False


def test_measured_fastest_decoders_are_chosen():
    from pydicom.uid import JPEGLosslessSV1

    from napari_medseg.io.dicom_pixels import decoding_plugin

    pytest.importorskip("gdcm")
    pytest.importorskip("jpeg_ls")
    assert decoding_plugin(JPEGLosslessSV1) == "gdcm"
    assert decoding_plugin(JPEGLSLossless) == "pyjpegls"
    assert decoding_plugin(JPEG2000Lossless) == ""  # pydicom's own order
