"""Labelmap editor: the labels of a Labels layer (id, name, colour) with add, rename, recolour,
delete, merge, renumber and undo. Every change shows at once in the layer (colours, and names
in the status bar) and is stored on the layer's volume, so exports and curated masks carry it.
On a mask of an opened dataset the change is the dataset's
(:mod:`napari_medseg.core.labelmap_store`): every mask layer of the dataset shows it, and so do
cases opened later, review sessions, QA and exports, after a restart too.
The editing itself is :class:`napari_medseg.core.labelmap_edit.LabelmapEditor`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QColorDialog,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_medseg._qt._util import report_error
from napari_medseg.core.errors import MedsegError
from napari_medseg.core.labelmap_edit import LabelmapEditor
from napari_medseg.core.labelmap_io import read_labelmap, write_labelmap
from napari_medseg.core.labelmap_store import save_edits, with_edits
from napari_medseg.layers import LayerInfo, apply_labelmap, layer_labelmap, layer_state

if TYPE_CHECKING:
    import napari

FILE_FILTER = "Labelmaps (labelmap.txt dataset.json *.json *.txt)"
ITKSNAP_FILTER = "ITK-SNAP label descriptions (*.txt)"


def _dataset_root(layer) -> str | None:
    """The dataset a mask layer belongs to (None for engine outputs, images, plain layers):
    its labelmap edits are the dataset's."""
    info = LayerInfo.from_layer(layer)
    return info.root if info.role == "mask" and not info.engine else None


class LabelmapEditorWidget(QWidget):
    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.editor: LabelmapEditor | None = None
        self.layer = None

        self.layer_combo = QComboBox()
        self.layer_combo.currentTextChanged.connect(self._bind)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["id", "name", "colour"])
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.Stretch)
        self.table.setSelectionBehavior(QTableWidget.SelectRows)
        self.table.setSelectionMode(QTableWidget.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.setMinimumHeight(
            180
        )  # about six labels visible even when docked below another panel
        self.table.itemChanged.connect(self._renamed)
        self.table.cellDoubleClicked.connect(lambda row, col: self.recolor() if col == 2 else None)
        self.merge_target = QComboBox()
        self.message = QLabel()
        self.message.setWordWrap(True)

        buttons = QGridLayout()
        for i, (text, slot) in enumerate(
            [
                ("Add", self.add),
                ("Recolour…", self.recolor),
                ("Delete", self.delete),
                ("Renumber 1..N", self.renumber),
                ("Undo", self.undo),
                ("Load…", self.load),
                ("Save…", self.save),
            ]
        ):
            button = QPushButton(text)
            button.clicked.connect(lambda _=False, s=slot: self._guard(s))
            buttons.addWidget(button, i // 4, i % 4)
        merge = QPushButton("Merge selected into")
        merge.clicked.connect(lambda: self._guard(self.merge))
        merge_row = QHBoxLayout()
        merge_row.addWidget(merge)
        merge_row.addWidget(self.merge_target, 1)

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Labels layer"))
        layout.addWidget(self.layer_combo)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addLayout(merge_row)
        layout.addWidget(self.message)

        for event in (napari_viewer.layers.events.inserted, napari_viewer.layers.events.removed):
            event.connect(lambda _e=None: self._refresh_layers())
        self._refresh_layers()

    # -- binding to a layer --------------------------------------------------------------
    def _labels_layers(self) -> list:
        return [lay for lay in self.viewer.layers if lay.__class__.__name__ == "Labels"]

    def _refresh_layers(self) -> None:
        current = self.layer_combo.currentText()
        names = [lay.name for lay in self._labels_layers()]
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItems(names)
        self.layer_combo.blockSignals(False)
        self.layer_combo.setCurrentText(
            current if current in names else (names[0] if names else "")
        )
        self._bind(self.layer_combo.currentText())

    def _bind(self, name: str) -> None:
        layer = next((lay for lay in self._labels_layers() if lay.name == name), None)
        if layer is self.layer and self.editor is not None:
            return
        self.layer = layer
        self.editor = None
        if layer is not None:
            stored = LayerInfo.from_layer(layer).labelmap
            labelmap = stored or layer_labelmap(layer.data, layer_state(layer))
            masks = [layer.data] if isinstance(layer.data, np.ndarray) else []
            self.editor = LabelmapEditor(labelmap, masks, on_change=self._changed)
            apply_labelmap(layer, labelmap)
        self._fill()

    def _changed(self, editor: LabelmapEditor, voxels_changed: bool) -> None:
        apply_labelmap(self.layer, editor.labelmap, voxels_changed)
        root = _dataset_root(self.layer)
        if root is not None:
            save_edits(root, editor.labelmap)
            for other in self._labels_layers():
                if other is not self.layer and _dataset_root(other) == root:
                    own = layer_labelmap(other.data, layer_state(other))
                    apply_labelmap(other, with_edits(own, editor.labelmap))
        self._fill()

    def _fill(self) -> None:
        self.table.blockSignals(True)
        self.table.setRowCount(0)
        self.merge_target.clear()
        labels = list(self.editor.labelmap) if self.editor is not None else []
        for row, lab in enumerate(labels):
            self.table.insertRow(row)
            ident = QTableWidgetItem(str(lab.id))
            ident.setFlags(ident.flags() & ~Qt.ItemIsEditable)
            swatch = QTableWidgetItem()
            swatch.setFlags(swatch.flags() & ~Qt.ItemIsEditable)
            swatch.setBackground(QColor(*lab.color))
            swatch.setToolTip(f"{lab.color} (double-click to change)")
            self.table.setItem(row, 0, ident)
            self.table.setItem(row, 1, QTableWidgetItem(lab.name))
            self.table.setItem(row, 2, swatch)
            self.merge_target.addItem(f"{lab.id}: {lab.name}", lab.id)
        self.table.blockSignals(False)

    # -- actions -------------------------------------------------------------------------
    def _guard(self, action) -> None:
        """Run an action; a refused change is shown as one clear message."""
        try:
            if self.editor is None:
                raise MedsegError("select a Labels layer first")
            action()
            self.message.setText("")
        except MedsegError as exc:
            self.message.setText(str(exc))
            report_error(exc)

    def selected_id(self) -> int:
        rows = {i.row() for i in self.table.selectedItems()}
        if not rows:
            raise MedsegError("select a label in the table first")
        return int(self.table.item(rows.pop(), 0).text())

    def _renamed(self, item: QTableWidgetItem) -> None:
        if item.column() != 1 or self.editor is None:
            return
        label_id, name = int(self.table.item(item.row(), 0).text()), item.text()
        self._guard(lambda: self.editor.rename(label_id, name))
        if self.editor is not None and self.editor.labelmap[label_id].name != name:
            self._fill()  # refused: show the old name again

    def add(self, name: str | None = None) -> None:
        if name is None:
            name, ok = QInputDialog.getText(self, "Add label", "Name:")
            if not ok:
                return
        self.editor.add(name)

    def recolor(self, color: tuple[int, int, int] | None = None) -> None:
        label_id = self.selected_id()
        if color is None:
            picked = QColorDialog.getColor(QColor(*self.editor.labelmap[label_id].color), self)
            if not picked.isValid():
                return
            color = (picked.red(), picked.green(), picked.blue())
        self.editor.recolor(label_id, color)

    def delete(self) -> None:
        self.editor.delete(self.selected_id())

    def merge(self) -> None:
        self.editor.merge(self.selected_id(), int(self.merge_target.currentData()))

    def renumber(self) -> None:
        self.editor.renumber()

    def undo(self) -> None:
        self.editor.undo()

    def load(self, path: str | None = None) -> None:
        """Take names and colours from a labelmap file (ids matched by name where possible)."""
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Load labelmap", "", FILE_FILTER)
            if not path:
                return
        loaded = read_labelmap(path, reference=self.editor.labelmap)
        for lab in loaded:
            if lab.id in self.editor.labelmap:
                current = self.editor.labelmap[lab.id]
                if current.name != lab.name:
                    self.editor.rename(lab.id, lab.name)
                if current.color != lab.color:
                    self.editor.recolor(lab.id, lab.color)
            else:
                self.editor.add(lab.name, lab.color, lab.id)

    def save(self, path: str | None = None, style: str = "msd") -> None:
        """Save by suffix (see ``write_labelmap``); ``style="itksnap"`` for ITK-SNAP ``.txt``."""
        if path is None:
            path, chosen = QFileDialog.getSaveFileName(
                self, "Save labelmap", "labelmap.txt", f"{FILE_FILTER};;{ITKSNAP_FILTER}"
            )
            if not path:
                return
            style = "itksnap" if chosen == ITKSNAP_FILTER else style
        write_labelmap(self.editor.labelmap, path, style=style)
        self.message.setText(f"saved {path}")
