"""Issue 12 (5): a layout made for reading images, anatomical axis names, CT window presets."""

from __future__ import annotations

import pytest

from napari_medseg.core.intensity import CT_PRESETS

pytestmark = pytest.mark.gui


def test_launch_layout_gives_the_canvas_most_of_the_width(make_napari_viewer, qtbot, tmp_path):
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QApplication, QTabBar

    from napari_medseg._sample_data import sample_path
    from napari_medseg.launch import WINDOW, arrange

    viewer = make_napari_viewer(show=True)
    viewer.window.resize(*WINDOW)
    docks = arrange(viewer)
    viewer.open(str(sample_path("petct")), plugin="napari-medseg")
    for _ in range(20):
        QApplication.processEvents()
    qtbot.wait(200)
    window = viewer.screenshot(canvas_only=False, flash=False)
    canvas = viewer.screenshot(canvas_only=True, flash=False)
    assert canvas.shape[1] >= 0.6 * window.shape[1], (canvas.shape, window.shape)
    assert docks[0].windowTitle() == "Cases" and docks[0].widget().isVisible()  # in front
    main = docks[0].parentWidget()
    bars = [
        b for b in main.findChildren(QTabBar) if "Cases" in [b.tabText(i) for i in range(b.count())]
    ]
    (bar,) = bars
    assert [bar.tabText(i) for i in range(bar.count())] == [
        "Cases",
        "Review",
        "QA",
        "Export",
        "Labels",
    ]
    assert bar.elideMode() == Qt.ElideNone
    assert viewer.dims.axis_labels[-3:] == ("S-I", "A-P", "R-L")
    browser = docks[0].widget()
    table = browser.table
    for col in range(table.columnCount()):  # every column's text fits its column
        for row in range(table.rowCount()):
            item = table.item(row, col)
            if item is not None:
                assert table.columnWidth(col) >= table.fontMetrics().horizontalAdvance(item.text())
    viewer.screenshot(path=str(tmp_path / "layout.png"), canvas_only=False)


def test_ct_window_presets_and_the_cycle_key(make_napari_viewer, qtbot, msd_spleen):
    from app_model.types import KeyBinding

    from napari_medseg._qt.case_browser import CaseBrowserWidget
    from napari_medseg.viewing import CYCLE_KEY

    viewer = make_napari_viewer()
    browser = CaseBrowserWidget(viewer)
    browser.open_dataset(str(msd_spleen))
    with qtbot.waitSignal(browser.open_case("spleen_1").finished, timeout=30000):
        pass
    qtbot.waitUntil(lambda: "CT" in viewer.layers, timeout=10000)
    ct = viewer.layers["CT"]
    assert tuple(ct.contrast_limits) == CT_PRESETS["soft tissue"]
    browser.window_combo.setCurrentText("lung")
    assert tuple(ct.contrast_limits) == CT_PRESETS["lung"]
    viewer.keymap[KeyBinding.from_str(CYCLE_KEY)](viewer)
    assert tuple(ct.contrast_limits) == CT_PRESETS["bone"]
    assert browser.window_combo.currentText() == "bone" and "bone" in viewer.status
    for _ in range(2):
        viewer.keymap[KeyBinding.from_str(CYCLE_KEY)](viewer)
    assert tuple(ct.contrast_limits) == CT_PRESETS["soft tissue"]
    assert viewer.dims.axis_labels[-3:] == ("S-I", "A-P", "R-L")
    assert not browser.window_row.isHidden()


def test_ct_window_presets_are_hidden_for_mr(make_napari_viewer, qtbot, msd_brain):
    from napari_medseg._qt.case_browser import CaseBrowserWidget

    viewer = make_napari_viewer()
    browser = CaseBrowserWidget(viewer)
    assert browser.window_row.isHidden()  # no case yet
    browser.open_dataset(str(msd_brain))
    case_id = browser.table.item(0, 0).text()
    with qtbot.waitSignal(browser.open_case(case_id).finished, timeout=30000):
        pass
    qtbot.waitUntil(lambda: len(viewer.layers) > 0, timeout=10000)
    assert browser.state.case.id == case_id
    assert browser.window_row.isHidden()  # an MR case: CT presets would do nothing


def test_medmnist_class_text_is_drawn_inside_the_image(make_napari_viewer, qtbot):
    """The class label used to sit above the image, clipped when the image filled the canvas."""
    import numpy as np
    from qtpy.QtWidgets import QApplication

    from napari_medseg._qt.case_browser import CaseBrowserWidget
    from napari_medseg._sample_data import sample_path

    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1280, 560)  # a wide canvas: the image fills its height
    CaseBrowserWidget(viewer)  # as the launcher: the panels name the axes
    viewer.open(str(sample_path("medmnist")), plugin="napari-medseg")
    for _ in range(20):
        QApplication.processEvents()
    shot = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)
    yellow = (shot[..., 0] > 180) & (shot[..., 1] > 180) & (shot[..., 2] < 90)
    grey = (np.ptp(shot, axis=-1) < 10) & (shot.sum(-1) > 30)
    text_rows, image_rows = np.flatnonzero(yellow.any(1)), np.flatnonzero(grey.any(1))
    assert text_rows.size, "the class text is on screen"
    assert image_rows[0] <= text_rows[0] and text_rows[-1] <= image_rows[-1]
    assert viewer.dims.axis_labels[-3] == "image"  # a stack of 2D images, not S-I
