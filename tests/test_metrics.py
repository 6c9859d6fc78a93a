"""Metrics against values computed independently here (point sets and a k-d tree)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial import cKDTree

from napari_medseg.review.metrics import compare, surface_metrics


def ball(shape, center, radius, spacing=(1.0, 1.0, 1.0)):
    grid = np.indices(shape).astype(float)
    d2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grid, center, spacing, strict=True))
    return d2 <= radius**2


def surface_points(binary, spacing):
    """Voxels with a face neighbour outside (outside the array counts as outside), in mm."""
    padded = np.pad(binary, 1)
    inner = padded[1:-1, 1:-1, 1:-1]
    interior = inner.copy()
    for axis in range(3):
        for shift in (-1, 1):
            interior &= np.roll(padded, shift, axis=axis)[1:-1, 1:-1, 1:-1]
    return np.argwhere(inner & ~interior) * np.asarray(spacing)


def reference_distances(a, b, spacing):
    pa, pb = surface_points(a, spacing), surface_points(b, spacing)
    d_ab = cKDTree(pb).query(pa)[0]
    d_ba = cKDTree(pa).query(pb)[0]
    pooled = np.concatenate([d_ab, d_ba])
    return float(np.percentile(pooled, 95)), float(pooled.mean())


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (3.0, 0.7, 0.9)])
def test_surface_distances_match_a_kdtree(spacing):
    shape = (30, 40, 44)
    a = ball(shape, (14, 20, 20), 9, spacing=(1, 1, 1))
    b = ball(shape, (15, 22, 25), 8, spacing=(1, 1, 1))
    b[0:3, 0:5, 0:5] = True  # an outlier blob on the array's corner: edges count as surface
    hd95, assd = surface_metrics(a, b, spacing)
    exp_hd95, exp_assd = reference_distances(a, b, spacing)
    assert hd95 == pytest.approx(exp_hd95, rel=1e-9)
    assert assd == pytest.approx(exp_assd, rel=1e-9)


def test_dice_iou_volumes_per_label():
    rng = np.random.default_rng(0)
    mask = rng.integers(0, 3, size=(12, 20, 20)).astype(np.uint8)
    ref = rng.integers(0, 3, size=(12, 20, 20)).astype(np.uint8)
    spacing = (2.0, 0.5, 0.5)
    got = {m.label: m for m in compare(mask, ref, spacing)}
    assert sorted(got) == [1, 2]
    for label in (1, 2):
        a = set(map(tuple, np.argwhere(mask == label)))
        b = set(map(tuple, np.argwhere(ref == label)))
        assert got[label].dice == pytest.approx(2 * len(a & b) / (len(a) + len(b)))
        assert got[label].iou == pytest.approx(len(a & b) / len(a | b))
        assert got[label].volume_ml_mask == pytest.approx(len(a) * 0.5 / 1000)
        assert got[label].volume_ml_reference == pytest.approx(len(b) * 0.5 / 1000)
        exp_hd95, exp_assd = reference_distances(mask == label, ref == label, spacing)
        assert got[label].hd95_mm == pytest.approx(exp_hd95)
        assert got[label].assd_mm == pytest.approx(exp_assd)


def test_identical_masks_agree_perfectly():
    a = ball((20, 20, 20), (10, 10, 10), 5).astype(np.uint8)
    (m,) = compare(a, a, (1.0, 1.0, 1.0))
    assert (m.dice, m.iou, m.hd95_mm, m.assd_mm) == (1.0, 1.0, 0.0, 0.0)


def test_one_voxel_shift_is_one_spacing_away():
    a = np.zeros((10, 10, 10), np.uint8)
    a[3:7, 3:7, 3:7] = 1
    b = np.roll(a, 1, axis=0)
    (m,) = compare(a, b, (2.5, 1.0, 1.0))
    assert m.hd95_mm == pytest.approx(2.5)
    assert m.dice == pytest.approx(2 * 48 / 128)


def test_empty_edge_cases():
    empty = np.zeros((5, 6, 7), np.uint8)
    full = empty.copy()
    full[2, 3, 3] = 1
    (both,) = compare(empty, empty, (1, 1, 1), labels=[1])
    assert (both.dice, both.iou, both.hd95_mm, both.assd_mm) == (1.0, 1.0, 0.0, 0.0)
    for a, b in ((empty, full), (full, empty)):
        (one,) = compare(a, b, (1, 1, 1), labels=[1])
        assert (one.dice, one.iou) == (0.0, 0.0)
        assert math.isnan(one.hd95_mm) and math.isnan(one.assd_mm)


def test_2d_masks():
    a = np.zeros((30, 30), np.uint8)
    a[5:15, 5:15] = 1
    b = np.zeros_like(a)
    b[8:18, 5:15] = 1
    (m,) = compare(a, b, (0.5, 0.5))
    assert m.dice == pytest.approx(2 * 70 / 200)
    assert m.hd95_mm == pytest.approx(1.5)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="shape"):
        compare(np.zeros((3, 3, 3)), np.zeros((3, 3, 4)), (1, 1, 1))


def test_assd_is_the_pooled_mean_not_the_mean_of_directed_means():
    """A small ball off the centre of a big one: the two definitions differ; ours is Heimann's pooled one."""
    a = ball((30, 40, 40), (15, 20, 20), 12)
    b = ball((30, 40, 40), (15, 20, 28), 4)
    pa, pb = surface_points(a, (1, 1, 1)), surface_points(b, (1, 1, 1))
    d_ab, d_ba = cKDTree(pb).query(pa)[0], cKDTree(pa).query(pb)[0]
    pooled = (d_ab.sum() + d_ba.sum()) / (len(d_ab) + len(d_ba))
    mean_of_means = (d_ab.mean() + d_ba.mean()) / 2
    assert abs(pooled - mean_of_means) / pooled > 0.2  # the case distinguishes them
    assert surface_metrics(a, b, (1, 1, 1))[1] == pytest.approx(pooled, rel=1e-9)
