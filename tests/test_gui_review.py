"""Review and QA panels on a real viewer (needs Xvfb)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from app_model.types import KeyBinding

from napari_medseg.io.detect import open_dataset
from napari_medseg.io.masks import mask_path, read_mask, write_mask
from napari_medseg.review.session import ReviewSession

pytestmark = pytest.mark.gui


def wait(qtbot, worker, timeout=20000):
    with qtbot.waitSignal(worker.finished, timeout=timeout):
        pass


def press(viewer, key):
    viewer.keymap[KeyBinding.from_str(key)](viewer)


def test_review_panel_queue_autosave_verdicts_and_locks(
    make_napari_viewer, qtbot, msd_spleen, tmp_path
):
    from napari_medseg._qt.review_widget import MASK_NAME, ReviewWidget

    viewer = make_napari_viewer()
    viewer.open(str(msd_spleen), plugin="napari-medseg")
    widget = ReviewWidget(viewer)
    out = tmp_path / "review"
    session = widget.start(str(out), "alice")
    assert session is not None and widget.queue.rowCount() == 3

    wait(qtbot, widget.next_case())
    assert widget.current == "spleen_1"
    assert sorted(ly.name for ly in viewer.layers) == sorted(["CT", MASK_NAME])
    assert widget.state.statuses["spleen_1"] == "in_progress"
    assert widget.queue.item(0, 1).text() == "in_progress"

    # An edit marks the case dirty; the timer's tick autosaves it.
    widget.mask_layer.paint((3, 10, 10), 1, refresh=False)
    assert widget.dirty
    widget.tick()
    qtbot.waitUntil(lambda: session.has_autosave("spleen_1"), timeout=10000)

    # Page Down: the next case; spleen_1's lock is released, its unsaved work stays.
    assert KeyBinding.from_str("PageDown") in viewer.keymap
    press(viewer, "PageDown")
    qtbot.waitUntil(lambda: widget.current == "spleen_2", timeout=20000)
    assert session.locked_by("spleen_1") is None

    # Accept with notes: a saved version, the status, then on to the next case.
    widget.mask_layer.paint((4, 20, 20), 1, refresh=False)
    widget.notes_edit.setText("tip added")
    wait(qtbot, widget.verdict("accepted"))
    qtbot.waitUntil(lambda: widget.current == "spleen_3", timeout=20000)
    entry = session.entry("spleen_2")
    assert (entry["status"], entry["notes"], entry["reviewer"]) == (
        "accepted",
        "tip added",
        "alice",
    )
    ref = open_dataset(msd_spleen).load_case("spleen_2").reference_image()
    assert read_mask(mask_path(out, "spleen_2"), ref).array[4, 20, 20] == 1

    # Filtering the queue by status.
    widget.filter_combo.setCurrentText("accepted")
    assert [widget.queue.item(r, 0).text() for r in range(widget.queue.rowCount())] == ["spleen_2"]
    widget.filter_combo.setCurrentText("all")

    # Page Up twice: back to spleen_1, whose autosaved edit is restored.
    press(viewer, "PageUp")
    qtbot.waitUntil(lambda: widget.current == "spleen_2", timeout=20000)
    press(viewer, "PageUp")
    qtbot.waitUntil(lambda: widget.current == "spleen_1", timeout=20000)
    assert widget.mask_layer.data[3, 10, 10] == 1
    assert "restored" in widget.info.text()

    # A case another reviewer has open cannot be opened here.
    bob = ReviewSession.open(msd_spleen, out, "bob")
    bob.open_case("spleen_3")
    widget.open_case("spleen_3")
    qtbot.waitUntil(lambda: "open by bob" in widget.info.text(), timeout=20000)
    assert widget.current is None


def test_qa_panel_lists_flagged_cases_and_opens_at_the_slice(
    make_napari_viewer, qtbot, msd_spleen, tmp_path
):
    from napari_medseg._qt.qa_widget import QAWidget

    ds = open_dataset(msd_spleen)
    masks = tmp_path / "masks"
    for cid in ("spleen_1", "spleen_2"):
        case = ds.load_case(cid)
        m = case.masks[0].array.copy()
        if cid == "spleen_2":
            z = int(np.argmax(m.reshape(m.shape[0], -1).sum(1)))
            ys, xs = np.nonzero(m[z])
            m[z, int(ys.mean()), int(xs.mean())] = 0  # a hole in the fullest slice
            hole_slice = z
        write_mask(case.reference_image(), m, mask_path(masks, cid))

    viewer = make_napari_viewer()
    viewer.open(str(msd_spleen), plugin="napari-medseg")
    widget = QAWidget(viewer)
    widget.masks_edit.setText(str(masks))
    widget.report_edit.setText(str(tmp_path / "report"))
    wait(qtbot, widget.run())
    flagged = {
        widget.table.item(r, 0).text(): widget.table.item(r, 1).text()
        for r in range(widget.table.rowCount())
    }
    assert flagged["spleen_2"].startswith("holes") and flagged["spleen_3"] == "missing"
    assert "spleen_1" not in flagged or "holes" not in flagged["spleen_1"]
    assert (tmp_path / "report" / "report.html").exists()
    row = [widget.table.item(r, 0).text() for r in range(widget.table.rowCount())].index("spleen_2")
    wait(qtbot, widget.open_row(row))
    qtbot.waitUntil(
        lambda: widget.state.case is not None and widget.state.case.id == "spleen_2", timeout=10000
    )
    assert f"QA: {masks.name}" in [ly.name for ly in viewer.layers]
    assert viewer.dims.current_step[0] == hole_slice
    # The info line says what opened, where and why (it used to stay on "Opening ...").
    qtbot.waitUntil(lambda: widget.info.text().startswith("spleen_2"), timeout=10000)
    assert f"slice {hole_slice}" in widget.info.text() and "holes" in widget.info.text()
    # Agreement thresholds come from the panel: a one-voxel hole has Dice ~1, volume ~equal.
    widget.min_dice.setValue(1.0)
    widget.max_volume_diff.setValue(0.0)
    wait(qtbot, widget.run())
    flagged = {
        widget.table.item(r, 0).text(): widget.table.item(r, 1).text()
        for r in range(widget.table.rowCount())
    }
    assert "low_dice" in flagged["spleen_2"] and "volume_diff" in flagged["spleen_2"]
    assert "low_dice" not in flagged.get("spleen_1", "")
    run = json.loads((tmp_path / "report" / "report.json").read_text())
    assert run["options"]["min_dice"] == 1.0 and run["masks"] == str(masks.resolve())
