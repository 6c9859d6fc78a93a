"""Agreement between two label masks on the same grid: Dice, IoU, surface distances, volumes.

Distances are in millimetres (the grid's ``spacing``). Edge cases, by definition:

- both masks empty for a label: ``dice = iou = 1`` (they agree), distances ``0``;
- exactly one empty: ``dice = iou = 0``, distances ``NaN`` (there is no surface to measure to).

HD95 is the 95th percentile of the pooled distances from each surface to the other (MedPy's
``hd95``); ASSD is the pooled mean over both surfaces: the sum of the distances from each
surface to the other divided by the number of surface voxels of both (Heimann et al. 2009,
MedPy 0.5's ``assd``), so the larger surface weighs more than in a mean of the two directed
means. The surface
of a mask is its voxels with a face neighbour outside it (6-connectivity; outside the array
counts as outside).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class LabelMetrics:
    """Agreement of one label between a mask and a reference."""

    label: int
    dice: float
    iou: float
    hd95_mm: float
    assd_mm: float
    volume_ml_mask: float
    volume_ml_reference: float

    def as_dict(self) -> dict:
        return asdict(self)


def overlap_counts(
    mask: np.ndarray, reference: np.ndarray, labels
) -> dict[int, tuple[int, int, int]]:
    """``{label: (voxels in mask, voxels in reference, voxels in both)}`` in one pass."""
    labels = [int(v) for v in labels]
    hi = int(max(mask.max(initial=0), reference.max(initial=0), *labels)) + 1
    a = mask.reshape(-1).astype(np.int64, copy=False)
    joint = np.bincount(a * hi + reference.reshape(-1), minlength=hi * hi).reshape(hi, hi)
    return {v: (int(joint[v].sum()), int(joint[:, v].sum()), int(joint[v, v])) for v in labels}


def dice_iou(n_mask: int, n_ref: int, n_both: int) -> tuple[float, float]:
    if n_mask + n_ref == 0:
        return 1.0, 1.0
    union = n_mask + n_ref - n_both
    return 2.0 * n_both / (n_mask + n_ref), n_both / union


def surface(binary: np.ndarray) -> np.ndarray:
    """Voxels of ``binary`` with a face neighbour outside it."""
    from scipy import ndimage as ndi

    structure = ndi.generate_binary_structure(binary.ndim, 1)
    return binary & ~ndi.binary_erosion(binary, structure, border_value=0)


def bounding_box(binary: np.ndarray, pad: int = 1) -> tuple[slice, ...]:
    """Smallest box holding every foreground voxel, grown by ``pad`` (clipped to the array).

    An empty array gives an empty box.
    """
    box = []
    for axis in range(binary.ndim):
        other = tuple(i for i in range(binary.ndim) if i != axis)
        idx = np.flatnonzero(binary.any(axis=other))
        if idx.size == 0:
            return tuple(slice(0, 0) for _ in range(binary.ndim))
        box.append(slice(max(0, idx[0] - pad), min(binary.shape[axis], idx[-1] + pad + 1)))
    return tuple(box)


def directed_distances(a: np.ndarray, b: np.ndarray, spacing) -> tuple[np.ndarray, np.ndarray]:
    """Distances (mm) from each surface voxel of ``a`` to ``b``'s surface, and back.

    Both masks must be non-empty. Work happens in the bounding box of both masks: every
    surface voxel lies inside it, so the distances are exact, and a small organ in a large CT
    costs only its box. The box keeps a one-voxel margin where the array allows, so cropping
    never creates surface that the full array would not have.
    """
    from scipy import ndimage as ndi

    box = bounding_box(a | b)
    a, b = a[box], b[box]
    sa, sb = surface(a), surface(b)
    spacing = tuple(float(s) for s in spacing)
    to_b = ndi.distance_transform_edt(~sb, sampling=spacing)
    to_a = ndi.distance_transform_edt(~sa, sampling=spacing)
    return to_b[sa], to_a[sb]


def _empty_case(n_a: int, n_b: int) -> tuple[float, float] | None:
    """The distances when either mask is empty (see the module notes), else None."""
    if n_a == 0 and n_b == 0:
        return 0.0, 0.0
    if n_a == 0 or n_b == 0:
        return float("nan"), float("nan")
    return None


def surface_metrics(a: np.ndarray, b: np.ndarray, spacing) -> tuple[float, float]:
    """``(hd95_mm, assd_mm)`` between two boolean masks, with the edge cases of this module."""
    edge = _empty_case(int(a.any()), int(b.any()))
    if edge is not None:
        return edge
    d_ab, d_ba = directed_distances(a, b, spacing)
    hd95 = float(np.percentile(np.concatenate([d_ab, d_ba]), 95))
    return hd95, float((d_ab.sum() + d_ba.sum()) / (d_ab.size + d_ba.size))


def compare(mask: np.ndarray, reference: np.ndarray, spacing, labels=None) -> list[LabelMetrics]:
    """Per-label metrics between two masks on the same grid.

    Parameters
    ----------
    mask, reference
        Integer label arrays of the same shape (display order).
    spacing
        Voxel size in mm along each axis of the arrays.
    labels
        Label ids to compare; default: every non-zero id present in either mask.
    """
    mask, reference = np.asarray(mask), np.asarray(reference)
    if mask.shape != reference.shape:
        raise ValueError(f"shape {mask.shape} differs from reference shape {reference.shape}")
    # Everything outside the box of both foregrounds is background in both: skip it.
    box = bounding_box((mask != 0) | (reference != 0))
    mask, reference = mask[box], reference[box]
    if labels is None:
        labels = sorted((set(np.unique(mask).tolist()) | set(np.unique(reference).tolist())) - {0})
    voxel_ml = float(np.prod(spacing)) / 1000.0
    out = []
    for label, (n_mask, n_ref, n_both) in overlap_counts(mask, reference, labels).items():
        dice, iou = dice_iou(n_mask, n_ref, n_both)
        edge = _empty_case(n_mask, n_ref)
        hd95, assd = edge or surface_metrics(mask == label, reference == label, spacing)
        out.append(LabelMetrics(label, dice, iou, hd95, assd, n_mask * voxel_ml, n_ref * voxel_ml))
    return out
