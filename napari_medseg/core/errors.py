"""Errors that reach the user as one clear message, never a traceback."""

from __future__ import annotations

from pathlib import Path


class MedsegError(Exception):
    """A problem the user can act on. ``str(err)`` names the file and the problem."""

    def __init__(self, problem: str, path: str | Path | None = None):
        self.problem = problem
        self.path = Path(path) if path is not None else None
        super().__init__(f"{self.path}: {problem}" if self.path is not None else problem)


class ReadError(MedsegError):
    """A file or folder could not be read as what it claims to be."""


class LayoutError(MedsegError):
    """A folder does not match any layout we know, or breaks the one it matched."""


class WriteError(MedsegError):
    """An output could not be written (nothing half-written is left behind)."""
