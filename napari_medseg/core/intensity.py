"""Intensity windows shared by the viewer, the 8-bit exports and SAM's input conversion."""

from __future__ import annotations

import numpy as np

# CT windows as (low, high) HU, from the usual width/level: soft tissue W400 L40, lung W1500
# L-600, bone W1800 L400, brain W80 L40.
CT_PRESETS = {
    "soft tissue": (-160.0, 240.0),
    "lung": (-1350.0, 150.0),
    "bone": (-500.0, 1300.0),
    "brain": (0.0, 80.0),
}
CT_WINDOW = CT_PRESETS["soft tissue"]
PET_SUV_RANGE = (0.0, 6.0)


def robust_limits(arr: np.ndarray, lo: float = 0.5, hi: float = 99.5) -> tuple[float, float]:
    """Percentile limits on a strided sample (fast on large volumes), ignoring zeros (MRI background)."""
    step = max(1, arr.size // 2_000_000)
    sample = arr.reshape(-1)[::step].astype(np.float32, copy=False)
    nz = sample[sample != 0]
    if nz.size > 100:
        sample = nz
    if sample.size == 0:
        return 0.0, 1.0
    a, b = np.percentile(sample, [lo, hi])
    return (float(a), float(b) if b > a else float(a) + 1.0)
