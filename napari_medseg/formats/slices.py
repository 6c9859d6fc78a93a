"""How a volume is cut into named 2D items along a display axis, and put back together.

Coronal and sagittal slices are flipped top-to-bottom so the head is up. Item ids are
deterministic, zero-padded and never purely numeric (CVAT reads a numeric id as a frame
number): ``<case>/slice_0007`` (axial), ``<case>/coronal_0007``, ``<case>/sagittal_0007``,
or ``<case>`` for a 2D image.
"""

from __future__ import annotations

import re

import numpy as np

from napari_medseg.core.errors import MedsegError
from napari_medseg.core.safe_names import safe_name

AXES = {"axial": 0, "coronal": 1, "sagittal": 2}
PREFIXES = ("slice", "coronal", "sagittal")
SLICE_NAME = re.compile(r"^(slice|coronal|sagittal)_(\d+)$")


def axis_index(axis: int | str) -> int:
    if isinstance(axis, str) and not axis.isdigit():
        if axis not in AXES:
            raise MedsegError(f"unknown slicing axis {axis!r} (use axial, coronal or sagittal)")
        return AXES[axis]
    if int(axis) not in (0, 1, 2):
        raise MedsegError(f"slicing axis must be 0, 1 or 2, got {axis}")
    return int(axis)


def safe_case_name(case_id: str) -> str:
    """A case id as one safe path component (:func:`.safe_name`), never purely numeric."""
    name = safe_name(str(case_id))
    return f"case_{name}" if name.isdigit() else name


def item_ids(case_id: str, shape: tuple[int, ...], axis: int) -> list[str]:
    name = safe_case_name(case_id)
    if len(shape) == 2:
        return [name]
    n = shape[axis]
    width = max(4, len(str(n - 1)))
    return [f"{name}/{PREFIXES[axis]}_{i:0{width}d}" for i in range(n)]


def take(arr: np.ndarray, axis: int, i: int) -> np.ndarray:
    """Slice ``i`` along display ``axis`` as a 2D (row, col) image."""
    s = np.take(arr, i, axis=axis)
    return s[::-1] if axis else s


def put(arr: np.ndarray, axis: int, i: int, image: np.ndarray) -> None:
    """Inverse of :func:`take`: write a 2D slice back into the volume."""
    index = [slice(None)] * arr.ndim
    index[axis] = i
    arr[tuple(index)] = image[::-1] if axis else image
