"""A Medical Segmentation Decathlon task folder (``TaskNN_Name``), macOS junk included."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

from napari_medseg.synthetic.phantom import brain, display_to_nifti, nifti_affine, torso


def write_nifti(path: Path, display: np.ndarray, spacing, dtype=None) -> None:
    """Write a display-order (z, y, x[, c]) array as a RAS NIfTI."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if display.ndim == 4:  # channels last, as MSD's 4D tasks store them
        data = np.stack(
            [display_to_nifti(display[..., c]) for c in range(display.shape[-1])], axis=-1
        )
    else:
        data = display_to_nifti(display)
    img = nib.Nifti1Image(data.astype(dtype or data.dtype), nifti_affine(spacing))
    nib.save(img, str(path))


def make_msd(
    root: Path,
    task: str = "Task09_Spleen",
    n_train: int = 2,
    n_test: int = 1,
    shape=(16, 48, 48),
    spacing=(5.0, 0.8, 0.8),
) -> Path:
    """Write an MSD task. ``Task01_BrainTumour`` gives a 4D four-channel MRI task."""
    folder = Path(root) / task
    brain_task = task.startswith("Task01")
    prefix = task.split("_", 1)[1].lower()
    training, test = [], []
    for i in range(n_train + n_test):
        name = f"{prefix}_{i + 1}.nii.gz"
        if brain_task:
            imgs, labels = brain(shape, seed=i)
            image = np.moveaxis(imgs, 0, -1)
        else:
            ct, _, organs = torso(shape, seed=i)
            image, labels = ct, (organs == 2).astype(np.uint8)
        split = "imagesTr" if i < n_train else "imagesTs"
        write_nifti(folder / split / name, image, spacing)
        if i < n_train:
            write_nifti(folder / "labelsTr" / name, labels, spacing, np.uint8)
            training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
            (folder / "imagesTr" / f"._{name}").write_bytes(
                b"\x00\x05\x16\x07macOS"
            )  # junk, as in the archives
        else:
            test.append(f"./imagesTs/{name}")
    meta = {
        "name": prefix.capitalize(), "description": "synthetic", "reference": "napari-medseg",
        "licence": "CC-BY-SA 4.0", "relase": "1.0", "tensorImageSize": "4D" if brain_task else "3D",
        "modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"} if brain_task else {"0": "CT"},
        "labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"}
        if brain_task else {"0": "background", "1": "spleen"},
        "numTraining": n_train, "numTest": n_test, "training": training, "test": test,
    }  # fmt: skip
    (folder / "dataset.json").write_text(json.dumps(meta, indent=4))
    return folder
