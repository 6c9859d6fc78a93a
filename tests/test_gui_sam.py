"""SAM dock widget with a tiny checkpoint: prompts ready on open, embed, accept, undo, propagate,
superseded results, channels that follow the view."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def wait(qtbot, w):
    qtbot.waitUntil(lambda: not w.busy, timeout=60000)
    qtbot.wait(50)


def test_prompting_is_ready_when_the_panel_docks(sam_widget):
    w = sam_widget
    assert w.checkpoint.text().endswith("tiny_sam.pth")
    assert [b.currentText() for b in w.channel_boxes] == ["CT", "CT", "CT"]
    assert w.channels_label.text() == "SAM sees CT, CT, CT (the visible layers)"
    assert w.target.currentText() == "label"
    names = [ly.name for ly in w.viewer.layers]
    assert names == ["CT", "label", "SAM preview", "SAM box", "SAM negative", "SAM positive"]
    active = w.viewer.layers.selection.active
    assert active.name == "SAM positive" and active.mode == "add"
    assert w.mode_buttons["point"].isChecked()
    bound = {str(k) for k in w.viewer.keymap}
    assert {"K", "Q", "N", "G", "U", "Shift+U", ",", ".", "/"} <= bound
    w.box_mode()
    assert w.viewer.layers.selection.active.mode == "add_rectangle"
    assert w.mode_buttons["box"].isChecked()
    pos = w.viewer.layers["SAM positive"]
    size = pos.current_size
    w.viewer.camera.zoom *= 2  # points keep their size on screen
    assert pos.current_size == pytest.approx(size / 2)


def test_embed_prompt_accept_undo_redo(sam_widget, qtbot, sam_home):
    w = sam_widget
    assert w.embed_case() is not None
    wait(qtbot, w)
    assert "16/16 slices embedded (16 computed now" in w.status.text()
    assert len(list((sam_home / "sam-cache").glob("*.npz"))) == 16
    assert w.progress.value() == 16 and w.progress.format() == "16/16 slices"

    labels = w.viewer.layers["label"]
    before = np.array(labels.data)
    w.label_id.setValue(2)
    pos, neg, box = w.prompt_layers()
    box.add_rectangles(np.array([[8, 8, 8], [8, 8, 40], [8, 40, 40], [8, 40, 8]]))
    pos.add(np.array([[8, 24, 24]]))
    wait(qtbot, w)  # decoded off the GUI thread
    pred, z = w.prediction
    assert z == 8
    preview = w.viewer.layers["SAM preview"].data
    np.testing.assert_array_equal(preview[8] > 0, pred.mask)
    assert not preview[[0, 15]].any()
    assert w.viewer.layers.selection.active is pos  # the preview took nothing away

    w.accept()
    free = pred.mask & (before[8] == 0)
    after = np.array(labels.data)
    assert (after[8][free] == 2).all()
    assert (after[8][before[8] == 1] == 1).all()  # spleen voxels kept
    assert labels.colormap.map(2)[3] == 1 and "label_2" in list(labels.features["name"])
    assert len(pos.data) == 0 and len(box.data) == 0 and w.prediction is None
    w.undo()
    np.testing.assert_array_equal(labels.data, before)
    w.redo()
    np.testing.assert_array_equal(labels.data, after)

    w.next_label()
    assert w.label_id.value() == 3 and "label_3" in w.label_name.text()


def test_q_discards_a_mask_still_in_flight(sam_widget, qtbot):
    w = sam_widget
    labels = w.viewer.layers["label"]
    before = np.array(labels.data)
    pos = w.prompt_layers()[0]
    pos.add(np.array([[8, 24, 24]]))  # slice 8 is not embedded: a worker embeds it
    assert w.busy
    w.clear_prompts()  # Q before the result arrives
    wait(qtbot, w)
    assert w.prediction is None and not w.viewer.layers["SAM preview"].data.any()
    w.accept()  # K: nothing to write
    np.testing.assert_array_equal(labels.data, before)


def test_a_click_during_embed_is_embedded_first(sam_widget, qtbot):
    w = sam_widget
    order = []
    w.runner.slices_ready.connect(order.extend)
    clicked = []

    def click_once(_slices):
        if not clicked:
            clicked.append(15)
            w.viewer.dims.set_current_step(0, 15)
            w.prompt_layers()[0].add(np.array([[15, 24, 24]]))

    w.runner.slices_ready.connect(click_once)
    w.embed_case()
    wait(qtbot, w)
    qtbot.waitUntil(lambda: w.prediction is not None, timeout=30000)
    assert sorted(order) == list(range(16))
    assert order.index(15) < 14  # jumped the queue (15 is last in slice order)
    assert w.prediction[1] == 15


def test_reopen_uses_the_cache_and_propagation_runs_off_thread(sam_widget, qtbot):
    w = sam_widget
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
    assert w.propagate() is not None
    wait(qtbot, w)
    assert "Propagated label 1 to" in w.status.text(), w.status.text()
    assert w.progress.value() == w.progress.maximum()
    step = w.undo_stack.done[-1]
    assert step.target is labels and step.size > 0
    changed = np.nonzero(labels.data != before)
    assert 8 not in set(changed[0])  # the start slice is the prompt, not rewritten
    w.undo()
    np.testing.assert_array_equal(labels.data, before)


def test_errors_reach_the_user_without_traceback(sam_widget, qtbot, tmp_path):
    w = sam_widget
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"junk")
    w.checkpoint.setText(str(bad))
    w.embed_case()
    wait(qtbot, w)
    assert str(bad) in w.status.text() and "cannot read SAM checkpoint" in w.status.text()


def test_boxes_segment_in_batch_with_one_undo(sam_widget, qtbot):
    w = sam_widget
    new = w.viewer.add_labels(np.zeros((16, 48, 48), np.uint16), name="review")
    w.viewer.layers.selection.active = new
    assert w.target.currentText() == "review"
    w.label_id.setValue(4)
    box = w.prompt_layers()[2]
    for z in (3, 11):
        box.add_rectangles(np.array([[z, 8, 8], [z, 8, 40], [z, 40, 40], [z, 40, 8]]))
    wait(qtbot, w)
    w.segment_boxes()
    wait(qtbot, w)
    assert "Segmented 2 boxes" in w.status.text()
    assert set(np.unique(new.data)) == {0, 4}
    assert not new.data[[z for z in range(16) if z not in (3, 11)]].any()
    assert len(w.undo_stack.done) == 1
    w.undo()
    assert not new.data.any()


@pytest.mark.parametrize(
    ("sample", "seen", "hide", "then"),
    [
        ("petct", "CT, CT, SUV", "SUV", "CT, CT, CT"),
        ("brats", "FLAIR, FLAIR, FLAIR", "FLAIR", "T2, T2, T2"),
    ],
)
def test_channels_follow_the_view_when_docked_before_the_case(
    make_napari_viewer, qtbot, sam_home, sample, seen, hide, then
):
    from napari_medseg._qt.sam_widget import SamWidget
    from napari_medseg._sample_data import sample_path
    from napari_medseg.viewer_state import state_for

    viewer = make_napari_viewer()
    w = SamWidget(viewer)
    viewer.window.add_dock_widget(w)  # docked first, as launch.py does
    state = state_for(viewer)
    state.set_dataset(sample_path(sample))
    state.show(state.load(state.dataset.case_ids()[0]))
    qtbot.wait(50)
    assert w.channels_label.text() == f"SAM sees {seen} (the visible layers)"
    assert viewer.layers.selection.active.name == "SAM positive"
    viewer.layers[hide].visible = False
    assert w.channels_label.text() == f"SAM sees {then} (the visible layers)"
    w.channel_boxes[2].setCurrentIndex(0)
    w.channel_boxes[2].activated.emit(0)  # the user's own choice sticks
    viewer.layers[hide].visible = True
    assert w.channels_label.text().endswith("(your choice)")


def test_a_sam2_checkpoint_prompts_and_propagates_in_the_panel(sam_widget, qtbot, tmp_path):
    """The panel takes a SAM 2.1 file (recognised from its state dict), and MedSAM choices."""
    import torch

    from napari_medseg.engines.sam2 import Sam2Session
    from napari_medseg.engines.sam2_model import save_tiny_sam2

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see test_sam2_engine: tiny models on busy shared cores
    try:
        sam2_in_the_panel(sam_widget, qtbot, tmp_path, Sam2Session, save_tiny_sam2)
    finally:
        torch.set_num_threads(threads)


def sam2_in_the_panel(sam_widget, qtbot, tmp_path, Sam2Session, save_tiny_sam2):
    from napari_medseg.engines.sam_prefetch import outward

    w = sam_widget
    assert [w.variant.itemData(i) for i in range(w.variant.count())] == ["", "medsam", "medsam2"]
    w.background_embed.setChecked(False)  # on demand only, first
    w.checkpoint.setText(str(save_tiny_sam2(tmp_path / "tiny_sam2.pt", seed=2)))
    pos, _, _ = w.prompt_layers()
    pos.add(np.array([[8, 24, 24]]))
    wait(qtbot, w)
    assert isinstance(w.session, Sam2Session) and w.session.encoded == 1  # on demand
    pred, z = w.prediction
    assert z == 8 and pred.mask.shape == w.viewer.layers["label"].data.shape[1:]
    labels = w.viewer.layers["label"]
    labels.data[8, 20:30, 20:30] = 1
    before = np.array(labels.data)
    w.label_id.setValue(1)
    w.clear_prompts()
    assert w.propagate() is not None
    wait(qtbot, w)
    assert "Propagated label 1 to" in w.status.text(), w.status.text()
    reached = set(w.session.requested)
    assert w.session.encoded == len(reached) > 1  # embedded as propagation reached them
    w.undo()
    np.testing.assert_array_equal(labels.data, before)

    # Ticking the box embeds the rest around the current slice, then propagation finds it ready.
    order = []
    w.runner.slices_ready.connect(order.extend)
    w.background_embed.setChecked(True)
    wait(qtbot, w)
    assert order == [z for z in outward(8, 16) if z not in reached]
    assert w.session.encoded == 16 and w.session.missing() == []
    w.session.requested.clear()
    assert w.propagate() is not None
    wait(qtbot, w)
    assert w.session.requested and w.session.encoded == 16  # nothing embedded twice
