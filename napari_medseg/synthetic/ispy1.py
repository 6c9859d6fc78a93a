"""ISPY1-Tumor-SEG-Radiomics as TCIA ships it: ``NIfTI-Files/`` with native and resampled z-scored
DCE images (``..._N3.nii.gz`` and ``..._N3_zscored.nii.gz``), STV manual/ResUNet masks ({0, 1}),
FTV masks ({0, 255}, first case only) and ``captk_parameter_file_ispy1.csv``.

``ISPY_DataPaper_features.xlsx`` is not written (no xlsx writer is installed; readers ignore it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_medseg.synthetic.msd import write_nifti
from napari_medseg.synthetic.phantom import ellipsoid

CASES = ("ISPY1_1002", "ISPY1_1003", "ISPY1_1010")
RESAMPLED = "images_bias-corrected_resampled_zscored_nifti"
NATIVE = "images_bias-corrected_nifti"


def ispy1_volumes(seed: int, shape=(12, 32, 32)) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(3, z, y, x) float32 z-scored DCE phases and the stv_manual, stv_resunet and ftv masks."""
    rng = np.random.default_rng(seed)
    breasts = ellipsoid(shape, (0, -0.3, -0.45), (1.1, 0.5, 0.4)) | ellipsoid(
        shape, (0, -0.3, 0.45), (1.1, 0.5, 0.4)
    )
    centre = (0.1, -0.4, -0.45 if seed % 2 == 0 else 0.45)
    tumour = ellipsoid(shape, centre, (0.35, 0.18, 0.15)) & breasts
    core = ellipsoid(shape, centre, (0.2, 0.1, 0.08)) & breasts
    phases = []
    for uptake in (0.0, 2.0, 1.6):  # pre-contrast, early and late post-contrast
        img = (
            np.where(breasts, 1.0, 0.1)
            + np.where(tumour & ~core, uptake, 0.0)
            + rng.normal(0, 0.05, shape)
        )
        phases.append(np.round((img - img.mean()) / img.std(), 2).astype(np.float32))
    masks = {
        "stv_manual": tumour.astype(np.uint8),
        "stv_resunet": (ellipsoid(shape, centre, (0.3, 0.16, 0.14)) & breasts).astype(np.uint8),
        "ftv": np.where(tumour & ~core, 255, 0).astype(np.uint8),
    }
    return np.stack(phases), masks


def make_ispy1(root: Path, n_cases: int = 2, shape=(12, 32, 32)) -> Path:
    """Write ``root/NIfTI-Files`` and return it."""
    top = Path(root) / "NIfTI-Files"
    for i, case in enumerate(CASES[:n_cases]):
        phases, masks = ispy1_volumes(i, shape)
        for p, img in enumerate(phases):
            write_nifti(
                top / RESAMPLED / case / f"{case}_DCE_000{p}_N3_zscored.nii.gz",
                img,
                (1.0, 1.0, 1.0),
            )
            # the native grid has thicker slices; masks must not be overlaid on it
            write_nifti(
                top / NATIVE / case / f"{case}_DCE_000{p}_N3.nii.gz", img[::2], (2.0, 1.0, 1.0)
            )
        for name, mask in masks.items():
            if name != "ftv" or i == 0:
                write_nifti(
                    top / f"masks_{name}" / f"{case}.nii.gz", mask, (1.0, 1.0, 1.0), np.uint8
                )
    (top / "captk_parameter_file_ispy1.csv").write_text(
        "Feature,Parameter,Type,Range,Default\nIntensity,Quantization,Int,0:1024,256\n"
    )
    return top
