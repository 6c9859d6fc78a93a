"""The SAM panel's long jobs: embed the case (or, in the background, a prompted slice's
neighbours), propagate a label, segment every box.

Each runs in the panel's job thread (:class:`~napari_medseg._qt.sam_runner.SamRunner`)
with slice counts and time left, and writes its result as one undo step; a cancelled job
writes nothing.
"""

from __future__ import annotations

import numpy as np
from napari.utils.notifications import show_info

from napari_medseg._qt.sam_layers import BOX
from napari_medseg.core.errors import MedsegError
from napari_medseg.core.model import Box
from napari_medseg.engines.sam_cache import EmbeddingCache
from napari_medseg.engines.sam_prefetch import embed_in_order
from napari_medseg.engines.sam_prompts import prompts_from_boxes
from napari_medseg.engines.sam_requests import EmbedOrder
from napari_medseg.layers import LayerInfo, declare_labels


class SamJobs:
    """Mixed into :class:`~napari_medseg._qt.sam_widget.SamWidget`."""

    def embed_case(self):
        """Embed every slice not cached yet; a slice the user prompts on goes first."""

        def done(result):
            n, ready = result
            total = len(self.session.stack)
            self.status.setText(
                f"{ready}/{total} slices embedded ({n} computed now, the rest from the cache)"
            )

        return self.embed_job(lambda session: session.missing(), "Embedding", done)

    def embed_job(self, todo, what: str, done, background: bool = False):
        """Embed the slices ``todo(session)`` lists, in that order (prompted slices first);
        ``done`` gets (slices embedded now, slices of the case embedded)."""
        params = self.session_params()

        def work(ticket):
            session = self._make_session(*params)
            runner = self.runner
            order = runner.order = EmbedOrder(todo(session))
            n = embed_in_order(
                session, order, runner.report, ticket.cancelled, runner.slices_ready.emit
            )
            return n, len(session.stack) - len(session.missing())

        return self.runner.start_job(work, done, what, background)

    def clear_cache(self) -> None:
        freed = EmbeddingCache().clear()
        self.status.setText(f"Cache cleared ({freed / 2**20:.1f} MiB)")
        self._show_cache()

    def propagate(self):
        """Accept the preview, then follow the current slice's label through the volume."""
        if self.reference().spatial_ndim != 3:
            show_info("Propagation needs a 3D image")
            return None
        if self.mask_ready:
            self.accept()
        z, label = self.current_slice(), self.label_id.value()
        layer = self.target_layer()
        start = np.asarray(layer.data[z]) == label
        if not start.any():
            show_info(f"Label {label} is empty on slice {z}: nothing to propagate")
            return None
        min_score, params = self.min_score.value(), self.session_params()

        def work(ticket):
            session = self._make_session(*params)
            return session.propagate(
                z, start, label, min_score, progress=self.runner.report, cancelled=ticket.cancelled
            )

        def done(masks):
            self._apply("propagate", masks, label)
            self.status.setText(f"Propagated label {label} to {len(masks)} slices (U undoes)")

        return self.runner.start_job(work, done, "Propagating")

    def box_prompts(self):
        """Box prompts from the case's boxes layer (VOC boxes, ids by box label), else "SAM box"."""
        boxes_layers = [ly for ly in self.viewer.layers if LayerInfo.from_layer(ly).role == "boxes"]
        layer = boxes_layers[0] if boxes_layers else self.layers[BOX]
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
            raise MedsegError("no boxes to segment: drag boxes with the Box tool first")
        prompts, labelmap = prompts_from_boxes(boxes)
        if names is None:  # hand-drawn boxes: all get the chosen label id
            for p in prompts:
                p.label = self.label_id.value()
        return prompts, labelmap

    def segment_boxes(self):
        """One SAM mask per box, all slices in one batch (one undo step)."""
        prompts, labelmap = self.box_prompts()
        params = self.session_params()
        three_d = self.reference().spatial_ndim == 3

        def work(ticket):
            session = self._make_session(*params)
            session.embed(
                sorted({p.slice for p in prompts}),
                progress=self.runner.report,
                cancelled=ticket.cancelled,
            )
            return [(p, session.predict(p).mask) for p in prompts if not ticket.cancelled()]

        def done(results):
            declare_labels(self.target_layer(), [p.label for p, _ in results], labelmap.names())
            for i, (prompt, mask) in enumerate(results):
                self._apply(
                    "segment boxes",
                    {prompt.slice if three_d else None: mask},
                    prompt.label,
                    merge=i > 0,
                )
            names = ", ".join(f"{i}={n}" for i, n in labelmap.names().items() if i)
            self.status.setText(f"Segmented {len(results)} boxes ({names})")

        return self.runner.start_job(work, done, "Segmenting boxes")
