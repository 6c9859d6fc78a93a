"""Where napari-medseg keeps its own files: ``~/.config/napari-medseg`` (never the dataset).

``NAPARI_MEDSEG_CONFIG_DIR`` moves it (tests point it at a temporary folder).
"""

from __future__ import annotations

import os
from pathlib import Path


def config_dir() -> Path:
    env = os.environ.get("NAPARI_MEDSEG_CONFIG_DIR")
    return Path(env) if env else Path.home() / ".config" / "napari-medseg"
