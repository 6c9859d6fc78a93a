"""BraTS case folders, in two naming schemes.

* 2020/2021: ``BraTS2021_00000/BraTS2021_00000_{flair,t1,t1ce,t2,seg}.nii.gz`` and
  ``BraTS20_Training_001/BraTS20_Training_001_flair.nii`` (uncompressed);
* 2023+: ``BraTS-GLI-00000-000/BraTS-GLI-00000-000-{t1n,t1c,t2w,t2f,seg}.nii.gz``.

Open the top folder or one case folder. The label table follows the naming scheme, because
label 4 means ET in 2021 but the resection cavity in the 2024 post-treatment set:

* underscore names (2020/2021): 1 NCR, 2 ED, 4 ET;
* hyphen names: 1 NCR/NETC, 2 ED/SNFH, 3 ET (2023 GLI), and when any folder name on the
  opened path contains ``2024``: 1 NETC, 2 SNFH, 3 ET, 4 RC (2024 GLI post-treatment).
"""

from __future__ import annotations

import re
from pathlib import Path

from napari_medseg.core.errors import ReadError
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.model import Case, Dataset
from napari_medseg.io.datasets._common import check_grids
from napari_medseg.io.listing import list_visible
from napari_medseg.io.volumes import read_nifti

CASE = re.compile(r"^(BraTS2021_\d+|BraTS20_(Training|Validation)_\d+|BraTS-[A-Z]+-\d+-\d+)$")
# Display channel name for each file suffix, in the order the layers are shown.
SEQUENCES = {
    "_": {"t1": "T1", "t1ce": "T1c", "t2": "T2", "flair": "FLAIR"},
    "-": {"t1n": "T1", "t1c": "T1c", "t2w": "T2", "t2f": "FLAIR"},
}
LABELS = {
    "2021": LabelMap.from_names({1: "NCR", 2: "ED", 4: "ET"}),
    "2023": LabelMap.from_names({1: "NCR/NETC", 2: "ED/SNFH", 3: "ET"}),
    "2024": LabelMap.from_names({1: "NETC", 2: "SNFH", 3: "ET", 4: "RC"}),
}


def label_table(case_id: str, root: Path) -> str:
    """``"2021"``, ``"2023"`` or ``"2024"``: which BraTS label table a case uses."""
    if "-" not in case_id:
        return "2021"
    return "2024" if any("2024" in part for part in root.resolve().parts) else "2023"


class BratsDataset(Dataset):
    format = "brats"
    description = "BraTS 2020/2021 or 2023+ case folders"

    @classmethod
    def detect(cls, path: Path) -> bool:
        if not path.is_dir():
            return False
        if CASE.match(path.name):
            return next(path.glob(f"{path.name}*.nii*"), None) is not None
        return any(CASE.match(p.name) and p.is_dir() for p in path.iterdir())

    def __init__(self, root):
        super().__init__(root)
        if CASE.match(self.root.name):
            self.folders = {self.root.name: self.root}
        else:
            self.folders = {
                p.name: p for p in list_visible(self.root) if p.is_dir() and CASE.match(p.name)
            }

    def case_ids(self) -> list[str]:
        return list(self.folders)

    def files(self, case_id: str) -> dict[str, Path]:
        """``{suffix: path}`` for ``<case><sep><suffix>.nii[.gz]`` files in the case folder."""
        sep = "-" if "-" in case_id else "_"
        out = {}
        for f in list_visible(self.folders[case_id], f"{case_id}{sep}*.nii*"):
            suffix = f.name[len(case_id) + 1 :].split(".")[0].lower()
            out[suffix] = f
        if "seg" not in out:  # BraTS20_Training_355 ships its seg as W39_1998.09.19_Segm.nii
            out.update(("seg", f) for f in list_visible(self.folders[case_id], "*[Ss]egm.nii*"))
        return out

    def load_case(self, case_id: str) -> Case:
        if case_id not in self.folders:
            raise self._unknown_case(case_id)
        files = self.files(case_id)
        if not set(files) - {"seg"}:
            raise ReadError(
                "no BraTS image files (<case>_flair.nii.gz or <case>-t2f.nii.gz ...)",
                self.folders[case_id],
            )
        table = label_table(case_id, self.root)
        case = Case(case_id, metadata={"label_table": f"BraTS {table}"})
        for suffix, name in SEQUENCES["-" if "-" in case_id else "_"].items():
            if suffix in files:
                case.images += read_nifti(
                    files[suffix], name=name, modality="MR", channel_names=[name]
                )
            else:
                case.problems.append(f"no {suffix} sequence")
        if "seg" in files:
            case.masks += read_nifti(files["seg"], name="seg", labelmap=LABELS[table])
        check_grids(case)
        return case
