"""Shared fixtures: small synthetic datasets laid out like the real ones."""

from __future__ import annotations

import pytest


@pytest.fixture
def msd_spleen(tmp_path):
    from napari_medseg.synthetic.msd import make_msd

    return make_msd(tmp_path / "data", "Task09_Spleen")


@pytest.fixture
def msd_brain(tmp_path):
    from napari_medseg.synthetic.msd import make_msd

    return make_msd(tmp_path / "data", "Task01_BrainTumour")


@pytest.fixture(scope="session")
def tiny_sam_checkpoint(tmp_path_factory):
    """A tiny random-weight SAM (segment_anything.modeling classes, 64 px input) saved as a .pth."""
    import torch

    from napari_medseg.engines.sam_model import TINY_CONFIG, build_sam

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("sam") / "tiny_sam.pth"
    torch.save(build_sam(TINY_CONFIG).state_dict(), path)
    return path


@pytest.fixture
def sam_home(tmp_path, monkeypatch):
    """Keep SAM settings and the embedding cache out of the real home folder."""
    monkeypatch.setenv("NAPARI_MEDSEG_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("NAPARI_MEDSEG_CACHE_DIR", str(tmp_path / "sam-cache"))
    return tmp_path


def pytest_collection_modifyitems(config, items):
    """Without a display (no Xvfb), skip viewer tests instead of crashing the whole run."""
    import os

    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    skip = pytest.mark.skip(reason="needs a display: run under xvfb-run (scripts/test.sh does)")
    for item in items:
        if "make_napari_viewer" in getattr(item, "fixturenames", ()) or item.get_closest_marker(
            "gui"
        ):
            item.add_marker(skip)
