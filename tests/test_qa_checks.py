"""Each QA check on crafted masks: it fires on the defect, at the right slice, not on clean ones."""

from __future__ import annotations

import numpy as np
import pytest

from napari_medseg._sample_data import sample_path
from napari_medseg.core.geometry import Geometry
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.model import Volume
from napari_medseg.io.detect import open_dataset
from napari_medseg.review.metrics import compare
from napari_medseg.review.qa import (
    QAOptions,
    check_agreement,
    check_components,
    check_empty,
    check_grid,
    check_holes,
    check_labels,
    check_mask,
    check_slice_jump,
)

LM = LabelMap.from_names({1: "liver", 2: "tumour"})
SPACING = (2.0, 1.0, 1.0)


def cylinder(shape=(20, 40, 40), z=(4, 16), radius=10):
    zz, yy, xx = np.indices(shape)
    m = ((yy - 20) ** 2 + (xx - 20) ** 2 <= radius**2) & (zz >= z[0]) & (zz < z[1])
    return m.astype(np.uint8)


def names(flags):
    return [f.name for f in flags]


def test_clean_mask_has_no_flags():
    assert check_mask(cylinder(), LM, SPACING, QAOptions(single=None)) == []


def test_empty():
    assert names(check_empty(np.zeros((3, 4, 4), np.uint8))) == ["empty"]
    assert check_empty(cylinder()) == []


def test_undeclared_label_at_its_first_slice():
    m = cylinder()
    m[9, 20, 20] = 7
    (flag,) = check_labels(m, LM)
    assert (flag.name, flag.label, flag.slice_index) == ("undeclared_label", 7, 9)


def test_grid_mismatch_shape_and_affine():
    image = Volume.from_array(
        "ct", np.zeros((20, 40, 40), np.int16), Geometry((2.0, 1.0, 1.0), (0, 0, 0), np.eye(3))
    )
    same = Volume.from_array(
        "m", np.zeros((20, 40, 40), np.uint8), Geometry((2.0, 1.0, 1.0), (0, 0, 0), np.eye(3))
    )
    other_shape = Volume.from_array(
        "m", np.zeros((20, 40, 41), np.uint8), Geometry((2.0, 1.0, 1.0), (0, 0, 0), np.eye(3))
    )
    shifted = Volume.from_array(
        "m", np.zeros((20, 40, 40), np.uint8), Geometry((2.0, 1.0, 1.0), (0, 5, 0), np.eye(3))
    )
    assert check_grid(same, image) == []
    assert names(check_grid(other_shape, image)) == ["grid_mismatch"]
    assert "affine" in check_grid(shifted, image)[0].detail


def test_tiny_components_and_multiple_components():
    m = cylinder().astype(bool)
    m[18, 2, 2] = True  # a one-voxel speck, far from the organ, at slice 18
    flags = check_components(m, 1, SPACING, QAOptions(min_component_ml=0.01, single=frozenset({1})))
    assert names(flags) == ["tiny_components", "multiple_components"]
    assert flags[0].slice_index == 18 and flags[1].slice_index == 18
    # Not expected single, no tiny: two big parts pass.
    two = cylinder().astype(bool)
    two[10] = False
    assert (
        check_components(two, 1, SPACING, QAOptions(min_component_ml=0.01, single=frozenset()))
        == []
    )
    assert names(check_components(two, 1, SPACING, QAOptions(single=None))) == [
        "multiple_components"
    ]


def test_holes_in_a_slice_and_in_3d():
    m = cylinder().astype(bool)
    m[11, 19:22, 19:22] = False  # a hole inside slice 11
    (flag,) = check_holes(m, 1)
    assert (flag.name, flag.slice_index) == ("holes", 11)
    assert check_holes(cylinder().astype(bool), 1) == []
    shell = cylinder().astype(bool)
    shell[6:14, 15:26, 15:26] = False  # a closed cavity: every axial slice of it is a ring too
    assert names(check_holes(shell, 1)) == ["holes"]


def test_slice_jump_gap_and_dip():
    m = cylinder().astype(bool)
    assert check_slice_jump(m, 1, QAOptions()) == []
    big_change = m.copy()
    big_change[10:] &= cylinder(radius=4)[10:].astype(bool)  # area ~317 -> ~49 between 9 and 10
    (flag,) = check_slice_jump(big_change, 1, QAOptions())
    assert flag.slice_index == 10
    gap = m.copy()
    gap[8] = False
    assert check_slice_jump(gap, 1, QAOptions())[0].slice_index == 8
    assert "empty slice" in check_slice_jump(gap, 1, QAOptions())[0].detail
    dip = m.copy()
    dip[12] &= cylinder(radius=2)[12].astype(bool)  # 13 voxels between two ~317
    assert check_slice_jump(dip, 1, QAOptions())[0].slice_index == 12


@pytest.mark.parametrize(
    "areas",
    [
        [3, 15, 60, 120, 150, 120, 60, 15, 3],
        [277, 861, 1359, 1757, 2083, 1757, 1359, 861, 277],  # a ball cut by thick slices
    ],
)
def test_tapering_tips_are_not_jumps(areas):
    m = np.zeros((len(areas), 50, 50), bool)
    for z, a in enumerate(areas):
        m[z].flat[:a] = True
    assert check_slice_jump(m, 1, QAOptions()) == []


@pytest.mark.parametrize("defect", ["speck", "hole", "jump"])
def test_check_mask_reports_each_defect_with_label(defect):
    m = cylinder()
    m[m > 0] = 2
    if defect == "speck":
        m[18, 2, 2] = 2
    elif defect == "hole":
        m[11, 20, 20] = 0
    else:
        m[10] = 0
    flags = check_mask(m, LM, SPACING, QAOptions(min_component_ml=0.01))
    expected = {"speck": "tiny_components", "hole": "holes", "jump": "slice_jump"}[defect]
    assert expected in names(flags)
    assert all(f.label == 2 for f in flags)


def test_a_label_nested_in_another_is_not_a_hole():
    """A necrotic core (1) inside an enhancing rim (3) inside oedema (2), as in BraTS."""
    m = cylinder(radius=12) * 2
    m[cylinder(radius=7) > 0] = 3
    m[cylinder(radius=3) > 0] = 1
    assert "holes" not in names(check_mask(m, LM, SPACING, QAOptions()))
    m[10, 20, 20] = 0  # a real hole inside the core
    holes = [f for f in check_mask(m, LM, SPACING, QAOptions()) if f.name == "holes"]
    assert 1 in [f.label for f in holes] and {f.slice_index for f in holes} == {10}


def test_the_bundled_brats_sample_reference_is_not_flagged():
    ds = open_dataset(sample_path("brats2023"))
    case = ds.load_case(ds.case_ids()[0])
    mask = np.asarray(case.masks[0].array)
    assert set(np.unique(mask)) == {0, 1, 2, 3}
    spacing = case.reference_image().spacing
    assert check_mask(mask, case.labelmap, spacing, QAOptions()) == []


def test_agreement_flags_low_dice_volume_diff_and_missing_at_their_slices():
    ref = cylinder()  # label 1 on slices 4..15
    ref[ref > 0] = 1
    ref[6:9, 2:6, 2:6] = 2  # a small label 2 on slices 6..8
    mask = np.zeros_like(ref)
    mask[4:16] = (cylinder(radius=5)[4:16] > 0).astype(np.uint8)  # far too small

    metrics = compare(mask, ref, SPACING, [1, 2])
    flags = {(f.name, f.label): f for f in check_agreement(mask, ref, metrics, QAOptions())}
    assert set(flags) == {("low_dice", 1), ("volume_diff", 1), ("missing", 2)}
    assert 4 <= flags[("low_dice", 1)].slice_index <= 15
    assert flags[("missing", 2)].slice_index in (6, 7, 8)
    assert "ml" in flags[("volume_diff", 1)].detail
    lenient = QAOptions(min_dice=0.0, max_volume_diff=10.0)
    assert names(check_agreement(mask, ref, metrics, lenient)) == ["missing"]
    assert check_agreement(ref, ref, compare(ref, ref, SPACING), QAOptions()) == []
