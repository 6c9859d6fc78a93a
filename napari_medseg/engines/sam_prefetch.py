"""Embeddings on demand: the prompted slice first, then its neighbours outward.

No separate "embed the case" step: when the user prompts slice ``z``, that slice is embedded
(a prompt needs it), then a background job embeds ``z+1, z-1, z+2, z-2, ...`` while the user
works, so propagation and the next clicks find their slices ready; whatever is not ready yet is
embedded when it is needed. Works with both :class:`~napari_medseg.engines.sam.SamSession`
and :class:`~napari_medseg.engines.sam2.Sam2Session`. ``napari-medseg embed --around`` runs
:func:`prefetch`; the SAM panel runs :func:`embed_in_order` on an ``outward`` queue in its job
thread, where a slice the user prompts jumps the queue, and stops it when the user's own work
(propagate, segment boxes, embed the case) takes over or the case or the model changes.
"""

from __future__ import annotations

from collections.abc import Callable

from napari_medseg.engines.base import Progress
from napari_medseg.engines.sam_requests import EmbedOrder


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


def embed_in_order(
    session,
    order: EmbedOrder,
    progress: Progress,
    cancelled: Callable[[], bool],
    ready: Callable[[list[int]], None],
) -> int:
    """Embed ``order``'s slices batch by batch until it is empty or ``cancelled()``; after
    each batch ``progress(done, total)`` and ``ready(batch)``. Returns how many were taken."""
    from napari_medseg.engines.sam_embed import default_batch_size

    total, done = len(order), 0
    progress(0, total)
    size = session.batch_size or default_batch_size(session.sam)
    while not cancelled() and (batch := order.take(size)):
        session.embed(batch)
        order.done()
        done += len(batch)
        progress(done, total)
        ready(batch)
    return done
