"""The SAM panel walked by a user in a fresh process (see ``sam_walk.py`` for the steps)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.gui


def test_sam_panel_walk_in_a_fresh_process(tiny_sam_checkpoint, tmp_path):
    shots = tmp_path / "sam-walk"
    env = {
        **os.environ,
        "MEDSEG_TINY_SAM": str(tiny_sam_checkpoint),
        "MEDSEG_WALK_SHOTS": str(shots),
    }
    walk = Path(__file__).with_name("sam_walk.py")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(walk)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(f"screenshots: {shots}")
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert len(list(shots.glob("*.png"))) == 14
