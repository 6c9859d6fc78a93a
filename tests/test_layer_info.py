"""LayerInfo: the one reader and writer of what a napari-medseg layer carries."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

from napari_medseg.core.labelmap import LabelMap
from napari_medseg.io.detect import open_dataset
from napari_medseg.layers import LayerInfo, case_layers


def test_layer_info_round_trip(msd_spleen):
    ds = open_dataset(msd_spleen)
    case = ds.load_case("spleen_1")
    (_, img_kw, _), (_, mask_kw, _) = case_layers(case, str(ds.root), ds.format)
    image, mask = (LayerInfo.from_metadata(kw["metadata"]) for kw in (img_kw, mask_kw))
    assert (image.role, image.case, image.root, image.format) == (
        "image",
        "spleen_1",
        str(ds.root),
        "msd",
    )
    assert image.volume is case.images[0] and mask.volume is case.masks[0] and image.opened

    layer = SimpleNamespace(metadata=dict(mask_kw["metadata"]))
    edited = LabelMap.from_names({1: "spleen", 2: "vessel"})
    replace(LayerInfo.from_layer(layer), labelmap=edited, engine="threshold").attach(layer)
    back = LayerInfo.from_layer(layer)
    assert (back.labelmap, back.engine, back.volume) == (edited, "threshold", case.masks[0])


def test_plain_layer_has_no_info():
    info = LayerInfo.from_layer(SimpleNamespace(metadata={}))
    assert not info.opened and info.case is None and info.role is None
