"""Cases as napari layer-data tuples: geometry, contrast presets, label names and colours.

No Qt here: readers, sample data and widgets all build their layers through these functions,
so a case looks the same however it was opened. Each layer's ``metadata["medseg"]`` keeps
the volume it shows (with its source geometry) and where it came from.
"""

from __future__ import annotations

import numpy as np

from napari_medseg.core.intensity import CT_WINDOW, PET_SUV_RANGE, robust_limits
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.model import Box, Case, Volume

GEOMETRY_DECIMALS = 6  # 1e-6 mm: napari's slider then reaches every slice (6.499999999999998)


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


def medseg_meta(
    vol: Volume | None, case: Case, root: str | None, fmt: str | None, role: str
) -> dict:
    return {"medseg": {"volume": vol, "case": case.id, "root": root, "format": fmt, "role": role}}


def image_layer(vol: Volume, case: Case, root=None, fmt=None) -> tuple:
    kwargs = {
        "name": vol.name, **geometry_kwargs(vol), "visible": vol.metadata.get("visible", True),
        "metadata": medseg_meta(vol, case, root, fmt, "image"),
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


def labels_layer(vol: Volume, case: Case, root=None, fmt=None) -> tuple:
    labelmap = vol.labelmap or LabelMap.from_names({})
    arr = vol.array
    present = np.unique(arr[:: max(1, arr.shape[0] // 64)]) if arr.ndim == 3 else np.unique(arr)
    labelmap = labelmap.ensure(int(v) for v in present)
    vol.labelmap = labelmap
    kwargs = {
        "name": vol.name, **geometry_kwargs(vol), **labels_kwargs(labelmap),
        "metadata": medseg_meta(vol, case, root, fmt, "mask"),
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
        "metadata": medseg_meta(None, case, root, fmt, "boxes"), **geo,
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
        "text": {"string": "{label}", "color": "yellow", "size": 12, "anchor": "upper_left"},
        "metadata": medseg_meta(None, case, root, fmt, "classes"), **geometry_kwargs(ref),
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
    vol = (layer.metadata.get("medseg") or {}).get("volume")
    return (
        vol
        if vol is not None
        else Volume.from_array(layer.name, np.asarray(layer.data), rgb=layer.rgb)
    )


def case_from_layers(viewer, image_layer) -> tuple[Case, dict]:
    """The case shown by ``image_layer``: every image and mask layer of the same case.

    Returns the case and the layer's ``medseg`` metadata (empty for a plain napari layer,
    which becomes a one-image case).
    """
    meta = image_layer.metadata.get("medseg") or {}
    if meta.get("volume") is None:
        return Case(image_layer.name, [layer_volume(image_layer)]), {}
    case = Case(meta["case"])
    for layer in viewer.layers:
        m = layer.metadata.get("medseg") or {}
        if (
            m.get("case") == meta["case"]
            and m.get("root") == meta.get("root")
            and m.get("volume") is not None
        ):
            {"image": case.images, "mask": case.masks}.get(m.get("role"), []).append(m["volume"])
    return case, meta
