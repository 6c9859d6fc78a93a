"""Plain-data descriptions of cases (the ``info --json`` contract)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from napari_medseg.core.model import Case, Volume


def describe_volume(vol: Volume, stats: bool) -> dict:
    out = {
        "name": vol.name,
        "shape": [int(s) for s in vol.shape],
        "spacing": [round(float(s), 6) for s in vol.spacing],
    }
    if vol.is_mask:
        labels = vol.labelmap
        if stats:
            values, counts = np.unique(vol.array, return_counts=True)
            labels = labels.ensure(int(v) for v in values)
            out["voxels"] = {str(int(v)): int(c) for v, c in zip(values, counts, strict=True)}
        out["labels"] = {str(k): v for k, v in labels.names().items()}
    else:
        out["dtype"] = str(vol.dtype)
        out["modality"] = vol.modality
        if vol.channel:
            out["channel"] = vol.channel
        if stats:
            arr = vol.array
            out["stats"] = {
                "min": float(arr.min()),
                "max": float(arr.max()),
                "mean": float(arr.mean(dtype=np.float64)),
            }
    return out


def describe_case(case: Case, stats: bool = False) -> dict:
    """``{"id", "images", "masks", "boxes", "problems"}`` as ``napari-medseg info --json``
    prints it; ``problems`` lists what the reader noticed (damaged files, guessed spacing)."""
    out = {
        "id": case.id,
        "images": [describe_volume(v, stats) for v in case.images],
        "masks": [describe_volume(v, stats) for v in case.masks],
        "boxes": len(case.boxes),
        "problems": list(case.problems),
    }
    # Scalars only: per-slice lists (e.g. MedMNIST's slice_labels) can hold 100k entries.
    meta = {k: v for k, v in case.metadata.items() if isinstance(v, str | int | float | bool)}
    if case.metadata.get("slice_labels"):  # classification labels: how many of each class
        meta["class_counts"] = dict(Counter(case.metadata["slice_labels"]))
    if meta:
        out["metadata"] = meta
    if stats:
        for v in case.images + case.masks:
            v.unload()
    return out
