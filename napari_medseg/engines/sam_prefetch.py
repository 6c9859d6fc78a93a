"""Embeddings on demand: the prompted slice first, then its neighbours outward.

No separate "embed the case" step: when the user prompts slice ``z``, that slice is embedded
(a prompt needs it), then a background job embeds ``z+1, z-1, z+2, z-2, ...`` while the user
works, so propagation and the next clicks find their slices ready; whatever is not ready yet is
embedded when it is needed. Works with both :class:`~napari_medseg.engines.sam.SamSession`
and :class:`~napari_medseg.engines.sam2.Sam2Session`; the panel runs :func:`prefetch` in a
worker and cancels it when the case or the model changes.
"""

from __future__ import annotations

from collections.abc import Callable

from napari_medseg.engines.base import Progress


def outward(start: int, n: int, radius: int | None = None) -> list[int]:
    """``start``, then the slices around it nearest first (above before below), in 0..n-1."""
    reach = n if radius is None else radius
    order = [start] if 0 <= start < n else []
    for d in range(1, reach + 1):
        order += [z for z in (start + d, start - d) if 0 <= z < n]
    return order


def prefetch(
    session,
    start: int,
    radius: int | None = None,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> int:
    """Embed slice ``start`` and then its neighbours outward (up to ``radius`` away) that are
    not cached yet; return how many slices went through the encoder."""
    return session.embed(outward(start, len(session.stack), radius), progress, cancelled)
