"""AMOS 2022 (``amos22/``): MSD-style ``dataset.json`` with training, validation and test lists.

The JSON says ``modality: {"0": "CT"}`` for every case, but ids above 500 are MRI, so the
modality comes from the id. The layout is recognised by its ``amos_NNNN`` names, with or without
``imagesVa/`` (partial downloads hold only ``imagesTr/`` + ``labelsTr/``). Label names are the
JSON's own (including its "arota").
``labeled_data_meta_0000_0599.csv`` (a separate download), when found in the folder or its
parent, adds sex, age and scanner to the case metadata. The zip's ``__MACOSX/`` is ignored.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from napari_medseg.core.errors import ReadError
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.model import Case, Dataset
from napari_medseg.core.validate import validated
from napari_medseg.io.datasets._common import check_grids, dataset_json, load_json
from napari_medseg.io.datasets._metadata import DecathlonJson, decathlon_cases
from napari_medseg.io.volumes import read_nifti

SPLITS = ("training", "validation", "test")
META_CSV = "labeled_data_meta_0000_0599.csv"
AMOS_ID = re.compile(r"amos_(\d+)")
AMOS_FILE = re.compile(r"amos_\d{4}\.nii(\.gz)?$")


def modality_of(case_id: str) -> str:
    """CT for ids up to 500, MR above (the ``amos_05xx`` files)."""
    m = AMOS_ID.search(case_id)
    return "MR" if m and int(m[1]) > 500 else "CT"


def _amos_folder(path: Path) -> Path | None:
    """``path`` itself or its ``amos22/`` child when it has the AMOS signature."""
    for folder in (path, path / "amos22"):
        meta = dataset_json(folder) if folder.is_dir() else None
        if meta and "modality" in meta and "training" in meta:
            training = meta["training"] if isinstance(meta["training"], list) else []
            first = training[0] if training else {}
            image = first.get("image", "") if isinstance(first, dict) else str(first)
            if AMOS_FILE.match(Path(str(image)).name):  # imagesVa/ is absent in partial downloads
                return folder
    return None


class AmosDataset(Dataset):
    format = "amos"
    description = "AMOS 2022 abdominal CT/MRI (amos22/)"

    @classmethod
    def detect(cls, path: Path) -> bool:
        return _amos_folder(path) is not None

    def __init__(self, root):
        super().__init__(root)
        self.folder = _amos_folder(self.root) or self.root
        self.meta = load_json(self.folder / "dataset.json")
        cases = decathlon_cases(self.folder, self.meta, SPLITS)
        # a split not downloaded (partial download) is not a missing file
        self._cases = {k: v for k, v in cases.items() if v["image"].parent.is_dir()}
        model = validated(DecathlonJson, self.meta, self.folder / "dataset.json")
        self.labelmap = LabelMap.from_names(dict(model.labels or {}))
        self._clinical: dict[int, dict] | None = None

    def case_ids(self) -> list[str]:
        return list(self._cases)

    def clinical(self, case_id: str) -> dict:
        """The row of ``labeled_data_meta_0000_0599.csv`` for this case (empty when absent)."""
        if self._clinical is None:
            self._clinical = {}
            path = next(
                (p for p in (self.folder / META_CSV, self.folder.parent / META_CSV) if p.is_file()),
                None,
            )
            if path is not None:
                try:
                    with open(path, newline="", encoding="utf-8-sig") as fh:
                        for row in csv.DictReader(fh):
                            m = re.search(r"\d+", row.get("amos_id") or "")
                            if m:
                                self._clinical[int(m[0])] = {
                                    k: v for k, v in row.items() if k != "amos_id"
                                }
                except (OSError, UnicodeDecodeError, csv.Error) as exc:
                    raise ReadError(f"not a readable metadata table ({exc})", path) from exc
        m = AMOS_ID.search(case_id)
        return dict(self._clinical.get(int(m[1]), {})) if m else {}

    def load_case(self, case_id: str) -> Case:
        entry = self._entry(self._cases, case_id)
        path = entry["image"]
        if not path.exists():
            raise ReadError("image listed in dataset.json is missing", path)
        modality = modality_of(case_id)
        images = read_nifti(path, name=modality, modality=modality, channel_names=[modality])
        masks = []
        if entry["label"]:
            lpath = entry["label"]
            if lpath.exists():
                masks = read_nifti(lpath, name="label", labelmap=self.labelmap)
        case = Case(
            case_id, images, masks, metadata={"split": entry["split"], **self.clinical(case_id)}
        )
        if entry["label"] and not masks:
            case.problems.append(
                f"label listed in dataset.json is missing: {entry['label'].relative_to(self.folder)}"
            )
        check_grids(case)
        return case
