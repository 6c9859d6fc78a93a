"""Label ids written by SAM join the layer's labelmap with a name and a colour of their own."""

from __future__ import annotations

import numpy as np

from napari_medseg.core.labelmap import Label, LabelMap, default_color
from napari_medseg.layers import apply_labelmap, declare_labels


def test_new_ids_get_names_and_distinct_visible_colours():
    from napari.layers import Labels

    layer = Labels(np.zeros((4, 4), np.uint8))
    taken = LabelMap.from_names({1: "liver"}).with_label(Label(3, "lesion", default_color(4)))
    apply_labelmap(layer, taken)
    labelmap = declare_labels(layer, [4, 5], {5: "RFS2"})
    assert labelmap[1].name == "liver" and labelmap[3].color == default_color(4)
    assert labelmap[4].name == "label_4" and labelmap[5].name == "RFS2"
    colors = [lab.color for lab in labelmap.foreground()]
    assert len(set(colors)) == len(colors)  # id 4 does not take lesion's colour
    assert all(layer.colormap.map(i)[3] == 1 for i in (1, 3, 4, 5))
    assert list(layer.features["name"])[-2:] == ["label_4", "RFS2"]


def test_a_plain_layer_keeps_the_ids_it_has():
    from napari.layers import Labels

    layer = Labels(np.array([[0, 2], [7, 0]], np.uint8))
    labelmap = declare_labels(layer, [3])
    assert sorted(labelmap.ids) == [0, 2, 3, 7]
    assert all(layer.colormap.map(i)[3] == 1 for i in (2, 3, 7))
