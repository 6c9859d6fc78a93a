"""The SAM panel's background embedding: a prompted slice's neighbours, outward.

After a prompt is decoded on slice ``z`` of a 3D case (or after propagate, segment boxes or
"Embed this case" ends), the panel embeds the slices not cached yet in the order
``z+1, z-1, z+2, ...`` (:func:`~napari_medseg.engines.sam_prefetch.outward`) as a background
job: same thread, progress bar and queue as "Embed this case", so a prompt on a slice still
queued jumps the queue and a job the user starts takes over from it. It stops when the case,
model, checkpoint, device or channels change, on Cancel, when the panel closes, and when
"Embed neighbours in the background" is unticked (a saved setting).
"""

from __future__ import annotations

from napari_medseg.core.errors import MedsegError
from napari_medseg.engines.sam_prefetch import outward
from napari_medseg.engines.sam_settings import save_settings

NEIGHBOURS = "Embedding neighbours"


class SamPrefetch:
    """Mixed into :class:`~napari_medseg._qt.sam_widget.SamWidget`."""

    _prefetch_key = None  # the session key the background job embeds for

    def wire_prefetch(self) -> None:
        for signal in (
            self.checkpoint.textChanged,
            self.variant.currentIndexChanged,
            self.device.currentTextChanged,
            *(b.currentTextChanged for b in self.channel_boxes + self.window_boxes),
        ):
            signal.connect(self.check_prefetch)
        self.background_embed.toggled.connect(self._background_toggled)

    def prefetch_neighbours(self, z: int):
        """Embed slice ``z``'s neighbours in the background, when on and SAM has no job.

        Needs the session a prompt or job has opened (no model is loaded for this). While the
        background job runs, its queue is re-sorted around ``z`` instead.
        """
        if self._closed or not self.background_embed.isChecked():
            return None
        if self.reference().spatial_ndim != 3:
            return None
        key = self.session_params()[0]
        if not self._session_ready(key):
            return None
        order = outward(z, len(self.session.stack))
        if self.runner.jobs.running is not None:
            if self.runner.background and self.runner.order is not None:
                self.runner.order.follow(order)
            return None
        todo = self.session.missing(order)
        if not todo:
            return None
        self._prefetch_key = key

        def done(result):
            _n, ready = result
            self.progress.setFormat(f"{ready}/{len(self.session.stack)} slices embedded")

        return self.embed_job(lambda _session: todo, NEIGHBOURS, done, background=True)

    def check_prefetch(self, _value=None) -> None:
        """Stop the background job once what it embeds for has changed (or it was turned off)."""
        if not self.runner.background:
            return
        try:
            key = self.session_params()[0]
        except MedsegError:
            key = None
        if key != self._prefetch_key or not self.background_embed.isChecked():
            self.runner.jobs.stop_background()

    def _background_toggled(self, on: bool) -> None:
        save_settings(sam_background_embed=on)
        if on:
            self._safe(lambda: self.prefetch_neighbours(self.current_slice()))
        else:
            self.check_prefetch()
