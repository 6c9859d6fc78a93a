"""Small Qt helpers shared by the dock widgets."""

from __future__ import annotations

from napari.utils.notifications import show_error

from napari_medseg.core.errors import MedsegError


def report_error(exc: BaseException) -> None:
    """Show a worker's error as one notification line: the file and the problem, no traceback."""
    if isinstance(exc, MedsegError):
        show_error(str(exc))
    else:
        show_error(f"{type(exc).__name__}: {exc}")
