"""One SAM request at a time: tickets that newer requests supersede, the slices a user
clicks on embedded first, and a time-left estimate for long work.

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


class EmbedOrder:
    """The slices still to embed, in order; a slice the user prompts on jumps the queue.

    Shared between the embedding thread (:meth:`take`) and the GUI thread (:meth:`prefer`).
    """

    def __init__(self, todo: Iterable[int]):
        self._todo = list(dict.fromkeys(todo))
        self._lock = threading.Lock()

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

    def take(self, n: int) -> list[int]:
        """The next ``n`` slices (fewer at the end), removed from the queue."""
        with self._lock:
            batch, self._todo[:n] = self._todo[:n], []
            return batch


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
