"""3D Slicer segmentations (``.seg.nrrd``): a labelmap NRRD with segment metadata.

Slicer's documented custom fields (``Segmentation_*`` and ``Segment<N>_*``, N from 0) carry
each segment's ID, name, colour (RGB 0..1), label value, layer and extent. Non-overlapping
segments share one 3D volume; overlapping ones are stored as a 4D file whose first (``list``)
axis holds the layers, which SimpleITK reads as vector components. Each layer opens as its
own mask with its own labelmap, so overlaps are kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_medseg.core.atomic import atomic_path
from napari_medseg.core.errors import ReadError, WriteError
from napari_medseg.core.labelmap import Label, LabelMap, default_color
from napari_medseg.core.model import Volume
from napari_medseg.io.volumes import as_label_array, guarded

SUFFIX = ".seg.nrrd"
REPRESENTATION = "Binary labelmap"


def is_seg_nrrd(path: str | Path) -> bool:
    return Path(path).name.lower().endswith(SUFFIX)


def _field(meta: dict, key: str, default: str = "") -> str:
    return str(meta.get(key, default)).strip()


def segments(meta: dict, layers: int) -> list[dict]:
    """Segment entries (``name``, ``color``, ``value``, ``layer``) from the header fields.

    Files from Slicer before 4.11 have no ``_LabelValue``/``_Layer``: one layer per segment
    with value 1 in 4D files, values 1..N in 3D ones.
    """
    out = []
    n = 0
    while f"Segment{n}_ID" in meta or f"Segment{n}_Name" in meta:
        p = f"Segment{n}_"
        try:
            rgb = [float(v) for v in _field(meta, p + "Color").split()]
            color = tuple(int(round(min(max(c, 0.0), 1.0) * 255)) for c in rgb)
            value = int(_field(meta, p + "LabelValue") or (1 if layers > 1 else n + 1))
            layer = int(_field(meta, p + "Layer") or (n if layers > 1 else 0))
        except ValueError as exc:
            raise ReadError(f"segment {n}: malformed header field ({exc})") from exc
        name = _field(meta, p + "Name") or _field(meta, p + "ID") or f"Segment_{n + 1}"
        out.append({"name": name, "color": color if len(color) == 3 else None, "value": value,
                    "layer": layer, "id": _field(meta, p + "ID")})  # fmt: skip
        n += 1
    return out


def layer_labelmaps(entries: list[dict], layers: int, path: Path) -> list[LabelMap]:
    out = []
    for layer in range(layers):
        labels = [Label(0, "background", (0, 0, 0))]
        for e in entries:
            if e["layer"] == layer:
                if e["value"] <= 0 or e["value"] in {lab.id for lab in labels}:
                    raise ReadError(
                        f"segment {e['name']!r}: label value {e['value']} is taken", path
                    )
                labels.append(Label(e["value"], e["name"], e["color"] or default_color(e["value"])))
        out.append(LabelMap(sorted(labels, key=lambda lab: lab.id)))
    return out


def read_seg_nrrd(path: str | Path, name: str | None = None) -> list[Volume]:
    """One mask volume per layer, named after the file, with the segments' names and colours."""
    from napari_medseg.io.volumes import itk_header, read_itk

    path = Path(path)
    reader = itk_header(path, "NRRD")
    meta = {k: reader.GetMetaData(k) for k in reader.GetMetaDataKeys()}
    layers = reader.GetNumberOfComponents()
    entries = segments(meta, layers)
    if any(e["layer"] >= layers for e in entries):
        raise ReadError(f"a segment names a layer beyond the file's {layers}", path)
    base = read_itk(path)
    stem = name or path.name[: -len(SUFFIX)]
    out = []
    for layer, labelmap in enumerate(layer_labelmaps(entries, layers, path)):

        def load(layer=layer):
            arr = base.array
            return as_label_array(arr[..., layer] if layers > 1 else arr, path)

        out.append(Volume(
            stem if layers == 1 else f"{stem} layer {layer}", tuple(base.shape[:3]),
            np.dtype(np.uint8), base.geometry, guarded(path, load), labelmap=labelmap,
            source=base.source, metadata={"segment_ids": {e["value"]: e["id"] for e in entries
                                                          if e["layer"] == layer}},
        ))  # fmt: skip
    return out


def header_fields(data: np.ndarray, labelmap: LabelMap) -> dict[str, str]:
    """Slicer's fields for a file-layout (i, j, k) label array, one segment per present label."""
    fields = {
        "Segmentation_MasterRepresentation": REPRESENTATION,
        "Segmentation_SourceRepresentation": REPRESENTATION,
        "Segmentation_ContainedRepresentationNames": REPRESENTATION + "|",
        "Segmentation_ReferenceImageExtentOffset": "0 0 0",
    }
    present = {int(v) for v in np.unique(data)} - {0}
    labels = [lab for lab in labelmap.ensure(present).foreground() if lab.id in present]
    for n, lab in enumerate(labels):
        idx = np.nonzero(data == lab.id)
        extent = " ".join(f"{int(a.min())} {int(a.max())}" for a in idx)
        p = f"Segment{n}_"
        fields.update({
            p + "ID": f"Segment_{lab.id}",
            p + "Name": " ".join(lab.name.split()),
            p + "NameAutoGenerated": "0",
            p + "Color": " ".join(f"{c / 255:.6g}" for c in lab.color),
            p + "ColorAutoGenerated": "0",
            p + "LabelValue": str(lab.id),
            p + "Layer": "0",
            p + "Extent": extent,
        })  # fmt: skip
    return fields


def write_seg_nrrd(
    reference: Volume, mask: np.ndarray, labelmap: LabelMap, path: str | Path
) -> Path:
    """Write a display-order class mask as ``.seg.nrrd`` on ``reference``'s source grid."""
    import SimpleITK as sitk

    from napari_medseg.io.masks import itk_image, label_dtype, source_layout

    path = Path(path)
    mask = np.asarray(mask)
    if mask.shape != tuple(reference.shape[: reference.spatial_ndim]):
        raise WriteError(f"mask shape {mask.shape} differs from the image's", path)
    data, affine = source_layout(reference, mask)
    data = np.ascontiguousarray(data, dtype=label_dtype(mask))
    img = itk_image(data, affine)
    for key, value in header_fields(data, labelmap).items():
        img.SetMetaData(key, value)
    with atomic_path(path) as tmp:
        sitk.WriteImage(img, str(tmp), True)
    return path
