"""nnU-Net v2 raw datasets (``DatasetNNN_Name/``), AutoPET in nnU-Net form included.

``dataset.json`` gives ``channel_names`` ({"0": "CT", ...}), ``labels`` (name -> int, or a list
of ints for a region) and ``file_ending``. Images are ``{CASE}_{XXXX}{file_ending}``, labels
``labelsTr/{CASE}{file_ending}``; a ``dataset`` key lists the cases instead of the folders.
3D ``.tif`` files take their spacing from a same-name ``.json``.

``channel_names`` pick nnU-Net's normalisation, not the meaning: AutoPET-II calls both its
channels "CT", and autoPET-I put PET first. When CT is named but the names do not tell the
channels apart, one slice of each channel of the first loaded case is read and the channel that
reaches below -200 is taken as CT, the one never below 0 as SUV.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_medseg.core.errors import ReadError
from napari_medseg.core.geometry import DisplayTransform, Geometry
from napari_medseg.core.labelmap import Label, LabelMap, default_color
from napari_medseg.core.model import Case, Dataset, Source, Volume
from napari_medseg.core.safe_names import dataset_entry
from napari_medseg.core.validate import validated
from napari_medseg.io.datasets._common import check_grids, dataset_json, load_json, modality_kind
from napari_medseg.io.datasets._metadata import NnUNetJson, distinct_id
from napari_medseg.io.listing import list_visible
from napari_medseg.io.volumes import (
    NIFTI_SUFFIXES,
    as_label_array,
    guarded,
    has_suffix,
    read_volume,
)

FOLDERS = (("imagesTr", "labelsTr", "training"), ("imagesTs", "labelsTs", "test"))
# channel_names values that name a normalisation scheme, not an imaging modality
NORMALISATIONS = {"nonorm", "zscore", "rescale_to_0_1", "rgb_to_0_1"}


def region_labelmap(labels: dict) -> LabelMap:
    """Labels from nnU-Net's name -> int map. Regions (lists) are shown as their integer classes,
    each named after the smallest region that holds it; ``attributes["regions"]`` lists them all."""
    names = {int(v): str(k) for k, v in labels.items() if not isinstance(v, list)}
    regions = {
        str(k): {int(i) for i in (v if isinstance(v, list) else [v])} for k, v in labels.items()
    }
    regions = {k: v for k, v in regions.items() if v != {0}}
    classes = set(names) | set().union(*regions.values()) | {0}
    out = []
    for c in sorted(classes):
        holders = [k for k, v in regions.items() if c in v]
        name = names.get(c) or min(holders, key=lambda k: len(regions[k]))
        attrs = {"regions": holders} if any(isinstance(labels[k], list) for k in holders) else {}
        out.append(Label(c, name, default_color(c), attrs))
    return LabelMap(out)


def _kind(name: str) -> str:
    return "?" if name.lower() in NORMALISATIONS else modality_kind(name)


def _modality(name: str) -> str:
    """CT, PET or MR for a channel name; empty for names like "noNorm" or "R"."""
    kind = _kind(name)
    return "" if kind == "?" or name in ("R", "G", "B") else kind


def first_slice_min(path: Path) -> float:
    """The minimum of the first slice of a volume, read without decoding the rest."""
    if has_suffix(path, NIFTI_SUFFIXES):
        import nibabel as nib

        proxy = nib.load(str(path)).dataobj
        return float(np.min(proxy[..., 0] if len(proxy.shape) == 3 else proxy[...]))
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    size = list(reader.GetSize())
    if len(size) == 3:
        reader.SetExtractIndex([0, 0, 0])
        reader.SetExtractSize(size[:2] + [1])
    return float(sitk.GetArrayFromImage(reader.Execute()).min())


def read_tiff3d(path: Path, name: str, labelmap: LabelMap | None = None) -> Volume:
    """A 3D TIFF (z, y, x) with nnU-Net's same-name ``.json`` sidecar ``{"spacing": [z, y, x]}``."""
    import tifffile

    sidecar = path.with_suffix(".json")
    spacing = load_json(sidecar).get("spacing")
    try:
        with tifffile.TiffFile(path) as tif:
            shape, dtype = tuple(tif.series[0].shape), np.dtype(tif.series[0].dtype)
    except Exception as exc:  # noqa: BLE001 - tifffile raises many kinds for bad files
        raise ReadError(f"not a readable TIFF ({exc})", path) from exc
    if len(shape) != 3 or not isinstance(spacing, list) or len(spacing) != 3:
        raise ReadError(f"expected a 3D TIFF and a 3-value spacing in {sidecar.name}", path)

    def load():
        arr = np.asarray(tifffile.imread(path))
        return as_label_array(arr, path) if labelmap is not None else arr

    geometry = Geometry(tuple(float(s) for s in spacing), (0.0, 0.0, 0.0), np.eye(3))
    return Volume(
        name, shape, np.dtype(np.uint8) if labelmap is not None else dtype, geometry,
        guarded(path, load), labelmap=labelmap,
        source=Source(path, "pixels", DisplayTransform.identity(3)),
    )  # fmt: skip


class NnUNetDataset(Dataset):
    format = "nnunet"
    description = "nnU-Net v2 raw dataset (also AutoPET)"

    @classmethod
    def detect(cls, path: Path) -> bool:
        meta = dataset_json(path) if path.is_dir() else None
        return bool(meta and "channel_names" in meta and "file_ending" in meta)

    def __init__(self, root):
        super().__init__(root)
        source = self.root / "dataset.json"
        self.meta = load_json(source)
        model = validated(NnUNetJson, self.meta, source)
        self.ending = model.file_ending
        self.channels = dict(model.channel_names)
        self.labelmap = region_labelmap(model.labels or {"background": 0})
        self._cases: dict[str, dict] = {}
        self._roles: dict[int, str] | None = None
        if model.dataset is not None:
            for cid, entry in model.dataset.items():
                where = f"dataset.{cid}"
                self._cases[cid] = {
                    "images": [
                        dataset_entry(self.root, p, source, f"{where}.images[{i}]")
                        for i, p in enumerate(entry.images)
                    ],
                    "label": dataset_entry(self.root, entry.label, source, f"{where}.label")
                    if entry.label
                    else None,
                    "split": "training",
                }
            return
        cut = len(self.ending) + 5  # "_XXXX" + file ending
        for images, labels, split in FOLDERS:
            seen: set[str] = set()  # a case's channel files share its stem
            for f in list_visible(self.root / images, f"*{self.ending}"):
                stem = f.name[:-cut]
                if len(f.name) <= cut or f.name[-cut] != "_" or stem in seen:
                    continue
                seen.add(stem)
                label = self.root / labels / f"{stem}{self.ending}"
                self._cases[distinct_id(self._cases, f, stem)] = {
                    "images": [
                        f.parent / f"{stem}_{k:04d}{self.ending}" for k in sorted(self.channels)
                    ],
                    "label": label if label.exists() else None,
                    "split": split,
                }

    def case_ids(self) -> list[str]:
        return list(self._cases)

    def channel_roles(self, files: list[Path]) -> dict[int, str] | None:
        """``{index: "CT" | "SUV"}`` from value ranges when the names are ambiguous, else None."""
        kinds = [_kind(self.channels[k]) for k in sorted(self.channels)]
        if "CT" not in kinds or (len(set(kinds)) == len(kinds) and "?" not in kinds):
            return None
        if self._roles is None:  # probed once per dataset, on the first case loaded
            try:
                mins = [first_slice_min(f) for f in files]
            except Exception:  # noqa: BLE001 - any unreadable file: the full read reports it
                return None
            ct = [i for i, m in enumerate(mins) if m < -200]
            suv = [i for i, m in enumerate(mins) if m >= 0]
            self._roles = {ct[0]: "CT", suv[0]: "SUV"} if len(ct) == 1 and len(suv) == 1 else {}
        return self._roles or None

    def _read(self, path: Path, name: str, modality: str, labelmap=None) -> list[Volume]:
        if not path.exists():
            raise ReadError("file named by the nnU-Net layout is missing", path)
        if has_suffix(path, (".tif", ".tiff")) and path.with_suffix(".json").is_file():
            vols = [read_tiff3d(path, name, labelmap)]
        else:
            vols = read_volume(path, name=name, modality=modality, labelmap=labelmap)
        for v in vols:
            v.name, v.channel, v.modality = name, ("" if labelmap else name), modality
        return vols

    def load_case(self, case_id: str) -> Case:
        entry = self._entry(self._cases, case_id)
        names = [self.channels[k] for k in sorted(self.channels)]
        case = Case(
            case_id,
            metadata={"split": entry["split"], "dataset": self.meta.get("name", self.root.name)},
        )
        roles = self.channel_roles(entry["images"]) if len(entry["images"]) > 1 else None
        if roles:
            names = [roles.get(i, n) for i, n in enumerate(names)]
            case.metadata["channels_from"] = "value range"
        for path, name in zip(entry["images"], names, strict=False):
            if case.images and case.images[0].rgb:
                break  # one RGB file stands for channels R, G, B
            vols = self._read(path, name, _modality(name))
            if vols[0].rgb:
                vols[0].name, vols[0].channel, vols[0].modality = "RGB", "RGB", ""
            case.images += vols
        if entry["label"] is not None:
            case.masks += self._read(entry["label"], "label", "", labelmap=self.labelmap)
        check_grids(case)
        return case
