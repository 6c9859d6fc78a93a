"""CVAT "Segmentation mask 1.1" export, and import back onto the original volume.

Follows ``cvat-mask-format.md``: ``labelmap.txt`` declares every colour (black background
included), class PNGs are 8-bit RGB in labelmap colours, object PNGs use the VOC colormap
(at most 255 instances per image), every listed item has both PNGs, and item ids equal the
image names in ``JPEGImages/``.
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_medseg.core.atomic import atomic_dir, atomic_path
from napari_medseg.core.errors import MedsegError
from napari_medseg.core.labelmap import BACKGROUND_COLOR, LabelMap
from napari_medseg.core.labelmap_io import format_cvat
from napari_medseg.core.safe_names import output_path
from napari_medseg.export import ExportItem, to_uint8
from napari_medseg.export.instances import slice_objects, volume_components
from napari_medseg.export.manifest import MANIFEST, claim, foreign, manifest_text
from napari_medseg.formats.cvat import (
    CLASS_DIR,
    IMAGE_DIR,
    LABELMAP_FILE,
    OBJECT_DIR,
    SUBSET_FILE,
    VOC_COLORMAP,
)
from napari_medseg.formats.slices import axis_index, item_ids, safe_case_name, take
from napari_medseg.io.datasets.cvat import CvatExport

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOR_TYPES = {1: 0, 3: 2, 4: 6}  # channels -> PNG colour type (grey, RGB, RGBA)


@dataclass
class ExportResult:
    path: Path
    items: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def cvat_labelmap(labelmap: LabelMap, items: Sequence[ExportItem]) -> LabelMap:
    """``labelmap`` declaring every id the masks use, with a black background at id 0."""
    present: set[int] = {0}
    for item in items:
        hi = int(item.classes.max())
        # Counting the ids used is only needed when some id up to the maximum is undeclared.
        if hi >= len(labelmap) or any(i not in labelmap for i in range(hi + 1)):
            present.update(present_ids(item.classes))
    out = labelmap.ensure(present)
    if out[0].color != BACKGROUND_COLOR:
        raise MedsegError(
            f"the background label {out[0].name!r} must be black: "
            "CVAT paints unannotated pixels black"
        )
    return out


def present_ids(mask: np.ndarray) -> list[int]:
    """The ids a mask uses (``bincount`` is much faster than ``unique`` for 8/16-bit masks)."""
    if mask.dtype.itemsize <= 2 and np.issubdtype(mask.dtype, np.unsignedinteger):
        return np.flatnonzero(np.bincount(mask.ravel())).tolist()
    return np.unique(mask).tolist()


def color_lut(labelmap: LabelMap) -> np.ndarray:
    lut = np.zeros((max(labelmap.ids) + 1, 3), dtype=np.uint8)
    for lab in labelmap:
        lut[lab.id] = lab.color
    return lut


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(pixels: np.ndarray, compress_level: int = 1) -> bytes:
    """An 8-bit PNG of a (rows, cols) grey, (rows, cols, 3) RGB or RGBA uint8 array (filter 0).

    Written directly with zlib rather than PIL: PIL tries every PNG row filter on every row,
    which costs more than the rest of the export, while label images (flat colours) compress
    as well unfiltered. zlib releases the GIL, so slices encode in parallel threads.
    """
    h, w = pixels.shape[:2]
    c = pixels.shape[2] if pixels.ndim == 3 else 1
    if c not in COLOR_TYPES:
        raise MedsegError(f"cannot write a {c}-channel image as PNG")
    rows = np.empty((h, w * c + 1), dtype=np.uint8)
    rows[:, 0] = 0  # filter type "None" for every row
    rows[:, 1:] = pixels.reshape(h, w * c)
    return _png(rows, w, h, COLOR_TYPES[c], compress_level)


def encode_colored(index: np.ndarray, lut: np.ndarray, compress_level: int = 1) -> bytes:
    """RGB PNG of ``lut[index]`` (``lut``: N x 3 uint8, ``lut[0]`` black).

    Only the bounding box of the non-zero indices is looked up; the rest stays black (label
    slices are mostly background, so this is most of the colouring time).
    """
    h, w = index.shape
    rows = np.zeros((h, w * 3 + 1), dtype=np.uint8)  # filter byte 0 ("None") on every row
    ys, xs = np.flatnonzero(index.any(axis=1)), np.flatnonzero(index.any(axis=0))
    if ys.size:
        y0, y1, x0, x1 = int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1
        rows[y0:y1, 1 + 3 * x0 : 1 + 3 * x1] = lut.take(index[y0:y1, x0:x1], axis=0).reshape(
            y1 - y0, -1
        )
    return _png(rows, w, h, 2, compress_level)


def _png(rows: np.ndarray, w: int, h: int, color_type: int, compress_level: int) -> bytes:
    header = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    idat = zlib.compress(rows, compress_level)
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def export_cvat(
    out: str | Path,
    items: Sequence[ExportItem],
    labelmap: LabelMap,
    *,
    axis: int | str = 0,
    components: str = "2d",
    images: bool = False,
    compress_level: int = 1,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ExportResult:
    """Write a CVAT Segmentation mask 1.1 export to folder ``out`` (or a ``.zip``), atomically.

    Parameters
    ----------
    axis : slicing axis of 3D masks (0/"axial", 1/"coronal", 2/"sagittal").
    components : without instance ids, objects are connected components per class in each
        slice (``"2d"``) or in the whole volume (``"3d"``: ids consistent across slices).
    images : also write the image slices, windowed to 8 bit, as ``JPEGImages/<item>.png``.
    """
    out = Path(out)
    axis = axis_index(axis)
    if components not in ("2d", "3d"):
        raise MedsegError(f"components must be '2d' or '3d', got {components!r}")
    if not items:
        raise MedsegError("nothing to export")
    ours = claim(out, [item.source for item in items if item.source is not None])
    labelmap = cvat_labelmap(labelmap, items)
    text = format_cvat(labelmap)  # refuses what CVAT would reject
    lut = color_lut(labelmap)
    result = ExportResult(out)
    jobs = []
    for item in items:
        ids = item_ids(item.case_id, item.classes.shape, axis)
        if set(ids) & set(result.items):
            raise MedsegError(
                f"case {item.case_id!r} gives item names already used by another case"
            )
        result.items += ids
        inst = item.instances
        if inst is None and components == "3d" and item.classes.ndim == 3:
            inst = volume_components(item.classes)
        for i, iid in enumerate(ids):
            jobs.append((item, inst, i, iid))

    def encode(job):
        item, inst, i, iid = job
        three_d = item.classes.ndim == 3
        cls = take(item.classes, axis, i) if three_d else item.classes
        ins = None if inst is None else (take(inst, axis, i) if three_d else inst)
        if ins is None and not cls.any():  # empty slice: the same two black PNGs every time
            files = [
                (f"{CLASS_DIR}/{iid}.png", blank(cls.shape)),
                (f"{OBJECT_DIR}/{iid}.png", blank(cls.shape)),
            ]
            warn = []
        else:
            objects, warn = slice_objects(cls, ins, iid)
            files = [
                (f"{CLASS_DIR}/{iid}.png", encode_colored(cls, lut, compress_level)),
                (
                    f"{OBJECT_DIR}/{iid}.png",
                    encode_colored(objects, VOC_COLORMAP, compress_level),
                ),
            ]
        if images and item.image is not None:
            img = take(item.image, axis, i) if three_d else item.image
            files.append(
                (f"{IMAGE_DIR}/{iid}.png", encode_png(to_uint8(img, item.window), compress_level))
            )
        return files, warn

    n = len(jobs)
    blanks: dict[tuple, bytes] = {}

    def blank(shape) -> bytes:
        if shape not in blanks:  # a benign race at worst encodes it twice
            blanks[shape] = encode_png(np.zeros((*shape, 3), np.uint8), compress_level)
        return blanks[shape]

    with _Sink(out, keep=foreign(out, ours)) as sink:
        sink.write(LABELMAP_FILE, text.encode())
        sink.write(SUBSET_FILE, ("\n".join(result.items) + "\n").encode())

        def encode_and_write(job):
            files, warn = encode(job)
            if not sink.zip:  # file writes release the GIL too; a zip takes them one by one
                for name, data in files:
                    sink.write(name, data)
                files = []
            return files, warn

        with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
            for done, (files, warn) in enumerate(pool.map(encode_and_write, jobs), 1):
                for name, data in files:
                    sink.write(name, data)
                result.warnings += warn
                if progress is not None:
                    progress(done, n)
        sink.write(MANIFEST, manifest_text(sink.names).encode())
    return result


class _Sink:
    """Files into a temporary folder or zip that replaces ``out`` only when complete.

    Folder writes may come from several threads; zip writes from one. ``keep``: files of the
    old folder (not ours) carried into the new one.
    """

    def __init__(self, out: Path, keep: list[str]):
        self.out, self.keep = out, keep
        self.zip = out.suffix.lower() == ".zip"
        self.names: list[str] = []

    def __enter__(self):
        self._ctx = atomic_path(self.out) if self.zip else atomic_dir(self.out, self.keep)
        self.tmp = self._ctx.__enter__()
        if self.zip:
            # PNGs are compressed already: store them.
            self._zf = zipfile.ZipFile(self.tmp, "w", zipfile.ZIP_STORED)
        self._dirs: set[Path] = set()
        return self

    def write(self, name: str, data: bytes) -> None:
        self.names.append(name)
        if self.zip:
            self._zf.writestr(name, data)
            return
        path = output_path(self.tmp, *name.split("/"))
        if path.parent not in self._dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(path.parent)
        path.write_bytes(data)

    def __exit__(self, *exc):
        if self.zip:
            self._zf.close()
        return self._ctx.__exit__(*exc)


def import_cvat(
    path: str | Path,
    case_id: str | None = None,
    labelmap: LabelMap | None = None,
    shape: tuple[int, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray, LabelMap]:
    """Class ids, instance ids and labelmap of one case of a CVAT export (folder or zip).

    ``labelmap`` (the original volume's) gives labels their original ids by name; ``shape``
    (the original volume's) is checked. ``case_id`` may be left out when the export holds one case.
    """
    export = CvatExport(path)
    cases = export.cases()
    if case_id is None:
        if len(cases) != 1:
            raise MedsegError(f"the export holds {len(cases)} cases; say which one", path)
        case_id = next(iter(cases))
    elif case_id not in cases:
        if safe_case_name(case_id) not in cases:
            raise MedsegError(
                f"no case {case_id!r} in this CVAT export (it has {sorted(cases)})", path
            )
        case_id = safe_case_name(case_id)
    lm = export.labelmap(labelmap)
    classes, instances, _ = export.read_case(case_id, lm, shape=shape)
    return classes, instances, lm


__all__ = ["ExportResult", "export_cvat", "import_cvat"]
