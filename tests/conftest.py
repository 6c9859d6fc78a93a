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


@pytest.fixture
def sam_widget(make_napari_viewer, qtbot, msd_spleen, tiny_sam_checkpoint, sam_home):
    """The SAM panel docked on MSD spleen_1 (16 slices of 48x48) at slice 8, tiny SAM on CPU."""
    from napari_medseg._qt.sam_widget import SamWidget
    from napari_medseg.engines.sam_settings import save_settings
    from napari_medseg.io.detect import open_dataset
    from napari_medseg.layers import case_layers

    save_settings(sam_checkpoint=str(tiny_sam_checkpoint), sam_device="cpu")
    viewer = make_napari_viewer()
    ds = open_dataset(msd_spleen)
    case = ds.load_case("spleen_1")
    for data, kwargs, kind in case_layers(case, str(msd_spleen), ds.format):
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    w = SamWidget(viewer)
    viewer.window.add_dock_widget(w)
    viewer.dims.set_current_step(0, 8)
    return w


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
