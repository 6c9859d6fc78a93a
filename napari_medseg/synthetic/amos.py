"""AMOS 2022 as extracted from ``amos22.zip``: ``amos22/`` beside the zip's ``__MACOSX/``, plus the
separately downloaded ``labeled_data_meta_0000_0599.csv``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from napari_medseg.synthetic.brats import write_brats_nifti
from napari_medseg.synthetic.msd import write_nifti
from napari_medseg.synthetic.phantom import ellipsoid, torso

LABELS = {
    "0": "background", "1": "spleen", "2": "right kidney", "3": "left kidney", "4": "gall bladder",
    "5": "esophagus", "6": "liver", "7": "stomach", "8": "arota", "9": "postcava", "10": "pancreas",
    "11": "right adrenal gland", "12": "left adrenal gland", "13": "duodenum", "14": "bladder",
    "15": "prostate/uterus",
}  # fmt: skip
# (split, amos id): two CT training cases, one MRI (id > 500), one validation and one test CT.
CASES = (("training", 1), ("training", 507), ("validation", 8), ("test", 2))
FOLDERS = {
    "training": ("imagesTr", "labelsTr"),
    "validation": ("imagesVa", "labelsVa"),
    "test": ("imagesTs", None),
}
CT_SPACING = (5.0, 0.78, 0.78)
META_COLUMNS = (
    "amos_id", "Patient's Birth Date", "Patient's Sex", "Patient's Age",
    "Manufacturer's Model Name", "Manufacturer", "Acquisition Date", "Site",
)  # fmt: skip
SITE = "Longgang District People's Hospital"


def amos_volumes(amos_id: int, shape=(12, 32, 32)) -> tuple[np.ndarray, np.ndarray]:
    """The display-order image (CT in HU, or MRI intensities above id 500) and AMOS labels."""
    ct, _, organs = torso(shape, seed=amos_id)
    labels = np.zeros(shape, np.uint8)
    labels[organs == 1] = 6  # liver
    labels[organs == 3] = 6  # the phantom's liver lesion is still liver here
    labels[organs == 2] = 1  # spleen
    labels[ellipsoid(shape, (0, 0.3, 0.05), (1.2, 0.08, 0.08)) & (organs == 0)] = (
        8  # aorta ("arota")
    )
    image = ct if amos_id <= 500 else ((ct.astype(np.int32) + 1000) // 4).astype(np.int16)
    return image, labels


def make_amos(root: Path, shape=(12, 32, 32)) -> Path:
    """Write the extracted archive under ``root``; return ``root/amos22``."""
    folder = Path(root) / "amos22"
    lists: dict[str, list] = {"training": [], "validation": [], "test": []}
    for split, amos_id in CASES:
        name = f"amos_{amos_id:04d}.nii.gz"
        images, labels = FOLDERS[split]
        image, label = amos_volumes(amos_id, shape)
        (folder / images).mkdir(parents=True, exist_ok=True)
        if amos_id > 500:  # MRI cases come in another orientation
            write_brats_nifti(folder / images / name, image)
        else:
            write_nifti(folder / images / name, image, CT_SPACING)
        entry = {"image": f"./{images}/{name}"}
        if labels:
            (folder / labels).mkdir(parents=True, exist_ok=True)
            if amos_id > 500:
                write_brats_nifti(folder / labels / name, label)
            else:
                write_nifti(folder / labels / name, label, CT_SPACING, np.uint8)
            entry["label"] = f"./{labels}/{name}"
        lists[split].append(entry)
        junk = Path(root) / "__MACOSX" / "amos22" / images / f"._{name}"
        junk.parent.mkdir(parents=True, exist_ok=True)
        junk.write_bytes(b"\x00\x05\x16\x07Mac OS X")
    meta = {
        "name": "AMOS", "tensorImageSize": "3D", "reference": "SRIBD, CUHK-SZ",
        "description": "MICCAI2022 Multi-Modality Abdominal Multi-Organ Segmentation Challenge",
        "licence": "CC-BY-SA 4.0", "release": "1.0 01/05/2022", "modality": {"0": "CT"},
        "labels": LABELS, "numTraining": len(lists["training"]),
        "numValidation": len(lists["validation"]), "numTest": len(lists["test"]), **lists,
    }  # fmt: skip
    (folder / "dataset.json").write_text(json.dumps(meta, indent=4))
    rows = [",".join(META_COLUMNS)]
    for i, (_, amos_id) in enumerate(CASES):
        scanner = "Aquilion ONE,TOSHIBA" if amos_id <= 500 else "Ingenia,Philips"
        rows.append(
            f"{amos_id},1970010{i + 1},{'MF'[i % 2]},0{45 + i}Y,{scanner},2020010{i + 1},{SITE}"
        )
    (Path(root) / "labeled_data_meta_0000_0599.csv").write_text("\n".join(rows) + "\n")
    return folder
