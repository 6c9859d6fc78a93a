"""Undo and redo for SAM edits: one step per user action, exact even when it changed nothing."""

from __future__ import annotations

from dataclasses import dataclass, field

from napari_medseg.engines.sam_edit import Edit


@dataclass
class Step:
    """What one action (accept, propagate, segment boxes) wrote into ``target.data``."""

    target: object  # anything with a writable ``data`` label array (a napari Labels layer)
    what: str
    edits: list[Edit] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(e.size for e in self.edits)


class UndoStack:
    """Steps done and undone; a new step clears what could be redone."""

    def __init__(self) -> None:
        self.done: list[Step] = []
        self.undone: list[Step] = []

    def push(self, target, what: str, edits: list[Edit]) -> Step:
        step = Step(target, what, list(edits))
        self.done.append(step)
        self.undone.clear()
        return step

    def undo(self) -> Step | None:
        """Restore the voxels of the last step; None when there is nothing to undo."""
        if not self.done:
            return None
        step = self.done.pop()
        for edit in reversed(step.edits):
            edit.undo(step.target.data)
        self.undone.append(step)
        return step

    def redo(self) -> Step | None:
        """Write the last undone step again; None when there is nothing to redo."""
        if not self.undone:
            return None
        step = self.undone.pop()
        for edit in step.edits:
            edit.redo(step.target.data)
        self.done.append(step)
        return step
