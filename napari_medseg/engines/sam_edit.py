"""Write SAM masks into a label array without clobbering other labels, with undo."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Edit:
    """The voxels one accepted mask changed and their previous values."""

    index: tuple[np.ndarray, ...]
    old: np.ndarray
    label: int

    @property
    def size(self) -> int:
        return int(self.old.size)

    def undo(self, labels: np.ndarray) -> None:
        if self.size:  # an empty index would address the whole array
            labels[self.index] = self.old

    def redo(self, labels: np.ndarray) -> None:
        if self.size:
            labels[self.index] = self.label


def _free(
    target: np.ndarray, mask: np.ndarray, label: int, overwrite: bool
) -> tuple[np.ndarray, ...]:
    mask = np.asarray(mask, bool)
    allowed = mask if overwrite else mask & (target == 0)
    return np.nonzero(allowed & (target != label))  # unchanged voxels need no undo record


def paste_slices(
    labels: np.ndarray, masks: dict[int | None, np.ndarray], label: int, overwrite: bool = False
) -> Edit:
    """Set ``label`` where each mask is true, as one undoable edit.

    ``masks`` maps a slice index of a 3D ``labels`` (or None for the whole array) to a mask.
    Voxels of other labels are kept unless ``overwrite``.
    """
    parts = []
    for z, mask in masks.items():
        target = labels if z is None else labels[z]
        idx = _free(target, mask, label, overwrite)
        parts.append(idx if z is None else (np.full(idx[0].size, z, np.intp), *idx))
    index = tuple(np.concatenate(axis) for axis in zip(*parts, strict=True)) if parts else ()
    edit = Edit(index, labels[index].copy() if parts else np.zeros(0, labels.dtype), label)
    if parts:
        labels[index] = label
    return edit


def paste(
    labels: np.ndarray, mask: np.ndarray, label: int, z: int | None = None, overwrite: bool = False
) -> Edit:
    """Paste one mask, into slice ``z`` of a 3D ``labels`` or over the whole array."""
    return paste_slices(labels, {z: mask}, label, overwrite)
