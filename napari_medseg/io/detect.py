"""Auto-detection of dataset layouts, in the order of the dataset-layouts spec."""

from __future__ import annotations

from pathlib import Path

from napari_medseg.core.errors import LayoutError
from napari_medseg.core.model import Dataset
from napari_medseg.io.datasets.amos import AmosDataset
from napari_medseg.io.datasets.brats import BratsDataset
from napari_medseg.io.datasets.cvat import CvatMaskDataset
from napari_medseg.io.datasets.generic import GenericDataset
from napari_medseg.io.datasets.ispy1 import ISPY1Dataset
from napari_medseg.io.datasets.lgg import LGGDataset
from napari_medseg.io.datasets.lss import LSSDataset
from napari_medseg.io.datasets.medmnist import MedMNISTDataset
from napari_medseg.io.datasets.msd import MSDDataset
from napari_medseg.io.datasets.nnunet import NnUNetDataset
from napari_medseg.io.datasets.petct import PetCtLesionsDataset
from napari_medseg.io.datasets.synthetic_petct import SyntheticPetCtDataset

# Detection order matters: the first layout whose ``detect`` accepts the path wins.
LAYOUTS: tuple[type[Dataset], ...] = (
    NnUNetDataset,  # dataset.json with channel_names + file_ending (also AutoPET)
    AmosDataset,  # dataset.json with modality + training of amos_NNNN files
    MSDDataset,  # dataset.json with modality + training (also nnU-Net v1)
    PetCtLesionsDataset,  # PETCT_*/<study>/SUV.nii.gz
    BratsDataset,  # BraTS2021_* / BraTS-XXX-* case folders
    LGGDataset,  # kaggle_3m / TCGA_*/*_mask.tif
    ISPY1Dataset,  # masks_stv_manual/
    MedMNISTDataset,  # .npz with the six split keys
    LSSDataset,  # Foramina_Detection/ or VOC XML with RFS*/LFS*
    CvatMaskDataset,  # labelmap.txt + SegmentationClass/ (folder or zip)
    SyntheticPetCtDataset,  # our synthetic PET/CT generator's output
    GenericDataset,  # NIfTI/MHA/NRRD files, DICOM folders, PNG/TIF stacks
)


def sniff_format(path: str | Path) -> type[Dataset] | None:
    """The dataset class that claims ``path``, or None. Cheap; never raises: a layout whose
    ``detect`` hits an unreadable file (OSError, ValueError) does not claim the path."""
    p = Path(path)
    if not p.exists():
        return None
    for cls in LAYOUTS:
        try:
            if cls.detect(p):
                return cls
        except (OSError, ValueError):
            continue
    return None


def open_dataset(path: str | Path) -> Dataset:
    """Open ``path`` with the first layout that recognises it."""
    p = Path(path)
    if not p.exists():
        raise LayoutError("no such file or folder", p)
    cls = sniff_format(p)
    if cls is None:
        if p.is_dir() and not any(p.iterdir()):
            raise LayoutError("the folder is empty", p)
        if (p / "dataset.json").is_file():  # say what is wrong with it, not just "unknown"
            from napari_medseg.io.datasets._common import load_json

            load_json(p / "dataset.json")
        raise LayoutError("not a dataset layout or image format napari-medseg knows", p)
    return cls(p)
