"""FDG-PET-CT-Lesions (TCIA) NIfTI release:
``<root>/PETCT_<10hex>/<study>/{CT,CTres,PET,SUV,SEG}.nii.gz``,
with study folders named ``<MM-DD-YYYY>-NA-<StudyDescription>-<5 digits>``.

One case per study folder, id ``PETCT_<hex>_<study folder>`` made filesystem-safe (the folder
names hold spaces, even double ones). Images, in this order: ``CTres`` and ``SUV`` and ``PET``
(activity), which share the PET grid with ``SEG``, then the original ``CT`` on its own finer
grid (not aligned with SEG voxel for voxel, but placed correctly in world space). ``SEG`` is
one binary label, ``1 lesion``. The root, one ``PETCT_*`` folder or one study folder can be
opened. A TCIA ``Clinical Metadata*.csv`` (or ``fdg_metadata.csv``) at the root adds
diagnosis, age and sex, matched on ``Subject ID`` and ``Study Date``.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from napari_medseg.core.errors import ReadError
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.model import Case, Dataset
from napari_medseg.io.datasets._common import check_grids
from napari_medseg.io.dicom import safe_id
from napari_medseg.io.listing import list_visible
from napari_medseg.io.volumes import read_nifti

PATIENT = re.compile(r"^(PETCT|PSMA)_[0-9a-fA-F]+$")
STUDY_DATE = re.compile(r"^(\d{2})-(\d{2})-(\d{4})-")
LABELS = LabelMap.from_names({1: "lesion"})
# (file stem, layer name, modality, channel): aligned PET-grid images first, the native CT last.
# PET activity and the native CT duplicate SUV and CTres, so their layers start hidden.
HIDDEN = ("PET", "CT")
IMAGES = (
    ("CTres", "CTres", "CT", "CTres"),
    ("SUV", "SUV", "PET", "SUV"),
    ("PET", "PET", "PET", "activity"),
    ("CT", "CT", "CT", "CT"),
)
METADATA_COLUMNS = ("diagnosis", "age", "sex")


def _nifti(folder: Path, stem: str) -> Path | None:
    for suffix in (".nii.gz", ".nii"):
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return None


def _is_study(folder: Path) -> bool:
    return _nifti(folder, "SUV") is not None or _nifti(folder, "CTres") is not None


class PetCtLesionsDataset(Dataset):
    format = "fdg_pet_ct_lesions"
    description = "FDG-PET-CT-Lesions (TCIA) NIfTI: PETCT_<hex>/<study>/{CTres,SUV,SEG}.nii.gz"

    @classmethod
    def detect(cls, path: Path) -> bool:
        if not path.is_dir():
            return False
        if PATIENT.match(path.parent.name) and _is_study(path):
            return True
        if PATIENT.match(path.name):
            return any(_is_study(s) for s in path.iterdir() if s.is_dir())
        return any(PATIENT.match(p.parent.parent.name) for p in _first(path.glob("*/*/SUV.nii*")))

    def __init__(self, root):
        super().__init__(root)
        root = self.root
        if PATIENT.match(root.parent.name) and _is_study(root):
            studies = [root]
        elif PATIENT.match(root.name):
            studies = [s for s in list_visible(root) if s.is_dir()]
        else:
            studies = [
                s
                for p in list_visible(root, "*_*")
                if PATIENT.match(p.name)
                for s in list_visible(p)
                if s.is_dir()
            ]
        self._studies = {safe_id(f"{s.parent.name}_{s.name}"): s for s in studies}
        self._metadata: dict | None = None

    def case_ids(self) -> list[str]:
        return list(self._studies)

    def load_case(self, case_id: str) -> Case:
        folder = self._entry(self._studies, case_id)
        case = Case(case_id, metadata={"patient": folder.parent.name, "study": folder.name})
        for stem, name, modality, channel in IMAGES:
            path = _nifti(folder, stem)
            if path is None:
                case.problems.append(f"no {stem}.nii.gz")
                continue
            vols = read_nifti(path, name=name, modality=modality, channel_names=[channel])
            for vol in vols:
                vol.metadata["visible"] = stem not in HIDDEN
            case.images += vols
        if not case.images:
            raise ReadError("no CTres/SUV/PET/CT NIfTI files in this study folder", folder)
        seg = _nifti(folder, "SEG")
        if seg is not None:
            case.masks += read_nifti(seg, name="SEG", labelmap=LABELS)
        else:
            case.problems.append("no SEG.nii.gz")
        case.metadata.update(self.study_metadata(folder))
        check_grids(case)
        return case

    def study_metadata(self, folder: Path) -> dict:
        """Diagnosis, age and sex of a study from the TCIA metadata CSV, if one is present."""
        if self._metadata is None:
            self._metadata = self._read_metadata()
        m = STUDY_DATE.match(folder.name)
        if not m:
            return {}
        date = (int(m[1]), int(m[2]), int(m[3]))
        return self._metadata.get((folder.parent.name, date), {})

    def _read_metadata(self) -> dict:
        base = self.root
        while (
            base.parent != base
            and not list_visible(base, "*.csv")
            and (PATIENT.match(base.name) or _is_study(base))
        ):
            base = base.parent  # a PETCT_* or study folder was opened: the CSV lies above
        out: dict = {}
        for path in list_visible(base, "*.csv"):
            if "metadata" not in path.name.lower():
                continue
            try:
                with open(path, newline="", encoding="utf-8-sig") as fh:
                    for row in csv.DictReader(fh):
                        key = _row_key(row)
                        if key and key not in out:
                            out[key] = {
                                c: row[k]
                                for k in row
                                if k and (c := k.strip().lower()) in METADATA_COLUMNS
                            }
            except (OSError, UnicodeDecodeError, csv.Error):
                continue  # metadata is optional: a broken CSV must not stop the images loading
        return out


def _row_key(row: dict) -> tuple | None:
    subject = (row.get("Subject ID") or "").strip()
    parts = (row.get("Study Date") or "").strip().split("/")
    if not subject or len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return subject, (int(parts[0]), int(parts[1]), int(parts[2]))


def _first(iterator, n: int = 1):
    """At most ``n`` items, so detection stays cheap on a 1000-study root."""
    out = []
    for item in iterator:
        out.append(item)
        if len(out) >= n:
            break
    return out
