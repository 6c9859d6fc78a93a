"""Memory bounds for sizes that come from file headers, checked before anything is allocated.

The limit is ``NAPARI_MEDSEG_MAX_BYTES`` (bytes, ``K``/``M``/``G`` suffixes allowed) or, by
default, the memory available when asked (at least 1 GiB).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from napari_medseg.core.errors import MedsegError, ReadError

ENV = "NAPARI_MEDSEG_MAX_BYTES"
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def available_bytes() -> int:
    """Memory available now (Linux/macOS sysconf), or 8 GiB when the system does not say."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def max_bytes() -> int:
    text = os.environ.get(ENV, "").strip().upper().removesuffix("B").removesuffix("I")
    if text:
        try:
            return int(float(text[:-1] if text[-1] in _UNITS else text) * _UNITS.get(text[-1], 1))
        except (ValueError, IndexError):
            raise MedsegError(f"{ENV}={os.environ[ENV]!r} is not a size like 4G") from None
    return max(available_bytes(), 2**30)


def check_bytes(n: int, what: str, path: str | Path | None = None) -> None:
    """Refuse to allocate ``n`` bytes for ``what`` when that is over :func:`max_bytes`."""
    limit = max_bytes()
    if n > limit:
        raise ReadError(
            f"{what} would need {human(n)}, over the {human(limit)} limit "
            f"(set {ENV} to allow more)",
            path,
        )


def check_array(shape, dtype, what: str, path: str | Path | None = None) -> None:
    """:func:`check_bytes` for an array of ``shape`` and ``dtype`` (shape from a header)."""
    dims = [int(s) for s in shape]
    if any(d < 0 for d in dims):
        raise ReadError(f"{what} has a negative size {tuple(dims)}", path)
    check_bytes(math.prod(dims) * np.dtype(dtype).itemsize, f"{what} {tuple(dims)}", path)
