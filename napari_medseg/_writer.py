"""napari writer contributions: File > Save Selected Layers as CVAT, NIfTI/MHA/NRRD, COCO or
DICOM SEG.

Multi-layer writers receive ``(path, [(data, meta, layer_type), ...])``; the NIfTI writer takes
exactly one Labels layer, so npe2 calls it as ``(path, data, meta)``. Each returns the written
paths. The source grid and labelmap come from ``meta["metadata"]["medseg"]`` when the layer was
opened by napari-medseg.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_medseg.core.errors import MedsegError
from napari_medseg.core.labelmap import Label, LabelMap, default_color


def _medseg(meta: dict) -> dict:
    return (meta.get("metadata") or {}).get("medseg") or {}


def layer_labelmap(data: np.ndarray, meta: dict) -> LabelMap:
    """The layer's labelmap: the edited one, its volume's, else names from its features and
    colours from its colormap."""
    vol = _medseg(meta).get("volume")
    present = [int(v) for v in np.unique(np.asarray(data))]
    if _medseg(meta).get("labelmap") is not None:
        return _medseg(meta)["labelmap"].ensure(present)
    if vol is not None and vol.labelmap is not None:
        return vol.labelmap.ensure(present)
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
    """The export item and labelmap for a selection of layers.

    A Labels layer named ``instances`` gives the instance ids; the other Labels layers the
    classes; the first Image layer of the same shape the image.
    """
    from napari_medseg.export import ExportItem, image_window

    labels = [t for t in layer_data if t[2] == "labels" and t[1].get("name") != "instances"]
    inst = next(
        (t for t in layer_data if t[2] == "labels" and t[1].get("name") == "instances"), None
    )
    if not labels:
        raise MedsegError("select at least one Labels layer to export")
    classes, labelmap, meta = _combine(labels)
    info = _medseg(meta)
    vol = info.get("volume")
    ref = vol if vol is not None and tuple(vol.shape[: vol.spatial_ndim]) == classes.shape else None
    image = window = None
    for data, m, kind in layer_data:
        arr = np.asarray(data) if kind == "image" and with_image else None
        if arr is not None and arr.shape[: classes.ndim] == classes.shape:
            image = arr
            ivol = _medseg(m).get("volume")
            ref = ref or ivol
            window = image_window(ivol, arr)
            break
    root = info.get("root")
    source = Path(root) if root else None
    if source is None and ref is not None and ref.source is not None:
        source = ref.source.path
    item = ExportItem(
        str(info.get("case") or meta.get("name") or "case"),
        classes,
        None if inst is None else np.asarray(inst[0]),
        image,
        window,
        reference=ref,
        source=source,
    )
    return item, labelmap


def write_cvat(path: str, layer_data: list[tuple]) -> list[str]:
    """CVAT Segmentation mask 1.1: a folder, or a zip when ``path`` ends in ``.zip``."""
    from napari_medseg.export.cvat import export_cvat

    item, labelmap = items_from_layers(layer_data)
    res = export_cvat(path, [item], labelmap, images=item.image is not None)
    return [str(res.path)]


def write_coco(path: str, layer_data: list[tuple]) -> list[str]:
    from napari_medseg.export.coco import export_coco

    item, labelmap = items_from_layers(layer_data, with_image=False)
    return [str(export_coco(path, [item], labelmap))]


def write_nifti(path: str, data, meta: dict | None = None) -> list[str]:
    """One Labels layer on its source grid (``.nii.gz``/``.nii``/``.mha``/``.nrrd`` by ``path``;
    ``.seg.nrrd`` is a 3D Slicer segmentation with the layer's names and colours)."""
    from napari_medseg.export.nifti import write_file

    layer_data = data if meta is None else [(data, meta, "labels")]
    item, labelmap = items_from_layers(layer_data, with_image=False)
    return [str(write_file(path, item, labelmap))]


def write_dicom_seg(path: str, data, meta: dict | None = None) -> list[str]:
    """One Labels layer of a DICOM-sourced case as a DICOM SEG file (``.dcm``).

    A layer made by a pre-segmentation engine (``medseg["engine"]``) is marked automatic
    with that engine's name; any other layer as manual.
    """
    from napari_medseg.export.dicom_seg import Algorithm, write_seg_file

    layer_data = data if meta is None else [(data, meta, "labels")]
    item, labelmap = items_from_layers(layer_data, with_image=False)
    labels_meta = next(m for _, m, kind in layer_data if kind == "labels")
    algorithm = Algorithm.of_engine(_medseg(labels_meta).get("engine"))
    return [str(write_seg_file(path, item, labelmap, algorithm).path)]
