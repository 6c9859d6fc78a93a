"""SAM prompts: points, boxes and previous masks on one slice, from the user, a JSON file,
PASCAL VOC boxes or an existing mask.

Coordinates are display pixels ``(y, x)`` of the reference image (the napari data
coordinates of a 2D slice); :mod:`napari_medseg.engines.sam` converts them to SAM's (x, y).

The prompts JSON (``napari-medseg presegment --prompts FILE``)::

    {
      "labels": {"1": "spleen", "2": "lesion"},          # optional names of the label ids
      "cases": {
        "<case id>": [
          {"slice": 12,                                  # z index (0 or omitted for 2D images)
           "label": 1,                                   # label id written into the mask
           "points": [[y, x], ...],                      # optional
           "point_labels": [1, 0],                       # 1 positive, 0 negative (default all 1)
           "box": [y0, x0, y1, x1],                      # optional, inclusive corners
           "propagate": true}                            # optional: follow it through the volume
        ]
      }
    }

Each prompt needs points or a box.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_medseg.core.errors import MedsegError
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.model import Box


@dataclass
class Prompt:
    """What the user (or a file) says about one object on one slice."""

    slice: int = 0
    label: int = 1
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # (n, 2) y, x
    point_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, int))  # 1 / 0
    box: np.ndarray | None = None  # y0, x0, y1, x1
    mask_input: np.ndarray | None = None  # SAM low-res logits of an earlier prediction
    propagate: bool = False

    def __post_init__(self):
        self.points = np.asarray(self.points, float).reshape(-1, 2)
        self.point_labels = np.asarray(self.point_labels, int).reshape(-1)
        if self.box is not None:
            self.box = np.asarray(self.box, float).reshape(4)

    @property
    def empty(self) -> bool:
        return len(self.points) == 0 and self.box is None


def _prompt_from_json(item, where: str, path: Path) -> Prompt:
    if not isinstance(item, dict):
        raise MedsegError(f"{where}: a prompt must be an object", path)
    try:
        points = item.get("points", [])
        labels = item.get("point_labels", [1] * len(points))
        if len(labels) != len(points):
            raise ValueError("point_labels and points differ in length")
        prompt = Prompt(
            slice=int(item.get("slice") or 0),
            label=int(item.get("label", 1)),
            points=points,
            point_labels=labels,
            box=item.get("box"),
            propagate=bool(item.get("propagate", False)),
        )
    except (TypeError, ValueError) as exc:
        raise MedsegError(f"{where}: {exc}", path) from None
    if prompt.empty:
        raise MedsegError(f"{where}: a prompt needs points or a box", path)
    if prompt.label <= 0:
        raise MedsegError(f"{where}: label must be a positive id", path)
    return prompt


def load_prompts(path: str | Path) -> tuple[dict[str, list[Prompt]], dict[int, str]]:
    """Read a prompts JSON: prompts per case id, and label names (id -> name)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MedsegError(f"cannot read prompts JSON ({exc})", path) from None
    if not isinstance(data, dict) or not isinstance(data.get("cases"), dict):
        raise MedsegError('prompts JSON needs a "cases" object of case id -> list of prompts', path)
    cases = {}
    for cid, items in data["cases"].items():
        if not isinstance(items, list):
            raise MedsegError(f"case {cid!r}: expected a list of prompts", path)
        cases[str(cid)] = [
            _prompt_from_json(it, f"case {cid!r} prompt {i}", path) for i, it in enumerate(items)
        ]
    names = {int(k): str(v) for k, v in (data.get("labels") or {}).items()}
    return cases, names


def prompts_from_boxes(boxes: list[Box]) -> tuple[list[Prompt], LabelMap]:
    """One box prompt per VOC box; each distinct box label (e.g. LSS ``RFS2``) gets an id."""
    names = sorted({b.label for b in boxes})
    ids = {name: i + 1 for i, name in enumerate(names)}
    prompts = [
        Prompt(slice=b.slice_index or 0, label=ids[b.label], box=[b.y0, b.x0, b.y1, b.x1])
        for b in boxes
    ]
    return prompts, LabelMap.from_names({i: n for n, i in ids.items()})


def interior_point(mask: np.ndarray) -> tuple[float, float]:
    """The pixel of ``mask`` farthest from its border (inside even for C-shaped objects)."""
    from scipy import ndimage

    dist = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(y), float(x)


def prompt_from_mask(mask: np.ndarray, z: int, label: int, margin: float = 0.05) -> Prompt | None:
    """A box (grown by ``margin`` of its size) and an interior positive point around a 2D mask."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
    dy, dx = margin * (y1 - y0 + 1), margin * (x1 - x0 + 1)
    h, w = mask.shape
    box = [max(0, y0 - dy), max(0, x0 - dx), min(h - 1, y1 + dy), min(w - 1, x1 + dx)]
    return Prompt(slice=z, label=label, points=[interior_point(mask)], point_labels=[1], box=box)


def prompts_from_mask(labels: np.ndarray) -> list[Prompt]:
    """Prompts that re-segment an existing (z, y, x) or (y, x) label array, per slice and label."""
    vol = labels if labels.ndim == 3 else labels[None]
    out = []
    for z in range(vol.shape[0]):
        for lab in np.unique(vol[z]):
            if lab != 0 and (p := prompt_from_mask(vol[z] == lab, z, int(lab))) is not None:
                out.append(p)
    return out


def _on_slice(coords: np.ndarray, z: int) -> np.ndarray:
    """The (y, x) of (n, 3) coordinates lying on slice ``z``; (n, 2) input is a 2D image."""
    coords = np.asarray(coords, float).reshape(len(coords), -1) if len(coords) else np.zeros((0, 2))
    if coords.shape[1] == 2:
        return coords
    return coords[np.round(coords[:, 0]) == z][:, -2:]


def prompt_on_slice(z: int, label: int, positive, negative=(), rectangles=()) -> Prompt:
    """A prompt from napari layer data (data coordinates) drawn on slice ``z``.

    ``positive``/``negative`` are point arrays, ``rectangles`` a list of (4, ndim) vertex
    arrays; the last rectangle on the slice is the box.
    """
    pos, neg = _on_slice(positive, z), _on_slice(negative, z)
    boxes = [r for r in (_on_slice(np.asarray(v), z) for v in rectangles) if len(r) == 4]
    box = None
    if boxes:
        (y0, x0), (y1, x1) = boxes[-1].min(axis=0), boxes[-1].max(axis=0)
        box = [y0, x0, y1, x1]
    labels = [1] * len(pos) + [0] * len(neg)
    return Prompt(
        slice=z, label=label, points=np.concatenate([pos, neg]), point_labels=labels, box=box
    )
