"""Time the QA metrics on a 512x512x300 CT-sized pair against a plain scipy computation.

Both paths compute Dice, IoU, HD95 and ASSD (mm) of one organ-sized label; the baseline works
on the full volume (erosion and distance transforms over all 78 M voxels), ours restricts
itself to the bounding box of both masks. A second baseline runs the same scipy code on that
crop (A-B-B-A against ours, medians, per-pair ratios): the gain over the full volume is the
crop. The results of all three must agree.

    python benchmarks/bench_qa.py [--shape 300 512 512]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from scipy import ndimage as ndi

from napari_medseg.core.labelmap import LabelMap
from napari_medseg.review.metrics import compare
from napari_medseg.review.qa import QAOptions, check_mask

SPACING = (2.5, 0.8, 0.8)
VOXEL_ML = float(np.prod(SPACING)) / 1000.0


def ellipsoid(shape, center, radii_mm, spacing):
    """A boolean ellipsoid, computed in its own box (the full grid never becomes floats)."""
    out = np.zeros(shape, bool)
    lo = [max(0, int(c - r / s) - 1) for c, r, s in zip(center, radii_mm, spacing, strict=True)]
    hi = [
        min(n, int(c + r / s) + 2)
        for n, c, r, s in zip(shape, center, radii_mm, spacing, strict=True)
    ]
    axes = [
        ((np.arange(a, b) - c) * s / r) ** 2
        for a, b, c, r, s in zip(lo, hi, center, radii_mm, spacing, strict=True)
    ]
    out[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = (
        axes[0][:, None, None] + axes[1][None, :, None] + axes[2][None, None, :]
    ) <= 1
    return out


def make_pair(shape):
    """A liver-sized reference and a 'correction' that is shifted, larger and has a stray blob."""
    z, y, x = (n // 2 for n in shape)
    ext = [n * s for n, s in zip(shape, SPACING, strict=True)]  # field of view in mm
    radii = (0.12 * ext[0], 0.2 * ext[1], 0.24 * ext[2])
    ref = ellipsoid(shape, (z, y, x), radii, SPACING)
    mask = ellipsoid(
        shape, (z + 2, y + 5, x - 4), (radii[0] * 1.03, radii[1] * 0.97, radii[2] * 1.04), SPACING
    )
    blob = (z + shape[0] // 10, y - shape[1] // 4, x + shape[2] // 4)
    mask |= ellipsoid(shape, blob, (0.025 * ext[1],) * 3, SPACING)
    return mask.astype(np.uint8), ref.astype(np.uint8)


def baseline(mask, ref, spacing):
    """Plain scipy on the full volume: what one writes without thinking about the box."""
    a, b = mask == 1, ref == 1
    inter = np.logical_and(a, b).sum()
    dice = 2 * inter / (a.sum() + b.sum())
    iou = inter / np.logical_or(a, b).sum()
    st = ndi.generate_binary_structure(3, 1)
    sa = a & ~ndi.binary_erosion(a, st, border_value=0)
    sb = b & ~ndi.binary_erosion(b, st, border_value=0)
    d_ab = ndi.distance_transform_edt(~sb, sampling=spacing)[sa]
    d_ba = ndi.distance_transform_edt(~sa, sampling=spacing)[sb]
    hd95 = np.percentile(np.concatenate([d_ab, d_ba]), 95)
    return dice, iou, hd95, (d_ab.sum() + d_ba.sum()) / (d_ab.size + d_ba.size)


def crop_baseline(mask, ref, spacing):
    """The same scipy code on the bounding box of both masks, one voxel of margin (all the
    surface voxels lie inside it, so every value is unchanged)."""
    nz = np.nonzero((mask == 1) | (ref == 1))
    box = tuple(slice(max(0, i.min() - 1), i.max() + 2) for i in nz)
    return baseline(mask[box], ref[box], spacing)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--shape", type=int, nargs=3, default=(300, 512, 512), metavar=("Z", "Y", "X")
    )
    shape = tuple(parser.parse_args().shape)
    mask, ref = make_pair(shape)
    print(
        f"pair {shape} ({mask.size / 1e6:.1f} M voxels), spacing {SPACING} mm, "
        f"label volumes {mask.sum() * VOXEL_ML:.0f} / {ref.sum() * VOXEL_ML:.0f} ml"
    )

    parser_rounds = 2  # A-B-B-A rounds
    times = {"ours": [], "scipy on the crop": []}
    for _ in range(parser_rounds):  # A-B-B-A
        for key in ("ours", "scipy on the crop", "scipy on the crop", "ours"):
            t0 = time.perf_counter()
            if key == "ours":
                (ours,) = compare(mask, ref, SPACING)
            else:
                cropped = crop_baseline(mask, ref, SPACING)
            times[key].append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    dice, iou, hd95, assd = baseline(mask, ref, SPACING)
    t_full = time.perf_counter() - t0
    got = np.array([ours.dice, ours.iou, ours.hd95_mm, ours.assd_mm])
    for expected in (np.array([dice, iou, hd95, assd]), np.array(cropped)):
        assert np.allclose(got, expected, rtol=1e-9), (got, expected)
    print(
        f"dice {ours.dice:.4f}  iou {ours.iou:.4f}  hd95 {ours.hd95_mm:.2f} mm  "
        f"assd {ours.assd_mm:.2f} mm (all three paths agree); load {os.getloadavg()[0]:.1f}"
    )
    t_ours, t_crop = (statistics.median(times[k]) for k in ("ours", "scipy on the crop"))
    pairs = [c / o for c, o in zip(times["scipy on the crop"], times["ours"], strict=True)]
    print(f"napari_medseg.review.metrics.compare: {t_ours:7.2f} s (median)")
    print(
        f"plain scipy on the same crop:         {t_crop:7.2f} s (median), "
        f"crop time / our time x{t_crop / t_ours:.2f} (pairs {min(pairs):.2f}-{max(pairs):.2f})"
    )
    print(
        f"plain scipy, full volume (once):      {t_full:7.2f} s -> x{t_full / t_ours:.1f} "
        "(the gain is the crop)"
    )
    t0 = time.perf_counter()
    flags = check_mask(mask, LabelMap.from_names({1: "liver"}), SPACING, QAOptions())
    print(
        f"QA checks on the mask (no baseline): {time.perf_counter() - t0:.2f} s, "
        f"flags {[f.name for f in flags]}"
    )


if __name__ == "__main__":
    main()
