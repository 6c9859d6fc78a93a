"""Sample data (File > Open Sample): small synthetic cases laid out like the real datasets.

They live in ``sample_data/`` (made by ``scripts/make_sample_data.py``); if that folder is not
shipped alongside the package, they are generated once into a temporary folder.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

# sample key -> (folder under sample_data/, generator "module:function" writing it into a root)
SAMPLES = {
    "petct": ("synthetic_petct", "napari_medseg.synthetic.petct:make_synthetic_petct"),
    "brats": ("BraTS2021", "napari_medseg.synthetic.brats:make_brats"),
    "lgg": ("kaggle_3m", "napari_medseg.synthetic.lgg:make_lgg"),
    "msd": ("Task09_Spleen", "napari_medseg.synthetic.msd:make_msd"),
}


def sample_root() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "sample_data", here.parent / "sample_data"):
        if candidate.is_dir() and any(candidate.iterdir()):
            return candidate
    return Path(tempfile.gettempdir()) / "napari-medseg-samples"


def sample_path(key: str) -> Path:
    """Path of sample ``key``, generating it when the shipped folder is missing."""
    import importlib

    folder, generator = SAMPLES[key]
    root = sample_root()
    path = root / folder
    if not path.exists():
        module, func = generator.split(":")
        made = getattr(importlib.import_module(module), func)(root)
        path = Path(made)
    return path


def _layers(key: str) -> list:
    from napari_medseg._reader import read_path

    return read_path(str(sample_path(key)))


def sample_petct():
    return _layers("petct")


def sample_brats():
    return _layers("brats")


def sample_lgg():
    return _layers("lgg")


def sample_msd():
    return _layers("msd")
