"""The audit trail of a review session: append-only JSON lines, flushed to disk per entry."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from napari_medseg.core.validate import Lenient, validated


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class AuditEntry(Lenient):
    time: str
    who: str
    action: str
    case: str | None = None


class AuditLog:
    """``<out>/audit.log``: one JSON object a line (time, who, action, case, details).

    Entries are only ever appended, each with a single ``write`` on an ``O_APPEND`` descriptor
    followed by ``fsync``, so two sessions on the same folder interleave whole lines and a
    crash loses at most the entry being written.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def append(self, who: str, action: str, case: str | None = None, **details) -> dict:
        entry = {"time": now_iso(), "who": who, "action": action, "case": case, **details}
        line = (json.dumps(entry, sort_keys=False, default=str) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # end a line torn by a crash so this entry stays whole
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        return entry

    def entries(self, case: str | None = None) -> list[dict]:
        """All entries (of one case if given), oldest first; a torn last line is skipped."""
        if not self.path.exists():
            return []
        out = []
        for n, line in enumerate(self.path.read_bytes().splitlines(), 1):
            try:
                entry = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue  # a line cut short by a crash
            validated(AuditEntry, entry, self.path, f"line {n}: ")
            if case is None or entry.get("case") == case:
                out.append(entry)
        return out
