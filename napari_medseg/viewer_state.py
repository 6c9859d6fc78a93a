"""Per-viewer curation state shared by the dock widgets (no Qt: napari's model API + psygnal).

One :class:`ViewerState` per viewer holds the open dataset and case. Loading a case is split
in two so widgets can run the slow half in a worker thread: :meth:`ViewerState.load` (reads
voxels, builds layer data) and :meth:`ViewerState.show` (replaces the previous case's layers).
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from psygnal import Signal

from napari_medseg.core.labelmap_store import load_edited_case
from napari_medseg.core.model import Case, Dataset
from napari_medseg.io.detect import open_dataset
from napari_medseg.layers import METADATA_KEY, LayerInfo, acquisition_axis, case_layers
from napari_medseg.viewing import CYCLE_KEY, apply_ct_preset, cycle_ct_preset, name_axes

if TYPE_CHECKING:
    import napari

_STATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class ViewerState:
    dataset_changed = Signal(object)  # Dataset
    case_shown = Signal(object)  # Case
    statuses_changed = Signal(dict)  # {case id: status}
    window_changed = Signal(str)  # CT window preset name

    def __init__(self, viewer: napari.Viewer):
        self._viewer = weakref.ref(viewer)
        self.dataset: Dataset | None = None
        self.case: Case | None = None
        self.statuses: dict[str, str] = {}
        self.pacs_server = None  # the DICOMweb server the PACS panel last talked to
        self._shown_root = None  # the dataset of the case show() last put on screen
        viewer.bind_key(CYCLE_KEY, lambda _v: self.cycle_window(), overwrite=True)
        viewer.dims.events.order.connect(lambda _: keep_superior_up(viewer))

    def cycle_window(self) -> str | None:
        """Next CT window preset on every CT layer (bound to ``Shift-W``)."""
        name = cycle_ct_preset(self.viewer)
        if name is not None:
            self.window_changed.emit(name)
        return name

    def set_window(self, name: str) -> None:
        if apply_ct_preset(self.viewer, name):
            self.window_changed.emit(name)

    @property
    def viewer(self) -> napari.Viewer:
        return self._viewer()

    def set_dataset(self, dataset: Dataset | str | Path) -> Dataset:
        if not isinstance(dataset, Dataset):
            dataset = open_dataset(dataset)
        if self.dataset is None or Path(self.dataset.root) != Path(dataset.root):
            self.dataset = dataset
            self.dataset_changed.emit(dataset)
        return self.dataset

    def set_statuses(self, statuses: dict[str, str]) -> None:
        self.statuses = dict(statuses)
        self.statuses_changed.emit(self.statuses)

    def load(self, case_id: str) -> tuple[Case, list[tuple]]:
        """Read a case and build its layers (safe to call from a worker thread)."""
        if self.dataset is None:
            raise RuntimeError("no dataset is open")
        case = load_edited_case(self.dataset, case_id)
        return case, case_layers(case, str(self.dataset.root), self.dataset.format)

    def show(self, loaded: tuple[Case, list[tuple]], slice_index: int | None = None) -> None:
        """Replace the previous case's layers with ``loaded`` (call on the GUI thread).

        Work layers of the same case (``LayerInfo.derived``) stay."""
        case, layers = loaded
        viewer = self.viewer
        names = {kwargs.get("name") for _data, kwargs, _kind in layers}
        root = self.dataset.root if self.dataset is not None else None
        for layer in [ly for ly in viewer.layers if METADATA_KEY in ly.metadata]:
            if not (_is_work(layer, case, root) and layer.name not in names):
                viewer.layers.remove(layer)
        kept = list(viewer.layers)
        added = [getattr(viewer, f"add_{kind}")(data, **kwargs) for data, kwargs, kind in layers]
        _raise_above_images(viewer, kept, added)
        if case.images:
            show_acquisition_plane(viewer, case.images[0])
        if self.case is None or self.case.id != case.id or root != self._shown_root:
            viewer.reset_view()  # another case may have another extent: show all of it
        self.case, self._shown_root = case, root
        name_axes(viewer, case)
        if slice_index is not None and viewer.dims.ndim >= 3:
            viewer.dims.set_current_step(0, slice_index)
        elif (case.images or case.masks) and (case.images or case.masks)[0].spatial_ndim >= 3:
            # the middle slice (after the time axis of a 4D series); a case of masks only
            # (a CVAT export) too
            ref = (case.images or case.masks)[0]
            z = ref.spatial_ndim - 3
            viewer.dims.set_current_step(z, ref.shape[z] // 2)
        self.case_shown.emit(case)

    def adopt_layer(self, layer) -> None:
        """Pick up the dataset and case of a layer opened through File > Open."""
        info = LayerInfo.from_layer(layer)
        if not info.root:
            return
        if self.dataset is None or Path(self.dataset.root) != Path(info.root):
            self.set_dataset(info.root)
        if self.case is None or self.case.id != info.case:
            if info.role == "image" and info.opened:
                show_acquisition_plane(self.viewer, info.volume)
            self.case = self.dataset.load_case(info.case)  # headers only; layers hold voxels
            name_axes(self.viewer, self.case)
            self.case_shown.emit(self.case)


def show_acquisition_plane(viewer: napari.Viewer, vol) -> None:
    """Slice along the axis ``vol`` was acquired along (a sagittal series opens sagittal);
    napari's roll/transpose buttons reach the other planes."""
    ndim = viewer.dims.ndim
    if vol.spatial_ndim != 3 or ndim < 3 or viewer.dims.ndisplay != 2:
        return
    axis = ndim - 3 + acquisition_axis(vol)
    spatial = [a for a in range(ndim - 3, ndim) if a != axis]
    viewer.dims.order = (*range(ndim - 3), axis, *spatial)
    keep_superior_up(viewer)


def keep_superior_up(viewer: napari.Viewer) -> None:
    """Draw superior at the top whenever the z axis is the vertical one (sagittal, coronal);
    axial views keep anterior at the top."""
    ndim = viewer.dims.ndim
    vertical = viewer.dims.order[-2] if ndim >= 2 else None
    up = ndim >= 3 and vertical == ndim - 3
    viewer.camera.orientation2d = ("up" if up else "down", "right")


def _raise_above_images(viewer: napari.Viewer, kept: list, added: list) -> None:
    """Move the layers that stayed (work, prompts) above the new case's images, in their
    order, so the new images do not hide them."""
    images = [ly for ly in added if ly.__class__.__name__ == "Image"]
    for layer in reversed(kept) if images else []:  # each lands right above the images
        src = viewer.layers.index(layer)
        top = max(viewer.layers.index(ly) for ly in images)
        if src < top:
            viewer.layers.move(src, top + 1)


def _is_work(layer, case: Case, root) -> bool:
    """A layer made while curating ``case`` of the dataset at ``root`` (a pre-segmentation,
    the review mask): it stays when the case's layers are replaced, unless a new layer of the
    same name replaces it."""
    info = LayerInfo.from_layer(layer)
    same_root = info.root is None or root is None or Path(info.root) == Path(root)
    return info.derived and info.case == case.id and same_root


def state_for(viewer: napari.Viewer) -> ViewerState:
    """The one :class:`ViewerState` of ``viewer`` (created on first use)."""
    state = _STATES.get(viewer)
    if state is None:
        state = _STATES[viewer] = ViewerState(viewer)
    return state
