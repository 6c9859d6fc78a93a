"""Batched SAM image encoding, with exactly ``SamPredictor.set_image``'s preprocessing
(or MedSAM's, see :mod:`napari_medseg.engines.medsam`).

Each slice is resized with ``ResizeLongestSide.apply_image`` and normalised and padded with
``Sam.preprocess``, as the stock predictor does, but slices go through the image encoder in
batches under ``torch.inference_mode`` and, on a GPU, bf16 (or fp16) autocast.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np

from napari_medseg.core.errors import MedsegError
from napari_medseg.engines.medsam import preprocess as medsam_input
from napari_medseg.engines.sam_model import LoadedSam

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def preprocess(sam: LoadedSam, images_u8: np.ndarray):
    """(n, y, x, 3) uint8 slices -> the (n, 3, S, S) normalised, padded encoder input
    (MedSAM's own preprocessing for a ``medsam`` checkpoint)."""
    import torch
    from segment_anything.utils.transforms import ResizeLongestSide

    if sam.variant == "medsam":
        return torch.as_tensor(medsam_input(images_u8, sam.config.img_size), device=sam.device)

    resize = ResizeLongestSide(sam.config.img_size)
    resized = np.stack([resize.apply_image(np.ascontiguousarray(im)) for im in images_u8])
    batch = torch.as_tensor(resized, device=sam.device).permute(0, 3, 1, 2).contiguous()
    return sam.model.preprocess(batch)


def autocast_dtype(device: str, precision: str = "auto"):
    """The autocast dtype for ``precision`` on ``device`` (None = plain fp32).

    ``auto`` uses bf16 (fp16 where bf16 is unsupported) on CUDA only: on CPU autocast is
    many times slower than fp32.
    """
    import torch

    if precision not in PRECISIONS:
        raise MedsegError(f"unknown precision {precision!r}; use {', '.join(PRECISIONS)}")
    if precision == "fp32" or (precision == "auto" and not device.startswith("cuda")):
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if precision == "bf16" else torch.float16


def encode(sam: LoadedSam, images_u8: np.ndarray, precision: str = "auto") -> np.ndarray:
    """Image embeddings (n, C, h, w) float32 of (n, y, x, 3) uint8 slices, in one batch."""
    import torch

    device = str(sam.device)
    dtype = autocast_dtype(device, precision)
    amp = torch.autocast(device.split(":")[0], dtype=dtype) if dtype else contextlib.nullcontext()
    with torch.inference_mode(), amp:
        feats = sam.model.image_encoder(preprocess(sam, images_u8))
    return feats.float().cpu().numpy()


def default_batch_size(sam: LoadedSam) -> int:
    """Large enough to keep a GPU busy; 1 on CPU, where batching is no faster (measured)."""
    if not str(sam.device).startswith("cuda"):
        return 1
    return {"vit_b": 16, "vit_l": 8, "vit_h": 4}.get(sam.model_type, 8)


def encode_batches(
    sam: LoadedSam,
    images_u8: np.ndarray,
    batch_size: int | None = None,
    precision: str = "auto",
    on_batch: Callable[[int, np.ndarray], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> int:
    """Encode ``images_u8`` batch by batch, calling ``on_batch(start, embeddings)``.

    Returns the number of slices encoded (fewer than asked when ``cancelled()`` turned true).
    """
    bs = batch_size or default_batch_size(sam)
    done = 0
    for start in range(0, len(images_u8), bs):
        if cancelled and cancelled():
            break
        emb = encode(sam, images_u8[start : start + bs], precision)
        if on_batch:
            on_batch(start, emb)
        done += len(emb)
    return done
