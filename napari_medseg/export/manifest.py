"""What an export folder holds of ours: ``.napari-medseg-export.json`` lists the files we wrote.

An export goes into a missing or empty folder, or into one holding an earlier export of ours;
then only the files that export wrote are replaced and everything else is kept. Any other
non-empty folder is refused. Leftover temporaries of a killed run are removed first.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel

from napari_medseg.core.atomic import check_output_dir, remove_leftovers, write_text
from napari_medseg.core.errors import WriteError
from napari_medseg.core.validate import read_json

MANIFEST = ".napari-medseg-export.json"
TOOL = "napari-medseg"


class Manifest(BaseModel):
    tool: str
    files: list[str]


def manifest_text(files: Iterable[str]) -> str:
    return json.dumps({"tool": TOOL, "files": sorted(set(files))}, indent=1)


def claim(out: str | Path, sources: Iterable[str | Path] = ()) -> set[str]:
    """Check that an export may go to ``out`` (a folder, or a ``.zip``/``.json`` file) and
    return the paths (relative to ``out``) that an earlier export of ours wrote there."""
    out = Path(out)
    for source in sources:
        check_output_dir(out, source)
    remove_leftovers(out)
    if out.suffix.lower() in (".zip", ".json") and not out.is_dir():
        if out.exists() and not _ours(out):
            raise WriteError("refusing to replace a file that is not an export of ours", out)
        return set()
    if out.exists() and not out.is_dir():
        raise WriteError("the output folder is an existing file", out)
    if not out.is_dir() or not any(out.iterdir()):
        return set()
    if not (out / MANIFEST).is_file():
        raise WriteError(
            "the output folder is not empty and holds no earlier napari-medseg export; "
            "choose an empty folder",
            out,
        )
    manifest = read_json(out / MANIFEST, Manifest)
    if manifest.tool != TOOL:
        raise WriteError(f"tool: expected {TOOL!r}, got {manifest.tool!r}", out / MANIFEST)
    return set(manifest.files)


def foreign(out: str | Path, ours: set[str]) -> list[str]:
    """Files under folder ``out`` that we did not write (to keep when it is replaced)."""
    out = Path(out)
    if not out.is_dir():
        return []
    return sorted(
        rel
        for p in out.rglob("*")
        if (p.is_file() or p.is_symlink())
        and (rel := p.relative_to(out).as_posix()) not in ours
        and rel != MANIFEST
    )


def record(out: str | Path, ours: set[str], written: Iterable[str | Path]) -> None:
    """Write the manifest of folder ``out``: the earlier export's files plus ``written``."""
    out = Path(out)
    rels = {Path(p).resolve().relative_to(out.resolve()).as_posix() for p in written}
    write_text(out / MANIFEST, manifest_text(ours | rels))


def check_replace(out: Path, path: Path, ours: set[str]) -> Path:
    """``path`` (inside ``out``), refused when it exists and an earlier export did not write it."""
    rel = path.relative_to(out).as_posix()
    if path.exists() and rel not in ours:
        raise WriteError("refusing to replace a file this tool did not write", path)
    return path


def _ours(path: Path) -> bool:
    """Whether the ``.zip``/``.json`` file at ``path`` is an earlier export of ours."""
    try:
        if path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as zf:
                return MANIFEST in zf.namelist()
        doc = json.loads(path.read_text(encoding="utf-8"))
        return (doc.get("info") or {}).get("description") == "napari-medseg export"
    except (OSError, ValueError, AttributeError, zipfile.BadZipFile):
        return False
