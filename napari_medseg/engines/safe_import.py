"""Make heavy ML imports (torch, segment-anything, sam2) safe inside the napari process.

``segment_anything`` and ``sam2`` import torchvision and ``torch._dynamo``, which import
triton when it is installed. Triton bundles its own LLVM; when a Mesa OpenGL driver
(llvmpipe under Xvfb or remote desktops, radeonsi on AMD desktops) has already loaded Mesa's
``libLLVM`` for napari's canvas, loading triton's LLVM after it kills the process with a
segmentation fault. The panels never compile models (no ``torch.compile``), so inside napari
triton is hidden from Python before the first heavy import: torch then runs without it.
The CLI does not call this and keeps triton.
"""

from __future__ import annotations

import sys


def make_ml_imports_safe() -> None:
    """Hide triton from later imports (a no-op once triton is imported or already hidden)."""
    if "triton" not in sys.modules:
        # A None entry makes ``import triton`` raise ImportError and ``find_spec`` return None,
        # which is how torch checks for it.
        sys.modules["triton"] = None
