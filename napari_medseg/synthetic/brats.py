"""BraTS case folders in the 2020, 2021, 2023 (GLI) and 2024 (GLI post-treatment) naming schemes.

Files carry the real BraTS affine (``diag(-1, -1, 1)``, origin at y = ny - 1), not a
RAS-canonical one, so readers must honour the header to show the phantom the right way round.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from napari_medseg.synthetic.phantom import brain, ellipsoid

TOP = {
    "2020": "MICCAI_BraTS2020_TrainingData",
    "2021": "RSNA_ASNR_MICCAI_BraTS2021_TrainingData_16July2021",
    "2023": "ASNR-MICCAI-BraTS2023-GLI-Challenge-TrainingData",
    "2024": "BraTS2024-BraTS-GLI-TrainingData/training_data1_v2",
}
SUFFIXES = {"_": ("t1", "t1ce", "t2", "flair"), "-": ("t1n", "t1c", "t2w", "t2f")}


def case_name(scheme: str, i: int, validation: bool = False) -> str:
    if scheme == "2020":
        return f"BraTS20_{'Validation' if validation else 'Training'}_{i + 1:03d}"
    if scheme == "2021":
        return f"BraTS2021_{i:05d}"
    return f"BraTS-GLI-{i + 2:05d}-{100 if scheme == '2024' else 0:03d}"


def brats_volumes(scheme: str, seed: int, shape=(16, 40, 40)) -> tuple[np.ndarray, np.ndarray]:
    """(4, z, y, x) int16 images (T1, T1c, T2, FLAIR) and labels in the scheme's values."""
    images, labels = brain(shape, seed=seed, channels=4)
    if scheme in ("2020", "2021"):
        labels[labels == 3] = 4  # ET is 4 before 2023
    if scheme == "2024":
        labels[ellipsoid(shape, (0.0, 0.2, -0.3), (0.3, 0.15, 0.15))] = 4  # resection cavity
    return np.rint(images).astype(np.int16), labels


def write_brats_nifti(path: Path, display: np.ndarray) -> None:
    """Write (z, y, x) with BraTS's affine: i toward patient left, j toward posterior."""
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    affine[1, 3] = display.shape[1] - 1
    nib.save(nib.Nifti1Image(np.ascontiguousarray(display.transpose(2, 1, 0)), affine), str(path))


def make_brats(
    root: Path, scheme: str = "2021", n_cases: int = 2, shape=(16, 40, 40), with_seg: bool = True
) -> Path:
    """Write ``n_cases`` BraTS case folders under the scheme's top folder; return that folder.

    ``with_seg=False`` writes validation cases, which have no ``seg`` file.
    """
    top = Path(root) / (TOP[scheme] if with_seg else TOP[scheme].replace("Training", "Validation"))
    sep = "_" if scheme in ("2020", "2021") else "-"
    ext = ".nii" if scheme == "2020" else ".nii.gz"
    for i in range(n_cases):
        name = case_name(scheme, i, validation=not with_seg)
        folder = top / name
        folder.mkdir(parents=True, exist_ok=True)
        images, labels = brats_volumes(scheme, i, shape)
        for suffix, img in zip(SUFFIXES[sep], images, strict=True):
            write_brats_nifti(folder / f"{name}{sep}{suffix}{ext}", img)
        if with_seg:
            write_brats_nifti(folder / f"{name}{sep}seg{ext}", labels)
    if scheme == "2020" and with_seg:
        head = (
            "Grade,"
            + ",".join(f"BraTS_{y}_subject_ID" for y in (2017, 2018))
            + ",TCGA_TCIA_subject_ID,"
        )
        head += ",".join(f"BraTS_{y}_subject_ID" for y in (2019, 2020))
        rows = [
            f"HGG,NA,NA,NA,BraTS19_CBICA_A{i:02d}_1,{case_name(scheme, i)}" for i in range(n_cases)
        ]
        (top / "name_mapping.csv").write_text("\n".join([head, *rows]) + "\n")
    return top
