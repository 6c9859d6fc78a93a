"""One way for a panel to run long work off the GUI thread: progress, cancel and errors.

The core takes plain callables, ``progress(done, total)`` and ``cancelled() -> bool``.
:class:`Jobs` hands a panel both, carries progress to the GUI thread through a queued signal,
keeps running workers alive, and shows every error as one notification line (no traceback).
Core loops that can stop with a partial result (training, SAM embedding and propagation)
poll ``cancelled()``; any other work stops at its next ``progress`` call, which raises
:class:`Cancelled` once the user cancelled.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from napari.qt.threading import create_worker
from qtpy.QtCore import QObject, Signal

from napari_medseg._qt._util import report_error


class Cancelled(Exception):
    """Raised by :meth:`Jobs.progress` after :meth:`Jobs.cancel`; not an error for the user."""


class Jobs(QObject):
    """A panel's workers. ``bar``, when given, follows :attr:`progressed`."""

    progressed = Signal(int, int)  # (done, total), emitted from the worker, delivered queued

    def __init__(self, parent: QObject | None = None, bar=None):
        super().__init__(parent)
        self._workers: list = []
        self._cancel = threading.Event()
        if bar is not None:
            self.progressed.connect(lambda done, total: _show(bar, done, total))

    # -- for the core, on the worker thread ------------------------------------------------
    def progress(self, done: int, total: int) -> None:
        if self.cancelled():
            raise Cancelled
        self.progressed.emit(done, total)

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    # -- for the panel, on the GUI thread --------------------------------------------------
    @property
    def busy(self) -> bool:
        return any(w.is_running for w in self._workers)

    def cancel(self) -> None:
        self._cancel.set()

    def start(
        self,
        fn: Callable,
        *args,
        returned: Callable | None = None,
        failed: Callable[[BaseException], None] | None = None,
        finished: Callable[[], None] | None = None,
        yielded: Callable | None = None,
        **kwargs,
    ):
        """Run ``fn(*args, **kwargs)`` in a worker thread, connected before it starts.

        An error (not a cancel) is shown to the user; ``failed`` only updates the panel. Starting when no job
        runs clears an earlier cancel. Returns the worker (tests wait on it).
        """
        if not self.busy:
            self._cancel.clear()

        def errored(exc: BaseException) -> None:
            if failed is not None:
                failed(exc)
            if not isinstance(exc, Cancelled):
                report_error(exc)

        connect = {
            "returned": returned,
            "errored": errored,
            "finished": finished,
            "yielded": yielded,
        }
        worker = create_worker(
            fn, *args, _connect={k: v for k, v in connect.items() if v is not None}, **kwargs
        )
        self._workers = [w for w in self._workers if w.is_running] + [worker]
        return worker


def _show(bar, done: int, total: int) -> None:
    bar.setRange(0, max(total, 1))
    bar.setValue(done)
