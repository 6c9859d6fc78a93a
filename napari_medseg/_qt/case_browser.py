"""Case browser: lists the cases of the opened dataset and opens one on double-click or Enter."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
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
from napari_medseg.core.intensity import CT_PRESETS
from napari_medseg.viewer_state import state_for
from napari_medseg.viewing import CYCLE_KEY

if TYPE_CHECKING:
    import napari

COLUMNS = ("case", "images", "mask", "status")


def case_row(dataset, case_id: str) -> tuple[str, str, str, list[str]]:
    """(id, modalities, has-mask, problems) for one case, from headers only."""
    try:
        case = dataset.load_case(case_id)
    except MedsegError as exc:
        return case_id, f"error: {exc.problem}", "", [str(exc)]
    mods = ", ".join(dict.fromkeys(v.channel or v.modality or v.name for v in case.images))
    return case_id, mods, "yes" if case.masks else "no", list(case.problems)


class CaseBrowserWidget(QWidget):
    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.state = state_for(napari_viewer)
        self._rows: dict[str, int] = {}
        self.jobs = Jobs(self)

        self.path_edit = QLineEdit(placeholderText="dataset folder, archive or file")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.path_edit.returnPressed.connect(lambda: self.open_dataset(self.path_edit.text()))
        self.info = QLabel("Open a dataset (File > Open or Browse).")
        self.info.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSelectionBehavior(QTableWidget.SelectRows)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setMinimumHeight(180)
        self.table.cellDoubleClicked.connect(lambda row, _col: self.open_row(row))

        self.window_combo = QComboBox()
        self.window_combo.addItems(list(CT_PRESETS))
        self.window_combo.setToolTip(f"CT window/level preset ({CYCLE_KEY} cycles)")
        self.window_combo.currentTextChanged.connect(self.state.set_window)
        self.state.window_changed.connect(self._window_shown)

        top = QHBoxLayout()
        top.addWidget(self.path_edit)
        top.addWidget(browse)
        self.window_row = QWidget()  # shown while the case on screen has a CT image
        window_row = QHBoxLayout(self.window_row)
        window_row.setContentsMargins(0, 0, 0, 0)
        window_row.addWidget(QLabel(f"CT window ({CYCLE_KEY})"))
        window_row.addWidget(self.window_combo, 1)
        self.window_row.hide()
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.info)
        layout.addWidget(self.table)
        layout.addWidget(self.window_row)

        self.state.dataset_changed.connect(self._fill)
        self.state.case_shown.connect(self._select)
        self.state.statuses_changed.connect(self._set_statuses)
        self.viewer.layers.events.inserted.connect(lambda e: self.state.adopt_layer(e.value))
        for layer in self.viewer.layers:
            self.state.adopt_layer(layer)
        if self.state.dataset is not None:
            self._fill(self.state.dataset)

    def _window_shown(self, name: str) -> None:
        self.window_combo.blockSignals(True)
        self.window_combo.setCurrentText(name)
        self.window_combo.blockSignals(False)

    def keyPressEvent(self, event):  # noqa: N802 - Qt override
        if event.key() in (Qt.Key_Return, Qt.Key_Enter) and self.table.currentRow() >= 0:
            self.open_row(self.table.currentRow())
        else:
            super().keyPressEvent(event)

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open dataset folder")
        if path:
            self.open_dataset(path)

    def open_dataset(self, path: str) -> None:
        try:
            self.state.set_dataset(path)
        except MedsegError as exc:
            report_error(exc)

    def _fill(self, dataset) -> None:
        ids = dataset.case_ids()
        self.path_edit.setText(str(dataset.root))
        self.info.setText(f"{dataset.format}: {len(ids)} cases")
        self.table.setRowCount(len(ids))
        self._rows = {cid: i for i, cid in enumerate(ids)}
        for i, cid in enumerate(ids):
            self.table.setItem(i, 0, QTableWidgetItem(cid))
            self.table.setItem(i, 3, QTableWidgetItem(self.state.statuses.get(cid, "")))

        # Modalities and has-mask need each case's headers: fill them in the background.
        def rows():
            for cid in ids:
                yield case_row(dataset, cid)

        self.jobs.start(rows, yielded=self._set_row)

    def _set_row(self, row) -> None:
        """Fill a case's columns; its problems (damaged files, guessed spacing) are marked with
        a warning sign and listed in the tooltip."""
        cid, mods, mask, problems = row
        i = self._rows.get(cid)
        if i is not None:
            item = QTableWidgetItem(f"\u26a0 {mods}" if problems else mods)
            item.setToolTip("\n".join(problems))
            self.table.setItem(i, 1, item)
            self.table.setItem(i, 2, QTableWidgetItem(mask))

    def _set_statuses(self, statuses: dict) -> None:
        for cid, i in self._rows.items():
            self.table.setItem(i, 3, QTableWidgetItem(statuses.get(cid, "")))

    def _select(self, case) -> None:
        self.window_row.setVisible(any(v.modality.upper() == "CT" for v in case.images))
        i = self._rows.get(case.id)
        if i is not None:
            self.table.selectRow(i)

    def open_row(self, row: int) -> None:
        item = self.table.item(row, 0)
        if item is not None:
            self.open_case(item.text())

    def open_case(self, case_id: str, slice_index: int | None = None):
        """Load ``case_id`` off the GUI thread, then replace the previous case's layers."""
        self.info.setText(f"Loading {case_id}…")
        return self.jobs.start(
            self.state.load,
            case_id,
            returned=lambda loaded: self._shown(loaded, slice_index),
            failed=lambda exc: self.info.setText(str(exc)),
        )

    def _shown(self, loaded, slice_index) -> None:
        self.state.show(loaded, slice_index)
        self.info.setText(f"{self.state.dataset.format}: case {loaded[0].id}")
