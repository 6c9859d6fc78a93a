"""The labelmap a user edited for a dataset, kept beside our settings (never in the dataset).

``<config dir>/labelmaps/<hash of the dataset path>.json`` holds ``{"root", "labels"}``. It
belongs to the dataset, not to a napari layer: every case of the dataset is shown, reviewed,
checked and exported with it (:func:`apply_edits`), in the GUI and the CLI, across case
changes and restarts. Its names and colours win over the dataset's own; ids it does not
declare keep the dataset's.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from napari_medseg.core.atomic import write_text
from napari_medseg.core.config import config_dir
from napari_medseg.core.errors import MedsegError
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.model import Case


def edits_path(root: str | Path) -> Path:
    key = hashlib.sha1(str(Path(root).resolve()).encode()).hexdigest()[:16]
    return config_dir() / "labelmaps" / f"{key}.json"


def load_edits(root: str | Path | None) -> LabelMap | None:
    """The edited labelmap of the dataset at ``root``, or None (never edited, or unreadable)."""
    if root is None:
        return None
    try:
        data = json.loads(edits_path(root).read_text(encoding="utf-8"))
        return LabelMap.from_json(data["labels"])
    except (OSError, ValueError, KeyError, TypeError, MedsegError):
        return None


def save_edits(root: str | Path, labelmap: LabelMap) -> Path:
    """Remember ``labelmap`` as the dataset's (atomically)."""
    path = edits_path(root)
    data = {"root": str(Path(root).resolve()), "labels": labelmap.to_json()}
    write_text(path, json.dumps(data, indent=1) + "\n")
    return path


def with_edits(labelmap: LabelMap | None, edits: LabelMap | None) -> LabelMap | None:
    """``edits`` plus the ids of ``labelmap`` it does not declare (either may be None)."""
    if edits is None or labelmap is None:
        return edits if labelmap is None else labelmap
    out = edits
    for label in labelmap:
        if label.id not in out:
            out = out.with_label(label)
    return out


def apply_edits(case: Case, root: str | Path | None) -> Case:
    """Give every mask of ``case`` the dataset's edited labelmap (in place; returns ``case``)."""
    edits = load_edits(root)
    if edits is not None:
        for mask in case.masks:
            mask.labelmap = with_edits(mask.labelmap, edits)
    return case


def load_edited_case(dataset, case_id: str) -> Case:
    """Case ``case_id`` of ``dataset`` with the dataset's edited labelmap on its masks."""
    return apply_edits(dataset.load_case(case_id), dataset.root)
