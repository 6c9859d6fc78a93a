"""nnU-Net v2 raw datasets: AutoPET-II (and autoPET-I's swapped channel order), BraTS with
regions, and a 2D RGB PNG set (like Dataset120_RoadSegmentation).

Kinds:

* ``"autopet2"``: ``Dataset221_AutoPETII_2023``, ``_0000`` = CTres (HU), ``_0001`` = SUV, both
  channels named "CT" as in nnU-Net's converter; ids ``PETCT_<hex>_<study folder>`` (with the
  spaces of the TCIA folder names).
* ``"autopet1"``: the same json with autoPET-I's order, SUV as ``_0000`` and CT as ``_0001``.
* ``"brats"``: ``Dataset137_BraTS2021`` (T1, T1ce, T2, Flair; labels as regions).
* ``"rgb"``: ``Dataset120_RoadSegmentation``-like 2D ``.png`` with channel_names R, G, B.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from napari_medseg.synthetic.msd import write_nifti
from napari_medseg.synthetic.phantom import brain, torso

STUDIES = (
    "PETCT_0011f3deaf_03-23-2003-NA-PET-CT Ganzkoerper  primaer mit KM-10445",
    "PETCT_01140d52d8_08-03-2003-NA-PET-CT Ganzkoerper  primaer mit KM-56839",
    "PETCT_0117d7ac11_11-25-2001-NA-PET-CT Ganzkoerper  primaer mit KM-21305",
)
NAMES = {
    "autopet2": "Dataset221_AutoPETII_2023", "autopet1": "Dataset221_AutoPETII_2023",
    "brats": "Dataset137_BraTS2021", "rgb": "Dataset120_RoadSegmentation",
}  # fmt: skip
CHANNELS = {
    "autopet2": {"0": "CT", "1": "CT"}, "autopet1": {"0": "CT", "1": "CT"},
    "brats": {"0": "T1", "1": "T1ce", "2": "T2", "3": "Flair"},
    "rgb": {"0": "R", "1": "G", "2": "B"},
}  # fmt: skip
TUMOUR = {"background": 0, "tumor": 1}
LABELS = {
    "autopet2": TUMOUR, "autopet1": TUMOUR, "rgb": {"background": 0, "road": 1},
    "brats": {
        "background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": [3],
    },
}  # fmt: skip


def case_volumes(kind: str, seed: int, shape) -> tuple[list[np.ndarray], np.ndarray]:
    """The display-order channel arrays (in file order) and the label array of one case."""
    if kind in ("autopet1", "autopet2"):
        ct, suv, organs = torso(shape, seed=seed)
        channels = [ct, np.round(suv, 3)]
        return (channels[::-1] if kind == "autopet1" else channels), (organs == 3).astype(np.uint8)
    if kind == "brats":
        images, labels = brain(shape, seed=seed)
        remapped = labels.copy()  # nnU-Net's BraTS: 1 edema, 2 necrosis, 3 enhancing
        remapped[labels == 1], remapped[labels == 2] = 2, 1
        return [np.rint(images[c]).astype(np.int16) for c in (1, 2, 3, 0)], remapped
    images, labels = brain(
        (3, *shape[-2:]), seed=seed, channels=3
    )  # the middle slice crosses the head
    rgb = np.clip(np.moveaxis(images[:, 1], 0, -1) / images.max() * 255, 0, 255).astype(np.uint8)
    return [rgb], (labels[1] > 0).astype(np.uint8)


def write_any(path: Path, display: np.ndarray, spacing, dtype=None) -> None:
    """Write a display-order array as NIfTI, MHA/NRRD (SimpleITK, LPS), PNG or TIFF."""
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        write_nifti(path, display, spacing, dtype)
    elif name.endswith(".png"):
        from PIL import Image

        Image.fromarray(display.astype(dtype or display.dtype)).save(path)
    elif name.endswith(".tif"):
        import tifffile

        tifffile.imwrite(path, display.astype(dtype or display.dtype))
        if len(spacing) == display.ndim == 3:  # nnU-Net's Tiff3DIO sidecar
            path.with_suffix(".json").write_text(json.dumps({"spacing": list(spacing)}))
    else:
        import SimpleITK as sitk

        img = sitk.GetImageFromArray(display.astype(dtype or display.dtype))  # (z, y, x) = S, P, L
        img.SetSpacing(tuple(float(s) for s in spacing[::-1]))
        sitk.WriteImage(img, str(path), useCompression=True)


def make_nnunet(
    root: Path,
    kind: str = "autopet2",
    n_train: int = 2,
    n_test: int = 1,
    shape=(12, 32, 32),
    spacing=(3.0, 2.0, 2.0),
    file_ending: str | None = None,
    dataset_key: str | None = None,
) -> Path:
    """Write an nnU-Net v2 raw dataset folder and return it.

    ``dataset_key`` (e.g. ``"."``) lists the training
    cases in a ``dataset`` entry with that path prefix, as nnU-Net allows.
    """
    folder = Path(root) / NAMES[kind]
    ending = file_ending or (".png" if kind == "rgb" else ".nii.gz")
    ids = (
        list(STUDIES)
        if kind.startswith("autopet")
        else (
            [f"BraTS2021_{i:05d}" for i in range(3)]
            if kind == "brats"
            else [f"img-{i + 1}" for i in range(3)]
        )
    )
    listing = {}
    for i, cid in enumerate(ids[: n_train + n_test]):
        images, labels = ("imagesTr", "labelsTr") if i < n_train else ("imagesTs", None)
        channels, label = case_volumes(kind, i, shape)
        files = []
        for c, arr in enumerate(channels):
            files.append(f"{images}/{cid}_{c:04d}{ending}")
            write_any(folder / files[-1], arr, spacing if kind != "rgb" else spacing[-2:])
        if labels:
            write_any(
                folder / labels / f"{cid}{ending}",
                label,
                spacing if kind != "rgb" else spacing[-2:],
                np.uint8,
            )
            listing[cid] = {
                "images": [f"{dataset_key}/{f}" for f in files],
                "label": f"{dataset_key}/{labels}/{cid}{ending}",
            }
    meta = {
        "channel_names": CHANNELS[kind], "labels": LABELS[kind], "numTraining": n_train,
        "file_ending": ending, "name": NAMES[kind].split("_", 1)[1], "licence": "CC-BY 4.0",
        "converted_by": "napari-medseg synthetic",
    }  # fmt: skip
    if kind == "brats":
        meta["regions_class_order"] = [1, 2, 3]
    if dataset_key:
        meta["dataset"] = listing
    (folder / "dataset.json").write_text(json.dumps(meta, indent=4))
    return folder
