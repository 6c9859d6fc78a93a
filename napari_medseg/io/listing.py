"""Which files in a folder are data: macOS junk and hidden files are not."""

from __future__ import annotations

from pathlib import Path


def visible(path: Path) -> bool:
    """False for macOS junk (``._x``, ``__MACOSX``) and hidden files, which nnU-Net skips too."""
    return (
        not any(part.startswith((".", "__MACOSX")) for part in path.parts[-1:])
        and "__MACOSX" not in path.parts
    )


def list_visible(folder: Path, pattern: str = "*") -> list[Path]:
    """The visible entries of ``folder`` matching ``pattern``, sorted (none if no folder)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(pattern) if visible(p))
