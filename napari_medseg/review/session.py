"""A review session: the statuses, notes, locks and mask versions of a dataset's cases.

Everything lives in the output folder (the source data is never written)::

    <out>/session.json                     statuses, reviewers, notes, timestamps, history
    <out>/<case id>.nii.gz                 the current corrected mask (THE mask convention)
    <out>/history/<case id>/v<N>_<who>.nii.gz   every version: v0 = pre-segmentation
    <out>/autosave/<case id>.nii.gz        unsaved work, restored on reopen, removed on save
    <out>/audit.log                        who did what to which case, when (append-only)
    <out>/locks/<case id>.lock             the session that has the case open

Several sessions (reviewers) may share an output folder: ``session.json`` is re-read and
updated under a file lock for each change, and a case open in one session is locked for
the others.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from napari_medseg.core.atomic import make_output_dir, write_text
from napari_medseg.core.errors import MedsegError
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.labelmap_io import read_labelmap, write_labelmap
from napari_medseg.core.labelmap_store import load_edits, with_edits
from napari_medseg.core.model import Case, Dataset
from napari_medseg.core.safe_names import output_path, safe_name
from napari_medseg.core.validate import Lenient, read_json, validated
from napari_medseg.io.masks import mask_path, read_mask, write_mask
from napari_medseg.review.audit import AuditLog, now_iso
from napari_medseg.review.locks import DEFAULT_STALE_AFTER, CaseLock, acquire, holder
from napari_medseg.review.metrics import LabelMetrics, compare

TODO, IN_PROGRESS, ACCEPTED, REJECTED, NEEDS_FIX = (
    "todo",
    "in_progress",
    "accepted",
    "rejected",
    "needs_fix",
)
STATUSES = (TODO, IN_PROGRESS, ACCEPTED, REJECTED, NEEDS_FIX)
FINAL = (ACCEPTED, REJECTED, NEEDS_FIX)
# A reviewed case must be reopened (in progress) before it gets another verdict.


class Version(Lenient):
    """One saved mask of a case (a file under ``history/``)."""

    version: int
    file: str
    by: str | None = None
    kind: str | None = None


class CaseState(Lenient):
    status: Literal[TODO, IN_PROGRESS, ACCEPTED, REJECTED, NEEDS_FIX] = TODO
    reviewer: str | None = None
    notes: str = ""
    history: list[Version] = []


class SessionState(Lenient):
    """What ``session.json`` must hold for a session to trust it."""

    format: str = ""
    initial: str | None = None
    initial_by: str | None = None
    cases: dict[str, CaseState] = {}


TRANSITIONS = {
    TODO: {IN_PROGRESS, *FINAL},
    IN_PROGRESS: {TODO, *FINAL},
    **{s: {IN_PROGRESS} for s in FINAL},
}


class TransitionError(MedsegError):
    """A status change the workflow does not allow."""


@dataclass
class OpenedCase:
    """A case opened for review: its data, the mask to edit and where that mask came from.

    ``origin`` is ``"autosave"`` (unsaved work restored), ``"saved"`` (the last saved
    correction), ``"initial"`` (the pre-segmentation) or ``"empty"``.
    """

    case: Case
    mask: np.ndarray
    labelmap: LabelMap
    origin: str

    @property
    def recovered(self) -> bool:
        return self.origin == "autosave"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "anonymous"


def _new_case() -> dict:
    return {
        "status": TODO,
        "reviewer": None,
        "notes": "",
        "opened": None,
        "updated": None,
        "history": [],
    }


class ReviewSession:
    """Review state of ``dataset`` kept in ``out`` for ``reviewer``.

    Parameters
    ----------
    dataset
        The source dataset (read only).
    out
        The session folder; refused when inside the source.
    reviewer
        Name recorded with every action.
    initial, initial_by
        Folder of pre-segmentations (``<case id>.nii.gz``) and who made them (engine name);
        default: the dataset's own masks, by ``"dataset"``.
    stale_after
        Seconds without heartbeat after which another session's case lock expires.
    """

    def __init__(
        self,
        dataset: Dataset,
        out: str | Path,
        reviewer: str,
        initial: str | Path | None = None,
        initial_by: str | None = None,
        stale_after: float = DEFAULT_STALE_AFTER,
    ):
        self.dataset = dataset
        self.out = make_output_dir(out, dataset.root)
        self.reviewer = reviewer.strip() or "anonymous"
        self.stale_after = stale_after
        self.audit = AuditLog(self.out / "audit.log")
        self._locks: dict[str, CaseLock] = {}
        self._cases: dict[str, Case] = {}
        with self._mutex():
            state = self._load()
            if state is None:
                state = {
                    "dataset": str(Path(dataset.root).resolve()),
                    "format": dataset.format,
                    "created": now_iso(),
                    "initial": str(initial) if initial else None,
                    "initial_by": initial_by,
                    "cases": {},
                }
                self._write(state)
            elif state.get("format") != dataset.format:
                raise MedsegError(
                    f"this session reviews a {state.get('format')} dataset, not {dataset.format}",
                    self.out / "session.json",
                )
        self.initial = (
            Path(initial) if initial else (Path(state["initial"]) if state.get("initial") else None)
        )
        self.initial_by = (
            initial_by
            or state.get("initial_by")
            or ("presegmentation" if self.initial else "dataset")
        )

    @classmethod
    def open(cls, path: str | Path, out: str | Path, reviewer: str, **kw) -> ReviewSession:
        from napari_medseg.io.detect import open_dataset

        return cls(open_dataset(path), out, reviewer, **kw)

    # -- state file ------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.out / "session.json"

    @contextlib.contextmanager
    def _mutex(self) -> Iterator[None]:
        """Serialise read-modify-write of session.json between sessions (released on crash)."""
        with open(self.out / ".session.mutex", "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _load(self) -> dict | None:
        """session.json, checked against :class:`SessionState` (one line naming the field)."""
        if not self.state_path.exists():
            return None
        data = read_json(self.state_path)
        validated(SessionState, data, self.state_path)
        return data

    def _write(self, state: dict) -> None:
        write_text(self.state_path, json.dumps(state, indent=1))

    def _update(self, case_id: str, change) -> dict:
        """Apply ``change(entry)`` to one case's entry, on the freshest state, atomically."""
        with self._mutex():
            state = self._load() or {"cases": {}}
            entry = state["cases"].setdefault(case_id, _new_case())
            change(entry)
            entry["updated"] = now_iso()
            self._write(state)
            return entry

    # -- queries ---------------------------------------------------------------------------
    def case_ids(self) -> list[str]:
        return self.dataset.case_ids()

    def entry(self, case_id: str) -> dict:
        """Status, reviewer, notes, timestamps and history of a case."""
        self._check_id(case_id)
        return ((self._load() or {}).get("cases") or {}).get(case_id) or _new_case()

    def statuses(self) -> dict[str, str]:
        cases = (self._load() or {}).get("cases") or {}
        return {cid: (cases.get(cid) or {}).get("status", TODO) for cid in self.case_ids()}

    def queue(self, statuses=None) -> list[str]:
        """Case ids in dataset order, only those with one of ``statuses`` when given."""
        return [cid for cid, s in self.statuses().items() if not statuses or s in statuses]

    def neighbour(self, case_id: str | None, step: int, statuses=None) -> str | None:
        """The next (``step=1``) or previous (``-1``) case of the filtered queue, or None."""
        ids = self.queue(statuses)
        if not ids:
            return None
        all_ids = self.case_ids()
        if case_id not in all_ids:
            return ids[0] if step > 0 else ids[-1]
        pos = all_ids.index(case_id)
        after = [c for c in ids if (all_ids.index(c) - pos) * step > 0]
        if not after:
            return None
        return after[0] if step > 0 else after[-1]

    def locked_by(self, case_id: str) -> dict | None:
        """The other session that has the case open, or None."""
        if case_id in self._locks:
            return None
        return holder(self.out / "locks", case_id, self.stale_after)

    def has_autosave(self, case_id: str) -> bool:
        return self.autosave_path(case_id).exists()

    def autosave_path(self, case_id: str) -> Path:
        return mask_path(self.out / "autosave", case_id)

    def mask_path(self, case_id: str) -> Path:
        return mask_path(self.out, case_id)

    def _check_id(self, case_id: str) -> None:
        if case_id not in self.case_ids():
            raise MedsegError(f"no case {case_id!r} in this dataset", self.dataset.root)

    # -- locking ---------------------------------------------------------------------------
    def _lock(self, case_id: str) -> CaseLock:
        lock = self._locks.get(case_id)
        if lock is None:
            lock = acquire(self.out / "locks", case_id, self.reviewer, self.stale_after)
            self._locks[case_id] = lock
        return lock

    @contextlib.contextmanager
    def _holding(self, case_id: str) -> Iterator[None]:
        """Hold the case's lock for one action (kept if the case was already open)."""
        was_open = case_id in self._locks
        lock = self._lock(case_id)
        if was_open:
            lock.heartbeat()  # raises if another session took the lock over meanwhile
        try:
            yield
        finally:
            if not was_open:
                self._release(case_id)

    def _release(self, case_id: str) -> None:
        lock = self._locks.pop(case_id, None)
        if lock is not None:
            lock.release()

    def heartbeat(self) -> None:
        """Keep this session's case locks fresh (call more often than ``stale_after``)."""
        for lock in self._locks.values():
            lock.heartbeat()

    # -- cases -----------------------------------------------------------------------------
    def load_case(self, case_id: str) -> Case:
        self._check_id(case_id)
        if case_id not in self._cases:
            self._cases[case_id] = self.dataset.load_case(case_id)
        return self._cases[case_id]

    @property
    def labelmap_path(self) -> Path:
        """The labelmap edited during the session, saved with the curated masks."""
        return self.out / "labelmap.json"

    def labelmap(self, case: Case) -> LabelMap:
        """The session's labelmap, under the dataset's edits (the latest word on names)."""
        if self.labelmap_path.is_file():
            own = read_labelmap(self.labelmap_path, case.labelmap)
        else:
            own = (
                case.labelmap
                or getattr(self.dataset, "labelmap", None)
                or LabelMap.from_names({1: "foreground"})
            )
        return with_edits(own, load_edits(self.dataset.root))

    def _initial_mask(self, case: Case) -> np.ndarray | None:
        ref, lm = case.reference_image(), self.labelmap(case)
        if self.initial is not None:
            path = mask_path(self.initial, case.id)
            return np.asarray(read_mask(path, ref, lm).array) if path.exists() else None
        return np.asarray(case.masks[0].array) if case.masks else None

    def _version(
        self, case_id: str, mask: np.ndarray, who: str, kind: str, engine: str | None = None
    ) -> dict:
        """Write the next history version of a case and return its record."""
        case = self.load_case(case_id)
        n = len(self.entry(case_id)["history"])
        path = output_path(self.out, "history", safe_name(case_id), f"v{n}_{_safe(who)}.nii.gz")
        write_mask(case.reference_image(), mask, path)
        return {
            "version": n,
            "file": path.relative_to(self.out).as_posix(),
            "by": who,
            "kind": kind,
            "engine": engine,
            "time": now_iso(),
        }

    def _record_initial(self, case: Case) -> np.ndarray | None:
        """The pre-segmentation of a case, kept as version 0 the first time the case is touched."""
        initial = self._initial_mask(case)
        if initial is not None and not self.entry(case.id)["history"]:
            record = self._version(case.id, initial, self.initial_by, "initial", self.initial_by)
            self._update(case.id, lambda e: e["history"].append(record))
        return initial

    def open_case(self, case_id: str) -> OpenedCase:
        """Lock a case and return the mask to edit: unsaved work first, then the last save,
        then the pre-segmentation (recorded as version 0 on first open)."""
        case = self.load_case(case_id)
        self._lock(case_id)
        try:
            lm, ref = self.labelmap(case), case.reference_image()
            initial = self._record_initial(case)
            if self.has_autosave(case_id):
                mask, origin = read_mask(self.autosave_path(case_id), ref, lm).array, "autosave"
            elif self.mask_path(case_id).exists():
                mask, origin = read_mask(self.mask_path(case_id), ref, lm).array, "saved"
            else:
                shape = ref.shape[: ref.spatial_ndim]
                mask, origin = (
                    (initial, "initial")
                    if initial is not None
                    else (np.zeros(shape, np.uint8), "empty")
                )

            def opened(e):
                e["opened"] = now_iso()
                if e["status"] == TODO:
                    e["status"], e["reviewer"] = IN_PROGRESS, self.reviewer

            self._update(case_id, opened)
        except BaseException:
            self._release(case_id)
            raise
        self.audit.append(self.reviewer, "open", case_id, mask=origin)
        if origin == "autosave":
            self.audit.append(self.reviewer, "recover_autosave", case_id)
        return OpenedCase(case, np.array(mask), lm, origin)

    def autosave(self, case_id: str, mask: np.ndarray) -> Path:
        """Keep unsaved edits of an open case (atomic; restored by :meth:`open_case`)."""
        if case_id not in self._locks:
            raise MedsegError(f"case {case_id!r} is not open in this session", self.out)
        case = self.load_case(case_id)
        return write_mask(case.reference_image(), np.asarray(mask), self.autosave_path(case_id))

    def save(
        self,
        case_id: str,
        mask: np.ndarray,
        status: str | None = None,
        notes: str | None = None,
        engine: str | None = None,
        labelmap: LabelMap | None = None,
    ) -> dict:
        """Save a correction as the current mask and a new version, optionally with a verdict.

        ``labelmap`` (names, colours, ids as edited) is saved as ``<out>/labelmap.json``.
        """
        with self._holding(case_id):
            if status is not None:
                self._check_transition(case_id, status)
            case = self.load_case(case_id)
            self._record_initial(case)
            record = self._version(case_id, mask, self.reviewer, "correction", engine)
            write_mask(case.reference_image(), np.asarray(mask), self.mask_path(case_id))
            if labelmap is not None:
                write_labelmap(labelmap, self.labelmap_path)
            self.autosave_path(case_id).unlink(missing_ok=True)

            def saved(e):
                e["history"].append(record)
                e["reviewer"] = self.reviewer
                if status is not None:
                    e["status"] = status
                if notes is not None:
                    e["notes"] = notes

            entry = self._update(case_id, saved)
        self.audit.append(
            self.reviewer,
            "save",
            case_id,
            version=record["version"],
            status=status,
            **({"notes": notes} if notes is not None else {}),
        )
        return entry

    def _check_transition(self, case_id: str, status: str) -> None:
        if status not in STATUSES:
            raise TransitionError(f"unknown status {status!r} (one of {', '.join(STATUSES)})")
        current = self.entry(case_id)["status"]
        if status != current and status not in TRANSITIONS[current]:
            raise TransitionError(
                f"case {case_id!r} is {current}: it cannot become {status}"
                + (" (reopen it first)" if current in FINAL else "")
            )

    def set_status(self, case_id: str, status: str, notes: str | None = None) -> dict:
        """Change a case's status (the mask is left as it is)."""
        self._check_id(case_id)
        with self._holding(case_id):
            self._check_transition(case_id, status)
            before = self.entry(case_id)["status"]

            def changed(e):
                e["status"], e["reviewer"] = status, self.reviewer
                if notes is not None:
                    e["notes"] = notes

            entry = self._update(case_id, changed)
        self.audit.append(
            self.reviewer,
            "set_status",
            case_id,
            before=before,
            status=status,
            **({"notes": notes} if notes is not None else {}),
        )
        return entry

    def compare_versions(self, case_id: str, a: int = 0, b: int = -1) -> list[LabelMetrics]:
        """Per-label metrics of version ``b`` against version ``a`` of a case.

        The default compares the latest version with the first (the pre-segmentation when
        there was one): how much the reviewer corrected.
        """
        history = self.entry(case_id)["history"]
        try:
            va, vb = history[a], history[b]
        except IndexError:
            raise MedsegError(
                f"case {case_id!r} has {len(history)} versions; no version {a} and {b}"
            ) from None
        case = self.load_case(case_id)
        ref, lm = case.reference_image(), self.labelmap(case)
        mask_a = read_mask(output_path(self.out, *va["file"].split("/")), ref, lm).array
        mask_b = read_mask(output_path(self.out, *vb["file"].split("/")), ref, lm).array
        return compare(mask_b, mask_a, ref.spacing[: ref.spatial_ndim])

    def close_case(self, case_id: str) -> None:
        """Release a case (its autosave, if any, stays for the next open)."""
        if case_id in self._locks:
            self._release(case_id)
            self._cases.pop(case_id, None)
            self.audit.append(self.reviewer, "close", case_id)

    def close(self) -> None:
        for case_id in list(self._locks):
            self.close_case(case_id)
