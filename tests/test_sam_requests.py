"""Qt-free SAM panel logic: superseded requests, a background job giving way to the user's,
queue jumping, background embedding outward, time left, undo/redo, channels."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from napari_medseg.core.model import Volume
from napari_medseg.engines.sam_channels import seen_layers, view_mapping
from napari_medseg.engines.sam_edit import paste_slices
from napari_medseg.engines.sam_prefetch import embed_in_order, outward
from napari_medseg.engines.sam_requests import EmbedOrder, Eta, Job, JobLine, RequestLine
from napari_medseg.engines.sam_undo import UndoStack
from napari_medseg.engines.windowing import source_channels


def test_a_new_request_supersedes_the_old_one():
    line = RequestLine()
    first = line.issue()
    assert first.current and not first.cancelled()
    second = line.issue()
    assert first.cancelled() and second.current
    line.supersede()  # Q or Cancel
    assert second.cancelled()


def test_a_prompted_slice_jumps_the_embedding_queue():
    order = EmbedOrder(range(6))
    assert order.take(2) == [0, 1]
    assert order.prefer(4) and not order.prefer(1)  # 1 is done already
    assert order.take(2) == [4, 2]
    assert order.take(5) == [3, 5] and len(order) == 0


def _job(background=False):
    return Job(work=lambda ticket: None, done=lambda result: None, what="x", background=background)


def test_the_users_job_takes_over_from_the_background_job():
    jobs = JobLine()
    prefetch = _job(background=True)
    assert jobs.submit(prefetch) == "start" and prefetch.ticket.current
    assert jobs.submit(_job(background=True)) == "busy"  # one background job at a time
    propagate = _job()
    assert jobs.submit(propagate) == "wait"
    assert prefetch.ticket.cancelled() and propagate.ticket.current  # stops after its slice
    assert jobs.submit(_job()) == "busy"  # the user's job is not displaced either
    jobs.stop_background()  # the case changed: the waiting job is the user's, it stays
    assert propagate.ticket.current
    assert jobs.finished() is propagate and jobs.running is propagate  # prefetch's thread ended
    assert jobs.submit(_job(background=True)) == "busy"
    assert jobs.submit(_job()) == "busy"  # two foreground jobs: the user cancels first
    assert jobs.finished() is None and jobs.running is None


def test_cancel_stops_the_background_job_and_drops_the_waiting_one():
    jobs = JobLine()
    prefetch, boxes = _job(background=True), _job()
    jobs.submit(prefetch)
    jobs.submit(boxes)
    jobs.cancel()
    assert prefetch.ticket.cancelled() and boxes.ticket.cancelled()
    assert jobs.finished() is None  # nothing starts after the cancelled background job
    again = _job(background=True)
    assert jobs.submit(again) == "start"
    jobs.stop_background()  # model, checkpoint or channels changed
    assert again.ticket.cancelled() and jobs.finished() is None


def test_the_slice_being_embedded_is_still_wanted_until_it_is_done():
    order = EmbedOrder(outward(5, 8))
    assert order.take(1) == [5]
    assert order.wants(5) and not order.prefer(5)  # embedding now: a prompt waits for it
    order.done()
    assert not order.wants(5)
    assert order.wants(2) and order.take(1) == [2]  # jumped the queue
    order.follow(outward(0, 8))  # the user works on slice 0 now: its neighbours first
    assert order.take(8) == [0, 1, 3, 4, 6, 7]


class _Session:
    """Records the slices embedded, batch by batch (a SAM session's ``embed`` call)."""

    def __init__(self, batch_size):
        self.batch_size, self.sam, self.batches = batch_size, None, []

    def embed(self, slices):
        self.batches.append(list(slices))


def test_background_embedding_goes_outward_and_stops_between_batches():
    session, reports, ready = _Session(2), [], []
    order = EmbedOrder(outward(3, 7)[1:])  # the prompted slice 3 is embedded already
    n = embed_in_order(
        session, order, lambda d, t: reports.append((d, t)), lambda: False, ready.append
    )
    assert session.batches == ready == [[4, 2], [5, 1], [6, 0]] and n == 6
    assert reports == [(0, 6), (2, 6), (4, 6), (6, 6)]
    stopped = _Session(1)
    n = embed_in_order(
        stopped,
        EmbedOrder(outward(3, 7)),
        lambda d, t: None,
        lambda: len(stopped.batches) == 2,
        ready.append,
    )
    assert n == 2 and stopped.batches == [[3], [4]]  # cancelled after the slice in progress


def test_time_left_follows_the_rate_so_far():
    now = [100.0]
    eta = Eta(clock=lambda: now[0])
    assert eta.text(0, 10) == "0/10 slices"
    now[0] = 112.0  # 12 s for 2 slices -> 48 s for the other 8
    assert eta.text(2, 10) == "2/10 slices, about 48 s left"
    now[0] = 400.0
    assert eta.text(5, 155) == "5/155 slices, about 2.5 h left"
    assert eta.text(155, 155) == "155/155 slices"


def test_undo_redo_are_exact_including_empty_steps():
    labels = SimpleNamespace(data=np.zeros((3, 4, 4), np.uint16))
    labels.data[1, 0, 0] = 7
    start = labels.data.copy()
    stack = UndoStack()
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True
    stack.push(labels, "accept", [paste_slices(labels.data, {1: mask}, 2)])
    after_accept = labels.data.copy()
    assert after_accept[1, 0, 0] == 7 and after_accept[1, 1, 1] == 2
    stack.push(labels, "propagate", [paste_slices(labels.data, {}, 2)])  # wrote nothing
    assert stack.undo().size == 0
    np.testing.assert_array_equal(labels.data, after_accept)
    assert stack.undo().what == "accept"
    np.testing.assert_array_equal(labels.data, start)
    assert stack.undo() is None
    stack.redo()
    np.testing.assert_array_equal(labels.data, after_accept)
    stack.redo()
    assert stack.redo() is None
    np.testing.assert_array_equal(labels.data, after_accept)


def _layer(visible=True, opacity=1.0, blending="translucent"):
    return SimpleNamespace(visible=visible, opacity=opacity, blending=blending)


def test_seen_layers_stop_at_the_first_covering_one():
    ct, suv = _layer(), _layer(opacity=0.7, blending="additive")
    assert seen_layers([ct, suv]) == [ct, suv]
    t1, t1c, t2, flair = _layer(), _layer(), _layer(), _layer()
    assert seen_layers([t1, t1c, t2, flair]) == [flair]
    flair.visible = False
    assert seen_layers([t1, t1c, t2, flair]) == [t2]
    assert seen_layers([_layer(visible=False)]) == []


def _vol(name, modality):
    return Volume.from_array(name, np.zeros((2, 4, 4), np.float32), modality=modality)


def test_channels_follow_the_documented_order():
    ct, suv = _vol("CT", "CT"), _vol("SUV", "PET")
    assert [c.source for c in view_mapping(source_channels([suv, ct]))] == ["CT", "CT", "SUV"]
    mr = [_vol(n, "MR") for n in ("T1", "T1c", "T2", "FLAIR")]
    assert [c.source for c in view_mapping(source_channels(mr[3:]))] == ["FLAIR"] * 3
    assert [c.source for c in view_mapping(source_channels(mr))] == ["FLAIR", "T1c", "T2"]
    msd = [_vol(n, "MR") for n in ("T2w", "t1gd", "T1w")]
    assert [c.source for c in view_mapping(source_channels(msd))] == ["t1gd", "T2w", "T1w"]
