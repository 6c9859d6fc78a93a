"""MedSAM checkpoints (``--variant medsam``): MedSAM's own inference steps give the same mask."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import transform

from napari_medseg.core.errors import MedsegError
from napari_medseg.engines.base import make_engine
from napari_medseg.engines.sam import SamSession
from napari_medseg.engines.sam_model import load_sam
from napari_medseg.engines.sam_prompts import Prompt


def medsam_reference(model, img_3c: np.ndarray, box_xyxy: np.ndarray) -> np.ndarray:
    """MedSAM's published inference (MedSAM_Inference.py), written out step by step."""
    size = model.image_encoder.img_size
    H, W, _ = img_3c.shape
    img = transform.resize(
        img_3c, (size, size), order=3, preserve_range=True, anti_aliasing=True
    ).astype(np.uint8)
    img = (img - img.min()) / np.clip(img.max() - img.min(), a_min=1e-8, a_max=None)
    tensor = torch.tensor(img).float().permute(2, 0, 1).unsqueeze(0)
    box = box_xyxy / np.array([W, H, W, H]) * size
    with torch.no_grad():
        emb = model.image_encoder(tensor)
        box_t = torch.as_tensor(box, dtype=torch.float)[None, None, :]
        sparse, dense = model.prompt_encoder(points=None, boxes=box_t, masks=None)
        logits, _ = model.mask_decoder(
            image_embeddings=emb,
            image_pe=model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=False,
        )
        pred = F.interpolate(torch.sigmoid(logits), (H, W), mode="bilinear", align_corners=False)
    return pred[0, 0].numpy() > 0.5


def test_medsam_box_prompt_matches_medsam_inference(tiny_sam_checkpoint):
    sam = load_sam(tiny_sam_checkpoint, "cpu", variant="medsam")
    rng = np.random.default_rng(0)
    stack = rng.integers(0, 255, (2, 50, 70, 3), dtype=np.uint8)
    session = SamSession(sam, stack)
    pred = session.predict(Prompt(slice=1, box=[10, 12, 40, 60]))  # y0, x0, y1, x1
    want = medsam_reference(sam.model, stack[1], np.array([12, 10, 60, 40], float))
    assert pred.mask.shape == (50, 70)
    assert (pred.mask == want).mean() >= 0.999
    # MedSAM embeddings are cached apart from plain SAM's for the same file.
    plain = load_sam(tiny_sam_checkpoint, "cpu")
    assert plain.model_id != sam.model_id and plain.variant == "sam"


def test_medsam_variant_through_the_engine_options(tiny_sam_checkpoint):
    engine = make_engine("sam", checkpoint=str(tiny_sam_checkpoint), variant="medsam")
    assert engine.sam.variant == "medsam"
    with pytest.raises(MedsegError, match="unknown SAM variant"):
        load_sam(tiny_sam_checkpoint, "cpu", variant="medsam2")
