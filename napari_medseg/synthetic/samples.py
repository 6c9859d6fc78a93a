"""The sample datasets shipped in ``sample_data/``: one small synthetic copy of each layout.

``scripts/make_sample_data.py`` writes them all; File > Open Sample opens the first four.
Each builder takes the sample root and returns the dataset path to open.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def _msd(root: Path) -> Path:
    from napari_medseg.synthetic.msd import make_msd

    return make_msd(root, "Task09_Spleen")


def _msd_brain(root: Path) -> Path:
    from napari_medseg.synthetic.msd import make_msd

    return make_msd(root, "Task01_BrainTumour", n_train=1, n_test=0, shape=(12, 40, 40))


def _petct(root: Path) -> Path:
    from napari_medseg.synthetic.petct import make_synthetic_petct

    return make_synthetic_petct(
        root / "synthetic_petct", n_cases=2, shape=(40, 96, 96), spacing=(3.0, 3.0, 3.0)
    )


def _fdg(root: Path) -> Path:
    from napari_medseg.synthetic.petct import make_petct_lesions

    return make_petct_lesions(root / "FDG-PET-CT-Lesions")


def _brats(root: Path) -> Path:
    from napari_medseg.synthetic.brats import make_brats

    return make_brats(root, "2021", n_cases=2, shape=(24, 60, 60))


def _brats2023(root: Path) -> Path:
    from napari_medseg.synthetic.brats import make_brats

    return make_brats(root, "2023", n_cases=1)


def _lgg(root: Path) -> Path:
    from napari_medseg.synthetic.lgg import make_lgg

    return make_lgg(root / "lgg-mri-segmentation", duplicate=False)


def _nnunet(root: Path) -> Path:
    from napari_medseg.synthetic.nnunet import make_nnunet

    return make_nnunet(root, "autopet2")


def _amos(root: Path) -> Path:
    from napari_medseg.synthetic.amos import make_amos

    return make_amos(root)


def _ispy1(root: Path) -> Path:
    from napari_medseg.synthetic.ispy1 import make_ispy1

    return make_ispy1(root / "ISPY1-Tumor-SEG-Radiomics")


def _medmnist(root: Path) -> Path:
    from napari_medseg.synthetic.medmnist import make_medmnist

    return make_medmnist(root / "medmnist", "organamnist")


def _lss(root: Path) -> Path:
    from napari_medseg.synthetic.lss import make_lss

    return make_lss(root / "LSS-MRI-AISSLab")


def _dicom(root: Path) -> Path:
    from napari_medseg.io.dicom_write import write_dicom_series
    from napari_medseg.synthetic.phantom import torso

    ct, _, _ = torso((16, 64, 64))
    folder = root / "dicom_ct"
    write_dicom_series(folder, ct, (5.0, 1.5, 1.5), modality="CT")
    return folder


def _cvat(root: Path) -> Path:
    from napari_medseg.export import export_masks, item_from_case
    from napari_medseg.io.detect import open_dataset

    task = root / "Task09_Spleen"
    ds = open_dataset(task if task.exists() else _msd(root))
    item, labelmap = item_from_case(ds.load_case(ds.case_ids()[0]), with_image=True)
    export_masks("cvat", root / "cvat_export", [item], labelmap, images=True)
    return root / "cvat_export"


MANIFEST = "samples.json"  # {key: path relative to the sample root}, written with the samples

SAMPLES: dict[str, Callable[[Path], Path]] = {
    "petct": _petct,
    "brats": _brats,
    "lgg": _lgg,
    "msd": _msd,
    "msd_brain": _msd_brain,
    "fdg_pet_ct_lesions": _fdg,
    "brats2023": _brats2023,
    "nnunet_autopet": _nnunet,
    "amos": _amos,
    "ispy1": _ispy1,
    "medmnist": _medmnist,
    "lss": _lss,
    "dicom": _dicom,
    "cvat": _cvat,
}


def make_samples(root: str | Path, keys=None) -> dict[str, str]:
    """Write samples (all, or ``keys``) under ``root`` and merge their paths into the manifest."""
    import json

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    manifest = root / MANIFEST
    made = json.loads(manifest.read_text()) if manifest.is_file() else {}
    made.update({key: SAMPLES[key](root).relative_to(root).as_posix() for key in (keys or SAMPLES)})
    manifest.write_text(json.dumps(made, indent=2) + "\n")
    return made
