"""Sample data (File > Open Sample): small synthetic cases laid out like the real datasets.

They live in ``sample_data/`` (written by ``scripts/make_sample_data.py``, listed in its
``samples.json``); where that folder is not shipped, they are generated once into a
temporary folder.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from napari_medseg.synthetic.samples import MANIFEST, make_samples


def sample_root() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "sample_data", here.parent / "sample_data"):
        if (candidate / MANIFEST).is_file():
            return candidate
    return Path(tempfile.gettempdir()) / "napari-medseg-samples"


def sample_path(key: str) -> Path:
    """Path of sample ``key``, generating it when no shipped copy exists."""
    root = sample_root()
    manifest = root / MANIFEST
    paths = json.loads(manifest.read_text()) if manifest.is_file() else {}
    if key not in paths or not (root / paths[key]).exists():
        paths = make_samples(root, [key])
    return root / paths[key]


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
