"""Editing a labelmap together with the masks that use it, with undo.

Every operation checks the result against CVAT's rules (:func:`labelmap_io.cvat_problems`)
before changing anything. Merge, delete and renumber rewrite the mask arrays in place; undo
restores exactly the voxels they changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from napari_medseg.core.errors import MedsegError
from napari_medseg.core.labelmap import Label, LabelMap, default_color
from napari_medseg.core.labelmap_io import cvat_problems


@dataclass
class _Step:
    labelmap: LabelMap
    # per mask: (flat C-order indices that changed, their old values)
    voxels: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


class LabelmapEditor:
    """A labelmap plus the mask arrays (edited in place) that use its ids.

    ``on_change(editor, voxels_changed)`` is called after every change and undo.
    """

    def __init__(
        self,
        labelmap: LabelMap,
        masks: Sequence[np.ndarray] = (),
        on_change: Callable[[LabelmapEditor, bool], None] | None = None,
    ):
        self.labelmap = labelmap
        self.masks = list(masks)
        self.on_change = on_change
        self._undo: list[_Step] = []

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    # -- operations -------------------------------------------------------------------------
    def add(
        self, name: str, color: tuple[int, int, int] | None = None, label_id: int | None = None
    ) -> Label:
        lid = label_id if label_id is not None else max(self.labelmap.ids, default=0) + 1
        if lid in self.labelmap:
            raise MedsegError(f"label id {lid} already exists ({self.labelmap[lid].name!r})")
        if color is None:
            used = set(self.labelmap.colors().values())
            color = next(
                default_color(i) for i in range(lid, lid + 10_000) if default_color(i) not in used
            )
        label = Label(lid, name, tuple(int(c) for c in color))
        self._apply(self.labelmap.with_label(label))
        return label

    def rename(self, label_id: int, name: str) -> None:
        self._apply(self.labelmap.with_label(replace(self._get(label_id), name=name)))

    def recolor(self, label_id: int, color: tuple[int, int, int]) -> None:
        self._apply(
            self.labelmap.with_label(
                replace(self._get(label_id), color=tuple(int(c) for c in color))
            )
        )

    def delete(self, label_id: int) -> None:
        """Remove a label; its voxels become background."""
        if label_id == 0:
            raise MedsegError("the background label cannot be deleted")
        self._get(label_id)
        self._apply(LabelMap(lab for lab in self.labelmap if lab.id != label_id), {label_id: 0})

    def merge(self, source_id: int, target_id: int) -> None:
        """Merge label ``source_id`` into ``target_id``: its voxels take the target's id."""
        if source_id == target_id:
            raise MedsegError("choose two different labels to merge")
        self._get(source_id), self._get(target_id)
        if source_id == 0:
            raise MedsegError("the background cannot be merged into another label")
        self._apply(
            LabelMap(lab for lab in self.labelmap if lab.id != source_id), {source_id: target_id}
        )

    def renumber(self, mapping: Mapping[int, int] | None = None) -> None:
        """Give labels new ids (default: 1..N in the current order), rewriting the voxels."""
        if mapping is None:
            mapping = {lab.id: i + 1 for i, lab in enumerate(self.labelmap.foreground())}
        mapping = {int(a): int(b) for a, b in mapping.items() if int(a) != int(b)}
        for old in mapping:
            self._get(old)
        if 0 in mapping or 0 in mapping.values():
            raise MedsegError("the background keeps id 0")
        new_ids = [mapping.get(i, i) for i in self.labelmap.ids]
        if len(set(new_ids)) != len(new_ids):
            raise MedsegError("renumbering would give two labels the same id")
        if any(i < 0 for i in new_ids):
            raise MedsegError("label ids must be positive")
        labels = sorted(
            (replace(lab, id=mapping.get(lab.id, lab.id)) for lab in self.labelmap),
            key=lambda lab: lab.id,
        )
        self._apply(LabelMap(labels), mapping)

    def undo(self) -> None:
        if not self._undo:
            raise MedsegError("nothing to undo")
        step = self._undo.pop()
        for mask, (idx, old) in zip(
            self.masks, step.voxels, strict=False
        ):  # no voxels: label-only step
            mask[np.unravel_index(idx, mask.shape)] = old
        self.labelmap = step.labelmap
        self._notify(bool(step.voxels) and any(len(i) for i, _ in step.voxels))

    # -- internals --------------------------------------------------------------------------
    def _get(self, label_id: int) -> Label:
        if label_id not in self.labelmap:
            raise MedsegError(f"no label with id {label_id}")
        return self.labelmap[label_id]

    def _apply(self, labelmap: LabelMap, remap: Mapping[int, int] | None = None) -> None:
        problems = cvat_problems(labelmap)
        if problems:
            raise MedsegError("; ".join(problems))
        step = _Step(self.labelmap)
        changed = False
        if remap:
            hi = max(remap.values())
            for mask in self.masks:
                if hi > np.iinfo(mask.dtype).max:
                    raise MedsegError(f"label id {hi} does not fit the mask's {mask.dtype} voxels")
            for mask in self.masks:
                step.voxels.append(_rewrite(mask, remap))
                changed = changed or bool(len(step.voxels[-1][0]))
        self._undo.append(step)
        self.labelmap = labelmap
        self._notify(changed)

    def _notify(self, voxels_changed: bool) -> None:
        if self.on_change is not None:
            self.on_change(self, voxels_changed)


def _rewrite(mask: np.ndarray, remap: Mapping[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``remap`` to ``mask`` in place (views too); return (flat indices, old values)."""
    keys = np.fromiter(remap, dtype=np.int64)
    idx = np.flatnonzero(np.isin(mask, keys))
    where = np.unravel_index(idx, mask.shape)
    old = mask[where]
    new = old.copy()
    for k, v in remap.items():
        new[old == k] = v
    mask[where] = new
    return idx, old
