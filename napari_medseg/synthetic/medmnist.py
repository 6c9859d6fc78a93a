"""MedMNIST- and MedSegBench-style ``.npz`` files with the real key names, shapes and dtypes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

RGB_FLAGS = {"pathmnist", "dermamnist", "retinamnist", "bloodmnist"}
N_CLASSES = {
    "pathmnist": 9,
    "chestmnist": 14,
    "dermamnist": 7,
    "octmnist": 4,
    "pneumoniamnist": 2,
    "retinamnist": 5,
    "breastmnist": 2,
    "bloodmnist": 8,
    "tissuemnist": 8,
    "organamnist": 11,
    "organmnist3d": 11,
    "nodulemnist3d": 2,
    "adrenalmnist3d": 2,
    "fracturemnist3d": 3,
    "vesselmnist3d": 2,
    "synapsemnist3d": 2,
}


def _blobs(rng, n: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images with one bright ellipse each, and the ellipse as a 0/1 mask."""
    grids = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    images, masks = [], []
    for _ in range(n):
        c = rng.uniform(-0.4, 0.4, len(shape))
        r = rng.uniform(0.2, 0.5, len(shape))
        inside = sum(((g - ci) / ri) ** 2 for g, ci, ri in zip(grids, c, r, strict=True)) <= 1
        img = rng.normal(60, 15, shape) + 120 * inside
        images.append(np.clip(img, 0, 255).astype(np.uint8))
        masks.append(inside.astype(np.uint8))
    return np.stack(images), np.stack(masks)


def make_medmnist(
    root: str | Path, flag: str = "pathmnist", size: int = 28, counts=(6, 2, 3), seed: int = 0
) -> Path:
    """Write ``<root>/<flag>.npz`` (size 28) or ``<flag>_<size>.npz`` with the six split arrays."""
    rng = np.random.default_rng(seed)
    three_d = flag.endswith("3d")
    n_classes = N_CLASSES.get(flag, 2)
    arrays = {}
    for split, n in zip(("train", "val", "test"), counts, strict=True):
        images, _ = _blobs(rng, n, (size,) * (3 if three_d else 2))
        if flag in RGB_FLAGS:
            images = np.stack([images, images // 2, 255 - images], axis=-1)
        if flag == "chestmnist":  # multi-label: 14 binary findings per image
            labels = (rng.random((n, n_classes)) < 0.2).astype(np.uint8)
        else:
            labels = rng.integers(0, n_classes, (n, 1)).astype(np.uint8)
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
    path = Path(root) / (f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


def make_medsegbench(
    root: str | Path, name: str = "busimsbench", size: int = 32, counts=(4, 2, 2), seed: int = 0
) -> Path:
    """Write ``<root>/<name>_<size>.npz`` with ``{split}_images`` and ``{split}_label`` masks."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in zip(("train", "val", "test"), counts, strict=True):
        images, masks = _blobs(rng, n, (size, size))
        arrays[f"{split}_images"], arrays[f"{split}_label"] = images, masks
    path = Path(root) / f"{name}_{size}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path
