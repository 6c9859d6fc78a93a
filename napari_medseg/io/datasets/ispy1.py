"""ISPY1-Tumor-SEG-Radiomics (TCIA ``NIfTI-Files/``): breast DCE-MRI with tumour masks.

Images come from ``images_bias-corrected_resampled_zscored_nifti/`` because the masks share
that grid (the native ``images_bias-corrected_nifti/`` grid differs). DCE phases
``_DCE_0000/0001/0002`` are the channels pre-contrast, post-contrast 1 and 2. The files are
documented as ``..._N3.nii`` but shipped as ``..._N3_zscored.nii.gz``: both match.
Masks: ``masks_stv_manual`` (primary), ``masks_stv_resunet``, and ``masks_ftv`` (0/255 -> 1)
when it exists on the same grid.
"""

from __future__ import annotations

import re
from pathlib import Path

from napari_medseg.core.errors import ReadError
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.model import Case, Dataset
from napari_medseg.io.datasets._common import binarized, check_grids
from napari_medseg.io.listing import list_visible
from napari_medseg.io.volumes import read_nifti, strip_suffix

IMAGES = "images_bias-corrected_resampled_zscored_nifti"
PHASES = {"0000": "pre-contrast", "0001": "post-contrast 1", "0002": "post-contrast 2"}
PHASE = re.compile(r"_DCE_(000\d)_N3")
CASE = re.compile(r"^ISPY1_\d+$")
# (folder, layer name, label name); the first is the primary mask.
MASKS = (
    ("masks_stv_manual", "STV manual", "tumour (STV manual)"),
    ("masks_stv_resunet", "STV ResUNet", "tumour (STV ResUNet)"),
    ("masks_ftv", "FTV", "functional tumour volume (FTV)"),
)


def _nifti_folder(path: Path) -> Path | None:
    for folder in (path, path / "NIfTI-Files"):
        if (folder / "masks_stv_manual").is_dir():
            return folder
    return None


class ISPY1Dataset(Dataset):
    format = "ispy1"
    description = "ISPY1-Tumor-SEG-Radiomics (TCIA NIfTI-Files)"

    @classmethod
    def detect(cls, path: Path) -> bool:
        return path.is_dir() and _nifti_folder(path) is not None

    def __init__(self, root):
        super().__init__(root)
        self.folder = _nifti_folder(self.root) or self.root
        ids = {
            strip_suffix(p.name)
            for p in list_visible(self.folder / "masks_stv_manual", "ISPY1_*.nii*")
        }
        ids |= {p.name for p in list_visible(self.folder / IMAGES, "ISPY1_*") if p.is_dir()}
        self._ids = sorted((i for i in ids if CASE.match(i)), key=lambda i: int(i.split("_")[1]))

    def case_ids(self) -> list[str]:
        return list(self._ids)

    def phase_files(self, case_id: str) -> dict[str, Path]:
        """``{"0000": path, ...}``: the DCE phases of a case on the resampled grid."""
        out = {}
        for f in list_visible(self.folder / IMAGES / case_id, f"{case_id}_DCE_000?_N3*.nii*"):
            m = PHASE.search(f.name)
            if m and m[1] in PHASES:
                out.setdefault(m[1], f)
        return out

    def load_case(self, case_id: str) -> Case:
        if case_id not in self._ids:
            raise self._unknown_case(case_id)
        phases = self.phase_files(case_id)
        if not phases:
            raise ReadError(
                f"no {case_id}_DCE_000?_N3*.nii* images", self.folder / IMAGES / case_id
            )
        case = Case(case_id, metadata={"images": IMAGES})
        for key in sorted(phases):
            name = PHASES[key]
            case.images += read_nifti(phases[key], name=name, modality="MR", channel_names=[name])
        grid = case.images[0].shape
        for folder, name, label in MASKS:
            path = next(iter(list_visible(self.folder / folder, f"{case_id}.nii*")), None)
            if path is None:
                continue
            (mask,) = read_nifti(path, name=name, labelmap=LabelMap.from_names({1: label}))
            if folder == "masks_ftv":
                if mask.shape != grid:
                    case.problems.append(
                        f"{path.name} in masks_ftv is on another grid {mask.shape}: not shown"
                    )
                    continue
                binarized(mask)  # FTV is stored as 0/255
            case.masks.append(mask)
        check_grids(case)
        return case
