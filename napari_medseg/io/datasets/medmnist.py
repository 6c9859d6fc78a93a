"""MedMNIST v2/v3 ``.npz`` files (``<flag>.npz``, ``<flag>_{64,128,224}.npz``) and MedSegBench-style
npz files with image/mask pairs.

Keys are ``{train,val,test}_images`` with ``{split}_labels``. MedMNIST labels are (N, L)
CLASSIFICATION labels, never masks: each sample's class text ("3: lymphocytes", or every
positive finding for the multi-label chestmnist) goes to ``case.metadata["slice_labels"]``,
which the viewer shows as text on each slice. When the label array has the images' (N, S, S)
shape (MedSegBench: ``{split}_label``/``_labels``/``_mask``/``_masks``) it is a mask.

Cases: for 2D sets one case per split (``train``, ``val``, ``test``), the samples stacked
as slices; for 3D sets (N, S, S, S) one case per sample (``test_0000``, ...), because every
sample is a volume. Opening a folder of such files prefixes the ids with the file stem
(``pathmnist_train``). Arrays are read from the zip only when shown; pickled (object)
arrays are refused.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_medseg.core.errors import ReadError
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.limits import check_array
from napari_medseg.core.model import Case, Dataset, Volume
from napari_medseg.io.listing import list_visible
from napari_medseg.io.volumes import guarded

SPLITS = ("train", "val", "test")
LABEL_SUFFIXES = ("labels", "label", "masks", "mask")
FLAG = re.compile(r"^(?P<flag>[a-z0-9]+?)(_(?P<size>28|64|128|224))?$")
_ORGAN = [
    "bladder",
    "femur-left",
    "femur-right",
    "heart",
    "kidney-left",
    "kidney-right",
    "liver",
    "lung-left",
    "lung-right",
    "pancreas",
    "spleen",
]
# Class names from MedMNIST's medmnist/info.py (INFO[flag]["label"]), v3.0.2.
CLASS_NAMES: dict[str, list[str]] = {
    "pathmnist": [
        "adipose",
        "background",
        "debris",
        "lymphocytes",
        "mucus",
        "smooth muscle",
        "normal colon mucosa",
        "cancer-associated stroma",
        "colorectal adenocarcinoma epithelium",
    ],
    "chestmnist": [
        "atelectasis",
        "cardiomegaly",
        "effusion",
        "infiltration",
        "mass",
        "nodule",
        "pneumonia",
        "pneumothorax",
        "consolidation",
        "edema",
        "emphysema",
        "fibrosis",
        "pleural",
        "hernia",
    ],
    "dermamnist": [
        "actinic keratoses and intraepithelial carcinoma",
        "basal cell carcinoma",
        "benign keratosis-like lesions",
        "dermatofibroma",
        "melanoma",
        "melanocytic nevi",
        "vascular lesions",
    ],
    "octmnist": ["choroidal neovascularization", "diabetic macular edema", "drusen", "normal"],
    "pneumoniamnist": ["normal", "pneumonia"],
    "retinamnist": ["0", "1", "2", "3", "4"],
    "breastmnist": ["malignant", "normal, benign"],
    "bloodmnist": [
        "basophil",
        "eosinophil",
        "erythroblast",
        "immature granulocytes(myelocytes, metamyelocytes and promyelocytes)",
        "lymphocyte",
        "monocyte",
        "neutrophil",
        "platelet",
    ],
    "tissuemnist": [
        "Collecting Duct, Connecting Tubule",
        "Distal Convoluted Tubule",
        "Glomerular endothelial cells",
        "Interstitial endothelial cells",
        "Leukocytes",
        "Podocytes",
        "Proximal Tubule Segments",
        "Thick Ascending Limb",
    ],
    "organamnist": _ORGAN,
    "organcmnist": _ORGAN,
    "organsmnist": _ORGAN,
    "organmnist3d": [
        "liver",
        "kidney-right",
        "kidney-left",
        "femur-right",
        "femur-left",
        "bladder",
        "heart",
        "lung-right",
        "lung-left",
        "spleen",
        "pancreas",
    ],
    "nodulemnist3d": ["benign", "malignant"],
    "adrenalmnist3d": ["normal", "hyperplasia"],
    "fracturemnist3d": [
        "buckle rib fracture",
        "nondisplaced rib fracture",
        "displaced rib fracture",
    ],
    "vesselmnist3d": ["vessel", "aneurysm"],
    "synapsemnist3d": ["inhibitory synapse", "excitatory synapse"],
}
MULTI_LABEL = {"chestmnist"}


def npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{key: (shape, dtype)}`` of an ``.npz`` file from the ``.npy`` headers only (no data)."""
    out = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                if not name.endswith(".npy"):
                    continue
                with zf.open(name) as fh:
                    version = np.lib.format.read_magic(fh)
                    read = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read(fh)
                out[name[:-4]] = (tuple(int(s) for s in shape), np.dtype(dtype))
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, NotImplementedError) as exc:
        raise ReadError(f"not a readable .npz file ({exc})", path) from exc
    return out


def _has_splits(headers: dict) -> bool:
    return all(f"{s}_images" in headers for s in SPLITS) and all(
        any(f"{s}_{suffix}" in headers for suffix in LABEL_SUFFIXES) for s in SPLITS
    )


def _npz_ok(path: Path) -> bool:
    try:
        return path.suffix.lower() == ".npz" and _has_splits(npz_headers(path))
    except ReadError:
        return False


def class_text(flag: str, row: np.ndarray) -> str:
    """``"3: lymphocytes"``; for multi-label sets every positive finding, ``"none"`` if none."""
    names = CLASS_NAMES.get(flag)
    row = np.atleast_1d(row)
    if flag in MULTI_LABEL or row.size > 1:
        pos = [int(i) for i in np.flatnonzero(row)]
        if not pos:
            return "none"
        return ", ".join(names[i] if names and i < len(names) else str(i) for i in pos)
    value = int(row[0])
    name = names[value] if names and 0 <= value < len(names) else ""
    return f"{value}: {name}" if name and name != str(value) else str(value)


@dataclass
class _Entry:
    path: Path
    flag: str
    split: str
    image_key: str
    label_key: str | None
    shape: tuple[int, ...]
    dtype: np.dtype
    rgb: bool
    is_mask: bool
    index: int | None  # the sample of a 3D set; None for a whole 2D split


class MedMNISTDataset(Dataset):
    format = "medmnist"
    description = "MedMNIST .npz (classification) or MedSegBench-style .npz (image/mask pairs)"

    @classmethod
    def detect(cls, path: Path) -> bool:
        if path.is_file():
            return _npz_ok(path)
        if not path.is_dir():
            return False
        files = [p for p in list_visible(path, "*.npz") if p.is_file()]
        return bool(files) and all(_npz_ok(p) for p in files)

    def __init__(self, root):
        super().__init__(root)
        files = (
            [self.root]
            if self.root.is_file()
            else [p for p in list_visible(self.root, "*.npz") if p.is_file()]
        )
        self._cases: dict[str, _Entry] = {}
        self._cache: tuple[tuple[Path, str], np.ndarray] | None = None
        for path in files:
            stem = path.stem
            m = FLAG.match(stem.lower())
            flag = m["flag"] if m else stem.lower()
            prefix = f"{stem}_" if len(files) > 1 else ""
            headers = npz_headers(path)
            for split in SPLITS:
                self._add_split(path, flag, split, headers, prefix)
        if not self._cases:
            raise ReadError("no {train,val,test}_images arrays in the .npz file(s)", self.root)

    def _add_split(self, path: Path, flag: str, split: str, headers: dict, prefix: str) -> None:
        image_key = f"{split}_images"
        if image_key not in headers:
            return
        shape, dtype = headers[image_key]
        if dtype.hasobject:
            raise ReadError(f"{image_key} holds Python objects (pickles are refused)", path)
        label_key = next(
            (f"{split}_{s}" for s in LABEL_SUFFIXES if f"{split}_{s}" in headers), None
        )
        label_shape = headers[label_key][0] if label_key else ()
        is_mask = len(label_shape) >= 3 and label_shape[:3] == shape[:3]
        rgb = len(shape) == 4 and shape[-1] in (3, 4) and shape[1] == shape[2] != shape[-1]
        if len(shape) == 4 and not rgb:  # 3D set: one case per sample volume
            for i in range(shape[0]):
                self._cases[f"{prefix}{split}_{i:04d}"] = _Entry(
                    path, flag, split, image_key, label_key, shape[1:], dtype, False, is_mask, i
                )
        elif len(shape) in (3, 4):
            self._cases[f"{prefix}{split}"] = _Entry(
                path, flag, split, image_key, label_key, shape, dtype, rgb, is_mask, None
            )
        else:
            raise ReadError(
                f"{image_key} has shape {shape}; expected (N,S,S), (N,S,S,3) or (N,S,S,S)", path
            )

    def case_ids(self) -> list[str]:
        return list(self._cases)

    def _array(self, path: Path, key: str) -> np.ndarray:
        """One array of the npz (decompressed once, the last one kept for the next sample)."""
        if self._cache is None or self._cache[0] != (path, key):
            shape, dtype = npz_headers(path)[key]  # the whole array is read: bound it first
            check_array(shape, dtype, f"array {key!r}", path)
            with np.load(path, allow_pickle=False) as npz:
                self._cache = ((path, key), npz[key])
        return self._cache[1]

    def _volume(
        self, entry: _Entry, key: str, name: str, shape, dtype, labelmap=None, rgb=False
    ) -> Volume:
        from napari_medseg.core.geometry import DisplayTransform, Geometry
        from napari_medseg.core.model import Source

        nsp = len(shape) - (1 if rgb else 0)

        def load():
            arr = self._array(entry.path, key)
            arr = arr[entry.index] if entry.index is not None else arr
            if labelmap is not None:
                arr = arr[..., 0] if arr.ndim == len(shape) + 1 else arr
                arr = np.asarray(
                    arr, dtype=np.uint8 if int(arr.max(initial=0)) < 256 else np.uint16
                )
            return arr

        return Volume(
            name,
            tuple(shape),
            np.dtype(np.uint8) if labelmap is not None else dtype,
            Geometry.pixels(nsp),
            guarded(entry.path, load),
            rgb=rgb,
            labelmap=labelmap,
            source=Source(entry.path, "pixels", DisplayTransform.identity(nsp)),
        )

    def load_case(self, case_id: str) -> Case:
        entry = self._entry(self._cases, case_id)
        image = self._volume(
            entry,
            entry.image_key,
            f"{entry.flag} {entry.split}",
            entry.shape,
            entry.dtype,
            rgb=entry.rgb,
        )
        meta = {"flag": entry.flag, "split": entry.split}
        if entry.index is not None:
            meta["sample"] = entry.index
        case = Case(case_id, [image], metadata=meta)
        if entry.label_key is None:
            case.problems.append(f"no {entry.split}_labels array")
        elif entry.is_mask:
            shape = entry.shape[:3] if entry.index is None else entry.shape
            case.masks.append(
                self._volume(
                    entry,
                    entry.label_key,
                    "mask",
                    shape[: image.spatial_ndim],
                    None,
                    labelmap=LabelMap.from_names({}),
                )
            )
        else:
            self._add_class_labels(case, entry)
        return case

    def _add_class_labels(self, case: Case, entry: _Entry) -> None:
        """Per-sample class text (labels are small, (N, L), so they are read now)."""
        try:
            with np.load(entry.path, allow_pickle=False) as npz:
                labels = np.asarray(npz[entry.label_key])
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise ReadError(f"cannot read {entry.label_key} ({exc})", entry.path) from exc
        labels = labels.reshape(labels.shape[0], -1)
        if entry.index is not None:
            text = class_text(entry.flag, labels[entry.index])
            case.metadata["label"] = text
            case.metadata["slice_labels"] = [text] * entry.shape[
                0
            ]  # the sample's class on each of its slices
        else:
            case.metadata["slice_labels"] = [class_text(entry.flag, row) for row in labels]
        case.metadata["task"] = "classification (labels are not masks)"
