"""The first SAM import inside napari, after the canvas has drawn, must not crash the process.

Run in a fresh subprocess in the user's order: a viewer with an image and a painted labels
layer on screen (Mesa's libLLVM is loaded by then under Xvfb), the SAM panel docked, then the
first Embed, which imports torch and segment-anything (and with them triton, unless hidden).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.gui

USER_ORDER = """
import sys
import numpy as np
import napari
from qtpy.QtWidgets import QApplication

assert "torch" not in sys.modules
viewer = napari.Viewer()
viewer.add_image(np.random.default_rng(0).random((4, 48, 48)).astype(np.float32))
labels = viewer.add_labels(np.zeros((4, 48, 48), np.uint8))
labels.paint((2, 24, 24), 3)
for _ in range(5):
    QApplication.processEvents()
viewer.screenshot(canvas_only=True)
with open("/proc/self/maps") as f:
    print("llvm loaded:", "libLLVM" in f.read(), flush=True)

from napari_medseg._qt.sam_widget import SamWidget

w = SamWidget(viewer)
viewer.window.add_dock_widget(w)
w.checkpoint.setText(sys.argv[1])
w.device.setCurrentText("cpu")
w.embed_case()
while w.busy:
    QApplication.processEvents()
import sam2.build_sam  # the SAM 2.1 engine's import path, too
print("status:", w.status.text(), flush=True)
viewer.close()
"""


def test_first_sam_import_after_the_canvas_draws(tiny_sam_checkpoint, sam_home):
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(USER_ORDER), str(tiny_sam_checkpoint)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert "status: 4/4 slices embedded" in proc.stdout, proc.stdout
