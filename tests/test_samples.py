"""The shipped samples: each opens as its own layout, and File > Open Sample returns layers."""

import json
from pathlib import Path

import pytest

from napari_medseg import _sample_data
from napari_medseg.cli import main

ROOT = Path(__file__).resolve().parents[1] / "sample_data"
MANIFEST = json.loads((ROOT / "samples.json").read_text())
EXPECTED_FORMAT = {
    "petct": "synthetic_petct", "brats": "brats", "lgg": "lgg", "msd": "msd", "msd_brain": "msd",
    "fdg_pet_ct_lesions": "fdg_pet_ct_lesions", "brats2023": "brats", "nnunet_autopet": "nnunet",
    "amos": "amos", "ispy1": "ispy1", "medmnist": "medmnist", "lss": "lss", "dicom": "generic", "cvat": "cvat",
}  # fmt: skip


def test_every_layout_has_a_sample():
    assert set(MANIFEST) == set(EXPECTED_FORMAT)
    size = sum(f.stat().st_size for f in ROOT.rglob("*") if f.is_file())
    assert size < 8e6  # "a few MB in all"


@pytest.mark.parametrize("key", sorted(EXPECTED_FORMAT))
def test_sample_is_detected_and_described(key, capsys):
    assert main(["info", str(ROOT / MANIFEST[key]), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["format"] == EXPECTED_FORMAT[key]
    assert report["cases"] and all(c["images"] for c in report["cases"])


@pytest.mark.parametrize("func", ["sample_petct", "sample_brats", "sample_lgg", "sample_msd"])
def test_open_sample_returns_layers(func):
    layers = getattr(_sample_data, func)()
    kinds = [kind for _, _, kind in layers]
    assert "image" in kinds and "labels" in kinds
    assert all(kw["metadata"]["medseg"]["root"] for _, kw, _ in layers)
