"""``dataset.json`` models (Decathlon/AMOS and nnU-Net v2) and the case lists they give.

Paths in the file may only point inside the dataset (:func:`.dataset_entry`); a case name that
appears in two splits gets the folder in its id (``imagesTs/x``) instead of hiding the other.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from napari_medseg.core.safe_names import dataset_entry
from napari_medseg.core.validate import Lenient, validated
from napari_medseg.io.volumes import strip_suffix


class DecathlonEntry(BaseModel):
    image: str
    label: str | None = None


class DecathlonJson(Lenient):
    """MSD / AMOS ``dataset.json``: label and modality ids are integers."""

    name: str = ""
    modality: dict[int, str] | None = None
    labels: dict[int, str] | None = None
    training: list[DecathlonEntry | str] | None = None
    validation: list[DecathlonEntry | str] | None = None
    test: list[DecathlonEntry | str] | None = None


class NnUNetEntry(BaseModel):
    images: list[str] = []
    label: str | None = None


class NnUNetJson(Lenient):
    """nnU-Net v2 ``dataset.json``: labels map names to an id or a region (list of ids)."""

    channel_names: dict[int, str]
    file_ending: str
    labels: dict[str, int | list[int]] | None = None
    dataset: dict[str, NnUNetEntry] | None = None


def distinct_id(cases: dict, path: Path, name: str) -> str:
    """``name``, or ``<parent folder>/<name>`` when another split already holds that name."""
    return name if name not in cases else f"{path.parent.name}/{name}"


def decathlon_cases(root: Path, meta: dict, splits: tuple[str, ...]) -> dict[str, dict]:
    """``{case id: {"image", "label", "split"}}`` from the split lists, paths checked."""
    source = root / "dataset.json"
    model = validated(DecathlonJson, meta, source)
    cases: dict[str, dict] = {}
    for split in splits:
        for i, entry in enumerate(getattr(model, split) or []):
            where = f"{split}[{i}]"
            if isinstance(entry, str):
                entry = DecathlonEntry(image=entry)
            else:
                where += ".image"
            image = dataset_entry(root, entry.image, source, where)
            label = (
                dataset_entry(root, entry.label, source, f"{split}[{i}].label")
                if entry.label
                else None
            )
            cid = distinct_id(cases, image, strip_suffix(image.name))
            cases[cid] = {"image": image, "label": label, "split": split}
    return cases
