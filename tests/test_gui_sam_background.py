"""The SAM panel embeds a prompted slice's neighbours outward in the background; the user's
own jobs take over from it, and Cancel, closing the panel or a changed case, checkpoint or
setting stop it."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from qtpy.QtWidgets import QApplication

from napari_medseg.engines.sam_prefetch import outward
from napari_medseg.engines.sam_requests import EmbedOrder

pytestmark = pytest.mark.gui

NEIGHBOURS = outward(8, 16)[1:]  # the prompted slice 8 is embedded by the prompt itself


def wait(qtbot, w):
    qtbot.waitUntil(lambda: not w.busy, timeout=60000)
    qtbot.wait(50)


def record(w, monkeypatch, action=None):
    """The slices the panel's embedding jobs report, in order. ``action`` runs once, when the
    first of them arrives; the job thread waits for it before it takes a second slice (the
    tiny model is faster than the GUI thread)."""
    order, acted, takes = [], threading.Event(), []
    take = EmbedOrder.take

    def held(self, n):
        takes.append(n)
        if action is not None and len(takes) == 2:
            acted.wait(30)
        return take(self, n)

    def ready(slices):
        order.extend(slices)
        if action is not None and not acted.is_set():
            action()
            acted.set()

    monkeypatch.setattr(EmbedOrder, "take", held)
    w.runner.slices_ready.connect(ready)
    return order


def test_a_prompt_embeds_its_neighbours_outward(sam_widget, qtbot, monkeypatch):
    w = sam_widget
    order, shown = record(w, monkeypatch), []
    w.runner.threads.progressed.connect(lambda *_: shown.append(w.progress.format()))
    w.prompt_layers()[0].add(np.array([[8, 24, 24]]))
    qtbot.waitUntil(lambda: w.runner.background, timeout=30000)
    assert w.prediction[1] == 8 and "mask of" in w.status.text()  # the status stays the user's
    assert w.embed_button.isEnabled() and w.cancel_button.isEnabled()
    wait(qtbot, w)
    assert order == NEIGHBOURS
    assert w.session.encoded == 16 and w.session.missing() == []
    assert shown[0] == "Embedding neighbours 0/15 slices"
    assert shown[1].startswith("Embedding neighbours 1/15 slices, about ")
    assert shown[1].endswith(" left")
    assert w.progress.format() == "16/16 slices embedded"


def test_a_prompt_on_a_queued_slice_jumps_the_queue(sam_widget, qtbot, monkeypatch):
    w = sam_widget

    def click_far():
        w.viewer.dims.set_current_step(0, 0)  # last in the outward order
        w.prompt_layers()[0].add(np.array([[0, 24, 24]]))

    order = record(w, monkeypatch, click_far)
    w.prompt_layers()[0].add(np.array([[8, 24, 24]]))
    qtbot.waitUntil(lambda: w.prediction is not None and w.prediction[1] == 0, timeout=60000)
    wait(qtbot, w)
    assert sorted(order) == sorted(NEIGHBOURS) and order[:2] == [9, 0]
    assert w.session.encoded == 16  # slice 0 waited for the queue, not encoded twice


@pytest.mark.parametrize("job", ["propagate", "embed_case", "segment_boxes"])
def test_the_users_job_takes_over_without_saying_busy(sam_widget, qtbot, monkeypatch, job):
    from napari_medseg._qt import sam_runner

    w = sam_widget
    notices = []
    monkeypatch.setattr(sam_runner, "show_info", notices.append)
    labels = w.viewer.layers["label"]
    labels.data[8, 20:30, 20:30] = 1
    before = np.array(labels.data)
    w.min_score.setValue(0.0)
    started, launched = [], []
    order = record(w, monkeypatch, lambda: started.append(getattr(w, job)()))
    launch = w.runner._launch
    monkeypatch.setattr(
        w.runner, "_launch", lambda j: launched.append((j.what, len(order))) or launch(j)
    )
    w.prompt_layers()[2].add_rectangles(
        np.array([[8, 10, 10], [8, 10, 38], [8, 38, 38], [8, 38, 10]])
    )
    qtbot.waitUntil(lambda: bool(started), timeout=60000)
    assert started[0] is not None and not notices
    wait(qtbot, w)
    what, embedded = launched[1]  # when the user's job started, the background one had ended
    assert launched[0] == ("Embedding neighbours", 0) and what != "Embedding neighbours"
    assert embedded in (1, 2)  # the background job stopped between slices
    status = w.status.text()
    if job == "propagate":
        assert "Propagated label 1 to" in status, status
        assert w.undo_stack.done[-1].what == "propagate" and (labels.data != before).any()
    elif job == "embed_case":
        assert "16/16 slices embedded" in status, status
    else:
        assert "Segmented 1 boxes" in status, status
    # Foreground work used what was ready, then the background filled the rest: each slice once.
    assert w.session.missing() == [] and w.session.encoded == 16


def _other_case(w):
    """Replace the case's images, as the case browser does."""
    image = w.viewer.layers["CT"]
    data = np.array(image.data)[::-1].copy()
    w.viewer.layers.remove(image)
    w.viewer.add_image(data, name="CT")
    QApplication.processEvents()  # the panel follows the layers once the batch is in


STOPS = {
    "cancel": lambda w: w.cancel_button.click(),
    "close": lambda w: w.close_panel(),
    "checkpoint": lambda w: w.checkpoint.setText(w.checkpoint.text() + ".other"),
    "untick": lambda w: w.background_embed.setChecked(False),
    "case": _other_case,
}


@pytest.mark.parametrize("stop", STOPS)
def test_the_background_job_stops(sam_widget, qtbot, monkeypatch, stop):
    from napari_medseg.engines.sam_settings import load_settings

    w = sam_widget
    order = record(w, monkeypatch, lambda: STOPS[stop](w))
    w.prompt_layers()[0].add(np.array([[8, 24, 24]]))
    qtbot.waitUntil(lambda: bool(order), timeout=60000)
    wait(qtbot, w)
    assert order in ([9], [9, 7])  # stopped between slices: before 7, or once 7 was done
    assert not w.runner.background and w.runner.jobs.running is None
    if stop == "cancel":
        assert w.status.text() == "Cancelled"
    assert w.progress.format() == "Embedding neighbours: stopped" or stop == "close"
    assert load_settings().get("sam_background_embed", True) is (stop != "untick")
