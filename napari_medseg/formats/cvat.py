"""CVAT "Segmentation mask 1.1": file and folder names, the VOC object colormap, detection.

The reader (:mod:`napari_medseg.io.datasets.cvat`) and the writer
(:mod:`napari_medseg.export.cvat`) both follow ``cvat-mask-format.md`` through these names.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

LABELMAP_FILE = "labelmap.txt"
CLASS_DIR = "SegmentationClass"
OBJECT_DIR = "SegmentationObject"
IMAGE_DIR = "JPEGImages"
SUBSET_DIR = "ImageSets/Segmentation"
SUBSET_FILE = f"{SUBSET_DIR}/default.txt"
MAX_DEPTH = 3  # the export root may sit up to 3 folders deep (Datumaro's detect_dataset)


def voc_colormap(n: int = 256) -> np.ndarray:
    """The PASCAL VOC colormap (``n`` x 3 uint8): bits of the index spread over R, G, B."""
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        k, r, g, b = i, 0, 0, 0
        for j in range(7, -1, -1):
            r |= ((k >> 0) & 1) << j
            g |= ((k >> 1) & 1) << j
            b |= ((k >> 2) & 1) << j
            k >>= 3
        cmap[i] = (r, g, b)
    return cmap


VOC_COLORMAP = voc_colormap()  # object (instance) colours of SegmentationObject PNGs


def find_root(names: set[str]) -> str | None:
    """Prefix ('' or 'a/b/') of the shallowest ``labelmap.txt`` beside ``SegmentationClass/``."""
    for name in sorted(names, key=lambda n: n.count("/")):
        if name.rsplit("/", 1)[-1] != LABELMAP_FILE or name.count("/") > MAX_DEPTH:
            continue
        prefix = name[: -len(LABELMAP_FILE)]
        if any(n.startswith(f"{prefix}{CLASS_DIR}/") for n in names):
            return prefix
    return None


def is_cvat_export(path: str | Path) -> bool:
    """Whether ``path`` is a CVAT export: a folder with ``labelmap.txt`` and
    ``SegmentationClass/``, or a zip holding them (up to :data:`MAX_DEPTH` folders deep)."""
    path = Path(path)
    if path.is_dir():
        return (path / LABELMAP_FILE).is_file() and (path / CLASS_DIR).is_dir()
    if path.is_file() and path.suffix.lower() == ".zip" and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            return find_root({n.replace("\\", "/") for n in zf.namelist()}) is not None
    return False
