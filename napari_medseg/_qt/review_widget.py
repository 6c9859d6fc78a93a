"""Review session panel: the case queue, verdicts with notes, autosave and case locks.

All state lives in :class:`napari_medseg.review.session.ReviewSession` (also reachable from
``napari-medseg review``); this panel only wires it to the viewer. Page Down / Page Up move
to the next / previous case of the filtered queue (``[``/``]`` are napari's brush size).
"""

from __future__ import annotations

import dataclasses
import getpass
import threading
from typing import TYPE_CHECKING

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_medseg._qt._jobs import Jobs
from napari_medseg._qt._util import report_error
from napari_medseg.core.errors import MedsegError
from napari_medseg.core.model import Volume
from napari_medseg.layers import LayerInfo, case_layers
from napari_medseg.review.session import (
    ACCEPTED,
    FINAL,
    IN_PROGRESS,
    NEEDS_FIX,
    REJECTED,
    STATUSES,
    ReviewSession,
)
from napari_medseg.viewer_state import state_for

if TYPE_CHECKING:
    import napari

NEXT_KEY, PREVIOUS_KEY = "PageDown", "PageUp"
MASK_NAME = "review mask"


def load_for_review(session: ReviewSession, case_id: str):
    """Open (lock) a case and build its layers with the session's mask (runs in a worker)."""
    opened = session.open_case(case_id)
    case = opened.case
    ref = case.reference_image()
    mask = Volume.from_array(
        MASK_NAME, opened.mask, geometry=ref.geometry, labelmap=opened.labelmap, source=ref.source
    )
    shown = dataclasses.replace(case, masks=[mask])
    ds = session.dataset
    layers = case_layers(shown, str(ds.root), ds.format)
    for _data, kwargs, _kind in layers:
        info = LayerInfo.from_metadata(kwargs["metadata"])
        if info.volume is mask:  # work: stays when the case's layers are replaced
            kwargs["metadata"] = dataclasses.replace(info, derived=True).metadata()
    return opened, (shown, layers)


class ReviewWidget(QWidget):
    """Dock widget driving a :class:`ReviewSession` on the viewer's open dataset."""

    autosave_ms = 20_000

    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.state = state_for(napari_viewer)
        self.session: ReviewSession | None = None
        self.current: str | None = None
        self.mask_layer = None
        self.dirty = False
        self.jobs = Jobs(self)
        self._write_lock = threading.Lock()  # orders autosaves, saves and case changes
        self._saves = 0
        self._just_saved = ""  # "<case> saved as <status>; now showing " after a verdict

        self.out_edit = QLineEdit(placeholderText="session folder (outside the dataset)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.reviewer_edit = QLineEdit(_user())
        self.start_button = QPushButton("Start / resume session")
        self.start_button.clicked.connect(
            lambda: self.start(self.out_edit.text(), self.reviewer_edit.text())
        )
        self.filter_combo = QComboBox()
        self.filter_combo.addItems(["all", *STATUSES])
        self.filter_combo.currentIndexChanged.connect(lambda _i: self.refresh())
        self.queue = QTableWidget(0, 3)
        self.queue.setHorizontalHeaderLabels(["case", "status", "reviewer"])
        self.queue.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.queue.horizontalHeader().setStretchLastSection(True)
        self.queue.setSelectionBehavior(QTableWidget.SelectRows)
        self.queue.setEditTriggers(QTableWidget.NoEditTriggers)
        self.queue.verticalHeader().setVisible(False)
        self.queue.cellDoubleClicked.connect(
            lambda row, _c: self.open_case(self.queue.item(row, 0).text())
        )
        self.notes_edit = QLineEdit(placeholderText="notes for this case")
        self.info = QLabel("Open a dataset, choose a session folder and start.")
        self.info.setWordWrap(True)

        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit)
        out_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Session folder", out_row)
        form.addRow("Reviewer", self.reviewer_edit)
        form.addRow("Show", self.filter_combo)
        nav = QHBoxLayout()
        for text, slot in (
            ("◀ Previous (PgUp)", self.previous_case),
            ("Next (PgDn) ▶", self.next_case),
        ):
            button = QPushButton(text)
            button.clicked.connect(slot)
            nav.addWidget(button)
        verdicts = QHBoxLayout()
        self.verdict_buttons = {}
        for status, text in ((ACCEPTED, "Accept"), (NEEDS_FIX, "Needs fix"), (REJECTED, "Reject")):
            button = QPushButton(text)
            button.clicked.connect(lambda _=False, s=status: self.verdict(s))
            verdicts.addWidget(button)
            self.verdict_buttons[status] = button
        self.send_box = QCheckBox("Accept also sends the mask as DICOM SEG to the PACS")
        self.send_box.setToolTip("the server of the PACS panel; the case must come from DICOM")
        save = QPushButton("Save correction")
        save.clicked.connect(lambda: self.verdict(None))
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.start_button)
        layout.addWidget(self.queue)
        layout.addLayout(nav)
        layout.addWidget(self.notes_edit)
        layout.addLayout(verdicts)
        layout.addWidget(self.send_box)
        layout.addWidget(save)
        layout.addWidget(self.info)

        self.timer = QTimer(self)
        self.timer.timeout.connect(self.tick)
        self.viewer.bind_key(NEXT_KEY, lambda _v: self.next_case(), overwrite=True)
        self.viewer.bind_key(PREVIOUS_KEY, lambda _v: self.previous_case(), overwrite=True)
        self.state.case_shown.connect(self._case_shown)

    # -- session ---------------------------------------------------------------------------
    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Review session folder")
        if path:
            self.out_edit.setText(path)

    def start(self, out: str, reviewer: str, **options) -> ReviewSession | None:
        """Start or resume the session in ``out`` on the viewer's dataset."""
        for layer in self.viewer.layers:  # a dataset opened with File > Open
            self.state.adopt_layer(layer)
        if self.state.dataset is None:
            report_error(MedsegError("open a dataset first (File > Open or the case browser)"))
            return None
        if not out.strip():
            report_error(MedsegError("choose a session folder"))
            return None
        self.leave_case()
        try:
            self.session = ReviewSession(self.state.dataset, out, reviewer, **options)
        except MedsegError as exc:
            report_error(exc)
            return None
        self.out_edit.setText(str(self.session.out))
        self.timer.start(self.autosave_ms)
        self.refresh()
        pending = [c for c in self.session.case_ids() if self.session.has_autosave(c)]
        self.info.setText(
            f"Session in {self.session.out}"
            + (f"; unsaved work of {', '.join(pending)} is restored when opened" if pending else "")
        )
        return self.session

    def statuses_filter(self) -> set[str] | None:
        text = self.filter_combo.currentText()
        return None if text == "all" else {text}

    def refresh(self) -> None:
        """Re-read the session (another reviewer may have changed it) and fill the queue."""
        if self.session is None:
            return
        statuses = self.session.statuses()
        self.state.set_statuses(statuses)
        ids = self.session.queue(self.statuses_filter())
        self.queue.setRowCount(len(ids))
        for row, cid in enumerate(ids):
            entry = self.session.entry(cid)
            for col, text in enumerate((cid, statuses[cid], entry["reviewer"] or "")):
                self.queue.setItem(row, col, QTableWidgetItem(text))
            if cid == self.current:
                self.queue.selectRow(row)

    # -- navigation ------------------------------------------------------------------------
    def next_case(self):
        return self._step(1)

    def previous_case(self):
        return self._step(-1)

    def _step(self, step: int):
        if self.session is None:
            return None
        target = self.session.neighbour(self.current, step, self.statuses_filter())
        if target is None:
            self.info.setText("No further case in this queue.")
            return None
        return self.open_case(target)

    def open_case(self, case_id: str):
        """Autosave and release the current case, then lock and show ``case_id`` (in a worker)."""
        if self.session is None:
            return None
        self.leave_case()
        self.info.setText(f"Opening {case_id}…")
        return self.jobs.start(
            load_for_review, self.session, case_id, returned=self._opened, failed=self._failed
        )

    def _opened(self, result) -> None:
        opened, loaded = result
        self.current = opened.case.id
        self.state.show(loaded)
        self.mask_layer = next(
            ly for ly in self.viewer.layers if LayerInfo.from_layer(ly).volume is loaded[0].masks[0]
        )
        self.mask_layer.events.paint.connect(self._edited)
        self.mask_layer.events.data.connect(self._edited)
        self.viewer.layers.selection.active = self.mask_layer
        self.dirty = opened.recovered  # restored work is still unsaved
        self.notes_edit.setText(self.session.entry(self.current)["notes"])
        done, self._just_saved = self._just_saved, ""
        self.info.setText(
            done
            + f"{self.current}: mask from {opened.origin}"
            + (" (unsaved work restored)" if opened.recovered else "")
        )
        self.refresh()

    def _edited(self, _event=None) -> None:
        self.dirty = True

    def _case_shown(self, case) -> None:
        # Another widget (the case browser) replaced our case's layers: let the case go.
        if self.current is None:
            return
        same_dataset = self.state.dataset is self.session.dataset
        if case.id != self.current or not same_dataset:
            self.leave_case()

    def leave_case(self) -> None:
        """Keep unsaved edits as an autosave and release the case's lock."""
        if self.session is None or self.current is None:
            return
        with self._write_lock:
            try:
                if self.dirty and self.mask_layer is not None:
                    self.session.autosave(self.current, self.mask_layer.data)
            except MedsegError as exc:
                report_error(exc)
            self.session.close_case(self.current)
        self.current, self.mask_layer, self.dirty = None, None, False

    # -- saving ----------------------------------------------------------------------------
    def tick(self) -> None:
        """Timer: autosave unsaved edits and keep the case lock fresh."""
        if self.session is None or self.current is None:
            return
        try:
            self.session.heartbeat()
            if self.dirty:
                self.autosave_now()
        except MedsegError as exc:
            report_error(exc)

    def autosave_now(self):
        """Write the edited mask to the session's autosave (a copy, off the GUI thread)."""
        if self.session is None or self.current is None or self.mask_layer is None:
            return None
        self.dirty = False
        data = self.mask_layer.data.copy()
        return self.jobs.start(
            self._autosave_job, self.current, data, self._saves, failed=self._failed
        )

    def _autosave_job(self, case_id: str, data, saves: int):
        # A save or a case change after this snapshot makes it stale: an autosave written
        # after the save would come back as "unsaved work" older than the saved mask.
        with self._write_lock:
            if saves == self._saves and case_id == self.current:
                self.session.autosave(case_id, data)

    def verdict(self, status: str | None):
        """Save the edited mask as a new version, with ``status`` (None: keep the status)."""
        if self.session is None or self.current is None or self.mask_layer is None:
            report_error(MedsegError("no case is open in the review session"))
            return None
        cid, mask, notes = self.current, self.mask_layer.data.copy(), self.notes_edit.text()
        info = LayerInfo.from_layer(self.mask_layer)
        labelmap = info.labelmap or info.volume.labelmap  # as edited, or as shown

        def save():
            with self._write_lock:
                self._saves += 1
                current = self.session.entry(cid)["status"]
                if status is not None and current in FINAL and status != current:
                    self.session.set_status(cid, IN_PROGRESS)  # the panel reopens it itself
                return self.session.save(cid, mask, status=status, notes=notes, labelmap=labelmap)

        case = self.state.case
        send = status == ACCEPTED and self.send_box.isChecked()

        def saved(_entry) -> None:
            self.dirty = False
            self.info.setText(f"{cid}: saved" + (f" as {status}" if status else ""))
            if send:
                self.send_seg(case, mask, labelmap)
            self.refresh()
            if status is not None and cid == self.current:
                self._just_saved = f"{cid} saved as {status}; now showing "  # say both cases
                self.next_case()

        self.info.setText(f"Saving {cid}…")
        return self.jobs.start(save, returned=saved, failed=self._failed)

    def send_seg(self, case, mask, labelmap):
        """Store the accepted mask on the PACS panel's server as DICOM SEG (in a worker)."""
        from napari_medseg.pacs.store import send_reviewed_seg

        server = self.state.pacs_server
        if server is None:
            exc = MedsegError("no PACS server: search it in the PACS panel first")
            self._failed(exc)
            return report_error(exc)

        def sent(path) -> None:
            self.info.setText(f"{case.id}: DICOM SEG sent to {server.url} ({path.name})")

        root = self.state.dataset.root if self.state.dataset is not None else None
        return self.jobs.start(
            send_reviewed_seg,
            server,
            case,
            mask,
            labelmap,
            self.session.out,
            root,
            returned=sent,
            failed=self._failed,
        )

    def _failed(self, exc) -> None:
        self.info.setText(str(exc))


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""
