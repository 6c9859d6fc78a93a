"""Orientation handling between source arrays and the viewer's (z, y, x) display order.

Display convention (radiological axial view in napari): axis 0 (z) runs toward the patient's
Superior, axis 1 (y, drawn downward) toward Posterior, axis 2 (x, drawn rightward) toward the
patient's Left. So anterior is at the top and the patient's left is on screen right. World
coordinates for napari are LPS millimetres listed in the same (S, P, L) order as the axes.

A :class:`DisplayTransform` is a transpose plus flips; it is exact and invertible, so a mask
drawn in display order goes back onto the source array layout voxel for voxel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class DisplayTransform:
    """``display = flip(transpose(source, perm), flips)``, spatial axes only (channels trail)."""

    perm: tuple[int, ...]
    flips: tuple[bool, ...]

    @classmethod
    def identity(cls, ndim: int) -> DisplayTransform:
        return cls(tuple(range(ndim)), (False,) * ndim)

    def to_display(self, source: np.ndarray) -> np.ndarray:
        nsp = len(self.perm)
        arr = source.transpose(*self.perm, *range(nsp, source.ndim))
        for axis, flip in enumerate(self.flips):
            if flip:
                arr = np.flip(arr, axis)
        return arr

    def to_source(self, display: np.ndarray) -> np.ndarray:
        nsp = len(self.perm)
        arr = display
        for axis, flip in enumerate(self.flips):
            if flip:
                arr = np.flip(arr, axis)
        inverse = tuple(int(i) for i in np.argsort(self.perm))
        return arr.transpose(*inverse, *range(nsp, display.ndim))

    def display_shape(self, source_shape: tuple[int, ...]) -> tuple[int, ...]:
        nsp = len(self.perm)
        return tuple(source_shape[p] for p in self.perm) + tuple(source_shape[nsp:])


@dataclass(frozen=True)
class Geometry:
    """Spacing, origin and direction of the display axes, in napari world order (S, P, L)."""

    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: np.ndarray

    @classmethod
    def pixels(cls, ndim: int) -> Geometry:
        return cls((1.0,) * ndim, (0.0,) * ndim, np.eye(ndim))

    @property
    def is_axis_aligned(self) -> bool:
        return bool(np.allclose(self.direction, np.eye(len(self.spacing)), atol=1e-4))

    def affine(self) -> np.ndarray:
        """Homogeneous matrix from display index to napari world coordinates (mm)."""
        n = len(self.spacing)
        out = np.eye(n + 1)
        out[:n, :n] = self.direction * np.asarray(self.spacing)[None, :]
        out[:n, n] = self.origin
        return out

    def lps_affine(self) -> np.ndarray:
        """Display index (z, y, x) to LPS (x, y, z) millimetres, 3D only."""
        a = self.affine()
        out = a.copy()
        out[:3, :] = a[[2, 1, 0], :]
        return out


def orient_for_display(index_to_lps: np.ndarray, source_shape: tuple[int, ...]):
    """Find the transform that puts a 3D source array in display order.

    Parameters
    ----------
    index_to_lps
        4x4 matrix from source array index to LPS millimetres.
    source_shape
        Shape of the source array (spatial axes first).

    Returns
    -------
    (DisplayTransform, Geometry)
    """
    from nibabel.orientations import io_orientation

    ornt = io_orientation(index_to_lps)  # per source axis: (world axis, +1/-1)
    perm = [0, 0, 0]
    flips = [False, False, False]
    for src_axis, (world_axis, sign) in enumerate(ornt):
        display_axis = 2 - int(world_axis)  # L->x(2), P->y(1), S->z(0)
        perm[display_axis] = src_axis
        flips[display_axis] = sign < 0
    transform = DisplayTransform(tuple(perm), tuple(flips))
    # Columns of the display-index affine, and the world position of display voxel 0.
    start = np.zeros(4)
    start[3] = 1.0
    cols = np.zeros((3, 3))
    for d in range(3):
        src_axis = perm[d]
        col = index_to_lps[:3, src_axis].copy()
        if flips[d]:
            start[src_axis] = source_shape[src_axis] - 1
            col = -col
        cols[:, d] = col
    origin_lps = (index_to_lps @ start)[:3]
    to_spl = [2, 1, 0]
    cols_spl = cols[to_spl, :]
    spacing = np.linalg.norm(cols_spl, axis=0)
    direction = cols_spl / spacing[None, :]
    geometry = Geometry(
        tuple(float(s) for s in spacing), tuple(float(o) for o in origin_lps[to_spl]), direction
    )
    return transform, geometry


def sitk_index_to_lps(spacing, origin, direction) -> np.ndarray:
    """Index (i, j, k) to LPS matrix from SimpleITK's spacing, origin and row-major direction."""
    d = np.asarray(direction, dtype=float).reshape(3, 3)
    out = np.eye(4)
    out[:3, :3] = d * np.asarray(spacing, dtype=float)[None, :]
    out[:3, 3] = origin
    return out


def reverse_axes(index_to_world: np.ndarray) -> np.ndarray:
    """Matrix for the same grid indexed in reversed axis order, e.g. (k, j, i) for a ZYX array."""
    out = index_to_world.copy()
    out[:, :3] = index_to_world[:, [2, 1, 0]]
    return out
