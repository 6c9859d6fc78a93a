"""PACS dock widget: search a DICOMweb server, open a study into a local cache, off the GUI thread.

The same calls as ``napari-medseg pacs search`` / ``pacs open``. The password and token stay in
this panel's fields and the HTTP session: they are never shown in a message nor saved.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from qtpy.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_medseg._qt._jobs import Jobs
from napari_medseg._qt._util import report_error
from napari_medseg.core.errors import MedsegError
from napari_medseg.pacs.client import Auth, Server
from napari_medseg.viewer_state import state_for

if TYPE_CHECKING:
    import napari

COLUMNS = ("patient", "date", "modalities", "instances", "description", "study UID")
DEFAULT_CACHE = Path.home() / ".cache" / "napari-medseg" / "pacs"


class PacsWidget(QWidget):
    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.studies: list[dict] = []
        self.worker = None
        self.url_edit = QLineEdit(placeholderText="http://host:8042/dicom-web")
        self.user_edit = QLineEdit(placeholderText="user (basic auth)")
        self.password_edit = QLineEdit(placeholderText="password")
        self.password_edit.setEchoMode(QLineEdit.Password)
        self.token_edit = QLineEdit(placeholderText="bearer token (instead of user/password)")
        self.token_edit.setEchoMode(QLineEdit.Password)
        self.patient_edit = QLineEdit(placeholderText="PatientID")
        self.modality_edit = QLineEdit(placeholderText="CT, MR, PT…")
        self.date_edit = QLineEdit(placeholderText="YYYYMMDD or YYYYMMDD-YYYYMMDD")
        self.accession_edit = QLineEdit(placeholderText="AccessionNumber")
        self.cache_edit = QLineEdit(str(DEFAULT_CACHE))
        self.search_button = QPushButton("Search")
        self.search_button.clicked.connect(lambda: self.search())
        self.open_button = QPushButton("Open selected study")
        self.open_button.clicked.connect(lambda: self.open_study())
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.setMinimumHeight(160)
        self.table.doubleClicked.connect(lambda _i: self.open_study())
        self.progress = QProgressBar()
        self.status = QLabel("Enter the server's DICOMweb URL, then search.")
        self.status.setWordWrap(True)
        self.jobs = Jobs(self)
        self.jobs.progressed.connect(self._progress)

        form = QFormLayout()
        form.addRow("Server", self.url_edit)
        form.addRow("User", self.user_edit)
        form.addRow("Password", self.password_edit)
        form.addRow("Token", self.token_edit)
        form.addRow("Patient", self.patient_edit)
        form.addRow("Modality", self.modality_edit)
        form.addRow("Study date", self.date_edit)
        form.addRow("Accession", self.accession_edit)
        form.addRow("Cache folder", self.cache_edit)
        buttons = QHBoxLayout()
        buttons.addWidget(self.search_button)
        buttons.addWidget(self.open_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)

    def server(self) -> Server:
        url = self.url_edit.text().strip()
        if not url:
            raise MedsegError("enter the server's DICOMweb URL")
        auth = Auth(
            self.user_edit.text().strip() or None,
            self.password_edit.text(),
            self.token_edit.text().strip() or None,
        )
        return Server.parse(url, auth)

    def _busy(self, busy: bool) -> None:
        self.search_button.setEnabled(not busy)
        self.open_button.setEnabled(not busy)

    def _progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)
        self.status.setText(f"retrieved {done}/{total} instances…")

    def _failed(self, exc: BaseException) -> None:
        self._busy(False)
        self.worker = None
        self.status.setText(f"failed: {exc}")

    def search(self):
        """Search in a worker; returns it (tests wait on it)."""
        from napari_medseg.pacs.search import search_studies

        try:
            server = self.server()
        except MedsegError as exc:
            report_error(exc)
            return None
        fields = [e.text().strip() or None for e in (self.patient_edit, self.modality_edit,
                                                     self.date_edit, self.accession_edit)]  # fmt: skip
        self._busy(True)
        self.status.setText(f"searching {server.url}…")
        self.worker = self.jobs.start(
            search_studies, server, *fields, returned=self._found, failed=self._failed
        )
        return self.worker

    def _found(self, studies: list[dict]) -> None:
        state_for(self.viewer).pacs_server = self.server()  # for the review panel's Accept
        self._busy(False)
        self.worker = None
        self.studies = studies
        self.table.setRowCount(len(studies))
        for row, s in enumerate(studies):
            values = (s["patient_id"], s["study_date"], "/".join(s["modalities"] or []),
                      s["instances"], s["description"], s["study_uid"])  # fmt: skip
            for col, value in enumerate(values):
                self.table.setItem(row, col, QTableWidgetItem("" if value is None else str(value)))
        if studies:
            self.table.selectRow(0)
        self.status.setText(f"{len(studies)} studies found.")

    def open_study(self, row: int | None = None):
        """Retrieve the selected study into the cache folder (worker), then open it."""
        from napari_medseg.pacs.retrieve import retrieve_study

        try:
            if row is None:
                rows = self.table.selectionModel().selectedRows()
                if not rows:
                    raise MedsegError("search, then select a study to open")
                row = rows[0].row()
            server, study = self.server(), self.studies[row]["study_uid"]
            cache = Path(self.cache_edit.text().strip() or DEFAULT_CACHE).expanduser()
        except MedsegError as exc:
            report_error(exc)
            return None

        def run():
            from napari_medseg.io.detect import open_dataset

            res = retrieve_study(server, study, cache, progress=self.jobs.progress)
            return open_dataset(res.folder)

        self._busy(True)
        self.status.setText(f"retrieving study {study}…")
        self.worker = self.jobs.start(run, returned=self._retrieved, failed=self._failed)
        return self.worker

    def _retrieved(self, dataset) -> None:
        """Show the study's first case (its voxels are read in a second worker)."""
        state = state_for(self.viewer)
        state.set_dataset(dataset)
        ids = dataset.case_ids()
        if not ids:
            exc = MedsegError("the study holds no image series", dataset.root)
            self._failed(exc)
            report_error(exc)
            return
        self.status.setText(f"opening {ids[0]}…")
        self.worker = self.jobs.start(
            state.load, ids[0], returned=self._loaded, failed=self._failed
        )

    def _loaded(self, loaded) -> None:
        state_for(self.viewer).show(loaded)
        self._busy(False)
        self.worker = None
        self.status.setText(f"opened {loaded[0].id} ({len(self.studies)} studies listed).")
