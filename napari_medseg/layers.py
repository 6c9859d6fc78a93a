"""Cases as napari layer-data tuples: geometry, contrast presets, label names and colours.

No Qt here: readers, sample data and widgets all build their layers through these functions,
so a case looks the same however it was opened. What a layer carries (its case, role, the
volume it shows with its source geometry, an edited labelmap) is read and written only
through :class:`LayerInfo`. The way back, from layers to an export item, is
:func:`items_from_layers` (the npe2 writers and the export panel).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from napari_medseg.core.errors import MedsegError
from napari_medseg.core.intensity import CT_WINDOW, PET_SUV_RANGE, robust_limits
from napari_medseg.core.labelmap import Label, LabelMap, default_color
from napari_medseg.core.model import INSTANCES, Box, Case, Volume

GEOMETRY_DECIMALS = 6  # 1e-6 mm: napari's slider then reaches every slice (6.499999999999998)
METADATA_KEY = "medseg"  # layer.metadata[METADATA_KEY]: the fields of LayerInfo


@dataclass(kw_only=True)
class LayerInfo:
    """What a napari-medseg layer carries, stored in ``layer.metadata["medseg"]``.

    ``role``: image, mask, instances, boxes or classes; ``volume``: the data with its source
    geometry (None for a plain napari layer); ``labelmap``: an edited labelmap (labelmap
    editor, CVAT import); ``engine``: the pre-segmentation engine that made a mask;
    ``derived``: work made while curating (a pre-segmentation, the review mask), which stays
    when the case's layers are replaced.
    """

    role: str | None = None
    case: str | None = None
    root: str | None = None
    format: str | None = None
    volume: Volume | None = None
    labelmap: LabelMap | None = None
    engine: str | None = None
    derived: bool = False

    @classmethod
    def from_metadata(cls, metadata: Mapping | None) -> LayerInfo:
        """From a layer's metadata dict (empty for a layer napari-medseg did not make)."""
        stored = (metadata or {}).get(METADATA_KEY) or {}
        return cls(**{f.name: stored[f.name] for f in fields(cls) if f.name in stored})

    @classmethod
    def from_layer(cls, layer) -> LayerInfo:
        return cls.from_metadata(layer.metadata)

    @property
    def opened(self) -> bool:
        """Whether the layer shows a volume napari-medseg read (so its geometry is known)."""
        return self.volume is not None

    def metadata(self) -> dict:
        """The ``metadata`` value of a new layer."""
        return {METADATA_KEY: {f.name: getattr(self, f.name) for f in fields(self)}}

    def attach(self, layer) -> None:
        """Store this info on an existing layer."""
        layer.metadata[METADATA_KEY] = self.metadata()[METADATA_KEY]


def geometry_kwargs(vol: Volume) -> dict:
    """napari's scale/translate (or affine), rounded so float noise never drops a slice."""
    geom = vol.geometry
    if geom.is_axis_aligned:
        return {
            "scale": tuple(round(float(s), GEOMETRY_DECIMALS) for s in geom.spacing),
            "translate": tuple(round(float(o), GEOMETRY_DECIMALS) for o in geom.origin),
        }
    return {"affine": np.round(geom.affine(), GEOMETRY_DECIMALS)}


def acquisition_axis(vol: Volume) -> int:
    """The display axis the volume's slices were acquired along (0 for axial or unknown)."""
    src = vol.source
    if src is None or vol.spatial_ndim != 3 or src.kind not in ("nifti", "itk"):
        return 0
    slice_axis = 2 if src.kind == "nifti" else 0  # nibabel (i, j, k); ITK/DICOM (k, j, i)
    return src.transform.perm.index(slice_axis)


def _metadata(vol: Volume | None, case: Case, root: str | None, fmt: str | None, role: str) -> dict:
    return LayerInfo(role=role, case=case.id, root=root, format=fmt, volume=vol).metadata()


def image_layer(vol: Volume, case: Case, root=None, fmt=None) -> tuple:
    kwargs = {
        "name": vol.name, **geometry_kwargs(vol), "visible": vol.metadata.get("visible", True),
        "metadata": _metadata(vol, case, root, fmt, "image"),
    }  # fmt: skip
    arr = vol.array
    kwargs["rgb"] = vol.rgb  # always explicit: napari would guess RGB from a last axis of 3 or 4
    if vol.rgb:
        return arr, kwargs, "image"
    kind = vol.modality.upper()
    if "photometric" in vol.metadata:  # MONOCHROME1: low values are bright
        kwargs.update(colormap="gray_r", contrast_limits=robust_limits(arr))
    elif kind == "CT":
        kwargs.update(colormap="gray", contrast_limits=CT_WINDOW)
    elif kind in ("PET", "SUV"):
        hi = (
            PET_SUV_RANGE[1]
            if vol.channel.upper() == "SUV" or vol.name.upper() == "SUV"
            else robust_limits(arr, 0, 99.8)[1]
        )
        kwargs.update(colormap="hot", contrast_limits=(0.0, hi), blending="additive", opacity=0.7)
    else:
        kwargs.update(colormap="gray", contrast_limits=robust_limits(arr))
    return arr, kwargs, "image"


def labels_colormap(labelmap: LabelMap):
    from napari.utils.colormaps import DirectLabelColormap

    colors = {None: (0.0, 0.0, 0.0, 0.0), 0: (0.0, 0.0, 0.0, 0.0)}
    for lab in labelmap.foreground():
        colors[lab.id] = (*(c / 255.0 for c in lab.color), 1.0)
    return DirectLabelColormap(color_dict=colors)


def labels_features(labelmap: LabelMap) -> dict:
    """Feature table that makes napari's status bar show the label's name under the cursor."""
    ids = labelmap.ids
    return {
        "index": np.asarray(ids, dtype=int),
        "name": np.asarray([labelmap[i].name for i in ids], dtype=object),
    }


def labels_kwargs(labelmap: LabelMap) -> dict:
    return {
        "colormap": labels_colormap(labelmap),
        "features": labels_features(labelmap),
        "opacity": 0.5,
    }


def apply_labelmap(layer, labelmap: LabelMap, voxels_changed: bool = False) -> None:
    """Show ``labelmap`` on ``layer`` and store it with the layer's volume (for exports)."""
    kwargs = labels_kwargs(labelmap)
    layer.colormap = kwargs["colormap"]
    layer.features = kwargs["features"]
    info = LayerInfo.from_layer(layer)
    info.labelmap = labelmap
    if info.volume is not None:
        info.volume.labelmap = labelmap
    info.attach(layer)
    if voxels_changed:
        layer.refresh()


def layer_labels(layer) -> LabelMap:
    """The labelmap a Labels layer shows: its edited one, its volume's, else its feature
    names and colormap (and the ids in its data, for a layer without a labelmap yet)."""
    info = LayerInfo.from_layer(layer)
    known = info.labelmap is not None or (info.volume is not None and info.volume.labelmap)
    return layer_labelmap(np.zeros(0, np.uint8) if known else layer.data, layer_state(layer))


def declare_labels(layer, ids, names: Mapping[int, str] | None = None) -> LabelMap:
    """Name and colour every id in ``ids`` on a Labels ``layer`` (new ids join its labelmap,
    each in a distinct colour, named from ``names`` or ``label_<id>``), so no written voxel
    is transparent or nameless."""
    current = layer_labels(layer)
    labelmap = current.ensure(ids)
    for i in set(labelmap.ids) - set(current.ids):
        if names and i in names:
            labelmap = labelmap.renamed(i, names[i])
    if labelmap != current or LayerInfo.from_layer(layer).labelmap is None:
        apply_labelmap(layer, labelmap)
    return labelmap


def labels_layer(vol: Volume, case: Case, root=None, fmt=None) -> tuple:
    labelmap = vol.labelmap or LabelMap.from_names({})
    arr = vol.array
    present = np.unique(arr[:: max(1, arr.shape[0] // 64)]) if arr.ndim == 3 else np.unique(arr)
    labelmap = labelmap.ensure(int(v) for v in present)
    vol.labelmap = labelmap
    kwargs = {
        "name": vol.name, **geometry_kwargs(vol), **labels_kwargs(labelmap),
        "metadata": _metadata(vol, case, root, fmt, "mask"),
    }  # fmt: skip
    return arr, kwargs, "labels"


def boxes_layer(boxes: list[Box], ref: Volume, case: Case, root=None, fmt=None) -> tuple:
    """PASCAL VOC style boxes as a Shapes layer of rectangles with their attributes as features."""
    three_d = ref.spatial_ndim == 3
    data = []
    for b in boxes:
        corners = [[b.y0, b.x0], [b.y0, b.x1], [b.y1, b.x1], [b.y1, b.x0]]
        data.append(
            np.asarray([[b.slice_index or 0, *c] for c in corners] if three_d else corners, float)
        )
    keys = sorted({k for b in boxes for k in b.properties})
    features = {
        "label": [b.label for b in boxes],
        **{k: [b.properties.get(k, "") for b in boxes] for k in keys},
    }
    geo = geometry_kwargs(ref)
    kwargs = {
        "name": "boxes", "shape_type": "rectangle", "features": features, "edge_width": 2,
        "edge_color": "yellow", "face_color": "transparent",
        "text": {"string": "{label}", "color": "yellow", "size": 10, "anchor": "upper_left"},
        "metadata": _metadata(None, case, root, fmt, "boxes"), **geo,
    }  # fmt: skip
    return data, kwargs, "shapes"


def slice_text_layer(texts: list[str], ref: Volume, case: Case, root=None, fmt=None) -> tuple:
    """One text label per slice (classification labels such as MedMNIST's), never a mask."""
    n = len(texts)
    data = np.zeros((n, 3), float)
    data[:, 0] = np.arange(n)
    kwargs = {
        "name": "class labels", "features": {"label": list(texts)}, "size": 0.1, "face_color": "transparent",
        "border_width": 0,
        # lower_left: the text hangs below the corner point, inside the image, never clipped
        "text": {"string": "{label}", "color": "yellow", "size": 12, "anchor": "lower_left"},
        "metadata": _metadata(None, case, root, fmt, "classes"), **geometry_kwargs(ref),
    }  # fmt: skip
    return data, kwargs, "points"


def case_layers(case: Case, root: str | None = None, fmt: str | None = None) -> list[tuple]:
    """Every layer of a case: images (CT/MR below PET), masks, boxes, per-slice class text."""
    order = {"CT": 0, "MR": 1, "": 1, "PET": 2, "SUV": 2}
    images = sorted(case.images, key=lambda v: order.get(v.modality.upper(), 1))
    layers = [image_layer(v, case, root, fmt) for v in images]
    layers += [labels_layer(m, case, root, fmt) for m in case.masks]
    if case.boxes and case.images:
        layers.append(boxes_layer(case.boxes, case.reference_image(), case, root, fmt))
    texts = case.metadata.get("slice_labels")
    if texts and case.images:
        layers.append(slice_text_layer(texts, case.images[0], case, root, fmt))
    return layers


def layer_volume(layer) -> Volume:
    """The Volume behind an image layer (with its geometry and modality), or one wrapping a
    plain napari layer's data on pixel geometry."""
    vol = LayerInfo.from_layer(layer).volume
    return (
        vol
        if vol is not None
        else Volume.from_array(layer.name, np.asarray(layer.data), rgb=layer.rgb)
    )


def case_from_layers(viewer, image_layer) -> tuple[Case, LayerInfo]:
    """The case shown by ``image_layer``: every image and mask layer of the same case.

    Returns the case and the layer's info (not ``opened`` for a plain napari layer, which
    becomes a one-image case).
    """
    info = LayerInfo.from_layer(image_layer)
    if not info.opened:
        return Case(image_layer.name, [layer_volume(image_layer)]), info
    case = Case(info.case)
    for layer in viewer.layers:
        other = LayerInfo.from_layer(layer)
        if other.opened and (other.case, other.root) == (info.case, info.root):
            {"image": case.images, "mask": case.masks}.get(other.role, []).append(other.volume)
    return case, info


def layer_state(layer) -> dict:
    """The part of a layer's data-tuple metadata that :func:`layer_labelmap` reads."""
    return {"metadata": layer.metadata, "features": layer.features, "colormap": layer.colormap}


def layer_labelmap(data: np.ndarray, meta: dict) -> LabelMap:
    """The labelmap of a Labels layer-data tuple ``(data, meta)``: the edited one, its
    volume's, else names from its features and colours from its colormap."""
    info = LayerInfo.from_metadata(meta.get("metadata"))
    present = [int(v) for v in np.unique(np.asarray(data))]
    if info.labelmap is not None:
        return info.labelmap.ensure(present)
    if info.volume is not None and info.volume.labelmap is not None:
        return info.volume.labelmap.ensure(present)
    feats = meta.get("features")
    names = {}
    if feats is not None and "index" in feats and "name" in feats:
        names = {int(i): str(n) for i, n in zip(feats["index"], feats["name"], strict=False)}
    colors = getattr(meta.get("colormap"), "color_dict", None) or {}
    labels = []
    for i in sorted(set(names) | set(present) | {0}):
        rgba = colors.get(i)
        color = (
            tuple(int(round(float(c) * 255)) for c in rgba[:3])
            if rgba is not None and i
            else default_color(i)
        )
        labels.append(Label(i, names.get(i, "background" if i == 0 else f"label_{i}"), color))
    return LabelMap(labels)


def _combine(labels: list[tuple]) -> tuple[np.ndarray, LabelMap, dict]:
    """One class mask from several Labels layers (later layers paint over earlier ones)."""
    data, meta, _ = labels[0]
    classes = np.array(np.asarray(data))
    labelmap = layer_labelmap(classes, meta)
    for d, m, _ in labels[1:]:
        d = np.asarray(d)
        if d.shape != classes.shape:
            raise MedsegError(
                f"Labels layer {m.get('name')!r} is {d.shape}, "
                f"{meta.get('name')!r} is {classes.shape}"
            )
        for lab in layer_labelmap(d, m):
            if lab.id in labelmap and labelmap[lab.id].name != lab.name:
                raise MedsegError(
                    f"label id {lab.id} is {labelmap[lab.id].name!r} in one layer and "
                    f"{lab.name!r} in another; renumber one of them first"
                )
            labelmap = labelmap if lab.id in labelmap else labelmap.with_label(lab)
        classes = np.where(d > 0, d, classes).astype(np.promote_types(classes.dtype, d.dtype))
    return classes, labelmap, meta


def items_from_layers(layer_data: list[tuple], with_image: bool = True):
    """The export item and labelmap for a selection of layer-data tuples.

    A Labels layer named ``instances`` gives the instance ids; the other Labels layers the
    classes; the first Image layer of the same shape the image.
    """
    from napari_medseg.export import ExportItem, image_window

    labels = [t for t in layer_data if t[2] == "labels" and t[1].get("name") != INSTANCES]
    inst = next((t for t in layer_data if t[2] == "labels" and t[1].get("name") == INSTANCES), None)
    if not labels:
        raise MedsegError("select at least one Labels layer to export")
    classes, labelmap, meta = _combine(labels)
    info = LayerInfo.from_metadata(meta.get("metadata"))
    vol = info.volume
    ref = vol if vol is not None and tuple(vol.shape[: vol.spatial_ndim]) == classes.shape else None
    image = window = None
    for data, m, kind in layer_data:
        arr = np.asarray(data) if kind == "image" and with_image else None
        if arr is not None and arr.shape[: classes.ndim] == classes.shape:
            image = arr
            ivol = LayerInfo.from_metadata(m.get("metadata")).volume
            ref = ref or ivol
            window = image_window(ivol, arr)
            break
    source = Path(info.root) if info.root else None
    if source is None and ref is not None and ref.source is not None:
        source = ref.source.path
    item = ExportItem(
        str(info.case or meta.get("name") or "case"),
        classes,
        None if inst is None else np.asarray(inst[0]),
        image,
        window,
        reference=ref,
        source=source,
    )
    return item, labelmap
