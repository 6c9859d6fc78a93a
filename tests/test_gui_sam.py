"""SAM dock widget with a tiny checkpoint: embed, prompt, accept, undo, propagate."""

from __future__ import annotations

import numpy as np
import pytest

from napari_medseg.io.detect import open_dataset
from napari_medseg.layers import case_layers

pytestmark = pytest.mark.gui


@pytest.fixture
def widget(make_napari_viewer, qtbot, msd_spleen, tiny_sam_checkpoint, sam_home):
    from napari_medseg._qt.sam_widget import SamWidget
    from napari_medseg.engines.sam_settings import save_settings

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


def wait(qtbot, w):
    qtbot.waitUntil(lambda: not w.busy, timeout=60000)
    qtbot.wait(50)


def test_widget_reads_saved_settings_and_binds_keys(widget):
    assert widget.checkpoint.text().endswith("tiny_sam.pth")
    assert [b.currentText() for b in widget.channel_boxes] == ["CT", "CT", "CT"]
    assert widget.target.currentText() == "label"
    bound = {str(k) for k in widget.viewer.keymap}
    assert {"K", "Q", "N", "G", "U"} <= bound


def test_embed_prompt_accept_undo(widget, qtbot, sam_home):
    w = widget
    worker = w.embed_case()
    assert worker is not None
    wait(qtbot, w)
    assert "16/16 slices embedded (16 computed now" in w.status.text()
    assert len(list((sam_home / "sam-cache").glob("*.npz"))) == 16
    assert w.progress.value() == 16

    labels = w.viewer.layers["label"]
    before = np.array(labels.data)
    w.label_id.setValue(2)
    pos, neg, box = w.prompt_layers()
    box.add_rectangles(np.array([[8, 8, 8], [8, 8, 40], [8, 40, 40], [8, 40, 8]]))
    pos.add(np.array([[8, 24, 24]]))
    assert not w.busy  # cached: decoded on the spot
    pred, z = w.prediction
    assert z == 8
    preview = w.viewer.layers["SAM preview"].data
    np.testing.assert_array_equal(preview[8] > 0, pred.mask)
    assert not preview[[0, 15]].any()

    w.accept()
    free = pred.mask & (before[8] == 0)
    assert (labels.data[8][free] == 2).all()
    assert (labels.data[8][before[8] == 1] == 1).all()  # spleen voxels kept
    assert len(pos.data) == 0 and len(box.data) == 0 and w.prediction is None
    w.undo()
    np.testing.assert_array_equal(labels.data, before)

    w.next_label()
    assert w.label_id.value() == 3


def test_reopen_uses_the_cache_and_propagation_runs_off_thread(widget, qtbot):
    w = widget
    w.embed_case()
    wait(qtbot, w)
    w.session = None  # as if the case were opened again
    w.embed_case()
    wait(qtbot, w)
    assert "(0 computed now" in w.status.text()

    labels = w.viewer.layers["label"]
    before = np.array(labels.data)
    w.min_score.setValue(0.0)
    w.label_id.setValue(1)
    worker = w.propagate()
    assert worker is not None
    wait(qtbot, w)
    assert "Propagated label 1 to" in w.status.text(), w.status.text()
    assert w.progress.value() == w.progress.maximum()
    layer, edits = w.undo_stack[-1]
    assert layer is labels and sum(e.size for e in edits) > 0
    changed = np.nonzero(labels.data != before)
    assert 8 not in set(changed[0])  # the start slice is the prompt, not rewritten
    w.undo()
    np.testing.assert_array_equal(labels.data, before)


def test_errors_reach_the_user_without_traceback(widget, qtbot, tmp_path):
    w = widget
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"junk")
    w.checkpoint.setText(str(bad))
    w.embed_case()
    wait(qtbot, w)
    assert str(bad) in w.status.text() and "cannot read SAM checkpoint" in w.status.text()


def test_boxes_segment_in_batch_with_one_undo(widget, qtbot):
    w = widget
    new = w.viewer.add_labels(np.zeros((16, 48, 48), np.uint16), name="review")
    w.viewer.layers.selection.active = new
    assert w.target.currentText() == "review"
    w.label_id.setValue(4)
    box = w.prompt_layers()[2]
    for z in (3, 11):
        box.add_rectangles(np.array([[z, 8, 8], [z, 8, 40], [z, 40, 40], [z, 40, 8]]))
    w.segment_boxes()
    wait(qtbot, w)
    assert "Segmented 2 boxes" in w.status.text()
    assert set(np.unique(new.data)) == {0, 4}
    assert not new.data[[z for z in range(16) if z not in (3, 11)]].any()
    assert w.session.encoded == 2 and len(w.undo_stack) == 1
    w.undo()
    assert not new.data.any()
