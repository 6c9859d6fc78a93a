"""Stored pixel values of one DICOM frame, decoded whatever the transfer syntax.

Uncompressed little-endian data is viewed directly (about twice as fast as pydicom's generic
path) and brought to the stored range: bits outside ``BitsStored``/``HighBit`` are dropped
(scanners leave overlays or noise there) and signed values are sign-extended. Everything else
(big endian, deflated, JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000, RLE) goes through
pydicom's decoders, with the plugin measured fastest for each syntax when it is installed
(benchmarks/bench_dicom.py; 512x512 CT slices): GDCM for JPEG (Lossless SV1 38 ms against
libjpeg's 76 ms), CharLS (pyjpegls) for JPEG-LS; pydicom's default order otherwise, and
whenever the preferred plugin refuses a file.
"""

from __future__ import annotations

from functools import cache

import numpy as np

NATIVE_LITTLE_ENDIAN = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")  # implicit / explicit VR
JPEG = ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
        "1.2.840.10008.1.2.4.70")  # baseline, extended, lossless, lossless SV1  # fmt: skip
JPEG_LS = ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81")
FASTEST_PLUGIN = {**dict.fromkeys(JPEG, "gdcm"), **dict.fromkeys(JPEG_LS, "pyjpegls")}


@cache
def decoding_plugin(syntax: str) -> str:
    """The fastest installed pydicom plugin for ``syntax`` ("" = pydicom's default order)."""
    name = FASTEST_PLUGIN.get(syntax, "")
    if not name:
        return ""
    from pydicom.pixels import get_decoder

    try:
        return name if name in get_decoder(syntax).available_plugins else ""
    except NotImplementedError:
        return ""


def transfer_syntax(ds) -> str:
    meta = getattr(ds, "file_meta", None)
    return str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""


def fit_stored_bits(raw: np.ndarray, stored: int, high_bit: int, signed: bool) -> np.ndarray:
    """Values of ``BitsStored`` bits ending at ``HighBit`` from unsigned container words."""
    bits = raw.dtype.itemsize * 8
    shift = high_bit + 1 - stored
    if stored >= bits and shift == 0:
        return raw.view(f"<i{bits // 8}") if signed else raw
    values = raw >> np.asarray(shift, raw.dtype) if shift > 0 else raw
    values = values & np.asarray((1 << stored) - 1, raw.dtype)
    if not signed:
        return values
    sign = np.asarray(1 << (stored - 1), raw.dtype)
    out = (values ^ sign).view(f"<i{bits // 8}")
    out -= np.asarray(sign, out.dtype)  # (v xor s) - s sign-extends a stored-bit two's complement
    return out


def frame_values(ds, rows: int, cols: int) -> np.ndarray:
    """One single-frame file's stored values (rows, cols[, samples]), masked and sign-extended."""
    bits = int(ds.get("BitsAllocated", 0) or 0)
    stored = int(ds.get("BitsStored", 0) or bits)
    high = ds.get("HighBit")
    high_bit = int(high) if high not in (None, "") else stored - 1
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    simple = (
        transfer_syntax(ds) in NATIVE_LITTLE_ENDIAN
        and int(ds.get("SamplesPerPixel", 1) or 1) == 1
        and bits in (8, 16, 32)
        and "PixelData" in ds
    )
    if simple:
        raw = np.frombuffer(ds.PixelData, f"<u{bits // 8}", count=rows * cols)
        return fit_stored_bits(raw.reshape(rows, cols), stored, high_bit, signed)
    return decoded(ds)


def decoded(ds) -> np.ndarray:
    """pydicom's decode of the whole pixel data, with the fastest plugin for the syntax."""
    plugin = decoding_plugin(transfer_syntax(ds))
    if plugin:
        try:
            ds.pixel_array_options(decoding_plugin=plugin)
            return ds.pixel_array
        except Exception:  # noqa: BLE001 - e.g. GDCM refuses 12-bit JPEG Extended: try them all
            ds.pixel_array_options(decoding_plugin="")
    return ds.pixel_array
