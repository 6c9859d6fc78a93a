"""CVAT "Segmentation mask 1.1" exports (a folder or a .zip), as CVAT/Datumaro read them.

``labelmap.txt`` gives the colours, ``ImageSets/Segmentation/*.txt`` the items (files whose
name holds ``_`` are ignored, as Datumaro does), ``SegmentationClass/`` and
``SegmentationObject/`` the class and instance masks. Items named ``<case>/slice_0007``
(our export's slices; also ``coronal_``/``sagittal_``) are stacked back into a volume, one
case per folder; any other item is a 2D case of its own. Zip members are read in
memory after checking that none would land outside the export (absolute paths, ``..``,
symlinks are refused).
"""

from __future__ import annotations

import functools
import io
import stat
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np

from napari_medseg.core.errors import ReadError
from napari_medseg.core.geometry import DisplayTransform, Geometry
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.labelmap_io import labelmap_from_cvat, parse_cvat
from napari_medseg.core.limits import check_bytes
from napari_medseg.core.model import INSTANCES, Case, Dataset, Source, Volume
from napari_medseg.core.safe_names import dataset_entry
from napari_medseg.formats.cvat import (
    CLASS_DIR,
    IMAGE_DIR,
    LABELMAP_FILE,
    OBJECT_DIR,
    SUBSET_DIR,
    VOC_COLORMAP,
    find_root,
    is_cvat_export,
)
from napari_medseg.formats.slices import PREFIXES, SLICE_NAME, put
from napari_medseg.io.listing import visible

ZIP_RATIO, ZIP_RATIO_FROM = 200, 2**20  # members over 1 MiB may expand at most 200 times
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def check_member(info: zipfile.ZipInfo, archive: Path) -> None:
    """Refuse a zip entry that would escape the folder it is extracted to, or whose declared
    size is over the memory limit or expands suspiciously (zipfile never inflates a member
    beyond its declared size)."""
    check_bytes(info.file_size, f"zip member {info.filename}", archive)
    if info.file_size > ZIP_RATIO_FROM and info.file_size > ZIP_RATIO * max(info.compress_size, 1):
        raise ReadError(
            f"zip member {info.filename} expands {info.file_size // max(info.compress_size, 1)}"
            " times (a zip bomb?); refusing the archive",
            archive,
        )
    name = info.filename.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if name.startswith("/") or (parts and parts[0].endswith(":")) or ".." in parts:
        raise ReadError(
            f"zip entry {info.filename!r} would escape the target folder; refusing the archive",
            archive,
        )
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ReadError(
            f"zip entry {info.filename!r} is a symbolic link; refusing the archive", archive
        )


def safe_extract(archive: str | Path, target: str | Path) -> Path:
    """Extract ``archive`` into ``target`` after checking every entry (see :func:`check_member`)."""
    archive, target = Path(archive), Path(target)
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            check_member(info, archive)
        zf.extractall(target)
    return target


class _Files:
    """Relative POSIX paths and bytes of a folder or a zip, the same way for both."""

    def __init__(self, path: Path):
        self.path = path
        self.zip = None
        if path.is_file():
            try:
                self.zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise ReadError(f"not a readable zip archive ({exc})", path) from exc
            for info in self.zip.infolist():
                check_member(info, path)
            self.names = {
                i.filename.replace("\\", "/") for i in self.zip.infolist() if not i.is_dir()
            }
        else:
            self.names = {
                p.relative_to(path).as_posix()
                for p in path.rglob("*")
                if p.is_file() and visible(p)
            }

    def read(self, name: str) -> bytes:
        try:
            return self.zip.read(name) if self.zip is not None else (self.path / name).read_bytes()
        except (KeyError, OSError, zipfile.BadZipFile) as exc:
            raise ReadError(f"cannot read {name} ({exc})", self.path) from exc

    def text(self, name: str) -> str:
        try:
            return self.read(name).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ReadError(
                f"{name}: not UTF-8 text (byte {exc.start}: {exc.reason})", self.path
            ) from None


def decode(data: bytes, where: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.mode.startswith("I") or im.mode == "F":
                raise ReadError(
                    f"{im.mode} image: CVAT masks must be 8-bit (16-bit values are cut mod 256)",
                    where,
                )
            if im.mode == "P":
                im = im.convert("RGB")  # CVAT (OpenCV) expands palettes: the palette colours count
            elif im.mode not in ("L", "RGB", "RGBA"):
                im = im.convert("RGB")
            return np.asarray(im)
    except ReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - any PIL failure is a bad file
        raise ReadError(f"not a readable image ({exc})", where) from exc


def _by_color(rgb: np.ndarray, table: dict[int, int], where: str) -> np.ndarray:
    """Map RGB pixels to ids through ``{packed colour: id}``; undeclared colours are errors."""
    packed = (
        (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    )
    uniq, inverse = np.unique(packed, return_inverse=True)
    ids = np.empty(uniq.size, dtype=np.int64)
    for k, value in enumerate(uniq):
        if int(value) not in table:
            color = (int(value) >> 16, (int(value) >> 8) & 255, int(value) & 255)
            raise ReadError(f"undeclared colour {color}", where)
        ids[k] = table[int(value)]
    return ids[inverse].reshape(packed.shape)


def label_dtype(labelmap: LabelMap) -> np.dtype:
    return np.dtype(np.uint8 if max(labelmap.ids, default=0) < 256 else np.uint16)


def _pack(color) -> int:
    return (int(color[0]) << 16) | (int(color[1]) << 8) | int(color[2])


class CvatExport:
    """A CVAT Segmentation mask 1.1 export: its labelmap, items and per-case arrays."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.files = _Files(self.path)
        root = find_root(self.files.names)
        if root is None:
            raise ReadError("no labelmap.txt next to a SegmentationClass/ folder", self.path)
        self.root = root
        self.entries = parse_cvat(self.files.text(root + LABELMAP_FILE), self.path / LABELMAP_FILE)

    def labelmap(self, reference: LabelMap | None = None) -> LabelMap:
        return labelmap_from_cvat(self.entries, reference)

    def items(self) -> list[str]:
        """Listed item ids in file order; subsets whose name holds ``_`` are skipped (Datumaro)."""
        prefix = f"{self.root}{SUBSET_DIR}/"
        out: dict[str, None] = {}
        for name in sorted(self.files.names):
            rest = name[len(prefix) :] if name.startswith(prefix) else ""
            if not rest.endswith(".txt") or "/" in rest or "_" in rest:
                continue
            for n, line in enumerate(self.files.text(name).splitlines(), 1):
                line = line.strip()
                if line and not line.startswith("#"):
                    iid = line.split()[0]
                    # an item names files inside the export: never ../, absolute, ~ or $VAR
                    dataset_entry(self.path, iid, self.path / name, f"line {n}")
                    out[iid] = None
        if not out:
            raise ReadError("no items listed in ImageSets/Segmentation/*.txt", self.path)
        return list(out)

    @functools.cache  # noqa: B019 - one export object per dataset; the listing never changes
    def cases(self) -> dict[str, list[tuple[str, int | None, int | None]]]:
        """``{case id: [(item id, axis, slice index)]}``; axis is None for a 2D case.

        Slices (``.../<case>/slice_0007``) group by their folder, named by its last part, so
        a task made from ``JPEGImages/<case>/...`` frames still finds ``<case>``.
        """
        default = self.path.name[:-4] if self.path.suffix.lower() == ".zip" else self.path.name
        cases: dict[str, list] = {}
        folders: dict[str, str] = {}
        for iid in self.items():
            parent, _, leaf = iid.rpartition("/")
            m = SLICE_NAME.match(leaf)
            if m is None:
                # CVAT lists unannotated frames too but writes no PNG for them: nothing to show
                if self._find(CLASS_DIR, iid) or self._find(OBJECT_DIR, iid):
                    cases[iid] = [(iid, None, None)]
                continue
            cid = parent.rsplit("/", 1)[-1] if parent else default
            if folders.setdefault(cid, parent) != parent:
                cid = parent  # two folders with the same last part: keep them apart
            axis = PREFIXES.index(m.group(1))
            entries = cases.setdefault(cid, [])
            if entries and entries[0][1] != axis:
                raise ReadError(
                    f"case {cid!r} mixes {PREFIXES[entries[0][1]]}_ and {m.group(1)}_ slices",
                    self.path,
                )
            entries.append((iid, axis, int(m.group(2))))
        return cases

    def _find(self, folder: str, iid: str, exts=(".png",)) -> str | None:
        for ext in exts:
            name = f"{self.root}{folder}/{iid}{ext}"
            if name in self.files.names:
                return name
        return None

    def slice_shape(self, case_id: str, images: bool = False) -> tuple[int, ...] | None:
        """(rows, cols) of the case's mask slices, or (rows, cols[, channels]) of its images."""
        from PIL import Image

        for iid, _, _ in self.cases()[case_id]:
            name = (
                self._find(IMAGE_DIR, iid, IMAGE_EXTS)
                if images
                else (self._find(CLASS_DIR, iid) or self._find(OBJECT_DIR, iid))
            )
            if name:
                try:
                    with Image.open(io.BytesIO(self.files.read(name))) as im:
                        bands = len(im.getbands()) if im.mode != "P" else 3
                        hw = (im.size[1], im.size[0])
                except ReadError:
                    raise
                except Exception as exc:  # noqa: BLE001 - any PIL failure is a bad file
                    raise ReadError(f"{name}: not a readable image ({exc})", self.path) from None
                return hw + ((bands,) if images and bands > 1 else ())
        return None

    def case_shape(self, case_id: str) -> tuple[int, ...]:
        entries = self.cases()[case_id]
        hw = self.slice_shape(case_id)
        if hw is None:
            raise ReadError(f"case {case_id!r} has no mask or image PNG", self.path)
        axis = entries[0][1]
        if axis is None:
            return hw
        n = max(e[2] for e in entries) + 1
        return (n, *hw) if axis == 0 else (hw[0], n, hw[1]) if axis == 1 else (hw[0], hw[1], n)

    def read_case(
        self,
        case_id: str,
        labelmap: LabelMap,
        shape: tuple[int, ...] | None = None,
        with_image: bool = False,
    ):
        """``(class ids, instance ids, image or None)`` of a case, in display order."""
        entries = self.cases()[case_id]
        own = self.case_shape(case_id)
        if shape is not None and tuple(shape) != own:
            raise ReadError(
                f"case {case_id!r} is {own} in the export but the volume is {tuple(shape)}",
                self.path,
            )
        id_of = {lab.name: lab.id for lab in labelmap}
        file_ids = [id_of[name] for name, _ in self.entries]
        colors = {_pack(c): id_of[n] for n, c in self.entries if c is not None}
        objects = {_pack(c): k for k, c in enumerate(VOC_COLORMAP)}
        classes = np.zeros(own, dtype=label_dtype(labelmap))
        instances = np.zeros(own, dtype=np.uint8)
        image = None
        for iid, axis, idx in entries:
            cls_name = self._find(CLASS_DIR, iid)
            obj_name = self._find(OBJECT_DIR, iid)
            if cls_name:
                arr = decode(self.files.read(cls_name), cls_name)
                if arr.ndim == 2:  # index PNG: values are positions in labelmap.txt
                    if arr.size and int(arr.max()) >= len(file_ids):
                        raise ReadError(f"undeclared label {int(arr.max())}", cls_name)
                    cls = np.asarray(file_ids, dtype=np.int64)[arr]
                else:
                    cls = _by_color(arr[..., :3], colors, cls_name)
                self._put(classes, axis, idx, cls, cls_name)
            if obj_name:
                arr = decode(self.files.read(obj_name), obj_name)
                obj = arr if arr.ndim == 2 else _by_color(arr[..., :3], objects, obj_name)
                self._put(instances, axis, idx, obj, obj_name)
            img_name = self._find(IMAGE_DIR, iid, IMAGE_EXTS) if with_image else None
            if img_name:
                img = decode(self.files.read(img_name), img_name)
                if image is None:
                    image = np.zeros(own + img.shape[2:], dtype=np.uint8)
                self._put(image, axis, idx, img, img_name)
        return classes, instances, image

    @staticmethod
    def _put(volume: np.ndarray, axis, idx, arr: np.ndarray, where: str) -> None:
        expect = (
            volume.shape
            if axis is None
            else tuple(s for k, s in enumerate(volume.shape[:3]) if k != axis)
        )
        if arr.shape[:2] != tuple(expect[:2]):
            raise ReadError(f"image is {arr.shape[:2]}, expected {tuple(expect[:2])}", where)
        if axis is None:
            volume[...] = arr
        else:
            put(volume, axis, idx, arr)


class CvatMaskDataset(Dataset):
    format = "cvat"
    description = "CVAT Segmentation mask 1.1 export (folder or zip)"

    @classmethod
    def detect(cls, path: Path) -> bool:
        return is_cvat_export(path)

    def __init__(self, root):
        super().__init__(root)
        self.export = CvatExport(self.root)
        self.labelmap = self.export.labelmap()
        self._cases = self.export.cases()
        self._cache: dict[str, tuple] = {}

    def case_ids(self) -> list[str]:
        return list(self._cases)

    def _arrays(self, case_id: str) -> tuple:
        if case_id not in self._cache:
            self._cache = {case_id: self.export.read_case(case_id, self.labelmap, with_image=True)}
        return self._cache[case_id]

    def load_case(self, case_id: str) -> Case:
        if case_id not in self._cases:
            raise self._unknown_case(case_id)
        shape = self.export.case_shape(case_id)
        geom = Geometry.pixels(len(shape))
        source = Source(self.root, "pixels", DisplayTransform.identity(len(shape)))

        def vol(name, k, dtype, labelmap, rgb=False, full_shape=shape):
            return Volume(
                name,
                full_shape,
                np.dtype(dtype),
                geom,
                lambda: self._arrays(case_id)[k],
                rgb=rgb,
                labelmap=labelmap,
                source=source,
            )

        masks = [
            vol("label", 0, label_dtype(self.labelmap), self.labelmap),
            vol(INSTANCES, 1, np.uint8, LabelMap.from_names({})),
        ]
        images = []
        frame = self.export.slice_shape(case_id, images=True)
        if frame is not None:
            rgb = len(frame) == 3
            images.append(vol("image", 2, np.uint8, None, rgb=rgb, full_shape=shape + frame[2:]))
        return Case(case_id, images, masks, metadata={"items": len(self._cases[case_id])})
