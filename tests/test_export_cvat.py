"""CVAT Segmentation mask 1.1 export: layout, PNG contents, round trips and refusals."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from PIL import Image

from napari_medseg.core.errors import MedsegError, WriteError
from napari_medseg.core.labelmap import Label, LabelMap
from napari_medseg.core.labelmap_io import parse_cvat
from napari_medseg.export import ExportItem
from napari_medseg.export.cvat import export_cvat, import_cvat
from napari_medseg.formats.cvat import VOC_COLORMAP
from napari_medseg.formats.slices import item_ids
from napari_medseg.io.detect import open_dataset
from napari_medseg.synthetic.phantom import brain, torso

LM = LabelMap.from_names({1: "liver", 2: "spleen", 3: "lesion"})


def _volume():
    ct, _, labels = torso((12, 40, 48), seed=1)
    return ct, labels


def _instances(labels):
    """Two lesions with their own ids, organs with one id each (ids above 255 for one of them)."""
    inst = np.zeros(labels.shape, np.uint16)
    inst[labels == 1] = 7
    inst[labels == 2] = 300
    lesion = labels == 3
    inst[lesion & (np.arange(labels.shape[2]) < labels.shape[2] // 2)] = 11
    inst[lesion & (np.arange(labels.shape[2]) >= labels.shape[2] // 2)] = 12
    return inst


def test_voc_colormap_matches_spec():
    assert [tuple(VOC_COLORMAP[i]) for i in range(6)] == [
        (0, 0, 0),
        (128, 0, 0),
        (0, 128, 0),
        (128, 128, 0),
        (0, 0, 128),
        (128, 0, 128),
    ]
    assert tuple(VOC_COLORMAP[255]) == (224, 224, 192)
    assert len({tuple(c) for c in VOC_COLORMAP}) == 256


def test_layout_pngs_and_names(tmp_path):
    ct, labels = _volume()
    out = tmp_path / "export"
    res = export_cvat(out, [ExportItem("7", labels, image=ct, window=(-160, 240))], LM, images=True)
    listed = (out / "ImageSets/Segmentation/default.txt").read_text().split()
    assert (
        listed == res.items == [f"case_7/slice_{i:04d}" for i in range(12)]
    )  # never purely numeric
    entries = dict(parse_cvat((out / "labelmap.txt").read_text()))
    declared = set(entries.values())
    assert entries["background"] == (0, 0, 0)
    for iid in listed:
        for folder in ("SegmentationClass", "SegmentationObject"):
            with Image.open(out / folder / f"{iid}.png") as im:
                assert im.mode == "RGB" and im.size == (48, 40)
                arr = np.asarray(im)
            assert arr.dtype == np.uint8
            colors = {tuple(c) for c in arr.reshape(-1, 3)}
            allowed = (
                declared if folder == "SegmentationClass" else {tuple(c) for c in VOC_COLORMAP}
            )
            assert colors <= allowed
        with Image.open(out / "JPEGImages" / f"{iid}.png") as im:  # the item id is the image name
            assert im.mode == "L" and im.size == (48, 40)
    assert item_ids("x", (1200, 4, 4), 0)[-1] == "x/slice_1199"
    assert item_ids("x", (4, 12000, 4), 1)[0] == "x/coronal_00000"


@pytest.mark.parametrize("axis", ["axial", "coronal", "sagittal"])
@pytest.mark.parametrize("as_zip", [False, True])
def test_round_trip_3d(tmp_path, axis, as_zip):
    ct, labels = _volume()
    inst = _instances(labels)
    out = tmp_path / ("e.zip" if as_zip else "e")
    export_cvat(out, [ExportItem("vol01", labels, inst, ct)], LM, axis=axis, images=True)
    classes, instances, lm = import_cvat(out, "vol01", LM, labels.shape)
    assert lm == LM
    assert np.array_equal(classes, labels)
    # ids <= 255 come back unchanged; the one above 255 (300) is renumbered per slice, never merged
    for ids in (7, 11, 12):
        assert np.array_equal(instances == ids, inst == ids)
    spleen = instances[inst == 300]
    assert spleen.size and (spleen > 0).all() and not np.isin(spleen, [7, 11, 12]).any()


def test_round_trip_2d_with_components(tmp_path):
    _, labels = brain((3, 64, 64), seed=0)
    labels = labels[1].copy()  # the tumour's middle slice: three nested classes
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    labels[2:5, 2:5] = 1  # a second, separate component of class 1
    out = tmp_path / "two_d"
    res = export_cvat(out, [ExportItem("img_a", labels)], LM)
    assert res.items == ["img_a"]
    classes, instances, _ = import_cvat(out, labelmap=LM, shape=labels.shape)
    assert np.array_equal(classes, labels)
    assert ((instances > 0) == (labels > 0)).all()
    one = np.unique(instances[labels == 1])
    assert len(one) == 2  # two components of the same class are two objects
    assert len(np.unique(instances[instances > 0])) == len(np.unique(instances[labels > 0]))


def test_3d_components_keep_ids_across_slices(tmp_path):
    labels = np.zeros((5, 20, 20), np.uint8)
    labels[:, 2:6, 2:6] = 1  # a tube through every slice
    labels[1:3, 10:14, 10:14] = 1  # a second object on two slices
    out = tmp_path / "e3"
    export_cvat(out, [ExportItem("c", labels)], LM, components="3d")
    _, instances, _ = import_cvat(out, labelmap=LM)
    assert len(np.unique(instances[:, 3, 3])) == 1  # same id on every slice
    assert instances[1, 12, 12] != instances[1, 3, 3]
    assert instances[1, 12, 12] == instances[2, 12, 12]


def test_dataset_round_trip_and_info(tmp_path, msd_spleen):
    from napari_medseg.cli import main

    out = tmp_path / "cvat"
    assert (
        main(
            [
                "export",
                str(msd_spleen),
                "--case",
                "spleen_1",
                "--format",
                "cvat",
                "--out",
                str(out),
                "--images",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "export",
                str(msd_spleen),
                "--case",
                "spleen_1",
                "--format",
                "cvat",
                "--out",
                str(out),
                "--zip",
            ]
        )
        == 0
    )
    ds = open_dataset(msd_spleen)
    case = ds.load_case("spleen_1")
    for path in (out, tmp_path / "cvat.zip"):
        exported = open_dataset(path)
        assert exported.format == "cvat" and exported.case_ids() == ["spleen_1"]
        back = exported.load_case("spleen_1")
        assert np.array_equal(back.masks[0].array, case.masks[0].array)
        assert back.masks[0].labelmap.names() == {0: "background", 1: "spleen"}
    assert open_dataset(out).load_case("spleen_1").images[0].shape == case.masks[0].shape


def test_more_than_255_instances_is_refused(tmp_path):
    labels = np.zeros((40, 40), np.uint8)
    labels[::2, ::2] = 1  # 400 isolated pixels: 400 components
    out = tmp_path / "many"
    with pytest.raises(MedsegError, match="400 instances"):
        export_cvat(out, [ExportItem("c", labels)], LM)
    inst = np.arange(1, 1601, dtype=np.uint16).reshape(40, 40)
    with pytest.raises(MedsegError, match="1600 instances"):
        export_cvat(out, [ExportItem("c", np.ones((40, 40), np.uint8), inst)], LM)
    assert not out.exists() and not list(tmp_path.iterdir())  # nothing half-written


@pytest.mark.parametrize(
    ("labelmap", "message"),
    [
        (
            LabelMap(
                [
                    Label(0, "background", (0, 0, 0)),
                    Label(1, "a", (5, 5, 5)),
                    Label(2, "b", (5, 5, 5)),
                ]
            ),
            "shared",
        ),
        (
            LabelMap(
                [
                    Label(0, "background", (0, 0, 0)),
                    Label(1, "a", (5, 5, 5)),
                    Label(2, "a", (6, 6, 6)),
                ]
            ),
            "used 2",
        ),
        (LabelMap([Label(0, "background", (0, 0, 0)), Label(1, "a:1", (5, 5, 5))]), "':'"),
        (LabelMap([Label(0, "background", (0, 0, 0)), Label(1, "a", (0, 0, 0))]), "black"),
        (LabelMap([Label(0, "background", (9, 9, 9)), Label(1, "a", (5, 5, 5))]), "must be black"),
    ],
)
def test_labelmap_refusals(tmp_path, labelmap, message):
    labels = np.zeros((8, 8), np.uint8)
    labels[2:4, 2:4] = 1
    with pytest.raises(MedsegError, match=message):
        export_cvat(tmp_path / "x", [ExportItem("c", labels)], labelmap)
    assert not (tmp_path / "x").exists()


def test_instance_over_two_classes_is_refused(tmp_path):
    labels = np.zeros((8, 8), np.uint8)
    labels[2:4, 2:4], labels[2:4, 4:6] = 1, 2
    inst = (labels > 0).astype(np.uint8)
    with pytest.raises(MedsegError, match="more than one class"):
        export_cvat(tmp_path / "x", [ExportItem("c", labels, inst)], LM)


def test_output_inside_source_and_foreign_folder_refused(tmp_path, msd_spleen):
    labels = np.ones((4, 4), np.uint8)
    with pytest.raises(WriteError, match="inside the source"):
        export_cvat(msd_spleen / "export", [ExportItem("c", labels, source=msd_spleen)], LM)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("keep me")
    with pytest.raises(WriteError, match="not empty"):
        export_cvat(busy, [ExportItem("c", labels)], LM)
    assert (busy / "notes.txt").read_text() == "keep me"


def test_zip_export_is_a_valid_archive(tmp_path):
    _, labels = _volume()
    path = tmp_path / "out.zip"
    export_cvat(path, [ExportItem("c", labels)], LM)
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        assert zf.testzip() is None
    assert {
        "labelmap.txt",
        "ImageSets/Segmentation/default.txt",
        "SegmentationClass/c/slice_0000.png",
        "SegmentationObject/c/slice_0011.png",
    } <= names
    assert not [p for p in tmp_path.iterdir() if p.name != "out.zip"]  # no temporary left behind
