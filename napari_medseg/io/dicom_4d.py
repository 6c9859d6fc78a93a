"""4D series: several volumes at the same slice positions (fMRI, DCE, multi-phase CT, DWI).

The slices of each position are told apart by the first attribute that gives every position
exactly one slice per volume: temporal position, trigger time, acquisition number, or the
diffusion b-value and direction. A series none of them can order is refused, saying so.
"""

from __future__ import annotations

import numpy as np

from napari_medseg.core.errors import ReadError

POSITION_DECIMALS = 3  # slices within 1e-3 mm are at the same position


def _number(h, name: str):
    value = h.get(name)
    try:
        return None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None


def _diffusion(h):
    b = _number(h, "DiffusionBValue")
    if b is None:
        return None
    direction = h.get("DiffusionGradientOrientation") or (0.0, 0.0, 0.0)
    return (b, *(round(float(v), 4) for v in direction))


ORDER_KEYS = (
    ("temporal position", lambda h: _number(h, "TemporalPositionIdentifier")),
    ("trigger time", lambda h: _number(h, "TriggerTime")),
    ("acquisition number", lambda h: _number(h, "AcquisitionNumber")),
    ("diffusion b-value and direction", _diffusion),
)


def split_volumes(series) -> tuple[list[list[int]], str] | None:
    """Slice indices of each volume (each in position order) and what ordered them, or None
    for a plain 3D series (every position held once)."""
    if series.positions is None or len(series.positions) < 2:
        return None
    rounded = np.round(np.asarray(series.positions), POSITION_DECIMALS)
    uniq, inverse, counts = np.unique(rounded, return_inverse=True, return_counts=True)
    if counts.max() == 1:
        return None
    n = len(series.files)
    if counts.min() != counts.max():
        where = float(uniq[int(np.argmax(counts != counts.max()))])
        raise ReadError(
            f"{n} slices at {len(uniq)} positions, but the position {where:.4g} mm holds "
            f"{counts.min()} slices where others hold {counts.max()}: an incomplete 4D series "
            "or a duplicated file",
            series.folder,
        )
    nt = int(counts[0])
    ids = [
        (str(h.get("SOPInstanceUID", "")), getattr(h, "frame_index", None)) for h in series.headers
    ]
    if all(i[0] for i in ids) and len(set(ids)) < n:
        raise ReadError(
            f"{n - len(set(ids))} slices are copies of others (same SOPInstanceUID): "
            "a file was copied twice into the folder",
            series.folder,
        )
    for label, key in ORDER_KEYS:
        values = [key(h) for h in series.headers]
        if any(v is None for v in values):
            continue
        times = sorted(set(values))
        if len(times) != nt:
            continue
        volumes = [[i for i in range(n) if values[i] == t] for t in times]
        if all(len(v) == len(uniq) and len(set(inverse[v])) == len(uniq) for v in volumes):
            return volumes, label
    raise ReadError(
        f"{len(uniq)} slice positions each hold {nt} slices, and neither temporal position, "
        "trigger time, acquisition number nor diffusion b-value/direction tell the "
        f"{nt} volumes apart",
        series.folder,
    )
