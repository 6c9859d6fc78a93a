"""Case locks: a case open in one review session is locked for every other one.

``<out>/locks/<case id>.lock`` is created with ``O_EXCL`` (atomic: exactly one session wins)
and holds the owner, pid, host and a heartbeat time. A lock whose heartbeat is older than
``stale_after`` seconds, or whose process is gone on this host, is stale and may be taken
over: its holder crashed or was killed.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from napari_medseg.core.atomic import write_text
from napari_medseg.core.errors import MedsegError
from napari_medseg.core.safe_names import case_file

DEFAULT_STALE_AFTER = 300.0


class LockedError(MedsegError):
    """The case is open in another session."""


class LockInfo(BaseModel):
    """What a lock file holds."""

    owner: str
    pid: int
    host: str
    token: str
    heartbeat: float = Field(allow_inf_nan=False)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class CaseLock:
    """A held lock; call :meth:`heartbeat` while the case stays open and :meth:`release` after."""

    path: Path
    owner: str
    token: str

    def info(self) -> dict:
        return {
            "owner": self.owner,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "token": self.token,
            "heartbeat": time.time(),
        }

    def held(self) -> bool:
        """Whether the file on disk is still ours (a stale-lock takeover may have replaced it)."""
        current = read_lock(self.path)
        return current is not None and current.get("token") == self.token

    def heartbeat(self) -> None:
        if not self.held():
            raise LockedError("this session's lock on the case was taken over", self.path)
        write_text(self.path, json.dumps(self.info()))

    def release(self) -> None:
        if self.held():
            self.path.unlink(missing_ok=True)


def read_lock(path: Path) -> dict | None:
    """The lock's fields, or None when the file is absent, empty, torn or malformed."""
    try:
        text = path.read_text(encoding="utf-8")
        return LockInfo.model_validate_json(text).model_dump()
    except (OSError, UnicodeDecodeError, ValidationError):
        return None


def is_stale(info: dict | None, stale_after: float, path: Path | None = None) -> bool:
    """Whether the lock may be taken over. An unreadable lock (being written this instant, or
    torn by a crash between create and write) is stale once the file is older than
    ``stale_after``."""
    if info is None:
        try:
            return path is not None and time.time() - path.stat().st_mtime > stale_after
        except OSError:
            return False
    if time.time() - info["heartbeat"] > stale_after:
        return True
    return info["host"] == socket.gethostname() and not _pid_alive(info["pid"])


def acquire(
    locks_dir: str | Path, case_id: str, owner: str, stale_after: float = DEFAULT_STALE_AFTER
) -> CaseLock:
    """Lock ``case_id`` for ``owner`` or raise :class:`LockedError` naming the holder."""
    path = case_file(locks_dir, case_id, ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = CaseLock(path, owner, f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}")
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            info = read_lock(path)
            if not is_stale(info, stale_after, path):
                who = (
                    f"{info.get('owner')} (pid {info.get('pid')} on {info.get('host')})"
                    if info
                    else "another session"
                )
                raise LockedError(f"case {case_id!r} is open by {who}", path) from None
            # Move the stale lock aside under a unique name: of two sessions breaking the same
            # lock, only one rename succeeds, and both then race fairly on O_EXCL.
            aside = path.with_name(f".{path.name}.stale-{lock.token.replace(':', '-')}")
            try:
                os.replace(path, aside)
            except FileNotFoundError:
                continue
            moved = read_lock(aside)
            if moved is not None and moved["token"] != (info or {}).get("token"):
                # Another session broke the stale lock first and we moved its fresh lock:
                # put it back.
                os.link(aside, path)
                aside.unlink()
                raise LockedError(
                    f"case {case_id!r} was just opened by {moved.get('owner')}", path
                ) from None
            aside.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(lock.info()))
            fh.flush()
            os.fsync(fh.fileno())
        return lock
    raise LockedError(f"case {case_id!r} is being locked by another session", path)


def holder(
    locks_dir: str | Path, case_id: str, stale_after: float = DEFAULT_STALE_AFTER
) -> dict | None:
    """The live lock on a case (owner, pid, host, heartbeat), or None."""
    path = case_file(locks_dir, case_id, ".lock")
    info = read_lock(path)
    return None if info is None or is_stale(info, stale_after, path) else info
