"""LGG MRI Segmentation (Kaggle ``mateuszbuda/lgg-mri-segmentation``, folder ``kaggle_3m/``).

One case per ``TCGA_<inst>_<pid>_<date>`` folder of 2D TIFF slices ``<folder>_<n>.tif`` with
masks ``<folder>_<n>_mask.tif``. Slices are ordered by the integer ``n``; each RGB slice holds
three MR sequences (pre-contrast, FLAIR, post-contrast), shown as three layers. The mask is
0/255 and becomes label 1. ``data.csv`` rows (keyed by the first three name tokens) become
case metadata. There is no spacing: pixel units.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from napari_medseg.core.errors import ReadError
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.model import Case, Dataset
from napari_medseg.io.datasets._common import binarized, check_grids
from napari_medseg.io.listing import list_visible, visible
from napari_medseg.io.volumes import read_image_stack

CHANNELS = ("pre-contrast", "FLAIR", "post-contrast")
LABELS = LabelMap.from_names({1: "FLAIR abnormality"})
SLICE = re.compile(r"^(?P<case>TCGA_.+)_(?P<n>\d+)(?P<mask>_mask)?\.tif$")
# The Kaggle zip holds the data twice; the nested copy is only used when the outer one is absent.
NESTED = ("kaggle_3m", "lgg-mri-segmentation/kaggle_3m")


def _is_case_folder(path: Path) -> bool:
    return (
        path.is_dir()
        and path.name.startswith("TCGA_")
        and next(path.glob("*_mask.tif"), None) is not None
    )


def _data_folder(path: Path) -> Path | None:
    """The ``kaggle_3m``-like folder holding the TCGA_* case folders, or None."""
    if path.name == "kaggle_3m" and path.is_dir():
        return path
    for rel in NESTED:
        if (path / rel).is_dir():
            return path / rel
    return None


class LGGDataset(Dataset):
    format = "lgg"
    description = "LGG MRI Segmentation (Kaggle kaggle_3m TIFF slices)"

    @classmethod
    def detect(cls, path: Path) -> bool:
        return path.is_dir() and (_data_folder(path) is not None or _is_case_folder(path))

    def __init__(self, root):
        super().__init__(root)
        data = _data_folder(self.root)
        if data is None:  # a single TCGA_* folder
            self.folders = {self.root.name: self.root}
            self.csv_path = self.root.parent / "data.csv"
        else:
            self.folders = {p.name: p for p in list_visible(data, "TCGA_*") if p.is_dir()}
            self.csv_path = data / "data.csv"
        self._table: dict[str, dict] | None = None

    def case_ids(self) -> list[str]:
        return list(self.folders)

    def slices(self, case_id: str) -> tuple[list[Path], list[Path]]:
        """Image and mask files of a case, ordered by the slice number (``_10`` after ``_9``)."""
        images, masks = {}, {}
        for f in self.folders[case_id].iterdir():
            m = SLICE.match(f.name)
            if m and visible(f) and m["case"] == case_id:
                (masks if m["mask"] else images)[int(m["n"])] = f
        return [images[n] for n in sorted(images)], [masks[n] for n in sorted(masks)]

    def clinical(self, case_id: str) -> dict:
        """The ``data.csv`` row of the patient (folder name minus the date), as strings."""
        if self._table is None:
            self._table = {}
            if self.csv_path.is_file():
                try:
                    with open(self.csv_path, newline="", encoding="utf-8") as fh:
                        self._table = {
                            row["Patient"]: row for row in csv.DictReader(fh) if row.get("Patient")
                        }
                except (OSError, UnicodeDecodeError, KeyError, csv.Error) as exc:
                    raise ReadError(f"not a readable data.csv ({exc})", self.csv_path) from exc
        return dict(self._table.get("_".join(case_id.split("_")[:3]), {}))

    def load_case(self, case_id: str) -> Case:
        if case_id not in self.folders:
            raise self._unknown_case(case_id)
        images, masks = self.slices(case_id)
        if not images:
            raise ReadError("no <folder>_<n>.tif slices in this case folder", self.folders[case_id])
        case = Case(case_id, metadata={"slices": len(images), **self.clinical(case_id)})
        for c, name in enumerate(CHANNELS):
            vol = read_image_stack(images, name=name, modality="MR", channel=c)
            vol.channel = name
            case.images.append(vol)
        if len(masks) == len(images):
            case.masks.append(binarized(read_image_stack(masks, name="mask", labelmap=LABELS)))
        elif masks:
            case.problems.append(
                f"{len(masks)} mask slices for {len(images)} image slices: mask not shown"
            )
        check_grids(case)
        return case
