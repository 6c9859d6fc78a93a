"""Export dock widget: a Labels layer (plus an ``instances`` layer and the image, when present)
as CVAT Segmentation mask 1.1, NIfTI on the source grid, COCO or DICOM SEG, off the GUI thread; and
import of a CVAT export back onto the layer's volume. Same core calls as ``napari-medseg export``.

The panel exports the case on screen and says which: a line names the case of the chosen
layer, the layer choice follows the case the viewer shows, and only that case's images go along.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from napari.layers import Image, Labels
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_medseg._qt._jobs import Jobs
from napari_medseg._qt._util import report_error
from napari_medseg.core.errors import MedsegError
from napari_medseg.core.model import INSTANCES
from napari_medseg.export import FORMATS, export_masks
from napari_medseg.formats.slices import AXES
from napari_medseg.layers import (
    LayerInfo,
    items_from_layers,
    labels_kwargs,
    layer_labelmap,
    layer_state,
)

if TYPE_CHECKING:
    import napari


def _case_of(layer) -> str | None:
    return LayerInfo.from_layer(layer).case


class ExportWidget(QWidget):
    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.last_written: list[Path] = []

        self.layer_combo = QComboBox()
        self.layer_combo.currentTextChanged.connect(lambda _t: self._show_case())
        self.case_label = QLabel()
        self.case_label.setWordWrap(True)
        self.format_combo = QComboBox()
        self.format_combo.addItems(FORMATS)
        self.axis_combo = QComboBox()
        self.axis_combo.addItems(list(AXES))
        self.components_combo = QComboBox()
        self.components_combo.addItems(["2d", "3d"])
        self.components_combo.setToolTip(
            "without an 'instances' layer: connected components per slice or in 3D"
        )
        self.zip_box = QCheckBox("zip archive (CVAT)")
        self.images_box = QCheckBox("include image slices (CVAT JPEGImages/)")
        self.out_edit = QLineEdit(placeholderText="output folder")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit, 1)
        out_row.addWidget(browse)
        self.export_button = QPushButton("Export")
        self.export_button.clicked.connect(self.export)
        self.import_button = QPushButton("Import CVAT export onto this volume…")
        self.import_button.clicked.connect(lambda: self.import_cvat())
        self.progress = QProgressBar()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.jobs = Jobs(self, bar=self.progress)

        form = QFormLayout()
        form.addRow("Labels layer", self.layer_combo)
        form.addRow(self.case_label)
        form.addRow("Format", self.format_combo)
        form.addRow("Slicing axis", self.axis_combo)
        form.addRow("Objects", self.components_combo)
        form.addRow("Output", out_row)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.zip_box)
        layout.addWidget(self.images_box)
        layout.addWidget(self.export_button)
        layout.addWidget(self.progress)
        layout.addWidget(self.import_button)
        layout.addWidget(self.status)
        layout.addStretch(1)
        for event in (napari_viewer.layers.events.inserted, napari_viewer.layers.events.removed):
            event.connect(lambda _e=None: self._refresh_layers())
        self._refresh_layers()

    def _refresh_layers(self) -> None:
        current = self.layer_combo.currentText()
        layers = [
            lay for lay in self.viewer.layers if isinstance(lay, Labels) and lay.name != INSTANCES
        ]
        names = [lay.name for lay in layers]
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItems(names)
        # Stay on the chosen layer while it shows the case on screen; else take that case's mask.
        cases = [_case_of(ly) for ly in self.viewer.layers if _case_of(ly)]
        on_screen = cases[-1] if cases else None  # the case of the top-most case layer
        keep = current in names and _case_of(layers[names.index(current)]) == on_screen
        if keep:
            self.layer_combo.setCurrentText(current)
        elif layers:
            mine = [lay for lay in layers if _case_of(lay) == on_screen]
            self.layer_combo.setCurrentText((mine or layers)[0].name)
        self.layer_combo.blockSignals(False)
        self._show_case()

    def _show_case(self) -> None:
        layer = next(
            (ly for ly in self.viewer.layers if ly.name == self.layer_combo.currentText()), None
        )
        case = _case_of(layer) if layer is not None else None
        self.case_label.setText(
            "No Labels layer to export."
            if layer is None
            else f"Exports case <b>{case}</b> (layer '{layer.name}')."
            if case
            else f"Exports layer '{layer.name}'."
        )

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Export to folder")
        if path:
            self.out_edit.setText(path)

    def _layer(self):
        name = self.layer_combo.currentText()
        layer = next((lay for lay in self.viewer.layers if lay.name == name), None)
        if layer is None:
            raise MedsegError("choose a Labels layer to export")
        return layer

    def _layer_data(self) -> list[tuple]:
        """The chosen Labels layer, an ``instances`` layer and the image layers, as data tuples."""
        layer = self._layer()
        shape, case = layer.data.shape, _case_of(layer)
        chosen = [layer] + [
            lay
            for lay in self.viewer.layers
            if lay is not layer
            and (lay.name == INSTANCES or isinstance(lay, Image))
            and lay.data.shape[: len(shape)] == shape
            and (case is None or _case_of(lay) in (None, case))
        ]
        return [lay.as_layer_data_tuple() for lay in chosen]

    def export(self):
        """Start the export in a worker thread; returns the worker (tests wait on it)."""
        try:
            out = self.out_edit.text().strip()
            if not out:
                raise MedsegError("choose an output folder")
            item, labelmap = items_from_layers(
                self._layer_data(), with_image=self.images_box.isChecked()
            )
        except MedsegError as exc:
            report_error(exc)
            return None
        fmt = self.format_combo.currentText()
        kwargs = {
            "axis": self.axis_combo.currentText(),
            "components": self.components_combo.currentText(),
            "images": self.images_box.isChecked(),
            "as_zip": self.zip_box.isChecked(),
        }
        if fmt == "dicom-seg":  # automatic when a pre-segmentation engine made the layer
            from napari_medseg.export.dicom_seg import Algorithm

            engine = LayerInfo.from_layer(self._layer()).engine
            kwargs["algorithm"] = Algorithm.of_engine(engine)

        def run():
            return export_masks(fmt, out, [item], labelmap, progress=self.jobs.progress, **kwargs)

        self.export_button.setEnabled(False)
        self.status.setText(f"exporting {item.case_id} as {fmt}…")
        return self.jobs.start(
            run,
            returned=lambda written: self._done(written, item.case_id, fmt),
            failed=self._failed,
        )

    def _done(self, written: list[Path], case_id: str, fmt: str) -> None:
        self.last_written = list(written)
        self.export_button.setEnabled(True)
        self.status.setText(f"{case_id} exported as {fmt}: " + ", ".join(str(p) for p in written))

    def _failed(self, exc: BaseException) -> None:
        self.export_button.setEnabled(True)
        self.status.setText(f"export failed: {exc}")

    def import_cvat(self, path: str | None = None) -> list:
        """Add a CVAT export's class and instance masks as Labels layers on the layer's grid."""
        from napari_medseg.export.cvat import import_cvat

        try:
            layer = self._layer()
            if path is None:
                path, _ = QFileDialog.getOpenFileName(
                    self,
                    "CVAT export (labelmap.txt or .zip)",
                    "",
                    "CVAT export (labelmap.txt *.zip)",
                )
                if not path:
                    return []
                path = str(Path(path).parent) if Path(path).name == "labelmap.txt" else path
            info = LayerInfo.from_layer(layer)
            classes, instances, labelmap = import_cvat(
                path, info.case, layer_labelmap(layer.data, layer_state(layer)), layer.data.shape
            )
        except MedsegError as exc:
            report_error(exc)
            return []
        geo = {"scale": layer.scale, "translate": layer.translate}
        return [
            self.viewer.add_labels(
                classes,
                name=f"{layer.name} (CVAT)",
                metadata=replace(info, labelmap=labelmap, role="mask").metadata(),
                **geo,
                **labels_kwargs(labelmap),
            ),
            self.viewer.add_labels(
                instances,
                name=INSTANCES,
                metadata=replace(info, role=INSTANCES).metadata(),
                **geo,
            ),
        ]
