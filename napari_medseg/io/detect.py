"""Auto-detection of dataset layouts, in the order of the dataset-layouts spec."""

from __future__ import annotations

import importlib
from pathlib import Path

from napari_medseg.core.errors import LayoutError
from napari_medseg.core.model import Dataset

# Detection order matters: the first layout whose ``detect`` accepts the path wins.
LAYOUTS: tuple[str, ...] = (
    "nnunet:NnUNetDataset",  # dataset.json with channel_names + file_ending (also AutoPET)
    "amos:AmosDataset",  # dataset.json with modality + training of amos_NNNN files
    "msd:MSDDataset",  # dataset.json with modality + training (also nnU-Net v1)
    "petct:PetCtLesionsDataset",  # PETCT_*/<study>/SUV.nii.gz
    "brats:BratsDataset",  # BraTS2021_* / BraTS-XXX-* case folders
    "lgg:LGGDataset",  # kaggle_3m / TCGA_*/*_mask.tif
    "ispy1:ISPY1Dataset",  # masks_stv_manual/
    "medmnist:MedMNISTDataset",  # .npz with the six split keys
    "lss:LSSDataset",  # Foramina_Detection/ or VOC XML with RFS*/LFS*
    "cvat:CvatMaskDataset",  # labelmap.txt + SegmentationClass/ (folder or zip)
    "synthetic_petct:SyntheticPetCtDataset",  # our synthetic PET/CT generator's output
    "generic:GenericDataset",  # NIfTI/MHA/NRRD files, DICOM folders, PNG/TIF stacks
)


def layout_classes() -> list[type[Dataset]]:
    classes = []
    for spec in LAYOUTS:
        module, cls = spec.split(":")
        mod = importlib.import_module(f"napari_medseg.io.datasets.{module}")
        classes.append(getattr(mod, cls))
    return classes


def sniff_format(path: str | Path) -> type[Dataset] | None:
    """The dataset class that claims ``path``, or None. Cheap; never raises."""
    p = Path(path)
    if not p.exists():
        return None
    for cls in layout_classes():
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
        raise LayoutError("not a dataset layout or image format napari-medseg knows", p)
    return cls(p)
