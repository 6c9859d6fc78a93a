"""SAM dock widget: embed a case once (off the GUI thread), then click or drag for masks.

Prompts live in three layers: "SAM positive" and "SAM negative" points and a "SAM box"
rectangle. Every prompt change decodes the current slice from the cached embedding into the
"SAM preview" layer; accepting writes it into the target Labels layer under the chosen label
id, without touching other labels unless asked. Keys (viewer-wide, not used by napari's
layers): K accept, Q clear prompts, N next label, G propagate through the volume, U undo.
The work itself is done by :mod:`napari_medseg.engines.sam` (the same code as the CLI).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from napari.layers import Image, Labels
from napari.qt.threading import create_worker
from napari.utils.notifications import show_info
from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from napari_medseg._qt._util import report_error
from napari_medseg.core.errors import MedsegError
from napari_medseg.core.model import Box, Volume
from napari_medseg.engines.sam_cache import EmbeddingCache
from napari_medseg.engines.sam_edit import paste_slices
from napari_medseg.engines.sam_prompts import prompt_on_slice, prompts_from_boxes
from napari_medseg.engines.sam_settings import load_settings, save_settings
from napari_medseg.engines.windowing import PRESETS, ChannelSpec, default_mapping, source_channels
from napari_medseg.layers import geometry_kwargs, layer_volume

if TYPE_CHECKING:
    import napari

POSITIVE, NEGATIVE, BOX, PREVIEW = "SAM positive", "SAM negative", "SAM box", "SAM preview"
KEYS = {"k": "accept", "q": "clear_prompts", "n": "next_label", "g": "propagate", "u": "undo"}


class SamWidget(QWidget):
    progress_changed = Signal(int, int)

    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.session = None  # SamSession for the current images and channel mapping
        self._session_key = None
        self.prediction = None  # (Prediction, slice) shown in the preview layer
        self._preview_z = 0
        self.undo_stack: list[tuple] = []  # (labels layer, Edit)
        self.worker = None
        self.busy = False  # a worker is queued or running
        self._cancel = False
        self._stale = False  # prompts changed while busy: decode again when done
        self._quiet = False  # clearing prompts: no decode
        self._watched: set[int] = set()  # prompt layers whose changes we follow
        self._build_ui()
        self.progress_changed.connect(self._on_progress)
        for key, action in KEYS.items():
            self.viewer.bind_key(
                key, lambda _v, a=action: self._safe(getattr(self, a)), overwrite=True
            )
        self.viewer.layers.events.inserted.connect(self._refresh_layers)
        self.viewer.layers.events.removed.connect(self._refresh_layers)
        self.viewer.layers.selection.events.active.connect(self._active_changed)
        self._refresh_layers()

    # -- UI ---------------------------------------------------------------------------
    def _build_ui(self) -> None:
        settings = load_settings()
        self.checkpoint = QLineEdit(
            settings.get("sam_checkpoint", ""), placeholderText="sam_vit_b_01ec64.pth"
        )
        self.checkpoint.editingFinished.connect(
            lambda: save_settings(sam_checkpoint=self.checkpoint.text() or None)
        )
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda", "mps"])
        self.device.setCurrentText(settings.get("sam_device", "auto"))
        self.device.currentTextChanged.connect(lambda d: save_settings(sam_device=d))
        ckpt_row = QHBoxLayout()
        ckpt_row.addWidget(self.checkpoint)
        ckpt_row.addWidget(browse)

        grid = QGridLayout()
        self.channel_boxes, self.window_boxes = [], []
        for i, name in enumerate(("R", "G", "B")):
            src, win = QComboBox(), QComboBox()
            win.addItems(PRESETS)
            win.setEditable(True)  # LO:HI limits
            grid.addWidget(QLabel(f"SAM {name}"), i, 0)
            grid.addWidget(src, i, 1)
            grid.addWidget(win, i, 2)
            self.channel_boxes.append(src)
            self.window_boxes.append(win)

        self.target = QComboBox()
        self.label_id = QSpinBox(minimum=1, maximum=65535, value=1)
        self.overwrite = QCheckBox("overwrite other labels")
        self.min_score = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.05, value=0.5)

        self.embed_button = QPushButton("Embed this case")
        self.embed_button.clicked.connect(lambda: self._safe(self.embed_case))
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.status = QLabel("Choose a checkpoint, then embed the case.")
        self.status.setWordWrap(True)
        self.cache_label = QLabel()
        clear_cache = QPushButton("Clear cache")
        clear_cache.clicked.connect(self.clear_cache)

        buttons = QGridLayout()
        for i, (text, slot) in enumerate(
            [
                ("Accept (K)", self.accept),
                ("Clear prompts (Q)", self.clear_prompts),
                ("Next label (N)", self.next_label),
                ("Propagate (G)", self.propagate),
                ("Undo (U)", self.undo),
                ("Segment all boxes", self.segment_boxes),
            ]
        ):
            b = QPushButton(text)
            b.clicked.connect(lambda _checked=False, f=slot: self._safe(f))
            buttons.addWidget(b, i // 2, i % 2)

        form = QFormLayout()
        form.addRow("Checkpoint", ckpt_row)
        form.addRow("Device", self.device)
        form.addRow("Target labels", self.target)
        form.addRow("Label id", self.label_id)
        form.addRow("", self.overwrite)
        form.addRow("Propagation min score", self.min_score)
        run_row = QHBoxLayout()
        run_row.addWidget(self.embed_button)
        run_row.addWidget(self.cancel_button)
        cache_row = QHBoxLayout()
        cache_row.addWidget(self.cache_label)
        cache_row.addWidget(clear_cache)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(grid)
        layout.addLayout(run_row)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        layout.addLayout(cache_row)
        layout.addStretch()
        self._show_cache()

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "SAM checkpoint", "", "PyTorch (*.pth *.pt)")
        if path:
            self.checkpoint.setText(path)
            save_settings(sam_checkpoint=path)

    def _refresh_layers(self, _event=None) -> None:
        """Refill the channel and target choices from the viewer's layers."""
        names = [s.name for s in self._sources()]
        defaults = [m.source for m in default_mapping(self._sources())] if names else []
        for i, box in enumerate(self.channel_boxes):
            current = box.currentText()
            box.blockSignals(True)
            box.clear()
            box.addItems(names)
            box.setCurrentText(current if current in names else (defaults[i] if defaults else ""))
            box.blockSignals(False)
        current = self.target.currentText()
        labels = [
            ly.name for ly in self.viewer.layers if isinstance(ly, Labels) and ly.name != PREVIEW
        ]
        self.target.clear()
        self.target.addItems(labels)
        if current in labels:
            self.target.setCurrentText(current)

    def _active_changed(self, event) -> None:
        """The active Labels layer becomes the target, as napari's own painting works."""
        layer = event.value
        if isinstance(layer, Labels) and layer.name != PREVIEW:
            self.target.setCurrentText(layer.name)

    def _show_cache(self) -> None:
        self.cache_label.setText(f"Cache: {EmbeddingCache().describe()}")

    # -- session --------------------------------------------------------------------
    def _image_layers(self) -> list:
        skip = (POSITIVE, NEGATIVE, BOX, PREVIEW)
        return [ly for ly in self.viewer.layers if isinstance(ly, Image) and ly.name not in skip]

    def _sources(self):
        return source_channels([layer_volume(ly) for ly in self._image_layers()])

    def mapping(self) -> list[ChannelSpec]:
        return [
            ChannelSpec(s.currentText(), w.currentText() or "auto")
            for s, w in zip(self.channel_boxes, self.window_boxes, strict=True)
        ]

    def reference(self) -> Volume:
        """The volume of the first mapped channel: prompts and masks use its grid."""
        by_name = {s.name: s.volume for s in self._sources()}
        vol = by_name.get(self.mapping()[0].source)
        if vol is None:
            raise MedsegError("open an image first (no image layer to segment)")
        return vol

    def session_params(self) -> tuple:
        """What the session depends on, read from the widgets (on the GUI thread)."""
        if not self.checkpoint.text():
            raise MedsegError("choose a SAM checkpoint file first")
        sources = self._sources()
        return (
            self.checkpoint.text(),
            self.device.currentText(),
            tuple(self.mapping()),
            tuple(id(s.volume) for s in sources),
        ), sources

    def _session_ready(self, key) -> bool:
        return self.session is not None and self._session_key == key

    def _make_session(self, key, sources):
        """Load the model and window the images (in a worker: both can take seconds)."""
        from napari_medseg.engines.sam import SamSession
        from napari_medseg.engines.sam_model import load_sam
        from napari_medseg.engines.windowing import sam_stack

        if self._session_ready(key):
            return self.session
        checkpoint, device, mapping, _ = key
        sam = load_sam(checkpoint, device)
        stack, windows = sam_stack(sources, list(mapping))
        self.session = SamSession(sam, stack, EmbeddingCache(), meta={"channels": windows})
        self._session_key = key
        return self.session

    def current_slice(self) -> int:
        ref = self._ref_layer()
        if ref is None or self.reference().spatial_ndim == 2:
            return 0
        return int(round(ref.world_to_data(self.viewer.dims.point)[0]))

    def _ref_layer(self):
        ref = self.reference()
        return next((ly for ly in self._image_layers() if layer_volume(ly) is ref), None)

    # -- background work ----------------------------------------------------------------
    def _run(self, fn, done, what: str):
        if self.busy:
            show_info("SAM is busy; wait or cancel first")
            return None
        self.busy, self._cancel = True, False
        self.cancel_button.setEnabled(True)
        self.embed_button.setEnabled(False)
        self.status.setText(what + "…")
        self.worker = create_worker(
            fn, _connect={"returned": done, "errored": self._failed, "finished": self._finished}
        )
        return self.worker

    def _failed(self, exc: BaseException) -> None:
        self.status.setText(f"Failed: {exc}")
        report_error(exc)

    def _finished(self) -> None:
        self.busy = False
        self.cancel_button.setEnabled(False)
        self.embed_button.setEnabled(True)
        self._show_cache()
        if self._stale:
            self._stale = False
            self._prompt_changed()

    def _safe(self, action):
        """Run a button or key action; a MedsegError becomes a notification, not a traceback."""
        try:
            return action()
        except MedsegError as exc:
            self.status.setText(str(exc))
            report_error(exc)
            return None

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(max(1, total))
        self.progress.setValue(done)

    def _report(self, done: int, total: int) -> None:  # called from the worker thread
        try:
            self.progress_changed.emit(done, total)
        except RuntimeError:  # the widget was closed: stop the work at the next step
            self._cancel = True

    def cancel(self) -> None:
        self._cancel = True
        self.status.setText("Cancelling…")

    def embed_case(self):
        """Embed every slice not cached yet (a cancelled run keeps the slices it finished)."""
        params = self.session_params()

        def job():
            session = self._make_session(*params)
            n = session.embed(progress=self._report, cancelled=lambda: self._cancel)
            return n, len(session.stack) - len(session.missing())

        def done(result):
            n, ready = result
            total = len(self.session.stack)
            self.status.setText(
                f"{ready}/{total} slices embedded ({n} computed now, the rest from the cache)"
            )

        return self._run(job, done, "Embedding")

    def clear_cache(self) -> None:
        freed = EmbeddingCache().clear()
        self.status.setText(f"Cache cleared ({freed / 2**20:.1f} MiB)")
        self._show_cache()

    # -- prompts ----------------------------------------------------------------------
    def prompt_layers(self):
        """The positive, negative and box layers, created on the reference grid if missing."""
        ref = self.reference()
        geo = geometry_kwargs(ref)
        ndim = ref.spatial_ndim
        for name, color in ((POSITIVE, "lime"), (NEGATIVE, "red")):
            if name not in self.viewer.layers:
                self.viewer.add_points(
                    np.zeros((0, ndim)), name=name, face_color=color, size=4, **geo
                )
        if BOX not in self.viewer.layers:
            self.viewer.add_shapes(
                name=BOX,
                ndim=ndim,
                edge_color="yellow",
                face_color="transparent",
                edge_width=1,
                **geo,
            )
        layers = self.viewer.layers[POSITIVE], self.viewer.layers[NEGATIVE], self.viewer.layers[BOX]
        for layer in layers:
            if id(layer) not in self._watched:  # also layers left by an earlier widget
                layer.events.data.connect(self._prompt_changed)
                self._watched.add(id(layer))
        return layers

    def _prompt_changed(self, _event=None) -> None:
        if self._quiet:
            return
        if self.busy:
            self._stale = True
        else:
            self._safe(self.update_preview)

    def current_prompt(self):
        pos, neg, box = self.prompt_layers()
        rects = [d for d, t in zip(box.data, box.shape_type, strict=True) if t == "rectangle"]
        return prompt_on_slice(
            self.current_slice(), self.label_id.value(), pos.data, neg.data, rects
        )

    def update_preview(self):
        """Decode the current prompt; embeds the slice first (in a worker) when it is not cached."""
        prompt = self.current_prompt()
        if prompt.empty:
            self._show_prediction(None, prompt.slice)
            return None

        params = self.session_params()

        def job():
            return self._make_session(*params).predict(prompt), prompt.slice

        if self._session_ready(params[0]) and self.session.is_embedded(prompt.slice):
            self._show_prediction(*job())  # a cached embedding decodes in milliseconds
            return None
        return self._run(
            job, lambda r: self._show_prediction(*r), f"Embedding slice {prompt.slice}"
        )

    def _show_prediction(self, prediction, z: int) -> None:
        self.prediction = prediction if prediction is None else (prediction, z)
        ref = self.reference()
        shape = ref.shape[: ref.spatial_ndim]
        if PREVIEW not in self.viewer.layers:
            self.viewer.add_labels(
                np.zeros(shape, np.uint8), name=PREVIEW, opacity=0.6, **geometry_kwargs(ref)
            )
        layer = self.viewer.layers[PREVIEW]
        if len(shape) == 3:
            layer.data[self._preview_z] = 0
            self._preview_z = z
        else:
            layer.data[...] = 0
        if prediction is not None:
            (layer.data[z] if len(shape) == 3 else layer.data)[prediction.mask] = 1
            self.status.setText(
                f"Slice {z}: mask of {int(prediction.mask.sum())} px, score {prediction.score:.2f}"
            )
        layer.refresh()

    # -- actions ----------------------------------------------------------------------
    def target_layer(self):
        name = self.target.currentText()
        if name in self.viewer.layers:
            return self.viewer.layers[name]
        ref = self.reference()
        layer = self.viewer.add_labels(
            np.zeros(ref.shape[: ref.spatial_ndim], np.uint16),
            name="SAM labels",
            **geometry_kwargs(ref),
        )
        self.target.setCurrentText(layer.name)
        return layer

    def _apply(self, masks: dict, label: int | None = None, merge: bool = False) -> None:
        """Paste ``masks`` (slice -> mask) as one undo step (or into the last one if ``merge``)."""
        layer, label = self.target_layer(), label or self.label_id.value()
        edit = paste_slices(layer.data, masks, label, self.overwrite.isChecked())
        if merge and self.undo_stack and self.undo_stack[-1][0] is layer:
            self.undo_stack[-1][1].append(edit)
        else:
            self.undo_stack.append((layer, [edit]))
        layer.refresh()
        self.status.setText(f"Label {label}: {edit.size} voxels set (U undoes)")

    def accept(self) -> None:
        """Write the previewed mask into the target labels and clear the prompts."""
        if self.prediction is None:
            show_info("No SAM mask to accept: place a point or a box first")
            return
        pred, z = self.prediction
        self._apply({z if self.reference().spatial_ndim == 3 else None: pred.mask})
        self.clear_prompts()

    def clear_prompts(self) -> None:
        self._quiet = True
        try:
            for name in (POSITIVE, NEGATIVE, BOX):
                if name in self.viewer.layers:
                    layer = self.viewer.layers[name]
                    layer.data = np.zeros((0, layer.ndim)) if name != BOX else []
        finally:
            self._quiet = False
        self._show_prediction(None, 0)

    def next_label(self) -> None:
        self.label_id.setValue(self.label_id.value() + 1)

    def undo(self) -> None:
        if not self.undo_stack:
            show_info("Nothing to undo")
            return
        layer, edits = self.undo_stack.pop()
        for edit in reversed(edits):
            edit.undo(layer.data)
        layer.refresh()
        self.status.setText(f"Undid {sum(e.size for e in edits)} voxels")

    def propagate(self):
        """Accept the preview, then follow the current slice's label through the volume."""
        if self.reference().spatial_ndim != 3:
            show_info("Propagation needs a 3D image")
            return None
        if self.prediction is not None:
            self.accept()
        z, label = self.current_slice(), self.label_id.value()
        layer = self.target_layer()
        start = np.asarray(layer.data[z]) == label
        if not start.any():
            show_info(f"Label {label} is empty on slice {z}: nothing to propagate")
            return None
        min_score, params = self.min_score.value(), self.session_params()

        def job():
            session = self._make_session(*params)
            return session.propagate(
                z, start, label, min_score, progress=self._report, cancelled=lambda: self._cancel
            )

        def done(masks):
            self._apply(masks)
            self.status.setText(
                f"Propagated label {label} to {len(masks)} slices"
                + (" (cancelled)" if self._cancel else "")
            )

        return self._run(job, done, "Propagating")

    def box_prompts(self):
        """Box prompts from the case's boxes layer (VOC boxes, ids by box label), else "SAM box"."""
        boxes_layers = [
            ly for ly in self.viewer.layers if ly.metadata.get("medseg", {}).get("role") == "boxes"
        ]
        layer = boxes_layers[0] if boxes_layers else self.prompt_layers()[2]
        names = layer.features.get("label")
        boxes = []
        for i, (data, kind) in enumerate(zip(layer.data, layer.shape_type, strict=True)):
            if kind != "rectangle":
                continue
            lo, hi = data.min(axis=0), data.max(axis=0)
            z = int(round(lo[0])) if data.shape[1] == 3 else None
            label = str(names.iloc[i]) if names is not None else str(self.label_id.value())
            boxes.append(Box(z, lo[-2], lo[-1], hi[-2], hi[-1], label))
        if not boxes:
            raise MedsegError(
                "no boxes to segment: open a dataset with boxes or draw rectangles in 'SAM box'"
            )
        prompts, labelmap = prompts_from_boxes(boxes)
        if names is None:  # hand-drawn boxes: all get the chosen label id
            for p in prompts:
                p.label = self.label_id.value()
        return prompts, labelmap

    def segment_boxes(self):
        """One SAM mask per box, all slices in one batch (one undo step)."""
        prompts, labelmap = self.box_prompts()
        params = self.session_params()

        def job():
            session = self._make_session(*params)
            session.embed(
                sorted({p.slice for p in prompts}),
                progress=self._report,
                cancelled=lambda: self._cancel,
            )
            return [(p, session.predict(p).mask) for p in prompts if not self._cancel]

        def done(results):
            for i, (prompt, mask) in enumerate(results):
                z = prompt.slice if self.reference().spatial_ndim == 3 else None
                self._apply({z: mask}, prompt.label, merge=i > 0)
            names = ", ".join(f"{i}={n}" for i, n in labelmap.names().items() if i)
            self.status.setText(f"Segmented {len(results)} boxes ({names})")

        return self._run(job, done, "Segmenting boxes")
