"""The SAM or SAM 2.1 session for a checkpoint file: the file's state dict says which.

``variant`` picks a fine-tune whose weights look like their base model's: ``medsam`` (SAM
ViT-B, MedSAM's preprocessing) or ``medsam2`` (SAM 2.1 Hiera-T at 512 px); empty or None
means the plain model. Both sessions offer the same calls (embed, predict, propagate).
"""

from __future__ import annotations

import numpy as np

# Shown in the SAM panel: (label, variant)
MODEL_CHOICES = (
    ("SAM / SAM 2.1 (from the file)", ""),
    ("MedSAM (SAM ViT-B fine-tune)", "medsam"),
    ("MedSAM2 (SAM 2.1, 512 px)", "medsam2"),
)


def open_session(checkpoint, device, variant: str | None, stack: np.ndarray, cache, meta: dict):
    """A :class:`SamSession` or :class:`Sam2Session` on ``stack`` for ``checkpoint``."""
    from napari_medseg.engines.sam2_model import is_sam2_checkpoint

    if is_sam2_checkpoint(checkpoint):
        from napari_medseg.engines.sam2 import Sam2Session
        from napari_medseg.engines.sam2_model import load_sam2

        return Sam2Session(load_sam2(checkpoint, device, variant or None), stack, cache, meta)
    from napari_medseg.engines.sam import SamSession
    from napari_medseg.engines.sam_model import load_sam

    return SamSession(load_sam(checkpoint, device, variant or None), stack, cache, meta)
