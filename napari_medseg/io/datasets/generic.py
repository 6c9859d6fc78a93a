"""Generic inputs: a NIfTI/MHA/NRRD file, a folder of such files, a DICOM folder, a PNG/TIF/JPG stack.

A DICOM SEG or RTSTRUCT beside a series that it references is that series' mask.

A file named ``<stem>_seg``/``_mask``/``_label(s)`` (or a 3D Slicer ``<stem>.seg.nrrd``) next to
``<stem>`` or ``<stem>_image`` is that image's mask.
"""

from __future__ import annotations

import re
from pathlib import Path

from napari_medseg.core.errors import ReadError
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.model import Case, Dataset
from napari_medseg.io.datasets._common import check_grids, natural_key
from napari_medseg.io.dicom import is_dicom
from napari_medseg.io.listing import list_visible, visible
from napari_medseg.io.slicer_seg import is_seg_nrrd, read_seg_nrrd
from napari_medseg.io.volumes import (
    IMAGE_SUFFIXES,
    VOLUME_SUFFIXES,
    has_suffix,
    read_image_stack,
    read_volume,
    strip_suffix,
)

MASK_STEM = re.compile(r"^(?P<stem>.+?)[_-](seg|mask|label|labels|segmentation)$", re.IGNORECASE)
IMAGE_STEM = re.compile(r"^(?P<stem>.+?)[_-](image|img)$", re.IGNORECASE)


def pair_masks(files: list[Path]) -> dict[str, tuple[Path, Path | None]]:
    """Cases of a folder of volumes: ``{case id: (image, mask or None)}``.

    ``x_seg``/``x_mask``/``x_label`` pairs with ``x`` or with ``x_image`` (pyradiomics'
    ``brain1_image.nrrd`` + ``brain1_label.nrrd``), as does a 3D Slicer ``x.seg.nrrd``; a
    pair's case id is ``x``. A mask-like name without an image is an image of its own (a lone
    ``.seg.nrrd``, a mask-only case).
    """
    stems = {strip_suffix(p.name): p for p in files}
    images: dict[str, str] = {}  # base name (lower case) -> stem of a possible image
    for stem in stems:
        m = IMAGE_STEM.match(stem)
        images.setdefault((m["stem"] if m else stem).lower(), stem)
    masks: dict[str, str] = {}  # image stem -> mask stem
    for stem in stems:
        m = MASK_STEM.match(stem)
        base = m["stem"] if m else stem[:-4] if stem.lower().endswith(".seg") else None
        target = images.get(base.lower()) if base else None
        if target is not None and target != stem and not MASK_STEM.match(target):
            masks.setdefault(target, stem)
    out = {}
    for stem, path in stems.items():
        if stem in masks.values():
            continue
        m = IMAGE_STEM.match(stem)
        case_id = m["stem"] if m and stem in masks else stem
        out[case_id] = (path, stems[masks[stem]] if stem in masks else None)
    return out


class GenericDataset(Dataset):
    format = "generic"
    description = "NIfTI/MHA/NRRD files, a DICOM folder, or a PNG/TIF stack"

    @classmethod
    def detect(cls, path: Path) -> bool:
        if path.is_file():
            return has_suffix(path, VOLUME_SUFFIXES + IMAGE_SUFFIXES) or is_dicom(path)
        if not path.is_dir():
            return False
        entries = [p for p in path.iterdir() if visible(p)]
        files = [p for p in entries if p.is_file()]
        if any(has_suffix(p, VOLUME_SUFFIXES + IMAGE_SUFFIXES) for p in files):
            return True
        return any(is_dicom(p) for p in _walk_files(path, limit=200))

    def __init__(self, root):
        super().__init__(root)
        self._cases: dict[str, dict] = {}
        root = self.root
        if root.is_file():
            if is_dicom(root) and not has_suffix(root, VOLUME_SUFFIXES + IMAGE_SUFFIXES):
                self._add_dicom(root.parent)
            else:
                self._cases[strip_suffix(root.name)] = {"kind": "file", "image": root, "mask": None}
            return
        files = [p for p in list_visible(root) if p.is_file()]
        volumes = [p for p in files if has_suffix(p, VOLUME_SUFFIXES)]
        images = sorted((p for p in files if has_suffix(p, IMAGE_SUFFIXES)), key=natural_key)
        for case_id, (image, mask) in pair_masks(volumes).items():
            self._cases[case_id] = {"kind": "file", "image": image, "mask": mask}
        if images:
            img_files = [p for p in images if not MASK_STEM.match(strip_suffix(p.name))]
            mask_files = [p for p in images if MASK_STEM.match(strip_suffix(p.name))]
            self._cases[root.name or "stack"] = {
                "kind": "stack",
                "image": img_files,
                "mask": mask_files or None,
            }
        if not self._cases:
            self._add_dicom(root)

    def _add_dicom(self, folder: Path) -> None:
        from napari_medseg.io.dicom import find_series

        for series in find_series(folder):
            self._cases[series.case_id] = {"kind": "dicom", "image": series, "mask": None}

    def case_ids(self) -> list[str]:
        return list(self._cases)

    def load_case(self, case_id: str) -> Case:
        entry = self._entry(self._cases, case_id)
        masks = []
        if entry["kind"] == "dicom":
            from napari_medseg.io.dicom import read_series
            from napari_medseg.io.dicom_seg import dicom_mask_volume

            series = entry["image"]
            images = [read_series(series)]
            masks = [dicom_mask_volume(f, series, images[0]) for f in series.mask_files]
        elif entry["kind"] == "stack":
            images = [read_image_stack(entry["image"], name=case_id)]
            if entry["mask"]:
                if len(entry["mask"]) != len(entry["image"]):
                    raise ReadError(
                        f"{len(entry['mask'])} mask files for {len(entry['image'])} images",
                        self.root,
                    )
                masks = [
                    read_image_stack(entry["mask"], name="mask", labelmap=LabelMap.from_names({}))
                ]
        else:
            images = read_volume(entry["image"])
            if is_seg_nrrd(entry["image"]):  # a Slicer segmentation on its own
                images, masks = [], read_seg_nrrd(entry["image"])
            elif entry["mask"] is not None and is_seg_nrrd(entry["mask"]):
                masks = read_seg_nrrd(entry["mask"])
            elif entry["mask"] is not None:
                masks = read_volume(entry["mask"], name="mask", labelmap=LabelMap.from_names({}))
        case = Case(case_id, images, masks)
        if entry["kind"] == "dicom":
            case.problems += entry["image"].problems
        check_grids(case)
        return case


def _walk_files(folder: Path, limit: int):
    count = 0
    for p in sorted(folder.rglob("*")):
        if p.is_file() and visible(p):
            yield p
            count += 1
            if count >= limit:
                return
