"""Reading aids on the viewer (no Qt: napari's model API): anatomical axis names on the
sliders and CT window/level presets with a key to cycle them.

Cases are shown in the radiological axial convention (display axes z, y, x run inferior to
superior, anterior to posterior, patient right to left), so the sliders are named after the
anatomical direction they move along.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from napari_medseg.core.intensity import CT_PRESETS
from napari_medseg.core.model import Case
from napari_medseg.layers import LayerInfo

if TYPE_CHECKING:
    import napari

AXIS_LABELS = ("S-I", "A-P", "R-L")
CYCLE_KEY = "Shift-W"


def name_axes(viewer: napari.Viewer, case: Case) -> None:
    """Name the last three dims S-I, A-P, R-L for a volume; a stack of 2D images (MedMNIST)
    gets "image" on its stack axis; 2D images keep napari's defaults."""
    ndim = viewer.dims.ndim
    if ndim < 3:
        return
    labels = list(viewer.dims.axis_labels)
    if case.metadata.get("slice_labels"):
        labels[-3] = "image"
    else:
        labels[-3:] = AXIS_LABELS
    viewer.dims.axis_labels = labels


def ct_layers(viewer: napari.Viewer) -> list:
    """Image layers that show CT (by the case's modality)."""
    out = []
    for layer in viewer.layers:
        info = LayerInfo.from_layer(layer)
        if info.role == "image" and info.opened and info.volume.modality.upper() == "CT":
            out.append(layer)
    return out


def apply_ct_preset(viewer: napari.Viewer, name: str) -> int:
    """Set every CT layer's window to preset ``name``; returns how many layers changed."""
    limits = CT_PRESETS[name]
    layers = ct_layers(viewer)
    for layer in layers:
        layer.contrast_limits_range = (
            min(layer.contrast_limits_range[0], limits[0]),
            max(layer.contrast_limits_range[1], limits[1]),
        )
        layer.contrast_limits = limits
    return len(layers)


def current_ct_preset(viewer: napari.Viewer) -> str | None:
    layers = ct_layers(viewer)
    if not layers:
        return None
    limits = tuple(float(v) for v in layers[0].contrast_limits)
    return next((n for n, lim in CT_PRESETS.items() if lim == limits), None)


def cycle_ct_preset(viewer: napari.Viewer) -> str | None:
    """Move every CT layer to the next preset (soft tissue -> lung -> bone -> brain -> ...)."""
    names = list(CT_PRESETS)
    current = current_ct_preset(viewer)
    following = names[(names.index(current) + 1) % len(names)] if current else names[0]
    if apply_ct_preset(viewer, following) == 0:
        return None
    lo, hi = CT_PRESETS[following]
    viewer.status = (
        f"CT window: {following} (W {hi - lo:g}, L {(lo + hi) / 2:g}); {CYCLE_KEY}: next"
    )
    return following
