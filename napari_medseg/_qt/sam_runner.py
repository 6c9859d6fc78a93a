"""The SAM panel's threads: at most one prompt decode and one long job at a time.

Prompt decodes and long jobs (embed, propagate, segment boxes) each hold a
:class:`~napari_medseg.engines.sam_requests.Ticket`; a new prompt, Q or Cancel supersedes
it, the engines poll ``ticket.cancelled`` between slices, and a result that arrives for a
superseded ticket is dropped. Threads, progress and errors go through the panels' shared
:class:`~napari_medseg._qt._jobs.Jobs`; progress shows slice counts and time left.
"""

from __future__ import annotations

from napari.utils.notifications import show_info
from qtpy.QtCore import QObject, Signal

from napari_medseg._qt._jobs import Jobs
from napari_medseg.engines.sam_requests import Eta, RequestLine


class SamRunner(QObject):
    slices_ready = Signal(list)  # slices an "Embed" job has just embedded

    def __init__(self, panel):
        super().__init__(panel)
        self.panel = panel
        self.prompts, self.jobs = RequestLine(), RequestLine()
        self.prompt_worker = self.job_worker = None
        self.order = None  # EmbedOrder of a running "Embed" job
        self.eta = Eta()
        self.closed = False
        self.threads = Jobs(self)
        self.threads.progressed.connect(self._on_progress)
        self.report = self.threads.progress  # progress(done, total) for the engines

    @property
    def busy(self) -> bool:
        return self.prompt_worker is not None or self.job_worker is not None

    def start(self, fn, done, kind: str):
        """Run ``fn`` in a thread as the ``kind`` ("prompt" or "job") worker."""
        worker = self.threads.start(
            fn,
            returned=lambda r: None if self.closed else done(r),
            failed=self._failed,
            finished=lambda: self._finished(kind),
        )
        setattr(self, f"{kind}_worker", worker)
        self.panel.cancel_button.setEnabled(True)
        return worker

    def start_job(self, work, done, what: str):
        """Run ``work(ticket)``; ``done`` gets its result unless it was cancelled meanwhile."""
        if self.job_worker is not None:
            show_info("SAM is busy: wait, or press Cancel first")
            return None
        ticket = self.jobs.issue()
        self.eta = Eta("slices")
        self.panel.progress.setValue(0)
        self.panel.progress.setFormat("")
        self.panel.embed_button.setEnabled(False)
        self.panel.status.setText(what + "…")

        def finish(result):
            if ticket.current:
                done(result)
            else:
                self.panel.status.setText(f"{what} cancelled: nothing written")

        return self.start(lambda: work(ticket), finish, "job")

    def cancel(self) -> None:
        self.prompts.supersede()
        self.jobs.supersede()

    def _on_progress(self, done: int, total: int) -> None:
        bar = self.panel.progress
        bar.setMaximum(max(1, total))
        bar.setValue(done)
        bar.setFormat(self.eta.text(done, total))

    def _failed(self, exc: BaseException) -> None:
        self.panel.status.setText(f"Failed: {exc}")
        self.panel.progress.setValue(0)

    def _finished(self, kind: str) -> None:
        setattr(self, f"{kind}_worker", None)
        if kind == "job":
            self.order = None
        self.panel.cancel_button.setEnabled(self.busy)
        if not self.closed:
            self.panel.worker_finished(kind)
