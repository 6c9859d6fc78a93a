"""Medical Segmentation Decathlon (``TaskNN_Name/dataset.json``), and nnU-Net v1 raw folders.

Cases come from the ``training`` and ``test`` lists (never from listing folders), 4D
multimodal images are split into named channels, and label names come from the JSON.
"""

from __future__ import annotations

import re
from pathlib import Path

from napari_medseg.core.errors import ReadError
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.model import Case, Dataset
from napari_medseg.core.validate import validated
from napari_medseg.io.datasets._common import check_grids, dataset_json, load_json, modality_kind
from napari_medseg.io.datasets._metadata import DecathlonJson, decathlon_cases
from napari_medseg.io.listing import visible
from napari_medseg.io.volumes import read_nifti, strip_suffix

CHANNEL_SUFFIX = re.compile(r"_\d{4}$")


class MSDDataset(Dataset):
    format = "msd"
    description = "Medical Segmentation Decathlon task folder"

    @classmethod
    def detect(cls, path: Path) -> bool:
        meta = dataset_json(path) if path.is_dir() else None
        return bool(meta and "modality" in meta and "training" in meta)

    def __init__(self, root):
        super().__init__(root)
        self.meta = load_json(self.root / "dataset.json")
        self._cases = decathlon_cases(self.root, self.meta, ("training", "test"))
        model = validated(DecathlonJson, self.meta, self.root / "dataset.json")
        self.modalities = dict(model.modality or {})
        self.labelmap = LabelMap.from_names(dict(model.labels or {}))
        self.v1 = False
        if self._cases:
            first = next(iter(self._cases.values()))["image"]
            self.v1 = not first.exists() and bool(self._channel_files(first))
            if self.v1:
                self.format = "nnunet_v1"

    def case_ids(self) -> list[str]:
        return list(self._cases)

    def _channel_files(self, p: Path) -> list[Path]:
        """nnU-Net v1 stores ``case_0000.nii.gz``... where dataset.json names ``case.nii.gz``."""
        stem = strip_suffix(p.name)
        return sorted(f for f in p.parent.glob(f"{stem}_[0-9][0-9][0-9][0-9].nii*") if visible(f))

    def load_case(self, case_id: str) -> Case:
        entry = self._entry(self._cases, case_id)
        names = [self.modalities[k] for k in sorted(self.modalities)]
        images = []
        if self.v1:
            for i, f in enumerate(self._channel_files(entry["image"])):
                chan = names[i] if i < len(names) else str(i)
                images += read_nifti(
                    f, name=chan, modality=modality_kind(chan), channel_names=[chan]
                )
        else:
            path = entry["image"]
            if not path.exists():
                raise ReadError("image listed in dataset.json is missing", path)
            vols = read_nifti(path, name=case_id, channel_names=names)
            for vol in vols:
                vol.name = vol.channel or vol.name
                vol.modality = modality_kind(vol.channel or (names[0] if names else ""))
            images += vols
        masks = []
        if entry["label"]:
            lpath = entry["label"]
            if lpath.exists():
                masks += read_nifti(lpath, name="label", labelmap=self.labelmap)
        case = Case(
            case_id,
            images,
            masks,
            metadata={"split": entry["split"], "task": self.meta.get("name", "")},
        )
        check_grids(case)
        return case
