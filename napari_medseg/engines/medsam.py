"""MedSAM (a SAM ViT-B fine-tune for medical images): its preprocessing and mask output.

As MedSAM's inference code does it: the 8-bit, three-channel slice is resized to the square
encoder input (bicubic, anti-aliased, ``skimage.transform.resize``, back to uint8) and scaled
to 0..1 by its own minimum and maximum, with no mean/std normalisation; prompts are scaled by
the encoder size over the slice's width and height; the single mask's logits go through a
sigmoid, are resized to the slice and thresholded at 0.5. Prompts are boxes (points work too).
"""

from __future__ import annotations

import numpy as np


def preprocess(images_u8: np.ndarray, size: int) -> np.ndarray:
    """(n, y, x, 3) uint8 slices -> the (n, 3, size, size) float32 encoder input."""
    from skimage.transform import resize

    out = []
    for im in images_u8:
        im = resize(im, (size, size), order=3, preserve_range=True, anti_aliasing=True)
        im = im.astype(np.uint8).astype(np.float32)
        out.append(((im - im.min()) / max(float(im.max() - im.min()), 1e-8)).transpose(2, 0, 1))
    return np.stack(out)


def scale_xy(xy: np.ndarray, shape: tuple[int, int], size: int) -> np.ndarray:
    """(..., 2) x, y pixel coordinates of a ``shape`` slice -> encoder-input coordinates."""
    h, w = shape
    return np.asarray(xy, float) * np.array([size / w, size / h])


def mask_from_logits(low, shape: tuple[int, int]) -> np.ndarray:
    """(1, 1, h, w) low-resolution logits -> the (y, x) bool mask on the slice."""
    import torch
    import torch.nn.functional as F

    prob = F.interpolate(torch.sigmoid(low), shape, mode="bilinear", align_corners=False)
    return (prob[0, 0] > 0.5).cpu().numpy()
