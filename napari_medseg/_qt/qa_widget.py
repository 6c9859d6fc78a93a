"""Mask QA panel: runs :func:`napari_medseg.review.qa.run_qa` off the GUI thread, lists the
flagged cases and opens one at its offending slice, with the checked mask on top.

The same run from the command line: ``napari-medseg qa PATH --masks DIR --out REPORTDIR``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from qtpy.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
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
from napari_medseg.core.atomic import check_output_dir
from napari_medseg.core.errors import MedsegError
from napari_medseg.io.masks import case_mask_from_folder
from napari_medseg.layers import labels_layer
from napari_medseg.review.qa import CaseQA, QAOptions, run_qa
from napari_medseg.review.report import run_info, write_report
from napari_medseg.viewer_state import state_for

if TYPE_CHECKING:
    import napari

COLUMNS = ("case", "flags", "slice", "dice")


def load_with_mask(state, masks: Path, case_id: str):
    """The case's layers plus the checked mask ``<masks>/<case id>.nii.gz`` (runs in a worker)."""
    case, layers = state.load(case_id)
    try:
        vol = case_mask_from_folder(masks, case)
    except MedsegError:
        vol = None  # the QA flagged it (wrong grid, unreadable): show the case without it
    if vol is not None:
        vol.name = f"QA: {masks.name}"
        ds = state.dataset
        layers.append(labels_layer(vol, case, str(ds.root), ds.format))
    return case, layers


class QAWidget(QWidget):
    """Dock widget: QA of a folder of masks against the dataset (or a reference folder)."""

    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.state = state_for(napari_viewer)
        self.results: list[CaseQA] = []

        self.masks_edit = QLineEdit(placeholderText="folder of <case id>.nii.gz masks")
        self.reference_edit = QLineEdit(
            placeholderText="optional: reference masks (default: the dataset's)"
        )
        self.report_edit = QLineEdit(placeholderText="optional: write report.csv/.html here")
        form = QFormLayout()
        for label, edit in (
            ("Masks", self.masks_edit),
            ("Reference", self.reference_edit),
            ("Report folder", self.report_edit),
        ):
            row = QHBoxLayout()
            row.addWidget(edit)
            browse = QPushButton("…")
            browse.clicked.connect(lambda _=False, e=edit: self._browse(e))
            row.addWidget(browse)
            form.addRow(label, row)
        self.min_dice = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.05, decimals=2)
        self.min_dice.setValue(QAOptions.min_dice)
        self.min_dice.setToolTip("flag labels whose Dice against the reference is lower")
        self.max_volume_diff = QDoubleSpinBox(minimum=0.0, maximum=100.0, singleStep=0.05)
        self.max_volume_diff.setValue(QAOptions.max_volume_diff)
        self.max_volume_diff.setToolTip(
            "flag labels whose volume differs from the reference's by more than this fraction"
        )
        form.addRow("Min Dice", self.min_dice)
        form.addRow("Max volume diff", self.max_volume_diff)
        self.run_button = QPushButton("Run QA")
        self.run_button.clicked.connect(lambda: self.run())
        self.bar = QProgressBar()
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSelectionBehavior(QTableWidget.SelectRows)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.cellClicked.connect(lambda row, _c: self.open_row(row))
        self.info = QLabel("Open a dataset, choose a masks folder and run.")
        self.info.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.run_button)
        layout.addWidget(self.bar)
        layout.addWidget(self.table)
        layout.addWidget(self.info)
        self.jobs = Jobs(self, bar=self.bar)

    def _browse(self, edit: QLineEdit) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose a folder")
        if path:
            edit.setText(path)

    def run(self):
        """Start the QA in a worker thread; the table fills when it returns."""
        for layer in self.viewer.layers:  # a dataset opened with File > Open
            self.state.adopt_layer(layer)
        dataset = self.state.dataset
        masks = self.masks_edit.text().strip()
        reference = self.reference_edit.text().strip() or None
        report = self.report_edit.text().strip() or None
        try:
            if dataset is None:
                raise MedsegError("open a dataset first (File > Open or the case browser)")
            if not masks or not Path(masks).is_dir():
                raise MedsegError("no such masks folder", masks or None)
            if report:
                check_output_dir(report, dataset.root)
        except MedsegError as exc:
            report_error(exc)
            return None

        options = QAOptions(
            min_dice=self.min_dice.value(), max_volume_diff=self.max_volume_diff.value()
        )

        def job():
            results = run_qa(
                dataset, masks, reference=reference, options=options, progress=self.jobs.progress
            )
            if report:
                write_report(results, report, run=run_info(dataset.root, masks, reference, options))
            return results

        self.run_button.setEnabled(False)
        self.bar.setValue(0)
        self.info.setText("Running QA…")
        return self.jobs.start(
            job,
            returned=self._done,
            failed=self._failed,
            finished=lambda: self.run_button.setEnabled(True),
        )

    def _done(self, results: list[CaseQA]) -> None:
        self.results = [r for r in results if r.flags]
        self.table.setRowCount(len(self.results))
        for row, res in enumerate(self.results):
            dice = min((m.dice for m in res.metrics), default=None)
            cells = (
                res.case,
                ", ".join(f.name for f in res.flags_for(None)),
                "" if res.first_slice is None else str(res.first_slice),
                "" if dice is None else f"{dice:.3f}",
            )
            for col, text in enumerate(cells):
                self.table.setItem(row, col, QTableWidgetItem(text))
        self.info.setText(
            f"{len(results)} cases checked, {len(self.results)} flagged. Click one to open it."
        )

    def open_row(self, row: int):
        """Open a flagged case at its offending slice (in a worker)."""
        if not 0 <= row < len(self.results):
            return None
        res = self.results[row]
        masks = Path(self.masks_edit.text().strip())
        self.info.setText(f"Opening {res.case}…")
        return self.jobs.start(
            load_with_mask,
            self.state,
            masks,
            res.case,
            returned=lambda loaded: self._opened(loaded, res),
            failed=self._failed,
        )

    def _opened(self, loaded, res: CaseQA) -> None:
        self.state.show(loaded, res.first_slice)
        where = "" if res.first_slice is None else f" at slice {res.first_slice}"
        flags = ", ".join(
            f"{f.name} ({f.detail})" if f.detail else f.name for f in res.flags_for(None)
        )
        self.info.setText(f"{res.case}{where}: {flags}")

    def _failed(self, exc) -> None:
        self.bar.setValue(0)
        self.info.setText(str(exc))
