"""Per-slice instance (object) ids for CVAT's SegmentationObject PNGs and COCO annotations.

CVAT stores at most 255 instances per image as 8-bit ids, and drops class pixels that no
instance covers (``cvat-mask-format.md`` §4). The ids come from the user's instance mask when
there is one, otherwise from connected components of each class.
"""

from __future__ import annotations

import numpy as np

from napari_medseg.core.errors import MedsegError

MAX_INSTANCES = 255


def _too_many(n: int, where: str) -> MedsegError:
    return MedsegError(
        f"{where} holds {n} instances; CVAT stores at most {MAX_INSTANCES} per image "
        "(it would silently merge the rest). Split the data or merge instances first."
    )


def components(classes: np.ndarray, start: int = 1) -> tuple[np.ndarray, int]:
    """Connected components of every class (face connectivity), numbered from ``start``.

    Works on 2D slices or whole 3D volumes; returns the id array and the next free id.
    Only the bounding box of the foreground is labelled (masks are mostly background).
    """
    from scipy import ndimage

    out = np.zeros(classes.shape, dtype=np.int32)
    nz = [
        np.flatnonzero(classes.any(axis=tuple(k for k in range(classes.ndim) if k != a)))
        for a in range(classes.ndim)
    ]
    if not nz[0].size:
        return out, start
    box = tuple(slice(int(i[0]), int(i[-1]) + 1) for i in nz)
    sub, sub_out = classes[box], out[box]
    nxt = start
    small = sub.dtype.itemsize <= 2 and np.issubdtype(sub.dtype, np.unsignedinteger)
    used = np.flatnonzero(np.bincount(sub.ravel())) if small else np.unique(sub)
    for cls in used[used > 0]:
        lab, n = ndimage.label(sub == cls)
        hit = lab > 0
        sub_out[hit] = lab[hit] + (nxt - 1)
        nxt += n
    return out, nxt


def volume_components(classes: np.ndarray) -> np.ndarray:
    """3D connected components: one id per object, the same on every slice it crosses."""
    ids, nxt = components(classes)
    if nxt - 1 > MAX_INSTANCES:
        raise _too_many(nxt - 1, "the volume (3D components)")
    return ids


def slice_objects(
    classes: np.ndarray, instances: np.ndarray | None, where: str
) -> tuple[np.ndarray, list[str]]:
    """8-bit object ids for one 2D slice and any warnings.

    User instance ids from 1 to 255 are kept (so they come back unchanged on import); larger
    ids take ids this slice does not use. Instance voxels on background are
    dropped, and class voxels no instance covers get connected-component ids, because CVAT
    would otherwise drop them. An instance spanning two classes is refused (CVAT would give it
    one of them).
    """
    warnings = []
    if instances is None:
        ids, nxt = components(classes)
        if nxt - 1 > MAX_INSTANCES:
            raise _too_many(nxt - 1, where)
        return ids.astype(np.uint8), warnings
    inst = np.asarray(instances).astype(np.int64, copy=True)
    on_bg = (inst > 0) & (classes == 0)
    if on_bg.any():
        warnings.append(f"{where}: {int(on_bg.sum())} instance voxels on background were left out")
        inst[on_bg] = 0
    fg = inst > 0
    if fg.any():
        pairs = np.unique(np.stack([inst[fg], classes[fg].astype(np.int64)]), axis=1)
        dup = np.unique(pairs[0][np.r_[False, pairs[0][1:] == pairs[0][:-1]]])
        if dup.size:
            raise MedsegError(
                f"{where}: instance {int(dup[0])} covers more than one class; "
                "CVAT keeps one class per instance"
            )
    uncovered = (classes > 0) & ~fg
    if uncovered.any():
        extra, _ = components(np.where(uncovered, classes, 0), start=int(inst.max()) + 1)
        inst = np.where(uncovered, extra, inst)
        warnings.append(f"{where}: class voxels without an instance got new instance ids")
    present = np.unique(inst[inst > 0])
    if present.size > MAX_INSTANCES:
        raise _too_many(int(present.size), where)
    big = present[present > MAX_INSTANCES]
    if big.size:  # ids that do not fit 8 bits take the slice's free ids; the others are kept
        free = np.setdiff1d(np.arange(1, MAX_INSTANCES + 1), present)[: big.size]
        pos = np.searchsorted(big, inst)
        hit = (inst > MAX_INSTANCES) & (pos < big.size)
        inst[hit] = free[pos[hit]]
    return inst.astype(np.uint8), warnings
