"""SAM dock widget: click points or drag a box on the image, accept the mask into a label.

As soon as a case is open the prompt layers exist ("SAM positive", "SAM negative" points and
a "SAM box" rectangle, see :mod:`napari_medseg._qt.sam_layers`) and the positive-point tool
is active; the mode buttons or the keys , . / switch between them. Every finished prompt
decodes the current slice in a worker thread (embedding that slice first when it is not
cached) into the "SAM preview" layer, then the slices around it are embedded in the
background (:mod:`napari_medseg._qt.sam_prefetch_job`). Only the latest prompt's result is
shown, and a new prompt, Q or Cancel discards what is still in flight. Accepting writes
the mask into the target Labels layer under the chosen label id (named and coloured in its
labelmap), without touching other labels unless asked. Keys while the panel is open:
K accept, Q clear prompts, N next label, G propagate through the volume, U undo, Shift+U redo.
SAM's input channels follow the visible image layers (see
:mod:`napari_medseg.engines.sam_channels`). The work itself is done by
:mod:`napari_medseg.engines.sam` (the same code as the CLI).
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import numpy as np
from napari.layers import Image, Labels
from napari.utils.notifications import show_info
from qtpy.QtCore import QEvent, QTimer
from qtpy.QtWidgets import QFileDialog, QWidget

from napari_medseg._qt._util import report_error
from napari_medseg._qt.sam_jobs import SamJobs
from napari_medseg._qt.sam_layers import BOX, NEGATIVE, POSITIVE, PREVIEW, SamLayers
from napari_medseg._qt.sam_prefetch_job import SamPrefetch
from napari_medseg._qt.sam_runner import SamRunner
from napari_medseg._qt.sam_ui import build_ui
from napari_medseg.core.errors import MedsegError
from napari_medseg.core.model import Volume
from napari_medseg.engines.sam_cache import EmbeddingCache
from napari_medseg.engines.sam_channels import seen_layers, view_mapping
from napari_medseg.engines.sam_edit import paste_slices
from napari_medseg.engines.sam_prompts import prompt_on_slice
from napari_medseg.engines.sam_settings import load_settings, save_settings
from napari_medseg.engines.sam_undo import UndoStack
from napari_medseg.engines.windowing import ChannelSpec, source_channels
from napari_medseg.layers import LayerInfo, declare_labels, layer_labels, layer_volume

if TYPE_CHECKING:
    import napari

KEYS = {
    "k": "accept",
    "q": "clear_prompts",
    "n": "next_label",
    "g": "propagate",
    "u": "undo",
    "Shift-U": "redo",
    ",": "point_mode",
    ".": "negative_mode",
    "/": "box_mode",
}
VIEW_EVENTS = ("visible", "opacity", "blending")


class SamWidget(SamJobs, SamPrefetch, QWidget):
    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.layers = SamLayers(napari_viewer)
        self.session = None  # SamSession / Sam2Session for the current images and mapping
        self._session_key = None
        self.prediction = None  # (Prediction, slice) shown in the preview layer
        self._shown = None  # the Ticket of the prompt that prediction answers
        self.undo_stack = UndoStack()
        self.runner = SamRunner(self)
        self._rerun = False  # prompts changed while a decode was running
        self._waiting = None  # slice the running "Embed" does next for the latest prompt
        self._quiet = False  # the panel itself is editing the prompt layers
        self._sync_pending = False
        self._plain = weakref.WeakKeyDictionary()  # plain image layer -> (data, Volume)
        self._docked = self._closed = False
        settings = load_settings()
        build_ui(
            self,
            settings.get("sam_checkpoint", ""),
            settings.get("sam_device", "auto"),
            settings.get("sam_background_embed", True),
        )
        self._wire()
        self._bound = {}
        for key, action in KEYS.items():
            func = self._bound[key] = lambda _v, a=action: self._safe(getattr(self, a))
            self.viewer.bind_key(key, func, overwrite=True)
        self._sync()

    def _wire(self) -> None:
        self.checkpoint.editingFinished.connect(
            lambda: save_settings(sam_checkpoint=self.checkpoint.text() or None)
        )
        self.browse.clicked.connect(self._browse)
        self.device.currentTextChanged.connect(lambda d: save_settings(sam_device=d))
        self.wire_prefetch()
        for mode, button in self.mode_buttons.items():
            button.clicked.connect(lambda _c=False, m=mode: self._safe(lambda: self.set_mode(m)))
        self.label_id.valueChanged.connect(self._show_label)
        self.target.currentTextChanged.connect(self._show_label)
        for box in self.channel_boxes + self.window_boxes:
            box.activated.connect(lambda _i: self.follow_view.setChecked(False))
        self.follow_view.toggled.connect(lambda _on: self._refresh_channels())
        self.embed_button.clicked.connect(lambda: self._safe(self.embed_case))
        self.cancel_button.clicked.connect(self.cancel)
        self.clear_cache_button.clicked.connect(self.clear_cache)
        for method, button in self.action_buttons.items():
            button.clicked.connect(lambda _c=False, m=method: self._safe(getattr(self, m)))
        self.runner.slices_ready.connect(self._on_slices_ready)
        self.viewer.layers.events.inserted.connect(self._layers_changed)
        self.viewer.layers.events.removed.connect(self._layers_changed)
        self.viewer.layers.selection.events.active.connect(self._active_changed)
        self.viewer.camera.events.zoom.connect(self.layers.fit_sizes)
        self._show_cache()

    # -- docking and closing ------------------------------------------------------------
    def event(self, e) -> bool:
        """napari closes a dock by unparenting its widget: that is when the panel lets go."""
        if e.type() == QEvent.ParentChange:
            if self.parent() is not None:
                self._docked = True
            elif self._docked:
                self.close_panel()
        return super().event(e)

    def close_panel(self) -> None:
        """Unbind the keys and stop following the viewer; work in flight is discarded."""
        if self._closed:
            return
        self._closed = self.runner.closed = True
        self.runner.cancel()
        for key, func in self._bound.items():
            if _bound_to(self.viewer, key, func):
                self.viewer.bind_key(key, None)
        self.viewer.layers.events.inserted.disconnect(self._layers_changed)
        self.viewer.layers.events.removed.disconnect(self._layers_changed)
        self.viewer.layers.selection.events.active.disconnect(self._active_changed)
        self.viewer.camera.events.zoom.disconnect(self.layers.fit_sizes)
        for layer in self.viewer.layers:
            for name in VIEW_EVENTS:
                getattr(layer.events, name).disconnect(self._view_changed)
            if layer.name in (POSITIVE, NEGATIVE, BOX):
                layer.events.data.disconnect(self._prompt_changed)

    def closeEvent(self, event) -> None:
        self.close_panel()
        super().closeEvent(event)

    # -- following the viewer ------------------------------------------------------------
    def _layers_changed(self, event=None) -> None:
        """Layers come in batches (a case opens): act once the batch is in."""
        layer = getattr(event, "value", None)
        if isinstance(layer, Image):
            for name in VIEW_EVENTS:
                getattr(layer.events, name).connect(self._view_changed)
        if not self._sync_pending:
            self._sync_pending = True
            QTimer.singleShot(0, self._sync)

    def _view_changed(self, _event=None) -> None:
        if self.follow_view.isChecked():
            self._refresh_channels()

    def _sync(self) -> None:
        """Channels and targets from the layers; prompt layers ready on the image's grid."""
        self._sync_pending = False
        if self._closed:
            return
        self._refresh_targets()
        self._refresh_channels()
        if not self._image_layers():
            return
        ref = self.reference()
        info = LayerInfo.from_layer(self._ref_layer())
        if self.layers.ensure(ref, (info.root, info.case)):
            for layer in self.layers.prompts():
                layer.events.data.connect(self._prompt_changed)
            self.runner.prompts.supersede()
            self.prediction = None
            self.set_mode("point")  # a new case: ready for the first click
            self.status.setText(
                "Click the object on the image (positive point); . negative, / box, K accepts"
            )

    def _refresh_targets(self) -> None:
        current = self.target.currentText()
        labels = [
            ly.name for ly in self.viewer.layers if isinstance(ly, Labels) and ly.name != PREVIEW
        ]
        self.target.blockSignals(True)
        self.target.clear()
        self.target.addItems(labels)
        if current in labels:
            self.target.setCurrentText(current)
        self.target.blockSignals(False)
        self._show_label()

    def _refresh_channels(self) -> None:
        """Fill the channel choices; by default SAM sees what the user sees."""
        sources = self._sources()
        names = [s.name for s in sources]
        follow = self.follow_view.isChecked() and names
        if follow:
            seen = {id(self._volume(ly)) for ly in seen_layers(self._image_layers())}
            shown = [s for s in sources if id(s.volume) in seen] or sources
            wanted = [m.source for m in view_mapping(shown)]
        else:
            wanted = [b.currentText() for b in self.channel_boxes]
        for box, name in zip(self.channel_boxes, wanted, strict=False):
            box.blockSignals(True)
            box.clear()
            box.addItems(names)
            box.setCurrentText(name if name in names else (names[0] if names else ""))
            box.blockSignals(False)
        chosen = ", ".join(b.currentText() for b in self.channel_boxes)
        how = "the visible layers" if follow else "your choice"
        self.channels_label.setText(f"SAM sees {chosen} ({how})" if names else "")
        self.check_prefetch()

    def _active_changed(self, event) -> None:
        """The active Labels layer becomes the target; the mode buttons show the active tool."""
        layer = event.value
        if isinstance(layer, Labels) and layer.name != PREVIEW:
            if self.target.findText(layer.name) < 0:  # just added: the list follows later
                self._refresh_targets()
            self.target.setCurrentText(layer.name)
        mode = self.layers.mode()
        self.mode_group.setExclusive(False)
        for name, button in self.mode_buttons.items():
            button.setChecked(name == mode)
        self.mode_group.setExclusive(True)

    def _show_label(self, _value=None) -> None:
        """Name and colour of the label id the next accept writes."""
        name = self.target.currentText()
        label = self.label_id.value()
        if name not in self.viewer.layers:
            self.label_name.setText(f"label_{label} (new layer)")
            return
        lab = layer_labels(self.viewer.layers[name]).ensure([label])[label]
        r, g, b = lab.color
        self.label_name.setText(f'<span style="color: rgb({r},{g},{b})">&#9632;</span> {lab.name}')

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "SAM checkpoint", "", "PyTorch (*.pth *.pt)")
        if path:
            self.checkpoint.setText(path)
            save_settings(sam_checkpoint=path)

    def _show_cache(self) -> None:
        self.cache_label.setText(f"Cache: {EmbeddingCache().describe()}")

    # -- session --------------------------------------------------------------------------
    def _image_layers(self) -> list:
        return [ly for ly in self.viewer.layers if isinstance(ly, Image)]

    def _volume(self, layer) -> Volume:
        """The layer's Volume; a plain napari layer's wrapper is kept while its data is."""
        if LayerInfo.from_layer(layer).opened:
            return layer_volume(layer)
        kept = self._plain.get(layer)
        if kept is None or kept[0] is not layer.data:
            kept = self._plain[layer] = (layer.data, layer_volume(layer))
        return kept[1]

    def _sources(self):
        return source_channels([self._volume(ly) for ly in self._image_layers()])

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

    def _ref_layer(self):
        ref = self.reference()
        return next(ly for ly in self._image_layers() if self._volume(ly) is ref)

    def session_params(self) -> tuple:
        """What the session depends on, read from the widgets (on the GUI thread)."""
        if not self.checkpoint.text():
            raise MedsegError("choose a SAM checkpoint file first (Checkpoint: Browse…)")
        sources = self._sources()
        return (
            self.checkpoint.text(),
            self.device.currentText(),
            self.variant.currentData(),
            tuple(self.mapping()),
            tuple(id(s.volume) for s in sources),
        ), sources

    def _session_ready(self, key) -> bool:
        return self.session is not None and self._session_key == key

    def _make_session(self, key, sources):
        """Load the model and window the images (in a worker: both can take seconds)."""
        from napari_medseg.engines.sam_open import open_session
        from napari_medseg.engines.windowing import sam_stack

        if self._session_ready(key):
            return self.session
        checkpoint, device, variant, mapping, _ = key
        stack, windows = sam_stack(sources, list(mapping))
        meta = {"channels": windows}
        self.session = open_session(checkpoint, device, variant, stack, EmbeddingCache(), meta)
        self._session_key = key
        return self.session

    def current_slice(self) -> int:
        if self.reference().spatial_ndim == 2:
            return 0
        return int(round(self._ref_layer().world_to_data(self.viewer.dims.point)[0]))

    # -- threads (see sam_runner) -------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.runner.busy

    def worker_finished(self, kind: str, job=None) -> None:
        """A thread ended (``job``: the long job that ran in it, see sam_runner)."""
        self._show_cache()
        if kind != "job":
            if self._rerun:
                self._rerun = False
                self._safe(self.update_preview)
            return
        if self.runner.jobs.running is None:
            self.embed_button.setEnabled(True)
        if self._waiting is not None:  # its slice was still queued when the job stopped
            self._waiting = None
            self._safe(self.update_preview)
        elif job is not None and job.completed and not job.background:
            self._safe(lambda: self.prefetch_neighbours(self.current_slice()))

    def _safe(self, action):
        """Run a button or key action; a MedsegError becomes a notification, not a traceback."""
        try:
            return action()
        except MedsegError as exc:
            self.status.setText(str(exc))
            report_error(exc)
            return None

    def cancel(self) -> None:
        """Stop everything in flight; results that still arrive are discarded."""
        self.runner.cancel()
        self._rerun, self._waiting = False, None
        self.status.setText("Cancelled")

    @property
    def mask_ready(self) -> bool:
        """Whether the preview answers the prompts as they are now (K may write it)."""
        return self.prediction is not None and self._shown is not None and self._shown.current

    # -- prompts ------------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        self.layers.set_mode(mode)

    def point_mode(self) -> None:
        self.set_mode("point")

    def negative_mode(self) -> None:
        self.set_mode("negative")

    def box_mode(self) -> None:
        self.set_mode("box")

    def prompt_layers(self):
        """The positive, negative and box layers (made on the image's grid if missing)."""
        self._sync()
        return self.layers.prompts()

    def _prompt_changed(self, event=None) -> None:
        action = str(getattr(event, "action", ""))
        if self._quiet or action.endswith("ing"):  # adding/changing: the drag is not over
            return
        self._safe(self.update_preview)

    def current_prompt(self):
        pos, neg, box = self.layers.prompts()
        rects = [d for d, t in zip(box.data, box.shape_type, strict=True) if t == "rectangle"]
        return prompt_on_slice(
            self.current_slice(), self.label_id.value(), pos.data, neg.data, rects
        )

    def update_preview(self):
        """Decode the latest prompt in a worker (embedding its slice first when needed)."""
        ticket = self.runner.prompts.issue()  # whatever was in flight is now stale
        self._waiting = None
        prompt = self.current_prompt()
        z = prompt.slice if self.reference().spatial_ndim == 3 else None
        if prompt.empty:
            self.prediction = None
            self.layers.show_preview(None, z)
            return None
        if self.runner.prompt_worker is not None:
            self._rerun = True
            return None
        params = self.session_params()
        if self.runner.order is not None and self.runner.order.wants(prompt.slice):
            self._waiting = prompt.slice  # _on_slices_ready decodes it
            self.status.setText(f"Embedding slice {prompt.slice} first…")
            return None
        ready = self._session_ready(params[0]) and self.session.is_embedded(prompt.slice)
        self.status.setText("Decoding…" if ready else f"Embedding slice {prompt.slice}…")

        def work():
            session = self._make_session(*params)
            if ticket.cancelled():
                return None
            session.embedding(prompt.slice)  # computed and cached when missing
            return None if ticket.cancelled() else session.predict(prompt)

        def show(pred):
            if pred is None or not ticket.current:
                return  # superseded: a newer prompt, Q or Cancel
            self.prediction, self._shown = (pred, z), ticket
            self.layers.show_preview(pred.mask, z)
            where = f"Slice {prompt.slice}: " if z is not None else ""
            self.status.setText(
                f"{where}mask of {int(pred.mask.sum())} px, score {pred.score:.2f} (K accepts)"
            )
            if z is not None:
                self._safe(lambda: self.prefetch_neighbours(z))

        return self.runner.start(work, show, "prompt")

    def _on_slices_ready(self, slices: list) -> None:
        if self._waiting in slices and not self._closed:
            self._waiting = None
            self._safe(self.update_preview)

    def clear_prompts(self) -> None:
        """Remove every prompt; a mask still being computed for them is discarded."""
        self.runner.prompts.supersede()
        self._rerun, self._waiting = False, None
        self._quiet = True
        try:
            for layer in self.layers.prompts():
                layer.data = np.zeros((0, layer.ndim)) if layer.name != BOX else []
        finally:
            self._quiet = False
        self.prediction = None
        self.layers.show_preview(None, None)

    # -- edits ------------------------------------------------------------------------------
    def target_layer(self):
        name = self.target.currentText()
        if name in self.viewer.layers:
            return self.viewer.layers[name]
        layer = self.layers.result_layer(self.reference())
        self._refresh_targets()
        self.target.setCurrentText(layer.name)
        return layer

    def _apply(self, what: str, masks: dict, label: int | None = None, merge: bool = False):
        """Paste ``masks`` (slice -> mask) as one undo step (or into the last one if ``merge``)."""
        layer, label = self.target_layer(), label or self.label_id.value()
        declare_labels(layer, [label])
        edit = paste_slices(layer.data, masks, label, self.overwrite.isChecked())
        if merge and self.undo_stack.done and self.undo_stack.done[-1].target is layer:
            self.undo_stack.done[-1].edits.append(edit)
        else:
            self.undo_stack.push(layer, what, [edit])
        layer.refresh()
        self._show_label()
        self.status.setText(f"Label {label}: {edit.size} voxels set (U undoes)")

    def accept(self) -> None:
        """Write the previewed mask into the target labels and clear the prompts."""
        if not self.mask_ready:
            show_info("No SAM mask to accept yet: click on the image and wait for the preview")
            return
        pred, z = self.prediction
        self._apply("accept", {z: pred.mask})
        self.clear_prompts()

    def next_label(self) -> None:
        self.label_id.setValue(self.label_id.value() + 1)

    def undo(self) -> None:
        self._stepped(self.undo_stack.undo(), "undo", "Undid")

    def redo(self) -> None:
        self._stepped(self.undo_stack.redo(), "redo", "Redid")

    def _stepped(self, step, verb: str, done: str) -> None:
        if step is None:
            show_info(f"Nothing to {verb}")
            return
        step.target.refresh()
        self.status.setText(f"{done} {step.what} ({step.size} voxels)")


def _bound_to(viewer, key: str, func) -> bool:
    """Whether ``key`` is still bound to our ``func`` (napari stores normalised key names)."""
    from napari.utils.key_bindings import coerce_keybinding

    return viewer.keymap.get(coerce_keybinding(key)) is func
