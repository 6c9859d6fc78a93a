"""Anatomical phantoms: a torso CT with organs and lesions, matching PET SUV, a brain MRI with a tumour.

Arrays are (z, y, x) with y toward posterior and x toward patient left, so that they show
the right way round in the viewer; writers convert them to each format's own convention.
"""

from __future__ import annotations

import numpy as np


def _grid(shape):
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, n, dtype=np.float32) for n in shape], indexing="ij")
    return z, y, x


def ellipsoid(shape, center, radii) -> np.ndarray:
    z, y, x = _grid(shape)
    cz, cy, cx = center
    rz, ry, rx = radii
    return ((z - cz) / rz) ** 2 + ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0


def torso(shape=(32, 64, 64), seed=0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CT in HU (int16), PET in SUV (float32) and a lesion/organ label map (uint8).

    Labels: 1 liver (patient's right, i.e. screen left), 2 spleen (patient's left), 3 lesion.
    """
    rng = np.random.default_rng(seed)
    body = ellipsoid(shape, (0, 0, 0), (1.2, 0.75, 0.9))
    ct = np.full(shape, -1000, np.float32)
    ct[body] = 40
    liver = ellipsoid(shape, (0.1, -0.1, -0.45), (0.6, 0.35, 0.3)) & body
    spleen = ellipsoid(shape, (0.1, 0.15, 0.55), (0.4, 0.2, 0.15)) & body
    lesion = ellipsoid(shape, (0.15, -0.1, -0.4), (0.25, 0.12, 0.12)) & liver
    spine = ellipsoid(shape, (0, 0.55, 0), (1.2, 0.12, 0.12))
    ct[liver] = 60
    ct[spleen] = 50
    ct[lesion] = 20
    ct[spine] = 700
    ct += rng.normal(0, 8, shape).astype(np.float32)
    pet = np.where(body, 0.8, 0.0).astype(np.float32)
    pet[liver] = 1.8
    pet[spleen] = 1.5
    pet[lesion] = 8.0
    pet += np.abs(rng.normal(0, 0.05, shape)).astype(np.float32)
    labels = np.zeros(shape, np.uint8)
    labels[liver] = 1
    labels[spleen] = 2
    labels[lesion] = 3
    return ct.astype(np.int16), pet, labels


def brain(shape=(24, 48, 48), seed=0, channels=4) -> tuple[np.ndarray, np.ndarray]:
    """Multi-contrast brain MRI (float32, (C, z, y, x)) and tumour labels 1 core, 2 edema, 3 enhancing."""
    rng = np.random.default_rng(seed)
    head = ellipsoid(shape, (0, 0, 0), (0.9, 0.85, 0.7))
    edema = ellipsoid(shape, (0.1, -0.2, 0.3), (0.35, 0.3, 0.25)) & head
    enhancing = ellipsoid(shape, (0.1, -0.2, 0.3), (0.22, 0.18, 0.15)) & head
    core = ellipsoid(shape, (0.1, -0.2, 0.3), (0.12, 0.1, 0.08)) & head
    labels = np.zeros(shape, np.uint8)
    labels[edema] = 2
    labels[enhancing] = 3
    labels[core] = 1
    images = []
    for c in range(channels):
        img = np.where(head, 400.0 + 50 * c, 0.0).astype(np.float32)
        img[edema] += 300 - 60 * c
        img[enhancing] += 150 + 100 * (c == 2)
        img[core] -= 100
        img += rng.normal(0, 15, shape).astype(np.float32) * head
        images.append(np.clip(img, 0, None))
    return np.stack(images), labels


def display_to_nifti(arr: np.ndarray) -> np.ndarray:
    """(z, y, x) display array to the (i, j, k) = RAS-canonical layout nibabel writers expect.

    Display y runs posterior and x runs to the patient's left, so both flip for RAS.
    """
    return np.ascontiguousarray(arr[:, ::-1, ::-1].transpose(2, 1, 0))


def nifti_affine(spacing_zyx, origin=(0.0, 0.0, 0.0)) -> np.ndarray:
    """RAS affine for :func:`display_to_nifti` arrays with the given (z, y, x) spacing."""
    sz, sy, sx = spacing_zyx
    aff = np.diag([sx, sy, sz, 1.0])
    aff[:3, 3] = origin
    return aff
