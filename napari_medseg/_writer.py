"""napari writer contributions: File > Save Selected Layers as CVAT, NIfTI/MHA/NRRD, COCO or
DICOM SEG.

Multi-layer writers receive ``(path, [(data, meta, layer_type), ...])``; the NIfTI writer takes
exactly one Labels layer, so npe2 calls it as ``(path, data, meta)``. Each returns the written
paths. Layers become an export item through :func:`napari_medseg.layers.items_from_layers`
(source grid and labelmap from the layer's :class:`~napari_medseg.layers.LayerInfo`).
"""

from __future__ import annotations

from napari_medseg.layers import LayerInfo, items_from_layers


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
    algorithm = Algorithm.of_engine(LayerInfo.from_metadata(labels_meta.get("metadata")).engine)
    return [str(write_seg_file(path, item, labelmap, algorithm).path)]
