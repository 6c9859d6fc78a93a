"""SAM 2.1 engine with a tiny random-weight model built from the sam2 package's own classes.

A random model cannot segment, so these tests check the mechanics against the package's own
predictors (same weights, frames and prompts), the slices propagation visits and where it
stops, the cache, cancel, the CLI and refused checkpoints.
"""

from __future__ import annotations

import json
import threading

import nibabel as nib
import numpy as np
import pytest

from napari_medseg.cli import main
from napari_medseg.core.errors import MedsegError
from napari_medseg.engines.sam2 import Sam2Session, Sam2Track
from napari_medseg.engines.sam2_model import (
    CORRECTIONS,
    TINY_OVERRIDES,
    image_predictor,
    is_sam2_checkpoint,
    load_sam2,
    save_tiny_sam2,
)
from napari_medseg.engines.sam_cache import EmbeddingCache
from napari_medseg.engines.sam_model import load_sam
from napari_medseg.engines.sam_prefetch import outward, prefetch
from napari_medseg.engines.sam_prompts import Prompt

CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"
SPHERE = range(3, 10)  # slices the moving sphere crosses


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: with the 2 shared cores busy, 2 threads make tiny models ~10x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_sam2(tmp_path_factory):
    # Seed 2: the random object-score head happens to call the prompted box an object.
    return save_tiny_sam2(tmp_path_factory.mktemp("sam2") / "tiny_sam2.pt", seed=2)


@pytest.fixture
def sam2(tiny_sam2):
    return load_sam2(tiny_sam2, "cpu")


@pytest.fixture(scope="module")
def stack():
    """A sphere moving down in y through slices 3..9 of 13 (48 x 40 px), as SAM input."""
    z, y, x = np.mgrid[:13, :48, :40]
    ball = (3 * (z - 6)) ** 2 + (y - 18 - 2 * z) ** 2 + (x - 20) ** 2 < 100
    return np.repeat((ball * 200).astype(np.uint8)[..., None], 3, axis=-1)


def iou(a, b):
    union = (a | b).sum()
    return 1.0 if union == 0 else (a & b).sum() / union


def reference_video_predictor(checkpoint, stack, monkeypatch):
    """The package's SAM2VideoPredictor on ``stack``, its frames preprocessed by its own
    SAM2Transforms (its JPEG loader would add JPEG loss)."""
    import sam2.sam2_video_predictor as svp
    import torch
    from sam2.build_sam import build_sam2_video_predictor
    from sam2.utils.transforms import SAM2Transforms

    ref = build_sam2_video_predictor(
        CONFIG, str(checkpoint), device="cpu", hydra_overrides_extra=TINY_OVERRIDES + CORRECTIONS
    )
    tf = SAM2Transforms(ref.image_size, 0.0)
    frames = torch.stack([tf(im) for im in stack])
    monkeypatch.setattr(svp, "load_video_frames", lambda **kw: (frames, *stack.shape[1:3]))
    return ref, ref.init_state("in-memory")


def reference_masks(ref, state, obj_ids, runs) -> dict:
    """Masks per (obj id, frame) of ``propagate_in_video`` runs (start, reverse)."""
    out = {}
    for start, reverse in runs:
        for f, ids, masks in ref.propagate_in_video(state, start_frame_idx=start, reverse=reverse):
            for i, obj in enumerate(ids):
                out[obj, f] = (masks[i, 0] > 0).numpy()
    return out


def test_slice_prompt_equals_sam2_image_predictor(sam2, stack, tiny_sam2):
    from sam2.build_sam import build_sam2

    session = Sam2Session(sam2, stack)
    ref = image_predictor(
        build_sam2(CONFIG, str(tiny_sam2), device="cpu", hydra_overrides_extra=TINY_OVERRIDES)
    )
    ref.set_image(stack[6])
    prompts = [
        ([[30, 20]], [1], None),
        ([[30, 20], [5, 5]], [1, 0], [20, 10, 40, 30]),
        ([], [], [20, 10, 40, 30]),
    ]
    for points, labels, box in prompts:
        mine = session.predict(Prompt(slice=6, points=points, point_labels=labels, box=box))
        xy = np.array(points, float).reshape(-1, 2)[:, ::-1].copy()
        masks, scores, _ = ref.predict(
            point_coords=xy if len(xy) else None,
            point_labels=np.array(labels) if len(xy) else None,
            box=np.array(box)[[1, 0, 3, 2]] if box else None,
        )
        best = int(np.argmax(scores))
        assert mine.mask.shape == stack.shape[1:3]
        assert iou(mine.mask, masks[best] > 0) >= 0.999
        assert mine.score == pytest.approx(float(scores[best]), abs=1e-5)
    assert session.encoded == 1


def test_propagation_and_correction_equal_sam2_video_predictor(sam2, stack, tiny_sam2, monkeypatch):
    """Two objects, propagated, then a correction click on another slice.

    (Both objects are prompted on one slice: the package's predictor fails on CPU where an
    object's memory has no pointer yet, e.g. before its prompted slice; ours does not.)"""
    ref, state = reference_video_predictor(tiny_sam2, stack, monkeypatch)
    session = Sam2Session(sam2, stack)
    track = Sam2Track(session)
    first = [
        Prompt(slice=6, label=1, box=[20, 10, 40, 30]),
        Prompt(slice=6, label=2, points=[[26, 20], [2, 2]], point_labels=[1, 0]),
    ]
    for p in first:
        mine = track.add(p)
        xy = {"points": None, "labels": None, "box": None}
        if len(p.points):
            xy["points"], xy["labels"] = p.points[:, ::-1].copy(), p.point_labels
        if p.box is not None:
            xy["box"] = p.box[[1, 0, 3, 2]]
        _, ids, masks = ref.add_new_points_or_box(state, p.slice, p.label, **xy)
        assert iou(mine, (masks[list(ids).index(p.label), 0] > 0).numpy()) >= 0.999
    got = track.propagate(min_area=0)
    want = reference_masks(ref, state, (1, 2), [(6, False), (6, True)])
    assert sorted(got) == [1, 2]
    assert set(got[1]) == set(got[2]) == set(range(len(stack)))
    for (obj, z), mask in want.items():
        assert iou(got[obj][z], mask) >= 0.999, (obj, z)

    fix = Prompt(slice=9, label=1, points=[[38, 20], [10, 20]], point_labels=[1, 0])
    track.add(fix)
    ref.add_new_points_or_box(state, 9, 1, points=fix.points[:, ::-1].copy(), labels=[1, 0])
    session.requested.clear()
    again = track.propagate(start=9, min_area=0)
    assert session.requested[0] == 9  # re-propagation starts at the corrected slice
    want = reference_masks(ref, state, (1, 2), [(9, False), (9, True)])
    bad = {k: iou(again[k[0]][k[1]], m) for k, m in want.items()}
    assert min(bad.values()) >= 0.999, bad
    # Every slice was encoded once, however often the tracker came back to it.
    assert session.encoded == len(stack)


def oracle_object_score(sam2, session, monkeypatch, present):
    """Make the model's object score say whether the slice being decoded shows the sphere,
    as a trained model would (a random one cannot): the predictor's own no-object path then
    empties the mask there."""
    head = sam2.model.sam_mask_decoder.pred_obj_score_head
    forward = head.forward

    def scored(x):
        sign = 1.0 if session.requested[-1] in present else -1.0
        return forward(x) * 0 + 10.0 * sign

    monkeypatch.setattr(head, "forward", scored)


def test_propagation_follows_the_object_and_stops_where_it_ends(sam2, stack, tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path / "cache", max_bytes=2**30)
    session = Sam2Session(sam2, stack, cache=cache)
    oracle_object_score(sam2, session, monkeypatch, set(SPHERE))
    track = Sam2Track(session)
    track.add(Prompt(slice=6, label=1, box=[26, 10, 44, 30]))
    progress = []
    masks = track.propagate(progress=lambda d, t: progress.append((d, t)))[1]
    assert sorted(masks) == list(SPHERE)
    # Forward to one slice past the sphere, then backward to one slice before it.
    assert session.requested[session.requested.index(7) :] == [7, 8, 9, 10, 5, 4, 3, 2]
    # Only the slices the object reached and the two where it ended cost an embedding; those
    # two are both blank, so the content-keyed cache encodes them once.
    assert session.encoded == cache.count() == len(SPHERE) + 1
    assert progress[-1] == (len(stack), len(stack))

    # Reopened with the same cache: no encoder run; fp16 features, near-identical masks.
    reopened = Sam2Session(sam2, stack, cache=cache)
    oracle_object_score(sam2, reopened, monkeypatch, set(SPHERE))
    again = Sam2Track(reopened)
    again.add(Prompt(slice=6, label=1, box=[26, 10, 44, 30]))
    masks2 = again.propagate()[1]
    assert reopened.encoded == 0
    assert sorted(masks2) == sorted(masks)
    assert min(iou(masks[z], masks2[z]) for z in masks) >= 0.98


def test_cancel_stops_propagation(sam2, stack):
    session = Sam2Session(sam2, stack)
    track = Sam2Track(session)
    track.add(Prompt(slice=6, label=1, box=[20, 10, 40, 30]))
    masks = track.propagate(min_area=0, cancelled=lambda: len(session.requested) >= 4)[1]
    assert 0 < len(masks) < len(stack)
    assert session.encoded < len(stack)
    with pytest.raises(MedsegError, match="prompt at least one"):
        Sam2Track(session).propagate()


def test_embed_on_demand_and_in_order(sam2, stack, tmp_path):
    cache = EmbeddingCache(tmp_path / "cache", max_bytes=2**30)
    session = Sam2Session(sam2, stack, cache=cache)
    assert session.embed([6, 7, 5]) == 3 and session.missing([5, 6, 7, 8]) == [8]
    assert session.embed(cancelled=lambda: session.encoded >= 5) == 2


def test_checkpoints_are_recognised_or_refused_naming_the_file(
    tiny_sam2, tiny_sam_checkpoint, tmp_path
):
    assert is_sam2_checkpoint(tiny_sam2) and not is_sam2_checkpoint(tiny_sam_checkpoint)
    with pytest.raises(MedsegError, match="SAM 1.*--engine sam") as err:
        load_sam2(tiny_sam_checkpoint, "cpu")
    assert str(tiny_sam_checkpoint) in str(err.value)
    with pytest.raises(MedsegError, match="SAM 2.1.*--engine sam2") as err:
        load_sam(tiny_sam2, "cpu")
    assert str(tiny_sam2) in str(err.value)
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(MedsegError, match="cannot read") as err:
        load_sam2(bad, "cpu")
    assert str(bad) in str(err.value)
    import torch

    other = tmp_path / "unet.pt"
    torch.save({"model": {"conv.weight": torch.zeros(2, 2)}}, other)
    with pytest.raises(MedsegError, match="not a SAM 2.1"):
        load_sam2(other, "cpu")


def test_presegment_and_embed_cli_with_sam2(
    msd_spleen, tiny_sam2, tiny_sam_checkpoint, tmp_path, capsys
):
    prompts = tmp_path / "prompts.json"
    case = {"slice": 8, "label": 1, "box": [10, 10, 40, 40], "propagate": True}
    prompts.write_text(json.dumps({"labels": {"1": "spleen"}, "cases": {"spleen_1": [case]}}))
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = ["--checkpoint", str(tiny_sam2), "--cache", str(cache), "--case", "spleen_1"]
    rc = main(
        ["presegment", str(msd_spleen), "--engine", "sam2", *args, "--prompts", str(prompts)]
        + ["--out", str(out), "--workers", "0"]
    )
    assert rc == 0, capsys.readouterr()
    mask = nib.load(out / "spleen_1.nii.gz")
    image = nib.load(msd_spleen / "imagesTr" / "spleen_1.nii.gz")
    assert mask.shape == image.shape
    np.testing.assert_allclose(mask.affine, image.affine)
    summary = json.loads((out / "summary.json").read_text())
    assert "sam2" in json.dumps(summary)
    # embed recognises the SAM 2.1 file; slices propagation already encoded are cached.
    n_cached = len(list(cache.glob("*.npz")))
    assert main(["embed", str(msd_spleen), *args]) == 0
    printed = capsys.readouterr().out
    assert f"{n_cached} cached" in printed and len(list(cache.glob("*.npz"))) >= n_cached
    # A SAM 1 checkpoint handed to --engine sam2 is refused, naming it.
    rc = main(
        [
            "presegment",
            str(msd_spleen),
            "--engine",
            "sam2",
            "--checkpoint",
            str(tiny_sam_checkpoint),
        ]
        + ["--case", "spleen_1", "--out", str(tmp_path / "o2"), "--workers", "0"]
    )
    captured = capsys.readouterr()
    assert rc != 0 and str(tiny_sam_checkpoint) in captured.err + captured.out


def test_prefetch_embeds_the_prompted_slice_then_outward(sam2, stack):
    assert outward(3, 6) == [3, 4, 2, 5, 1, 0] and outward(0, 5, radius=1) == [0, 1]
    session = Sam2Session(sam2, stack)
    order, encode = [], session._encode
    session._encode = lambda zs: order.extend(zs) or encode(zs)
    assert prefetch(session, 6, radius=2) == 5
    assert order == [6, 7, 5, 8, 4]
    # In the background while the user prompts: both go on, nothing is encoded twice after.
    busy = Sam2Session(sam2, stack)
    worker = threading.Thread(target=prefetch, args=(busy, 6), kwargs={"radius": 3})
    worker.start()
    mask = busy.predict(Prompt(slice=6, box=[20, 10, 40, 30])).mask
    worker.join()
    assert busy.missing(range(3, 10)) == []
    assert np.array_equal(mask, session.predict(Prompt(slice=6, box=[20, 10, 40, 30])).mask)


def test_session_propagate_keeps_the_sam_session_contract(sam2, stack, monkeypatch):
    """The SAM panel's call: an accepted mask on one slice, masks of the slices it reaches."""
    session = Sam2Session(sam2, stack)
    oracle_object_score(sam2, session, monkeypatch, set(SPHERE))
    start = stack[6, ..., 0] > 0
    masks = session.propagate(6, start, label=3)
    assert sorted(masks) == [z for z in SPHERE if z != 6]
    # A corrected slice re-propagates from there, with the first mask still in the memory.
    session.requested.clear()
    again = session.propagate(8, stack[8, ..., 0] > 0, label=3)
    assert session.requested[0] == 8 and 6 in again


def test_batched_encoding_gives_the_same_features_and_masks(sam2, stack, tmp_path, monkeypatch):
    """The GPU path (``batch_size`` > 1), run here on CPU: slices go through the encoder
    several at a time, propagation encodes ahead in its direction of travel, and features
    and masks are those of one slice at a time."""
    cache = EmbeddingCache(tmp_path / "cache", max_bytes=2**30)
    one, batched = Sam2Session(sam2, stack), Sam2Session(sam2, stack, cache=cache, batch_size=4)
    assert one.batch_size == 1  # the CPU default
    # Slices 0-2 and 10-12 are blank, hence one cache entry: 7 sphere slices + 1 blank.
    assert batched.embed() == 8
    for z in range(len(stack)):  # (blank slices after the first come from the fp16 cache)
        for a, b in zip(one.embedding(z), batched.embedding(z), strict=True):
            assert float((a - b).abs().max()) < 1e-3

    fresh = Sam2Session(sam2, stack, batch_size=4)
    batches = []
    encode = fresh._encode
    monkeypatch.setattr(fresh, "_encode", lambda zs: batches.append(zs) or encode(zs))
    results = []
    for session in (one, fresh):
        track = Sam2Track(session)
        track.add(Prompt(slice=6, label=1, box=[20, 10, 40, 30]))
        results.append(track.propagate(min_area=0)[1])
    assert batches == [[6, 7, 8, 9], [10, 11, 12], [5, 4, 3, 2], [1, 0]]
    assert sorted(results[0]) == sorted(results[1]) == list(range(len(stack)))
    assert min(iou(results[0][z], results[1][z]) for z in results[0]) >= 0.999
