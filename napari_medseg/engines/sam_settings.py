"""Persistent SAM settings (checkpoint path, device, cache) in a small JSON file.

The file is ``~/.config/napari-medseg/settings.json``; ``NAPARI_MEDSEG_CONFIG_DIR`` moves it
(tests point it at a temporary folder). Other keys in the file are kept untouched.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from napari_medseg.core.atomic import write_text
from napari_medseg.core.config import config_dir

DEFAULT_CACHE_GB = 10.0


def settings_path() -> Path:
    return config_dir() / "settings.json"


def load_settings() -> dict:
    """The saved settings; an unreadable file counts as empty (it is rewritten on save)."""
    try:
        data = json.loads(settings_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_settings(**updates) -> dict:
    """Merge ``updates`` into the saved settings (``None`` removes a key) and write atomically."""
    data = load_settings()
    for key, value in updates.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    write_text(settings_path(), json.dumps(data, indent=2, sort_keys=True))
    return data


def default_cache_dir() -> Path:
    """``NAPARI_MEDSEG_CACHE_DIR``, else the saved ``sam_cache_dir``, else the user cache folder."""
    env = os.environ.get("NAPARI_MEDSEG_CACHE_DIR")
    saved = load_settings().get("sam_cache_dir")
    return Path(env or saved or Path.home() / ".cache" / "napari-medseg" / "sam").expanduser()


def cache_limit_bytes() -> int:
    return int(float(load_settings().get("sam_cache_max_gb", DEFAULT_CACHE_GB)) * 2**30)
