"""Labelmap files (labelmap.txt, dataset.json, our JSON), CVAT checks, editing with undo."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_medseg.core.errors import MedsegError, ReadError
from napari_medseg.core.labelmap import Label, LabelMap
from napari_medseg.core.labelmap_edit import LabelmapEditor
from napari_medseg.core.labelmap_io import (
    check_cvat,
    format_cvat,
    parse_cvat,
    read_cvat,
    read_labelmap,
    write_labelmap,
)

LM = LabelMap(
    [
        Label(0, "background", (0, 0, 0)),
        Label(1, "liver", (250, 50, 83)),
        Label(2, "spleen", (50, 250, 83)),
    ]
)


def test_cvat_labelmap_text_round_trip(tmp_path):
    text = format_cvat(LM)
    assert text.splitlines() == [
        "# label:color_rgb:parts:actions",
        "background:0,0,0::",
        "liver:250,50,83::",
        "spleen:50,250,83::",
    ]
    path = tmp_path / "labelmap.txt"
    write_labelmap(LM, path)
    assert read_cvat(path) == LM


def test_cvat_labelmap_as_cvat_writes_it():
    # CVAT sorts labels by name, so the background is not first; ids follow the reference by name.
    text = (
        "# label:color_rgb:parts:actions\nZebra:10,20,30::\nbackground:0,0,0::\nliver:250,50,83::\n"
    )
    entries = parse_cvat(text)
    assert entries == [("Zebra", (10, 20, 30)), ("background", (0, 0, 0)), ("liver", (250, 50, 83))]
    from napari_medseg.core.labelmap_io import labelmap_from_cvat

    ref = LabelMap.from_names({1: "liver", 5: "Zebra"})
    lm = labelmap_from_cvat(entries, ref)
    assert lm.names() == {0: "background", 1: "liver", 5: "Zebra"}
    assert labelmap_from_cvat(entries).names() == {0: "background", 1: "Zebra", 2: "liver"}


@pytest.mark.parametrize("line", ["a:b:1,2,3::", "car:1,2::", "car:1,2,300::", "car:1,2,3:"])
def test_cvat_labelmap_bad_lines(line):
    with pytest.raises(ReadError, match="line 1"):
        parse_cvat(line)


def test_cvat_labelmap_repeated_name():
    with pytest.raises(ReadError, match="repeated"):
        parse_cvat("a:1,2,3::\na:4,5,6::")


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([Label(1, "a", (1, 2, 3)), Label(2, "b", (1, 2, 3))], "shared by 'a', 'b'"),
        ([Label(1, "a", (1, 2, 3)), Label(2, "a", (4, 5, 6))], "'a' is used 2 times"),
        ([Label(1, "a:b", (1, 2, 3))], "contains ':'"),
        ([Label(1, "tumour", (0, 0, 0))], "is black"),
        ([Label(1, "#x", (1, 2, 3))], "starts with"),
    ],
)
def test_cvat_refusals(labels, message):
    lm = (
        LabelMap([Label(0, "background", (0, 0, 0)), *labels])
        if labels[0].color != (0, 0, 0)
        else LabelMap(labels)
    )
    with pytest.raises(MedsegError, match=message):
        check_cvat(lm)
    with pytest.raises(MedsegError, match=message):
        format_cvat(lm)


def test_dataset_json_msd_and_nnunet(tmp_path, msd_spleen):
    assert read_labelmap(msd_spleen / "dataset.json").names() == {0: "background", 1: "spleen"}
    nn = tmp_path / "nn" / "dataset.json"
    nn.parent.mkdir()
    nn.write_text(
        json.dumps(
            {
                "channel_names": {"0": "CT"},
                "file_ending": ".nii.gz",
                "labels": {"background": 0, "liver": 1, "tumour": 2, "whole": [1, 2]},
            }
        )
    )
    lm = read_labelmap(nn)
    assert lm.names() == {0: "background", 1: "liver", 2: "tumour"}
    write_labelmap(lm.renamed(2, "lesion"), nn)  # keeps nnU-Net style and the other keys
    meta = json.loads(nn.read_text())
    assert meta["labels"] == {"background": 0, "liver": 1, "lesion": 2}
    assert meta["file_ending"] == ".nii.gz"
    out = tmp_path / "msd" / "dataset.json"
    write_labelmap(LM, out)
    assert json.loads(out.read_text())["labels"] == {"0": "background", "1": "liver", "2": "spleen"}


def test_own_json_keeps_colours_and_attributes(tmp_path):
    lm = LM.with_label(Label(3, "lesion", (1, 2, 3), {"malignant": True}))
    path = tmp_path / "labels.json"
    write_labelmap(lm, path)
    back = read_labelmap(path)
    assert back == lm and back[3].attributes == {"malignant": True}


def _editor():
    mask = np.zeros((4, 6, 6), np.uint8)
    mask[0, :2] = 1
    mask[1, 3:] = 2
    mask[2:, 2:4] = 3
    lm = LabelMap.from_names({1: "a", 2: "b", 3: "c"})
    calls = []
    return LabelmapEditor(lm, [mask], on_change=lambda ed, vox: calls.append(vox)), mask, calls


def test_edit_labels_and_undo():
    ed, mask, calls = _editor()
    before, lm0 = mask.copy(), ed.labelmap
    ed.add("d")
    assert ed.labelmap[4].name == "d" and len(set(ed.labelmap.colors().values())) == 5
    ed.rename(4, "lesion")
    ed.recolor(4, (9, 9, 9))
    assert ed.labelmap[4].color == (9, 9, 9)
    ed.merge(1, 2)
    assert 1 not in ed.labelmap and not (mask == 1).any() and (mask[0, :2] == 2).all()
    ed.delete(3)
    assert not (mask == 3).any()
    ed.renumber()  # 2 -> 1, 4 -> 2
    assert ed.labelmap.names() == {0: "background", 1: "b", 2: "lesion"}
    assert set(np.unique(mask)) == {0, 1}
    assert calls[-3:] == [True, True, True]
    for _ in range(6):
        ed.undo()
    assert ed.labelmap == lm0 and np.array_equal(mask, before)
    with pytest.raises(MedsegError, match="nothing to undo"):
        ed.undo()


@pytest.mark.parametrize(
    ("op", "message"),
    [
        (lambda ed: ed.add("a"), "used 2 times"),
        (lambda ed: ed.add("x", (0, 0, 0)), "is black"),
        (lambda ed: ed.add("x:y"), "contains ':'"),
        (lambda ed: ed.recolor(2, ed.labelmap[1].color), "shared by"),
        (lambda ed: ed.rename(1, "b"), "used 2 times"),
        (lambda ed: ed.delete(0), "background"),
        (lambda ed: ed.merge(1, 1), "different"),
        (lambda ed: ed.renumber({1: 2}), "same id"),
        (lambda ed: ed.renumber({1: 300}), "does not fit"),
    ],
)
def test_edit_refusals_change_nothing(op, message):
    ed, mask, calls = _editor()
    before, lm0 = mask.copy(), ed.labelmap
    with pytest.raises(MedsegError, match=message):
        op(ed)
    assert ed.labelmap == lm0 and np.array_equal(mask, before) and not calls and not ed.can_undo


def test_dataset_labelmap_edits_are_kept_outside_the_dataset(tmp_path, monkeypatch):
    from napari_medseg.core.labelmap import Label, LabelMap
    from napari_medseg.core.labelmap_store import edits_path, load_edits, save_edits, with_edits

    monkeypatch.setenv("NAPARI_MEDSEG_CONFIG_DIR", str(tmp_path / "config"))
    root = tmp_path / "data"
    root.mkdir()
    assert load_edits(root) is None
    own = LabelMap.from_names({1: "edema", 2: "core", 3: "enhancing"})
    edited = own.renamed(1, "oedema").with_label(Label(2, "core", (9, 9, 9)))
    save_edits(root, edited)
    assert edits_path(root).is_relative_to(tmp_path / "config") and not any(root.iterdir())
    assert load_edits(root) == edited and load_edits(tmp_path) is None
    merged = with_edits(own.with_label(Label(4, "resection", (1, 2, 3))), load_edits(root))
    assert merged.names() == {
        0: "background",
        1: "oedema",
        2: "core",
        3: "enhancing",
        4: "resection",
    }
    assert merged[2].color == (9, 9, 9)
    edits_path(root).write_text("{not json")
    assert load_edits(root) is None  # unreadable: the dataset's own labels, no crash
