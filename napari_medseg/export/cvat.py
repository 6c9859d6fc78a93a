"""CVAT "Segmentation mask 1.1" export, and import back onto the original volume.

Follows ``cvat-mask-format.md``: ``labelmap.txt`` declares every colour (black background
included), class PNGs are 8-bit RGB in labelmap colours, object PNGs use the VOC colormap
(at most 255 instances per image), every listed item has both PNGs, and item ids equal the
image names in ``JPEGImages/``.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_medseg.core.atomic import atomic_dir, atomic_path, check_output_dir
from napari_medseg.core.errors import MedsegError, WriteError
from napari_medseg.core.labelmap import BACKGROUND_COLOR, Label, LabelMap
from napari_medseg.core.labelmap_io import format_cvat
from napari_medseg.export import ExportItem, axis_index, item_ids, take, to_uint8
from napari_medseg.export.instances import slice_objects, volume_components

SUBSET_FILE = "ImageSets/Segmentation/default.txt"


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


VOC_COLORMAP = voc_colormap()


@dataclass
class ExportResult:
    path: Path
    items: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def cvat_labelmap(labelmap: LabelMap, items: Sequence[ExportItem]) -> LabelMap:
    """``labelmap`` declaring every id the masks use, with a black background at id 0."""
    present: set[int] = set()
    for item in items:
        present.update(int(v) for v in np.unique(item.classes))
    out = labelmap.ensure(present | {0})
    if out[0].color != BACKGROUND_COLOR and BACKGROUND_COLOR in out.colors().values():
        raise MedsegError("the background (id 0) must be black when another label is black")
    return out


def color_lut(labelmap: LabelMap) -> np.ndarray:
    lut = np.zeros((max(labelmap.ids) + 1, 3), dtype=np.uint8)
    for lab in labelmap:
        lut[lab.id] = lab.color
    return lut


def encode_png(rgb: np.ndarray, compress_level: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def _check_output(out: Path, items: Sequence[ExportItem]) -> None:
    for item in items:
        if item.source is not None:
            check_output_dir(out if out.suffix.lower() != ".zip" else out.parent / out.stem, item.source)
    if out.is_dir() and any(out.iterdir()) and not (out / "labelmap.txt").is_file():
        raise WriteError("output folder is not empty and is not a previous CVAT export; choose an empty folder", out)
    if out.exists() and out.is_file() and out.suffix.lower() != ".zip":
        raise WriteError("output exists and is a file", out)


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
    _check_output(out, items)
    labelmap = cvat_labelmap(labelmap, items)
    text = format_cvat(labelmap)  # refuses what CVAT would reject
    lut = color_lut(labelmap)
    result = ExportResult(out)
    jobs = []
    for item in items:
        ids = item_ids(item.case_id, item.classes.shape, axis)
        if set(ids) & set(result.items):
            raise MedsegError(f"case {item.case_id!r} gives item names already used by another case")
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
        objects, warn = slice_objects(cls, ins, iid)
        files = [(f"SegmentationClass/{iid}.png", encode_png(lut[cls], compress_level)),
                 (f"SegmentationObject/{iid}.png", encode_png(VOC_COLORMAP[objects], compress_level))]  # fmt: skip
        if images and item.image is not None:
            img = take(item.image, axis, i) if three_d else item.image
            files.append((f"JPEGImages/{iid}.png", encode_png(to_uint8(img, item.window), compress_level)))
        return files, warn

    n = len(jobs)
    with _Sink(out) as sink:
        sink.write("labelmap.txt", text.encode())
        sink.write(SUBSET_FILE, ("\n".join(result.items) + "\n").encode())
        # PNG encoding (zlib) releases the GIL, so slices encode in parallel.
        with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
            for done, (files, warn) in enumerate(pool.map(encode, jobs), 1):
                for name, data in files:
                    sink.write(name, data)
                result.warnings += warn
                if progress is not None:
                    progress(done, n)
    return result


class _Sink:
    """Files into a temporary folder or zip that replaces ``out`` only when complete."""

    def __init__(self, out: Path):
        self.out = out
        self.zip = out.suffix.lower() == ".zip"

    def __enter__(self):
        self._ctx = atomic_path(self.out) if self.zip else atomic_dir(self.out)
        self.tmp = self._ctx.__enter__()
        if self.zip:
            self._zf = zipfile.ZipFile(self.tmp, "w", zipfile.ZIP_STORED)  # PNGs are compressed already
        self._dirs: set[Path] = set()
        return self

    def write(self, name: str, data: bytes) -> None:
        if self.zip:
            self._zf.writestr(name, data)
            return
        path = self.tmp / name
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
    from napari_medseg.io.datasets.cvat import CvatExport

    export = CvatExport(path)
    cases = export.cases()
    if case_id is None:
        if len(cases) != 1:
            raise MedsegError(f"the export holds {len(cases)} cases; say which one", path)
        case_id = next(iter(cases))
    elif case_id not in cases:
        from napari_medseg.export import safe_case_name

        if safe_case_name(case_id) not in cases:
            raise MedsegError(f"no case {case_id!r} in this CVAT export (it has {sorted(cases)})", path)
        case_id = safe_case_name(case_id)
    lm = export.labelmap(labelmap)
    classes, instances, _ = export.read_case(case_id, lm, shape=shape)
    return classes, instances, lm


__all__ = ["ExportResult", "Label", "VOC_COLORMAP", "export_cvat", "import_cvat", "voc_colormap"]
