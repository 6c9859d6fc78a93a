"""One SAM request at a time: tickets that newer requests supersede, one long job at a time
(a background job giving way to the user's), the slices a user clicks on embedded first, and
a time-left estimate for long work.

Qt-free bookkeeping for the SAM panel; the panel runs the work in threads and asks these
objects whether a result still matters.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass


class RequestLine:
    """Requests of one kind; issuing a new one (or :meth:`supersede`) makes older ones stale."""

    def __init__(self) -> None:
        self.generation = 0

    def issue(self) -> Ticket:
        self.generation += 1
        return Ticket(self, self.generation)

    def supersede(self) -> None:
        self.generation += 1


@dataclass(frozen=True)
class Ticket:
    """One request's claim; its result is used only while it is :attr:`current`."""

    line: RequestLine
    generation: int

    @property
    def current(self) -> bool:
        return self.line.generation == self.generation

    def cancelled(self) -> bool:
        """The ``cancelled()`` callable the engines poll between slices."""
        return not self.current


@dataclass(eq=False)
class Job:
    """A long SAM job: ``work(ticket)`` in the job thread, ``done(result)`` on the GUI thread."""

    work: Callable
    done: Callable
    what: str
    background: bool = False
    ticket: Ticket | None = None
    completed: bool = False  # ``done`` was called: it ran to its end, not cancelled


class JobLine:
    """At most one long job running, and one waiting for it.

    A foreground job asked for while a background job runs takes over: the background job's
    ticket is superseded (the engines stop it after the current slice) and the new job waits
    for its thread to end, so two encoders never run at once. A background job never waits,
    and a foreground job never displaces another (the user presses Cancel first).
    """

    def __init__(self) -> None:
        self.line = RequestLine()
        self.running: Job | None = None
        self.waiting: Job | None = None

    def submit(self, job: Job) -> str:
        """``"start"`` (run it now), ``"wait"`` (:meth:`finished` hands it over) or ``"busy"``."""
        if self.running is None:
            self.running = job
        elif job.background or not self.running.background or self.waiting is not None:
            return "busy"
        else:
            self.waiting = job
        job.ticket = self.line.issue()  # supersedes the running job, if any
        return "start" if self.running is job else "wait"

    def finished(self) -> Job | None:
        """The running job's thread has ended: the waiting job, now running, if any."""
        self.running, self.waiting = self.waiting, None
        return self.running

    def cancel(self) -> None:
        """Cancel or close: the running job stops at its next check; the waiting one never runs."""
        self.line.supersede()
        self.waiting = None

    def stop_background(self) -> None:
        """Stop a running background job (its case, model or channels changed)."""
        if self.running is not None and self.running.background and self.waiting is None:
            self.line.supersede()


class EmbedOrder:
    """The slices still to embed, in order; a slice the user prompts on jumps the queue.

    Shared between the embedding thread (:meth:`take`) and the GUI thread (:meth:`prefer`).
    """

    def __init__(self, todo: Iterable[int]):
        self._todo = list(dict.fromkeys(todo))
        self._lock = threading.Lock()
        self.working: list[int] = []  # the batch being embedded now

    def __len__(self) -> int:
        return len(self._todo)

    def prefer(self, z: int) -> bool:
        """Move slice ``z`` to the front; False when it is not queued (done or never asked)."""
        with self._lock:
            if z not in self._todo:
                return False
            self._todo.remove(z)
            self._todo.insert(0, z)
            return True

    def wants(self, z: int) -> bool:
        """Whether slice ``z`` is still to come: queued (now first) or being embedded."""
        return self.prefer(z) or z in self.working

    def follow(self, order: Iterable[int]) -> None:
        """Re-sort the queue by ``order`` (the user moved on); slices not in it go last."""
        rank = {z: i for i, z in enumerate(order)}
        with self._lock:
            self._todo.sort(key=lambda z: rank.get(z, len(rank)))

    def take(self, n: int) -> list[int]:
        """The next ``n`` slices (fewer at the end), removed from the queue; they are
        :attr:`working` until :meth:`done`."""
        with self._lock:
            batch, self._todo[:n] = self._todo[:n], []
            self.working = batch
            return batch

    def done(self) -> None:
        """The batch :meth:`take` gave is embedded (call before announcing it)."""
        self.working = []


class Eta:
    """``"12/155 slices, about 3 min left"`` from the rate so far."""

    def __init__(self, unit: str = "slices", clock: Callable[[], float] = time.monotonic):
        self.unit, self.clock, self.start = unit, clock, clock()

    def text(self, done: int, total: int) -> str:
        head = f"{done}/{total} {self.unit}"
        if done <= 0 or done >= total:
            return head
        left = (self.clock() - self.start) / done * (total - done)
        return f"{head}, about {_duration(left)} left"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"
