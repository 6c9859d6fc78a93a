"""Names from data made safe: case ids to file names, output paths kept inside their folder,
dataset metadata kept inside its dataset.

Every file we write whose name comes from data goes through :func:`case_file` (or
:func:`safe_name` + :func:`output_path`); every path read from dataset metadata goes through
:func:`dataset_entry`.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path, PurePosixPath, PureWindowsPath

from napari_medseg.core.errors import ReadError, WriteError

#: Longest file-name stem we produce (bytes): leaves room under the usual 255-byte limit for a
#: suffix and the temporary name :func:`napari_medseg.core.atomic.atomic_path` builds from it.
MAX_STEM = 120
_KEEP = re.compile(r"[A-Za-z0-9_\-.]")
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {
    f"{d}{i}" for d in ("COM", "LPT") for i in range(1, 10)
}


def _quote(char: str) -> str:
    return "".join(f"%{b:02X}" for b in char.encode("utf-8", "surrogatepass"))


def safe_name(case_id: str) -> str:
    """One file-name stem per case id: no separators, never ``.``/``..``, bounded length.

    ASCII letters, digits, ``-``, ``_`` and inner ``.`` are kept (so ordinary ids are their own
    file names); any other character, a leading or trailing dot and the first letter of a
    Windows device name (``CON``) become ``%XX`` UTF-8 escapes. Distinct ids give distinct
    names and :func:`case_id_from_name` reverses them. An id whose escaped form is longer than
    :data:`MAX_STEM` keeps a prefix plus ``~`` and a SHA-256 digest of the id (``~`` never
    appears otherwise, so such names cannot collide with short ones).
    """
    if not isinstance(case_id, str) or not case_id:
        raise WriteError(f"case id {case_id!r} cannot be used as a file name")
    out = [c if _KEEP.fullmatch(c) else _quote(c) for c in case_id]
    if out[0] == ".":
        out[0] = "%2E"
    if out[-1] == ".":
        out[-1] = "%2E"
    if case_id.split(".")[0].upper() in _WINDOWS_RESERVED:
        out[0] = _quote(case_id[0])
    name = "".join(out)
    if len(name) > MAX_STEM:
        digest = hashlib.sha256(case_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        head = name[: MAX_STEM - 17]
        head = re.sub(r"%[0-9A-F]?$", "", head)  # never cut an escape in half
        name = f"{head}~{digest}"
    return name


def case_id_from_name(stem: str) -> str | None:
    """The case id that :func:`safe_name` turned into ``stem``; None for a shortened name."""
    if "~" in stem:
        return None
    raw = re.sub(rb"%([0-9A-F]{2})", lambda m: bytes([int(m[1], 16)]), stem.encode("ascii"))
    return raw.decode("utf-8", "surrogatepass")


def output_path(out: str | os.PathLike, *parts: str) -> Path:
    """``out/part/...``, refused unless every part is a plain name and the final path (after
    following any symbolic link already there) lies inside ``out``."""
    out = Path(out)
    for part in parts:
        if (
            not part
            or part in (".", "..")
            or "/" in part
            or "\\" in part
            or "\0" in part
            or PureWindowsPath(part).drive
        ):
            raise WriteError(f"refusing the output name {part!r}", out)
    path = out.joinpath(*parts)
    root = os.path.realpath(out)
    if os.path.commonpath([root, os.path.realpath(path)]) != root:
        raise WriteError("refusing to write outside the output folder", path)
    return path


def case_file(out: str | os.PathLike, case_id: str, suffix: str = "", *folders: str) -> Path:
    """``out/[folders/]<safe_name(case_id)><suffix>``, checked by :func:`output_path`."""
    return output_path(out, *folders, safe_name(case_id) + suffix)


def dataset_entry(root: str | os.PathLike, entry, source: str | os.PathLike, field: str) -> Path:
    """A path named by dataset metadata (``source``'s ``field``), relative to ``root``.

    Absolute paths, ``..``, ``~`` and ``$VARIABLES`` are refused, never expanded: metadata
    may only point inside its dataset. ``./x`` and ``x\\y`` are fine.
    """
    if not isinstance(entry, str) or not entry.strip():
        raise ReadError(f"{field}: expected a relative file path, got {entry!r}", source)
    posix = entry.replace("\\", "/")
    parts = PurePosixPath(posix).parts
    if (
        posix.startswith(("/", "~"))
        or PureWindowsPath(entry).drive
        or ".." in parts
        or "$" in entry
        or "\0" in entry
    ):
        raise ReadError(f"{field}: {entry!r} points outside the dataset folder; refused", source)
    return Path(root).joinpath(*[p for p in parts if p != "."])
