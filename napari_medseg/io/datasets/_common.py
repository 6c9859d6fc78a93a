"""Helpers shared by the dataset adapters."""

from __future__ import annotations

import re
from pathlib import Path

from napari_medseg.core.errors import ReadError
from napari_medseg.core.model import Case
from napari_medseg.core.validate import read_json


def load_json(path: Path) -> dict:
    data = read_json(path)
    if not isinstance(data, dict):
        raise ReadError("expected a JSON object", path)
    return data


def dataset_json(folder: Path) -> dict | None:
    """The folder's dataset.json, or None when absent or unreadable (for cheap detection)."""
    path = folder / "dataset.json"
    if not path.is_file():
        return None
    try:
        return load_json(path)
    except ReadError:
        return None


def binarized(vol):
    """Make a 0/255 (or any non-zero) mask volume load as 0/1, as binary masks are drawn."""
    load = vol.loader
    vol.loader = lambda: (load() > 0).astype("uint8")
    return vol


def natural_key(path: Path):
    """Sort key that orders ``img2`` before ``img10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def modality_kind(name: str) -> str:
    """Map a channel description to the display family CT, PET or MR."""
    low = name.lower()
    if "ct" in low.split() or low in ("ct", "ctres") or low.startswith("ct"):
        return "CT"
    if "pet" in low or "suv" in low:
        return "PET"
    return "MR"


def check_grids(case: Case) -> None:
    """Refuse a mask whose shape differs from its image: it cannot be overlaid."""
    if not case.masks or not case.images:
        return
    ref = case.images[0]
    for m in case.masks:
        if m.shape[: m.spatial_ndim] != ref.shape[: ref.spatial_ndim]:
            where = m.source.path if m.source else m.name
            raise ReadError(
                f"mask shape {m.shape} differs from image shape {ref.shape[: ref.spatial_ndim]} in case {case.id!r}",
                where,
            )
