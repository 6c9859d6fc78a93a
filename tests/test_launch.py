"""Issue 12 (6): the reader claims only what we read; the launcher without a display says so."""

from __future__ import annotations

import fnmatch
import os
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def reader_patterns() -> list[str]:
    manifest = yaml.safe_load((ROOT / "napari_medseg" / "napari.yaml").read_text())
    (reader,) = manifest["contributions"]["readers"]
    assert reader["accepts_directories"] is True  # dataset folders and DICOM series
    return reader["filename_patterns"]


def test_reader_patterns_list_our_formats_not_everything():
    patterns = reader_patterns()
    assert "*" not in patterns
    ours = ["ct.nii.gz", "t1.nii", "a.mha", "a.mhd", "seg.nrrd", "IM0001.dcm", "x.IMA",
            "organamnist.npz", "cvat_export.zip", "slice_001.png", "mask.tif", "dataset.json"]  # fmt: skip
    for name in ours:
        assert any(fnmatch.fnmatchcase(name, p) for p in patterns), name
    for name in ("labeled_data_meta.csv", "features.npy", "notes.docx", "model.pt"):
        assert not any(fnmatch.fnmatchcase(name, p) for p in patterns), name


def test_napari_sh_without_a_display_says_so_and_exits():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "napari.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "no display" in done.stderr and "--screenshot" in done.stderr
