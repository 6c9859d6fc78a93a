"""The Kaggle LGG MRI Segmentation zip, extracted: ``kaggle_3m/`` and its duplicate
``lgg-mri-segmentation/kaggle_3m/``, each with ``data.csv``, ``README.md`` and TCGA_* folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import tifffile

from napari_medseg.synthetic.phantom import brain

CASES = ("TCGA_CS_4941_19960909", "TCGA_CS_4942_19970222", "TCGA_DU_5849_19950405")
COLUMNS = (
    "Patient", "RNASeqCluster", "MethylationCluster", "miRNACluster", "CNCluster",
    "RPPACluster", "OncosignCluster", "COCCluster", "histological_type",
    "neoplasm_histologic_grade", "tumor_tissue_site", "laterality", "tumor_location", "gender",
    "age_at_initial_pathologic", "race", "ethnicity", "death01",
)  # fmt: skip


def lgg_volumes(seed: int, shape=(11, 32, 32)) -> tuple[np.ndarray, np.ndarray]:
    """(z, y, x, 3) uint8 slices (pre-contrast, FLAIR, post-contrast) and a 0/255 uint8 mask."""
    images, labels = brain(shape, seed=seed, channels=3)
    rgb = np.clip(np.moveaxis(images, 0, -1) / images.max() * 255, 0, 255).astype(np.uint8)
    return rgb, np.where(labels > 0, 255, 0).astype(np.uint8)


def make_lgg(root: Path, n_cases: int = 3, shape=(11, 32, 32), duplicate: bool = True) -> Path:
    """Write the extracted Kaggle archive under ``root`` and return ``root``.

    Slices are numbered from 1, so with 10 or more slices a lexical sort would misplace
    ``_10``. The last case lacks pre-contrast, which the dataset replaces by FLAIR.
    """
    root = Path(root)
    data = root / "kaggle_3m"
    data.mkdir(parents=True, exist_ok=True)
    rows = [",".join(COLUMNS)]
    for i, folder in enumerate(CASES[:n_cases]):
        rgb, mask = lgg_volumes(i, shape)
        if i == n_cases - 1 and n_cases > 1:
            rgb[..., 0] = rgb[..., 1]
        (data / folder).mkdir(exist_ok=True)
        for n in range(shape[0]):
            tifffile.imwrite(data / folder / f"{folder}_{n + 1}.tif", rgb[n], photometric="rgb")
            tifffile.imwrite(data / folder / f"{folder}_{n + 1}_mask.tif", mask[n])
        patient = "_".join(folder.split("_")[:3])
        clusters = f"{i % 4 + 1},{i % 5 + 1},NA,2,3,1,{i % 3 + 1}"
        rows.append(f"{patient},{clusters},1,2,1,3,2,{i % 2 + 1},{45 + i},3,2,{i % 2}")
    (data / "data.csv").write_text("\n".join(rows) + "\n")
    (data / "README.md").write_text(
        "LGG segmentation dataset (synthetic copy laid out like kaggle_3m).\n"
    )
    if duplicate:
        nested = root / "lgg-mri-segmentation" / "kaggle_3m"
        shutil.rmtree(nested, ignore_errors=True)
        shutil.copytree(data, nested)
    return root
