"""The SAM panel's layers: prompts (positive and negative points, a box), the preview and the
result labels.

They are added without taking the user's selection (napari selects every new layer), the
preview sits below the prompts in its own colour, and points keep a fixed size on screen
whatever the zoom or voxel size. Only :meth:`SamLayers.set_mode` changes the active layer:
it is the user's mode toggle.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
from napari.layers import Labels
from napari.utils.colormaps import DirectLabelColormap

from napari_medseg.core.model import Volume
from napari_medseg.layers import geometry_kwargs

POSITIVE, NEGATIVE, BOX = "SAM positive", "SAM negative", "SAM box"
PREVIEW, RESULT = "SAM preview", "SAM labels"
PROMPTS = (POSITIVE, NEGATIVE, BOX)
OURS = (*PROMPTS, PREVIEW)
MODES = {"point": (POSITIVE, "add"), "negative": (NEGATIVE, "add"), "box": (BOX, "add_rectangle")}
PREVIEW_RGBA = (0.0, 0.9, 1.0, 1.0)  # cyan: in no dataset palette, unlike the accepted labels
POINT_PX = 12  # point diameter on screen


@contextmanager
def keep_selection(viewer):
    """Add layers without changing the user's active layer and selection."""
    sel = viewer.layers.selection
    active, chosen = sel.active, set(sel)
    try:
        yield
    finally:
        if active is not None and active in viewer.layers:
            sel.active = active
        else:
            sel.clear()
            sel.update(ly for ly in chosen if ly in viewer.layers)


class SamLayers:
    """Creates and finds the SAM layers of one viewer, on the grid of the reference image."""

    def __init__(self, viewer):
        self.viewer = viewer
        self.grid = None  # (case key, shape, geometry) the prompt layers were made for

    def has(self, name: str) -> bool:
        return name in self.viewer.layers

    def __getitem__(self, name: str):
        return self.viewer.layers[name]

    def prompts(self):
        return tuple(self.viewer.layers[n] for n in PROMPTS)

    def ensure(self, ref: Volume, case) -> bool:
        """Make the preview and prompt layers for ``ref``'s grid and ``case`` (any key, e.g.
        dataset and case id): True when (re)created, fresh, on top of the layer list."""
        geo = geometry_kwargs(ref)
        grid = (case, ref.shape[: ref.spatial_ndim], repr(geo))
        if grid == self.grid and all(self.has(n) for n in OURS):
            return False
        self.remove()
        ndim = ref.spatial_ndim
        with keep_selection(self.viewer):
            self.viewer.add_labels(
                np.zeros(ref.shape[:ndim], np.uint8),
                name=PREVIEW,
                opacity=0.5,
                colormap=DirectLabelColormap(
                    color_dict={None: (0, 0, 0, 0), 0: (0, 0, 0, 0), 1: PREVIEW_RGBA}
                ),
                **geo,
            )
            self.viewer.add_shapes(
                name=BOX, ndim=ndim, edge_color="yellow", face_color="transparent", **geo
            )
            for name, color in ((NEGATIVE, "red"), (POSITIVE, "lime")):
                self.viewer.add_points(
                    np.zeros((0, ndim)), name=name, face_color=color, border_color="white", **geo
                )
        self.grid = grid
        self.fit_sizes()
        return True

    def remove(self) -> None:
        for name in OURS:
            if self.has(name):
                self.viewer.layers.remove(name)
        self.grid = None

    def result_layer(self, ref: Volume):
        """A new "SAM labels" layer for accepted masks, just below the preview."""
        layer = Labels(np.zeros(ref.shape[: ref.spatial_ndim], np.uint16), name=RESULT)
        for key, value in geometry_kwargs(ref).items():
            setattr(layer, key, value)
        index = self.viewer.layers.index(PREVIEW) if self.has(PREVIEW) else len(self.viewer.layers)
        with keep_selection(self.viewer):
            self.viewer.layers.insert(index, layer)
        return layer

    # -- tools --------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        """Activate the prompt tool ``mode`` (point, negative or box): the user's choice."""
        name, tool = MODES[mode]
        layer = self.viewer.layers[name]
        self.viewer.layers.selection.active = layer
        layer.mode = tool

    def mode(self) -> str | None:
        """The prompt tool the active layer is, if any."""
        active = self.viewer.layers.selection.active
        for mode, (name, _) in MODES.items():
            if active is not None and active.name == name:
                return mode
        return None

    def fit_sizes(self, _event=None) -> None:
        """Points :data:`POINT_PX` screen pixels wide and box edges 2 px, at any zoom."""
        zoom = max(self.viewer.camera.zoom, 1e-6)
        for name in (POSITIVE, NEGATIVE, BOX):
            if not self.has(name):
                continue
            layer = self.viewer.layers[name]
            per_px = float(np.mean(np.abs(np.asarray(layer.scale[-2:]) * layer.affine.scale[-2:])))
            if name == BOX:
                layer.current_edge_width = 2 / zoom / per_px
                if len(layer.data):
                    layer.edge_width = [2 / zoom / per_px] * len(layer.data)
            else:
                size = POINT_PX / zoom / per_px
                layer.current_size = size
                if len(layer.data):
                    layer.size = size

    def show_preview(self, mask: np.ndarray | None, z: int | None) -> None:
        """Draw ``mask`` on slice ``z`` (None: a 2D image) of the preview; None clears it."""
        layer = self.viewer.layers[PREVIEW]
        layer.data[...] = 0
        if mask is not None:
            (layer.data if z is None else layer.data[z])[mask] = 1
        layer.refresh()
