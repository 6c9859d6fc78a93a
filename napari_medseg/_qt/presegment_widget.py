"""Pre-segment and fine-tune dock widget: U-Net and threshold engines, the curation loop.

Pre-segment the current case (or the whole dataset into a mask folder), let reviewers
correct masks, fine-tune the U-Net on the corrected ones, and pre-segment the rest with the
new model. The work is done off the GUI thread by the same core functions as the
``presegment`` and ``train`` commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from napari.layers import Image
from napari.utils.notifications import show_info
from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from napari_medseg._qt._jobs import Cancelled, Jobs
from napari_medseg._qt._util import report_error
from napari_medseg.core.errors import MedsegError
from napari_medseg.core.model import Case, Volume
from napari_medseg.engines.threshold import default_method
from napari_medseg.layers import LayerInfo, case_from_layers, geometry_kwargs, labels_kwargs

if TYPE_CHECKING:
    import napari

AUTO = "auto"


class PresegmentWidget(QWidget):
    epoch_reported = Signal(dict)

    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.worker = None
        self.jobs = Jobs(self)
        self._succeeded = False
        self._build_ui()
        self.jobs.progressed.connect(self._on_progress)
        self.epoch_reported.connect(self._on_epoch)
        self.viewer.layers.events.inserted.connect(self._refresh_layers)
        self.viewer.layers.events.removed.connect(self._refresh_layers)
        self._refresh_layers()

    # -- UI ---------------------------------------------------------------------------
    def _path_row(self, edit: QLineEdit, pick) -> QHBoxLayout:
        browse = QPushButton("Browse…")
        browse.clicked.connect(lambda: self._browse(edit, pick))
        row = QHBoxLayout()
        row.addWidget(edit)
        row.addWidget(browse)
        return row

    def _build_ui(self) -> None:
        self.image = QComboBox()
        self.image.currentTextChanged.connect(self._refresh_channels)

        self.checkpoint = QLineEdit(placeholderText="unet.pt (ours or the published LGG model)")
        self.device = QComboBox()
        self.device.addItems([AUTO, "cpu", "cuda", "mps"])
        self.batch_size = QSpinBox(minimum=1, maximum=512, value=16)
        self.unet_button = QPushButton("Run U-Net on case")
        self.unet_button.clicked.connect(self.run_unet)
        unet = QFormLayout()
        unet.addRow("Checkpoint", self._path_row(self.checkpoint, "open"))
        unet.addRow("Device", self.device)
        unet.addRow("Slices per batch", self.batch_size)
        unet.addRow(self.unet_button)

        self.method = QComboBox()
        self.method.addItems(["suv", "suv41", "otsu", "value"])
        self.threshold = QDoubleSpinBox(minimum=-1e5, maximum=1e5, decimals=2, value=2.5)
        self.threshold_auto = QCheckBox("default (SUV 2.5 / Otsu)")
        self.threshold_auto.setChecked(True)
        self.min_size = QSpinBox(minimum=1, maximum=10**7, value=10)
        self.fill_holes = QCheckBox("fill holes")
        self.fill_holes.setChecked(True)
        self.channel = QComboBox()
        self.threshold_button = QPushButton("Run threshold on case")
        self.threshold_button.clicked.connect(self.run_threshold)
        thr_row = QHBoxLayout()
        thr_row.addWidget(self.threshold)
        thr_row.addWidget(self.threshold_auto)
        thr = QFormLayout()
        thr.addRow("Method", self.method)
        thr.addRow("Threshold", thr_row)
        thr.addRow("Min. component (voxels)", self.min_size)
        thr.addRow("Image", self.channel)
        thr.addRow("", self.fill_holes)
        thr.addRow(self.threshold_button)

        self.out_dir = QLineEdit(placeholderText="folder for <case id>.nii.gz masks")
        self.dataset_engine = QComboBox()
        self.dataset_engine.addItems(["unet", "threshold"])
        self.dataset_button = QPushButton("Pre-segment whole dataset")
        self.dataset_button.clicked.connect(self.run_dataset)
        batch = QFormLayout()
        batch.addRow("Engine", self.dataset_engine)
        batch.addRow("Output folder", self._path_row(self.out_dir, "dir"))
        batch.addRow(self.dataset_button)

        self.masks_dir = QLineEdit(placeholderText="curated masks folder (empty: the dataset's)")
        self.model_out = QLineEdit(placeholderText="new model .pt")
        self.epochs = QSpinBox(minimum=1, maximum=1000, value=20)
        self.features = QSpinBox(minimum=4, maximum=64, value=16)
        self.train_button = QPushButton("Fine-tune U-Net")
        self.train_button.clicked.connect(self.run_training)
        train = QFormLayout()
        train.addRow("Curated masks", self._path_row(self.masks_dir, "dir"))
        train.addRow("Save model as", self._path_row(self.model_out, "save"))
        train.addRow("Epochs", self.epochs)
        train.addRow("Features (new model)", self.features)
        train.addRow(QLabel("Starts from the checkpoint above when one is set."))
        train.addRow(self.train_button)

        self.progress = QProgressBar()
        self.status = QLabel("Pick an image layer, then an engine.")
        self.status.setWordWrap(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)

        layout = QVBoxLayout(self)
        top = QFormLayout()
        top.addRow("Case image", self.image)
        layout.addLayout(top)
        for title, form in (
            ("U-Net", unet),
            ("Threshold", thr),
            ("Dataset", batch),
            ("Fine-tune", train),
        ):
            box = QGroupBox(title)
            box.setLayout(form)
            layout.addWidget(box)
        row = QHBoxLayout()
        row.addWidget(self.progress)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addStretch()

    def _browse(self, edit: QLineEdit, pick: str) -> None:
        if pick == "dir":
            path = QFileDialog.getExistingDirectory(self, "Choose a folder")
        elif pick == "save":
            path = QFileDialog.getSaveFileName(self, "Save model", filter="PyTorch (*.pt *.pth)")[0]
        else:
            path = QFileDialog.getOpenFileName(self, "Checkpoint", filter="PyTorch (*.pt *.pth)")[0]
        if path:
            edit.setText(path)

    def _refresh_layers(self, *_args) -> None:
        current = self.image.currentText()
        self.image.blockSignals(True)
        self.image.clear()
        self.image.addItems([lay.name for lay in self.viewer.layers if isinstance(lay, Image)])
        if current:
            self.image.setCurrentText(current)
        self.image.blockSignals(False)
        self._refresh_channels()

    def _refresh_channels(self, *_args) -> None:
        self.channel.clear()
        self.channel.addItem(AUTO)
        layer = self._image_layer()
        if layer is not None:
            case, _ = case_from_layers(self.viewer, layer)
            self.channel.addItems([v.name for v in case.images])
            # The CLI's default rule: SUV for PET cases, Otsu otherwise.
            default = default_method(case)
            if default.startswith("suv") != self.method.currentText().startswith("suv"):
                self.method.setCurrentText(default)

    def _image_layer(self):
        name = self.image.currentText()
        return next((lay for lay in self.viewer.layers if lay.name == name), None)

    def _case(self) -> tuple[Case, LayerInfo, object]:
        layer = self._image_layer()
        if layer is None:
            raise MedsegError("open a case first (no image layer to segment)")
        case, info = case_from_layers(self.viewer, layer)
        return case, info, layer

    # -- options ------------------------------------------------------------------------
    def unet_options(self) -> dict:
        device = self.device.currentText()
        return {
            "checkpoint": self.checkpoint.text().strip() or None,
            "batch_size": self.batch_size.value(),
            "device": None if device == AUTO else device,
        }

    def threshold_options(self) -> dict:
        channel = self.channel.currentText()
        return {
            "method": self.method.currentText(),
            "threshold": None if self.threshold_auto.isChecked() else self.threshold.value(),
            "min_size": self.min_size.value(),
            "fill_holes": self.fill_holes.isChecked(),
            "channel": None if channel in (AUTO, "") else channel,
        }

    # -- actions ------------------------------------------------------------------------
    def run_unet(self) -> None:
        options = self.unet_options()
        try:
            self._check_checkpoint(options["checkpoint"], self.unet_button.text())
        except MedsegError as exc:
            report_error(exc)
            return
        self._segment_case("unet", options)

    def run_threshold(self) -> None:
        options = self.threshold_options()
        try:
            self._check_threshold(options)
        except MedsegError as exc:
            report_error(exc)
            return
        self._segment_case("threshold", options)

    def _check_threshold(self, options: dict) -> None:
        """The panel's own words for what the engine would refuse."""
        if options["method"] == "value" and options["threshold"] is None:
            raise MedsegError(
                "method 'value' needs a threshold: untick 'default' and set the Threshold field"
            )

    def _segment_case(self, engine: str, options: dict) -> None:
        try:
            case, info, layer = self._case()
        except MedsegError as exc:
            report_error(exc)
            return

        def work():
            from napari_medseg.engines.base import make_engine

            return make_engine(engine, **options).segment_case(case, self.jobs.progress)

        self._start(
            work,
            lambda result: self._add_result(result, case, info, layer),
            f"{engine} on {case.id}",
        )

    def run_dataset(self) -> None:
        from napari_medseg.batch.runner import presegment_dataset

        try:
            _, info, _ = self._case()
            root, out = self._dataset_root(info), self.out_dir.text().strip()
            if not out:
                raise MedsegError("choose an output folder for the dataset's masks")
        except MedsegError as exc:
            report_error(exc)
            return
        engine = self.dataset_engine.currentText()
        options = self.unet_options() if engine == "unet" else self.threshold_options()
        try:
            if engine == "unet":
                self._check_checkpoint(options["checkpoint"], self.dataset_button.text())
            else:
                self._check_threshold(options)
        except MedsegError as exc:
            report_error(exc)
            return

        def work():
            return presegment_dataset(
                root, engine, options, out, workers=0, progress=self.jobs.progress
            )

        self._start(work, self._dataset_done, f"pre-segmenting {Path(root).name}")

    def run_training(self) -> None:
        from napari_medseg.engines.training import train_unet
        from napari_medseg.io.detect import open_dataset

        try:
            _, info, _ = self._case()
            root, out = self._dataset_root(info), self.model_out.text().strip()
            if not out:
                raise MedsegError("choose where to save the fine-tuned model")
            opts = self.unet_options()
            if opts["checkpoint"]:  # optional: fine-tuning may start from scratch
                self._check_checkpoint(opts["checkpoint"], self.train_button.text())
        except MedsegError as exc:
            report_error(exc)
            return
        masks = self.masks_dir.text().strip() or None

        def work():
            dataset = open_dataset(root)
            return train_unet(
                dataset,
                dataset.case_ids(),
                masks,
                out,
                epochs=self.epochs.value(),
                checkpoint=opts["checkpoint"],
                init_features=self.features.value(),
                batch_size=opts["batch_size"],
                device=opts["device"],
                progress=self.jobs.progressed.emit,  # training stops through cancelled()
                report=self.epoch_reported.emit,
                cancelled=self.jobs.cancelled,
            )

        self._start(work, lambda result: self._trained(result, out), "fine-tuning")

    def cancel(self) -> None:
        self.jobs.cancel()
        self.status.setText("Cancelling…")

    # -- worker plumbing --------------------------------------------------------------------
    @staticmethod
    def _check_checkpoint(checkpoint: str | None, button: str) -> None:
        """Refuse a missing model in the panel's words, before torch loads (seconds)."""
        if not checkpoint:
            raise MedsegError(f"choose a U-Net model in the Checkpoint field before '{button}'")
        if not Path(checkpoint).is_file():
            raise MedsegError("no such file (Checkpoint field)", checkpoint)

    @staticmethod
    def _dataset_root(info: LayerInfo) -> str:
        if not info.root:
            raise MedsegError(
                "this needs a dataset opened with napari-medseg (the layer has no dataset root)"
            )
        return info.root

    def _start(self, work, on_done, what: str) -> None:
        if self.worker is not None:
            show_info("Another job is running; wait for it or cancel it.")
            return
        self._succeeded = False
        self.progress.setRange(0, 0)
        self.status.setText(f"Running {what}…")
        self.cancel_button.setEnabled(True)

        def done(result) -> None:
            self._succeeded = True
            on_done(result)

        self.worker = self.jobs.start(
            work, returned=done, failed=self._failed, finished=self._finished
        )

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _on_epoch(self, e: dict) -> None:
        self.progress.setFormat(
            f"epoch {e['epoch']}/{e['epochs']} loss {e['loss']:.3f} Dice {e['val_dice']:.3f}"
        )
        self.status.setText(
            f"Epoch {e['epoch']}/{e['epochs']}: loss {e['loss']:.3f}, validation Dice "
            f"{e['val_dice']:.3f} (best {e['best_dice']:.3f})"
        )

    def _failed(self, exc: BaseException) -> None:
        cancelled = isinstance(exc, Cancelled)
        self.status.setText("Cancelled." if cancelled else f"Failed: {exc}")

    def _finished(self) -> None:
        self.worker = None
        self.cancel_button.setEnabled(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if self._succeeded else 0)  # a failure never shows 100 %
        self.progress.setFormat("%p%")

    # -- results ------------------------------------------------------------------------
    def _add_result(self, result, case: Case, info: LayerInfo, layer) -> None:
        ref = case.reference_image()
        name = f"{case.id} {result.info.get('engine', 'mask')}"
        if "method" in result.info:
            name += f" {result.info['method']}"
        vol = Volume.from_array(
            name, result.mask, ref.geometry, labelmap=result.labelmap, source=ref.source
        )
        geo = (
            geometry_kwargs(ref)
            if info.opened
            else {"scale": layer.scale, "translate": layer.translate}
        )
        metadata = LayerInfo(
            role="mask",
            case=case.id,
            root=info.root,
            format=info.format,
            volume=vol,
            engine=result.info.get("engine"),  # DICOM SEG algorithm name
            derived=True,  # work: stays when the case's layers are replaced
        ).metadata()
        self.viewer.add_labels(
            result.mask, name=name, **geo, **labels_kwargs(result.labelmap), metadata=metadata
        )
        self.status.setText(f"{name}: {int(np.count_nonzero(result.mask))} voxels labelled.")

    def _dataset_done(self, summary: dict) -> None:
        failed = "; ".join(f"{f['id']}: {f['reason']}" for f in summary["failed"])
        self.status.setText(
            f"{len(summary['done'])} done, {len(summary['skipped'])} skipped, "
            f"{len(summary['failed'])} failed" + (f" ({failed})" if failed else "")
        )

    def _trained(self, result, out: str) -> None:
        if result.checkpoint is None:
            self.status.setText("Cancelled before the first epoch: no model saved.")
            return
        self.checkpoint.setText(str(result.checkpoint))  # pre-segment the rest with the new model
        self.status.setText(
            f"Best validation Dice {result.best_dice:.3f} at epoch {result.best_epoch} "
            f"({len(result.train_ids)} train / {len(result.val_ids)} validation cases); "
            f"model saved to {out}" + (" (cancelled)" if result.cancelled else "")
        )
