"""Compute device choice shared by the SAM and U-Net engines."""

from __future__ import annotations

import re

from napari_medseg.core.errors import MedsegError


def pick_device(preference: str | None = None) -> str:
    """``preference`` if given (and usable), else CUDA, else Apple MPS, else CPU."""
    import torch

    if preference and preference != "auto":
        if preference.startswith("cuda") and not torch.cuda.is_available():
            raise MedsegError(f"device {preference!r} requested but CUDA is not available")
        if preference == "mps" and not torch.backends.mps.is_available():
            raise MedsegError("device 'mps' requested but Apple MPS is not available")
        if not re.fullmatch(r"cpu|mps|cuda(:\d+)?", preference):
            raise MedsegError(f"unknown device {preference!r}; use auto, cpu, cuda or mps")
        return preference
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"
