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
