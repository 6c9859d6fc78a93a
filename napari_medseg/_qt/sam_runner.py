"""The SAM panel's threads: at most one prompt decode and one long job at a time.

Prompt decodes and long jobs (embed, propagate, segment boxes, the background embedding of a
prompted slice's neighbours) each hold a :class:`~napari_medseg.engines.sam_requests.Ticket`;
a new prompt, Q or Cancel supersedes it, the engines poll ``ticket.cancelled`` between
slices, and a result that arrives for a superseded ticket is dropped. A job the user asks for
while the background job runs takes over from it (:class:`~napari_medseg.engines.sam_requests.JobLine`):
it starts once the background thread has finished its slice. Threads, progress and errors
go through the panels' shared :class:`~napari_medseg._qt._jobs.Jobs`; progress shows slice
counts and time left.
"""

from __future__ import annotations

from napari.utils.notifications import show_info
from qtpy.QtCore import QObject, Signal

from napari_medseg._qt._jobs import Jobs
from napari_medseg.engines.sam_requests import Eta, Job, JobLine, RequestLine


class SamRunner(QObject):
    slices_ready = Signal(list)  # slices an embedding job has just embedded

    def __init__(self, panel):
        super().__init__(panel)
        self.panel = panel
        self.prompts, self.jobs = RequestLine(), JobLine()
        self.prompt_worker = self.job_worker = None
        self.order = None  # EmbedOrder of a running embedding job
        self.eta, self.title = Eta(), ""
        self.closed = False
        self.threads = Jobs(self)
        self.threads.progressed.connect(self._on_progress)
        self.report = self.threads.progress  # progress(done, total) for the engines

    @property
    def busy(self) -> bool:
        return self.prompt_worker is not None or self.job_worker is not None

    @property
    def background(self) -> bool:
        """Whether the running job is the background one (and nothing waits for it)."""
        job = self.jobs.running
        return job is not None and job.background and self.jobs.waiting is None

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

    def start_job(self, work, done, what: str, background: bool = False):
        """Run ``work(ticket)``; ``done`` gets its result unless it was cancelled meanwhile.

        Returns the worker, the :class:`Job` when it waits for the background job to stop,
        or None when SAM is busy (a background job is then simply not started).
        """
        job = Job(work, done, what, background)
        verdict = self.jobs.submit(job)
        if verdict == "busy":
            if not background:
                show_info("SAM is busy: wait, or press Cancel first")
            return None
        if not background:
            self.panel.embed_button.setEnabled(False)
        if verdict == "wait":
            self.panel.status.setText(f"{what} (once the slice being embedded is done)…")
            return job
        return self._launch(job)

    def _launch(self, job: Job):
        self.eta, self.title = Eta("slices"), f"{job.what} " if job.background else ""
        self.panel.progress.setValue(0)
        self.panel.progress.setFormat(self.title)
        if not job.background:
            self.panel.status.setText(job.what + "…")

        def finish(result):
            if job.ticket.current:
                job.completed = True
                job.done(result)
            elif job.background:
                self.panel.progress.setFormat(f"{job.what}: stopped")
            else:
                self.panel.status.setText(f"{job.what} cancelled: nothing written")

        return self.start(lambda: job.work(job.ticket), finish, "job")

    def cancel(self) -> None:
        self.prompts.supersede()
        self.jobs.cancel()

    def _on_progress(self, done: int, total: int) -> None:
        bar = self.panel.progress
        bar.setMaximum(max(1, total))
        bar.setValue(done)
        bar.setFormat(self.title + self.eta.text(done, total))

    def _failed(self, exc: BaseException) -> None:
        self.panel.status.setText(f"Failed: {exc}")
        self.panel.progress.setValue(0)

    def _finished(self, kind: str) -> None:
        setattr(self, f"{kind}_worker", None)
        ended = None
        if kind == "job":
            self.order = None
            ended, waiting = self.jobs.running, self.jobs.finished()
            if waiting is not None and not self.closed:
                self._launch(waiting)
        self.panel.cancel_button.setEnabled(self.busy)
        if not self.closed:
            self.panel.worker_finished(kind, ended)
