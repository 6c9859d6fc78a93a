"""The SAM panel walked as a user: run in a fresh process by ``test_gui_sam_walk.py``.

Viewer, panel docked, case opened, then real mouse clicks and key presses on the canvas:
positive click, negative click, box drag, accept, next label, click, accept, propagate,
a cancelled propagation, undo to the start, close the panel and press K. After each step:
the layer list, the active layer and its mode, the label voxels and their colours, no error
notification, and a screenshot in ``$MEDSEG_WALK_SHOTS``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from qtpy.QtCore import QEvent, QPointF, Qt
from qtpy.QtGui import QMouseEvent
from qtpy.QtWidgets import QApplication

pytestmark = pytest.mark.gui

LAYERS = ["CT", "label", "SAM preview", "SAM box", "SAM negative", "SAM positive"]
Z = 8


class User:
    """Mouse and keys on the napari canvas (napari has no public API to click its canvas)."""

    def __init__(self, viewer, qtbot):
        self.viewer, self.qtbot = viewer, qtbot
        self.canvas = viewer.window._qt_viewer.canvas.native
        self.ct = viewer.layers["CT"]

    def at(self, y: float, x: float) -> QPointF:
        wy, wx = self.ct.data_to_world([Z, y, x])[-2:]
        cy, cx = self.viewer.camera.center[-2:]
        zoom = self.viewer.camera.zoom
        return QPointF(
            (wx - cx) * zoom + self.canvas.width() / 2, (wy - cy) * zoom + self.canvas.height() / 2
        )

    def _send(self, kind, pos, buttons) -> None:
        button = Qt.NoButton if kind == QEvent.MouseMove else Qt.LeftButton
        QApplication.sendEvent(self.canvas, QMouseEvent(kind, pos, button, buttons, Qt.NoModifier))
        QApplication.processEvents()  # napari handles moves from the event loop, as for a user

    def click(self, y, x) -> None:
        pos = self.at(y, x)
        self._send(QEvent.MouseMove, pos, Qt.NoButton)
        self._send(QEvent.MouseButtonPress, pos, Qt.LeftButton)
        self._send(QEvent.MouseButtonRelease, pos, Qt.NoButton)

    def drag(self, start, end, steps: int = 6) -> None:
        a, b = self.at(*start), self.at(*end)
        self._send(QEvent.MouseMove, a, Qt.NoButton)
        self._send(QEvent.MouseButtonPress, a, Qt.LeftButton)
        for i in range(1, steps + 1):
            self._send(QEvent.MouseMove, a + (b - a) * (i / steps), Qt.LeftButton)
            self.qtbot.wait(30)  # napari throttles mouse moves (5 ms); a hand is slower anyway
        self._send(QEvent.MouseButtonRelease, b, Qt.NoButton)

    def key(self, key, modifier=Qt.NoModifier) -> None:
        self.qtbot.keyClick(self.canvas, key, modifier)


def test_walk(make_napari_viewer, qtbot, msd_spleen, sam_home, tmp_path):
    assert "torch" not in sys.modules, "the walk must start in a fresh process"
    from napari.utils.notifications import NotificationSeverity, notification_manager

    from napari_medseg.engines.sam_settings import save_settings
    from napari_medseg.viewer_state import state_for

    save_settings(sam_checkpoint=os.environ["MEDSEG_TINY_SAM"], sam_device="cpu")
    shots = Path(os.environ.get("MEDSEG_WALK_SHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    seen_notes = len(notification_manager.records)

    viewer = make_napari_viewer()
    dock, w = viewer.window.add_plugin_dock_widget("napari-medseg", "SAM")
    state = state_for(viewer)
    state.set_dataset(msd_spleen)
    state.show(state.load("spleen_1"))
    qtbot.wait(100)
    viewer.dims.set_current_step(0, Z)
    w.min_score.setValue(0.0)
    user = User(viewer, qtbot)
    labels = viewer.layers["label"]
    start = np.array(labels.data)
    expected = start.copy()
    step = [0]

    def settle():
        qtbot.waitUntil(lambda: not w.busy, timeout=120000)
        qtbot.wait(50)

    def check(name, active, mode, layers=LAYERS):
        step[0] += 1
        viewer.screenshot(path=str(shots / f"{step[0]:02d}-{name}.png"), canvas_only=False)
        assert [ly.name for ly in viewer.layers] == layers, name
        current = viewer.layers.selection.active
        assert (current.name, current.mode) == (active, mode), name
        np.testing.assert_array_equal(labels.data, expected, err_msg=name)
        colors = {int(i): tuple(labels.colormap.map(int(i))) for i in np.unique(labels.data) if i}
        assert all(c[3] == 1 for c in colors.values()), (name, colors)  # every id visible
        assert len(set(colors.values())) == len(colors), (name, colors)  # and distinct
        errors = [
            n
            for n in notification_manager.records[seen_notes:]
            if n.severity >= NotificationSeverity.ERROR
        ]
        assert not errors, (name, [str(e.message) for e in errors])

    check("case-open", "SAM positive", "add")

    user.click(24, 24)
    settle()
    np.testing.assert_allclose(viewer.layers["SAM positive"].data, [[Z, 24, 24]], atol=0.5)
    assert w.prediction is not None and w.prediction[1] == Z
    preview = viewer.layers["SAM preview"]
    assert preview.data[Z].any() and not np.delete(preview.data, Z, axis=0).any()
    assert tuple(preview.colormap.map(1)[:3]) == pytest.approx((0.0, 0.9, 1.0))
    check("positive-click", "SAM positive", "add")

    user.key(".")
    user.click(6, 6)
    settle()
    assert len(viewer.layers["SAM negative"].data) == 1
    check("negative-click", "SAM negative", "add")

    user.key("/")
    center = tuple(viewer.camera.center)
    user.drag((14, 14), (36, 36))
    settle()
    (rect,) = viewer.layers["SAM box"].data
    np.testing.assert_allclose(rect[:, 1:].min(0), [14, 14], atol=1)
    np.testing.assert_allclose(rect[:, 1:].max(0), [36, 36], atol=1)
    assert tuple(viewer.camera.center) == center  # a real box, not a pan
    assert w.current_prompt().box is not None and w.mask_ready
    check("box-drag", "SAM box", "add_rectangle")

    def accepted(label):
        mask = w.prediction[0].mask
        user.key("k")
        expected[Z][mask & (expected[Z] == 0)] = label
        assert not any(len(ly.data) for ly in w.layers.prompts())
        assert not preview.data.any()

    accepted(1)
    check("accept-1", "SAM box", "add_rectangle")
    after_first = expected.copy()

    user.key("n")
    assert w.label_id.value() == 2
    user.key(",")
    user.click(30, 30)
    settle()
    accepted(2)
    assert "label_2" in list(labels.features["name"])
    check("accept-2", "SAM positive", "add")
    after_second = expected.copy()

    user.key("g")
    settle()
    changed = labels.data != after_second
    assert not changed[Z].any() and (after_second[changed] == 0).all()
    assert (labels.data[changed] == 2).all()
    expected[...] = labels.data
    assert w.undo_stack.done[-1].what == "propagate"
    check("propagate", "SAM positive", "add")

    user.key("g")
    qtbot.mouseClick(w.cancel_button, Qt.LeftButton)
    settle()
    assert "cancelled: nothing written" in w.status.text()
    check("propagate-cancelled", "SAM positive", "add")

    for snapshot in (after_second, after_first, start):
        user.key("u")
        expected[...] = snapshot
        check(f"undo-{len(w.undo_stack.done)}", "SAM positive", "add")
    user.key("u")  # nothing left: a notice, no error
    user.key("u", Qt.ShiftModifier)  # redo the first accept
    expected[...] = after_first
    check("redo", "SAM positive", "add")
    user.key("u")
    expected[...] = start
    check("undo-start", "SAM positive", "add")

    viewer.window.remove_dock_widget(dock)  # what the dock's close button does
    qtbot.wait(50)
    assert not {"K", "Q", "N", "G", "U"} & {str(k) for k in viewer.keymap}
    user.click(24, 24)
    qtbot.wait(200)
    user.key("k")
    check("closed-then-k", "SAM positive", "add")
    assert not w.busy and w.prediction is None
