"""Which image channels SAM sees by default: the ones the user is looking at.

The seen images are the visible image layers from the top down to the first one that covers
everything below it (full opacity, non-additive blending): on a PET/CT case the SUV overlay
and the CT under it, on a BraTS case the sequence on top (FLAIR unless the user hides it).
Their channels are put in this order, then mapped onto SAM's R, G, B:

    CT, FLAIR, T1c (T1ce, T1gd), T2, T1, PET/SUV, then anything else in layer order

one channel feeds all three inputs (FLAIR, FLAIR, FLAIR); two give first, first, second
(CT, CT, SUV); three or more give the first three (T1c, T2, T1).
"""

from __future__ import annotations

import re

from napari_medseg.engines.windowing import ChannelSpec, SourceChannel

ORDER = (
    {"CT"},
    {"FLAIR", "T2F", "T2-FLAIR"},
    {"T1C", "T1CE", "T1GD", "T1-GD", "T1POST"},
    {"T2", "T2W"},
    {"T1", "T1N", "T1W"},
    {"PET", "SUV"},
)
COVERING_BLENDINGS = {"translucent", "translucent_no_depth", "opaque"}


def seen_layers(layers: list) -> list:
    """The visible layers (bottom to top, as napari lists them) not hidden under an opaque one.

    ``layers`` are image layers bottom to top; only ``visible``, ``opacity`` and ``blending``
    are read.
    """
    seen = []
    for layer in reversed(layers):
        if not layer.visible or layer.opacity <= 0:
            continue
        seen.append(layer)
        if layer.opacity >= 1 and str(layer.blending) in COVERING_BLENDINGS:
            break
    return seen[::-1]


def rank(source: SourceChannel) -> int:
    """Position of ``source`` in :data:`ORDER` by its name, else its modality (len(ORDER) if neither)."""
    for key in (re.sub(r"#\d+$", "", source.name), source.volume.modality):
        key = key.upper()
        for i, names in enumerate(ORDER):
            if key in names:
                return i
    return len(ORDER)


def view_mapping(sources: list[SourceChannel]) -> list[ChannelSpec]:
    """SAM's three input channels from the seen channels (see the module docstring)."""
    names = [s.name for s in sorted(sources, key=rank)]  # sorted() is stable: layer order kept
    if len(names) == 1:
        names *= 3
    elif len(names) == 2:
        names = [names[0], *names]
    return [ChannelSpec(n) for n in names[:3]]
