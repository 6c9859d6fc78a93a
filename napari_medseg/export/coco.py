"""COCO instances JSON with RLE segmentations, one image per slice (``cvat-mask-format.md`` §7).

RLE as pycocotools writes it: run lengths over the mask in column-major (Fortran) order,
starting with a run of zeros, then compressed to a string (``rleToString``: per count the
difference to the count two back, 5 bits per character, offset 48).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from napari_medseg.core.atomic import write_text
from napari_medseg.core.errors import MedsegError
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.export import ExportItem
from napari_medseg.export.instances import slice_objects, volume_components
from napari_medseg.export.manifest import check_replace, claim, record
from napari_medseg.formats.slices import axis_index, item_ids, take

JSON_NAME = "instances_default.json"


def rle_counts(mask: np.ndarray) -> list[int]:
    """Uncompressed COCO counts of a 2D binary mask (column-major, zero-run first)."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    if flat.size == 0:
        return []
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    return [0, *runs] if flat[0] else runs


def rle_string(counts: Sequence[int]) -> str:
    """pycocotools' compressed form of ``counts``."""
    out = []
    for i, count in enumerate(counts):
        x = int(count) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift: negative differences end at -1
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def encode(mask: np.ndarray) -> dict:
    """``{"size": [h, w], "counts": str}`` as ``pycocotools.mask.encode`` gives it."""
    h, w = mask.shape
    return {"size": [int(h), int(w)], "counts": rle_string(rle_counts(mask))}


def _bbox(mask: np.ndarray) -> list[int]:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]


def coco_document(
    items: Sequence[ExportItem],
    labelmap: LabelMap,
    axis: int | str = 0,
    components: str = "2d",
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """The COCO instances document: images (one per slice), categories, RLE annotations."""
    axis = axis_index(axis)
    labelmap = labelmap.ensure(int(v) for item in items for v in np.unique(item.classes))
    doc = {
        "info": {"description": "napari-medseg export"},
        "licenses": [],
        "categories": [
            {"id": lab.id, "name": lab.name, "supercategory": ""} for lab in labelmap.foreground()
        ],
        "images": [],
        "annotations": [],
    }
    total = sum(len(item_ids(it.case_id, it.classes.shape, axis)) for it in items)
    done = 0
    for item in items:
        three_d = item.classes.ndim == 3
        inst = item.instances
        if inst is None and components == "3d" and three_d:
            inst = volume_components(item.classes)
        for i, iid in enumerate(item_ids(item.case_id, item.classes.shape, axis)):
            cls = take(item.classes, axis, i) if three_d else item.classes
            ins = None if inst is None else (take(inst, axis, i) if three_d else inst)
            objects, _ = slice_objects(cls, ins, iid)
            image_id = len(doc["images"]) + 1
            h, w = cls.shape
            doc["images"].append(
                {"id": image_id, "file_name": f"{iid}.png", "height": int(h), "width": int(w)}
            )
            for obj in np.unique(objects[objects > 0]):
                m = objects == obj
                doc["annotations"].append(
                    {
                        "id": len(doc["annotations"]) + 1,
                        "image_id": image_id,
                        "category_id": int(cls[m][0]),
                        "segmentation": encode(m),
                        "area": int(m.sum()),
                        "bbox": _bbox(m),
                        "iscrowd": 1,
                        "attributes": {"instance": int(obj)},
                    }
                )
            done += 1
            if progress is not None:
                progress(done, total)
    return doc


def export_coco(out: str | Path, items: Sequence[ExportItem], labelmap: LabelMap, **kw) -> Path:
    """Write the COCO document to ``out.json``, or to ``<out>/instances_default.json``."""
    out = Path(out)
    path = out if out.suffix.lower() == ".json" else out / JSON_NAME
    if not items:
        raise MedsegError("nothing to export")
    target = path if path == out else out  # a .json file, or the folder it goes in
    ours = claim(target, [item.source for item in items if item.source is not None])
    if path != out:
        check_replace(out, path, ours)
    write_text(path, json.dumps(coco_document(items, labelmap, **kw)))
    if path != out:
        record(out, ours, [path])
    return path
