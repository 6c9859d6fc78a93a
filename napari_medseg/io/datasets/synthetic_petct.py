"""Our synthetic PET/CT layout (``napari_medseg.synthetic.petct.make_synthetic_petct``):
``<root>/synthetic.json`` plus ``<root>/<case>/{ct,suv,seg}.nii.gz`` on one grid per case.

The JSON names the generator, its version, the cases and the labels (1 liver, 2 spleen,
3 lesion). The plugin's sample PET/CT case is such a folder. The root or one case folder
can be opened.
"""

from __future__ import annotations

from pathlib import Path

from napari_medseg.core.errors import ReadError
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.model import Case, Dataset
from napari_medseg.io.datasets._common import check_grids, load_json
from napari_medseg.io.volumes import read_nifti

GENERATOR = "napari-medseg synthetic-petct"
MANIFEST = "synthetic.json"


def _manifest(folder: Path) -> dict | None:
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        meta = load_json(path)
    except ReadError:
        return None
    return meta if meta.get("generator") == GENERATOR else None


class SyntheticPetCtDataset(Dataset):
    format = "synthetic_petct"
    description = "napari-medseg synthetic PET/CT (synthetic.json + <case>/{ct,suv,seg}.nii.gz)"

    @classmethod
    def detect(cls, path: Path) -> bool:
        if not path.is_dir():
            return False
        return _manifest(path) is not None or (
            _manifest(path.parent) is not None and (path / "ct.nii.gz").is_file()
        )

    def __init__(self, root):
        super().__init__(root)
        base = self.root if _manifest(self.root) is not None else self.root.parent
        self.meta = load_json(base / MANIFEST)
        self.base = base
        cases = [str(c) for c in self.meta.get("cases") or []]
        self._cases = [self.root.name] if base != self.root else cases
        self.labelmap = LabelMap.from_names(
            {int(k): v for k, v in (self.meta.get("labels") or {}).items()}
        )

    def case_ids(self) -> list[str]:
        return list(self._cases)

    def load_case(self, case_id: str) -> Case:
        if case_id not in self._cases:
            raise self._unknown_case(case_id)
        folder = self.base / case_id
        ct, suv, seg = (folder / f"{n}.nii.gz" for n in ("ct", "suv", "seg"))
        for path in (ct, suv):
            if not path.is_file():
                raise ReadError("missing image file of a synthetic PET/CT case", path)
        images = read_nifti(ct, name="CT", modality="CT", channel_names=["CT"])
        images += read_nifti(suv, name="SUV", modality="PET", channel_names=["SUV"])
        masks = read_nifti(seg, name="seg", labelmap=self.labelmap) if seg.is_file() else []
        case = Case(
            case_id,
            images,
            masks,
            metadata={"generator": f"{GENERATOR} v{self.meta.get('version')}"},
        )
        check_grids(case)
        return case
