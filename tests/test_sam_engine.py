"""SAM engine on CPU with a tiny random-weight model: embed, cache, prompts, propagation, engine."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_medseg.core.errors import MedsegError
from napari_medseg.core.model import Box, Case, Volume
from napari_medseg.engines.base import make_engine
from napari_medseg.engines.sam import Prediction, SamSession, propagate
from napari_medseg.engines.sam_cache import EmbeddingCache
from napari_medseg.engines.sam_model import load_sam
from napari_medseg.engines.sam_prompts import (
    Prompt,
    load_prompts,
    prompt_from_mask,
    prompts_from_mask,
)
from napari_medseg.io.detect import open_dataset


@pytest.fixture
def sam(tiny_sam_checkpoint):
    return load_sam(tiny_sam_checkpoint, "cpu")


@pytest.fixture
def encoder_calls(sam, monkeypatch):
    """Count the slices that go through the image encoder."""
    calls = []
    forward = sam.model.image_encoder.forward

    def counting(x):
        calls.append(x.shape[0])
        return forward(x)

    monkeypatch.setattr(sam.model.image_encoder, "forward", counting)
    return calls


@pytest.fixture
def spleen_case(msd_spleen):
    ds = open_dataset(msd_spleen)
    return ds.load_case(ds.case_ids()[0])


def iou(a, b):
    return (a & b).sum() / max(1, (a | b).sum())


def test_embeddings_are_cached_and_reused_on_reopen(sam, spleen_case, encoder_calls, tmp_path):
    cache = EmbeddingCache(tmp_path / "cache", max_bytes=2**30)
    first = SamSession.for_case(sam, spleen_case, cache=cache, batch_size=4)
    n = len(first.stack)
    assert first.embed() == n
    assert sum(encoder_calls) == n and max(encoder_calls) == 4  # batched
    assert cache.count() == n
    z = n // 2
    prompt = Prompt(slice=z, points=[[24, 30]], point_labels=[1])
    expected = first.predict(prompt)

    encoder_calls.clear()
    again = SamSession.for_case(sam, spleen_case, cache=EmbeddingCache(tmp_path / "cache"))
    assert again.missing() == [] and again.embed() == 0
    got = again.predict(prompt)
    assert encoder_calls == []
    np.testing.assert_array_equal(got.mask, expected.mask)
    assert got.score == pytest.approx(expected.score)


def test_cache_key_covers_channel_windows(sam, spleen_case, tmp_path):
    from napari_medseg.engines.windowing import ChannelSpec

    cache = EmbeddingCache(tmp_path / "cache")
    soft = SamSession.for_case(sam, spleen_case, cache=cache)
    bone = SamSession.for_case(sam, spleen_case, [ChannelSpec("CT", "-500:1500")] * 3, cache=cache)
    assert not set(soft.keys) & set(bone.keys)


def test_encoding_matches_the_stock_predictor(sam, spleen_case):
    """Same preprocessing as SamPredictor.set_image, and masks agree after float16 storage."""
    from segment_anything import SamPredictor

    session = SamSession.for_case(sam, spleen_case)
    z = len(session.stack) // 2
    stock = SamPredictor(sam.model)
    stock.set_image(session.stack[z])
    ours = session.embedding(z)
    np.testing.assert_allclose(
        ours.astype(np.float32), stock.features[0].numpy(), atol=2e-3, rtol=1e-2
    )
    for prompt in (
        Prompt(slice=z, points=[[20, 26], [5, 5]], point_labels=[1, 0]),
        Prompt(slice=z, box=[10, 12, 36, 40]),
    ):
        masks, scores, _ = stock.predict(
            prompt.points[:, ::-1] if len(prompt.points) else None,
            prompt.point_labels if len(prompt.points) else None,
            prompt.box[[1, 0, 3, 2]] if prompt.box is not None else None,
        )
        pred = session.predict(prompt)
        assert pred.score == pytest.approx(float(scores.max()), abs=2e-3)
        assert iou(pred.mask, masks[int(np.argmax(scores))]) >= 0.97


def test_point_and_box_prompts_give_slice_masks(sam, spleen_case):
    session = SamSession.for_case(sam, spleen_case)
    z = 8
    for prompt in (
        Prompt(slice=z, points=[[20, 20]], point_labels=[1]),
        Prompt(slice=z, box=[5, 5, 30, 40]),
    ):
        pred = session.predict(prompt)
        assert (
            pred.mask.shape == spleen_case.reference_image().shape[1:] and pred.mask.dtype == bool
        )
        assert pred.low_res.shape == (1, 32, 32) and 0 <= z < len(session.stack)
        again = session.predict(
            Prompt(
                slice=z,
                box=prompt.box,
                points=prompt.points,
                point_labels=prompt.point_labels,
                mask_input=pred.low_res,
            )
        )
        assert again.mask.shape == pred.mask.shape
    assert session.encoded == 1  # only the prompted slice was embedded
    with pytest.raises(MedsegError, match="point or a box"):
        session.predict(Prompt(slice=z))


def oracle(truth):
    """A perfect 'model': the true object inside the prompt box, score 0.9."""

    def predict(prompt):
        y0, x0, y1, x1 = np.round(prompt.box).astype(int)
        mask = np.zeros_like(truth[prompt.slice])
        mask[y0 : y1 + 1, x0 : x1 + 1] = truth[prompt.slice][y0 : y1 + 1, x0 : x1 + 1]
        return Prediction(mask, 0.9, np.zeros((1, 4, 4)))

    return predict


def test_propagation_follows_the_object_both_ways_and_stops_where_it_vanishes(spleen_case):
    truth = spleen_case.masks[0].array > 0
    present = [z for z in range(len(truth)) if truth[z].sum() >= 5]
    start = present[len(present) // 2]
    seen = []
    out = propagate(
        oracle(truth), start, truth[start], len(truth), progress=lambda d, t: seen.append((d, t))
    )
    assert sorted(out) == [z for z in present if z != start]
    for z, m in out.items():  # the neighbour's box can clip a growing object slightly
        assert iou(m, truth[z]) >= 0.9
    assert seen[-1][0] == seen[-1][1]


def test_propagation_stops_on_low_score_and_on_cancel(spleen_case):
    truth = spleen_case.masks[0].array > 0
    start = int(np.argmax(truth.sum((1, 2))))
    perfect = oracle(truth)

    def fading(prompt):
        pred = perfect(prompt)
        pred.score = 0.9 - 0.25 * abs(prompt.slice - start)
        return pred

    out = propagate(fading, start, truth[start], len(truth), min_score=0.5)
    assert sorted(out) == [start - 1, start + 1]
    calls = []
    out = propagate(
        perfect,
        start,
        truth[start],
        len(truth),
        cancelled=lambda: len(calls) > 1,
        progress=lambda d, t: calls.append(d),
    )
    assert len(out) == 2


def test_propagation_with_the_model_stays_in_the_volume(sam, spleen_case):
    session = SamSession.for_case(sam, spleen_case)
    truth = spleen_case.masks[0].array > 0
    start = int(np.argmax(truth.sum((1, 2))))
    out = session.propagate(start, truth[start], min_score=0.0, min_area=1)
    assert all(0 <= z < len(truth) and z != start for z in out)
    assert all(m.shape == truth.shape[1:] and m.any() for m in out.values())


def test_prompts_from_a_mask_seed_every_labelled_slice(spleen_case):
    truth = spleen_case.masks[0].array
    prompts = prompts_from_mask(truth)
    assert {p.slice for p in prompts} == {z for z in range(len(truth)) if truth[z].any()}
    p = prompt_from_mask(truth[8] > 0, 8, 1)
    y, x = p.points[0].astype(int)
    assert truth[8, y, x] and p.box[0] <= y <= p.box[2] and p.box[1] <= x <= p.box[3]


def write_prompts(path, data):
    path.write_text(json.dumps(data))
    return path


def test_engine_segments_from_stored_prompts(tiny_sam_checkpoint, spleen_case, tmp_path):
    prompts = write_prompts(
        tmp_path / "prompts.json",
        {
            "labels": {"1": "spleen", "2": "other"},
            "cases": {
                spleen_case.id: [
                    {
                        "slice": 8,
                        "label": 1,
                        "points": [[24, 30]],
                        "point_labels": [1],
                        "propagate": True,
                    },
                    {"slice": 3, "label": 2, "box": [10, 10, 40, 40]},
                ]
            },
        },
    )
    engine = make_engine(
        "sam",
        checkpoint=tiny_sam_checkpoint,
        cache=tmp_path / "cache",
        prompts=prompts,
        device="cpu",
        out="ignored",
    )
    steps = []
    result = engine.segment_case(spleen_case, lambda d, t: steps.append((d, t)))
    assert result.mask.shape == spleen_case.reference_image().shape
    assert set(np.unique(result.mask)) <= {0, 1, 2}
    assert result.labelmap.names() == {0: "background", 1: "spleen", 2: "other"}
    assert result.info["prompts"] == "prompts" and result.info["n_prompts"] == 2
    assert result.info["encoded_slices"] == 16  # propagation embedded the whole volume
    assert steps[-1] == (2, 2)
    again = engine.segment_case(spleen_case)
    assert again.info["encoded_slices"] == 0
    np.testing.assert_array_equal(again.mask, result.mask)


def test_engine_uses_voc_boxes_when_there_are_no_prompts(tiny_sam_checkpoint, tmp_path):
    rng = np.random.default_rng(0)
    image = Volume.from_array(
        "T2", rng.integers(0, 1000, (5, 64, 64)).astype(np.uint16), modality="MR"
    )
    boxes = [Box(1, 10, 12, 30, 40, "RFS1"), Box(3, 20, 20, 50, 50, "LFS0")]
    case = Case("lss_1", images=[image], boxes=boxes)
    engine = make_engine("sam", checkpoint=tiny_sam_checkpoint, cache=tmp_path / "cache")
    result = engine.segment_case(case)
    assert result.mask.shape == (5, 64, 64)
    assert result.labelmap.names() == {0: "background", 1: "LFS0", 2: "RFS1"}
    assert not result.mask[[0, 2, 4]].any()  # only the boxed slices
    assert result.info["prompts"] == "boxes" and result.info["encoded_slices"] == 2
    with pytest.raises(MedsegError, match="no stored SAM prompts and no boxes"):
        engine.segment_case(Case("plain", images=[image]))


def test_engine_refuses_bad_options(tiny_sam_checkpoint, tmp_path, spleen_case):
    with pytest.raises(MedsegError, match="--checkpoint"):
        make_engine("sam")
    bad = write_prompts(tmp_path / "bad.json", {"cases": {"a": [{"slice": 1, "label": 1}]}})
    with pytest.raises(MedsegError, match="needs points or a box") as err:
        make_engine("sam", checkpoint=tiny_sam_checkpoint, prompts=bad)
    assert err.value.path == bad
    far = write_prompts(
        tmp_path / "far.json", {"cases": {spleen_case.id: [{"slice": 99, "box": [1, 1, 5, 5]}]}}
    )
    engine = make_engine("sam", checkpoint=tiny_sam_checkpoint, prompts=far, cache=tmp_path / "c")
    with pytest.raises(MedsegError, match="outside"):
        engine.segment_case(spleen_case)


def test_prompts_json_round_trip(tmp_path):
    path = write_prompts(
        tmp_path / "p.json",
        {
            "cases": {
                "c1": [
                    {
                        "slice": 2,
                        "label": 3,
                        "points": [[1, 2], [3, 4]],
                        "point_labels": [1, 0],
                        "box": [0, 0, 9, 9],
                    }
                ]
            }
        },
    )
    cases, names = load_prompts(path)
    p = cases["c1"][0]
    assert (p.slice, p.label, p.propagate, names) == (2, 3, False, {})
    np.testing.assert_array_equal(p.points, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(p.point_labels, [1, 0])
    for broken in ({"case": {}}, {"cases": {"c": [{"points": [[1, 2]], "point_labels": [1, 1]}]}}):
        with pytest.raises(MedsegError):
            load_prompts(write_prompts(tmp_path / "b.json", broken))


def test_prompt_from_layer_data_keeps_only_the_current_slice():
    from napari_medseg.engines.sam_prompts import prompt_on_slice

    pos = np.array([[3, 10, 12], [4, 1, 1]])
    neg = np.array([[3, 5, 6]])
    rect = np.array([[3, 20, 8], [3, 20, 30], [3, 2, 30], [3, 2, 8]])
    p = prompt_on_slice(3, 2, pos, neg, [rect, rect + [1, 0, 0]])
    np.testing.assert_array_equal(p.points, [[10, 12], [5, 6]])
    np.testing.assert_array_equal(p.point_labels, [1, 0])
    np.testing.assert_array_equal(p.box, [2, 8, 20, 30])
    assert (p.slice, p.label) == (3, 2)
    assert prompt_on_slice(5, 1, pos, neg, [rect]).empty
    flat = prompt_on_slice(0, 1, np.array([[4.0, 5.0]]))
    np.testing.assert_array_equal(flat.points, [[4, 5]])


def test_engine_can_reseed_from_an_existing_mask(tiny_sam_checkpoint, spleen_case, tmp_path):
    engine = make_engine(
        "sam", checkpoint=tiny_sam_checkpoint, cache=tmp_path / "c", seed_from_masks=True
    )
    truth = spleen_case.masks[0].array
    result = engine.segment_case(spleen_case)
    assert result.info["prompts"] == "mask"
    assert result.info["n_prompts"] == sum(truth[z].any() for z in range(len(truth)))
    assert result.labelmap.names()[1] == "spleen"
    assert not result.mask[[z for z in range(len(truth)) if not truth[z].any()]].any()


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_autocast_embeddings_give_the_same_masks(sam, spleen_case, precision):
    """The GPU path's autocast, exercised on CPU: masks agree with fp32 (IoU >= 0.97)."""
    import torch

    if precision == "fp16" and not torch.cuda.is_available():
        pytest.skip("fp16 autocast needs CUDA")
    full = SamSession.for_case(sam, spleen_case, precision="fp32")
    half = SamSession.for_case(sam, spleen_case, precision=precision)
    inter = union = 0
    for z in (6, 8, 10):
        for prompt in (
            Prompt(slice=z, points=[[24, 30]], point_labels=[1]),
            Prompt(slice=z, box=[8, 12, 36, 40]),
        ):
            a, b = full.predict(prompt).mask, half.predict(prompt).mask
            assert iou(a, b) >= 0.9  # a pixel is 3% of these tiny masks
            inter, union = inter + (a & b).sum(), union + (a | b).sum()
    assert inter / union >= 0.97
