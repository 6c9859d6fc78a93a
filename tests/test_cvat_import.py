"""Reading CVAT exports as CVAT itself writes them, and refusing unsafe or undeclared content."""

from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from napari_medseg.core.errors import ReadError
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.export.cvat import import_cvat
from napari_medseg.formats.cvat import VOC_COLORMAP
from napari_medseg.io.datasets.cvat import CvatMaskDataset, safe_extract
from napari_medseg.io.detect import open_dataset, sniff_format

# As CVAT exports it: labels sorted by name, so 'background' is not first.
LABELMAP = (
    "# label:color_rgb:parts:actions\nCar:250,50,83::\nbackground:0,0,0::\nperson:60,180,75::\n"
)


def _png(arr: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, format="PNG")
    return buf.getvalue()


def _cvat_task_export(root, class_png=None, subset="default"):
    """A CVAT 2D task export: flat frame names, class and object PNGs."""
    cls = np.zeros((6, 8, 3), np.uint8)
    cls[1:3, 1:3] = (250, 50, 83)
    cls[4:6, 5:8] = (60, 180, 75)
    obj = np.zeros((6, 8, 3), np.uint8)
    obj[1:3, 1:3] = VOC_COLORMAP[1]
    obj[4:6, 5:8] = VOC_COLORMAP[2]
    files = {
        "labelmap.txt": LABELMAP.encode(),
        f"ImageSets/Segmentation/{subset}.txt": b"frame_a\nframe_b\n",
        "SegmentationClass/frame_a.png": class_png if class_png is not None else _png(cls),
        "SegmentationObject/frame_a.png": _png(obj),
    }  # frame_b is listed but unannotated: CVAT writes no PNG for it
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_cvat_task_export_reads_as_dataset(tmp_path):
    root = _cvat_task_export(tmp_path / "task_1")
    assert sniff_format(root) is CvatMaskDataset
    ds = open_dataset(root)
    assert ds.case_ids() == ["frame_a"]  # frame_b is listed but has no PNG: nothing to show
    assert ds.labelmap.names() == {0: "background", 1: "Car", 2: "person"}
    case = ds.load_case("frame_a")
    classes, instances = case.masks[0].array, case.masks[1].array
    assert (
        classes.shape == (6, 8) and classes[1, 1] == 1 and classes[4, 6] == 2 and classes[0, 0] == 0
    )
    assert instances[1, 1] == 1 and instances[4, 6] == 2


def test_cvat_zip_at_depth_and_info_cli(tmp_path, capsys):
    root = _cvat_task_export(tmp_path / "src")
    archive = tmp_path / "task.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in root.rglob("*"):
            if p.is_file():
                zf.write(p, "export/" + p.relative_to(root).as_posix())
    assert sniff_format(archive) is CvatMaskDataset
    from napari_medseg.cli import main

    assert main(["info", str(archive), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["format"] == "cvat"
    assert report["cases"][0]["masks"][0]["labels"] == {
        "0": "background",
        "1": "Car",
        "2": "person",
    }


def test_palette_and_index_pngs(tmp_path):
    pal = np.zeros((6, 8), np.uint8)
    pal[1:3, 1:3] = 7  # palette index 7 carries the Car colour: the colour counts, not the index
    im = Image.fromarray(pal, "P")
    palette = [0, 0, 0] * 256
    palette[21:24] = [250, 50, 83]
    im.putpalette(palette)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    root = _cvat_task_export(tmp_path / "p", class_png=buf.getvalue())
    classes = open_dataset(root).load_case("frame_a").masks[0].array
    assert classes[1, 1] == 1 and classes[0, 0] == 0
    index = np.zeros((6, 8), np.uint8)
    index[0, 0] = 2  # grey values are positions in labelmap.txt: 2 = person
    root = _cvat_task_export(tmp_path / "i", class_png=_png(index))
    classes = open_dataset(root).load_case("frame_a").masks[0].array
    assert classes[0, 0] == 2
    index[0, 0] = 3
    root = _cvat_task_export(tmp_path / "j", class_png=_png(index))
    with pytest.raises(ReadError, match="undeclared label 3"):
        open_dataset(root).load_case("frame_a").masks[0].array  # noqa: B018


def test_undeclared_colour_and_16_bit_refused(tmp_path):
    bad = np.zeros((6, 8, 3), np.uint8)
    bad[0, 0] = (1, 2, 3)
    root = _cvat_task_export(tmp_path / "u", class_png=_png(bad))
    with pytest.raises(ReadError, match=r"undeclared colour \(1, 2, 3\)"):
        open_dataset(root).load_case("frame_a").masks[0].array  # noqa: B018
    root = _cvat_task_export(tmp_path / "s", class_png=_png(np.full((6, 8), 257, np.uint16)))
    with pytest.raises(ReadError, match="8-bit"):
        open_dataset(root).load_case("frame_a").masks[0].array  # noqa: B018


def test_subset_files_with_underscore_are_ignored(tmp_path):
    root = _cvat_task_export(tmp_path / "x", subset="my_train")
    with pytest.raises(ReadError, match="no items listed"):
        open_dataset(root)


def _zip_with(tmp_path, name: str, symlink: bool = False):
    archive = tmp_path / "evil.zip"
    root = _cvat_task_export(tmp_path / "ok")
    with zipfile.ZipFile(archive, "w") as zf:
        for p in root.rglob("*"):
            if p.is_file():
                zf.write(p, p.relative_to(root).as_posix())
        info = zipfile.ZipInfo(name)
        if symlink:
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd" if symlink else "x")
    return archive


@pytest.mark.parametrize(
    ("name", "symlink"),
    [
        ("../escape.txt", False),
        ("/abs/path.txt", False),
        ("a/../../b.txt", False),
        ("SegmentationClass/link", True),
    ],
)
def test_unsafe_zip_entries_refused(tmp_path, name, symlink):
    archive = _zip_with(tmp_path, name, symlink)
    with pytest.raises(ReadError, match="escape|symbolic link"):
        import_cvat(archive)
    with pytest.raises(ReadError, match="escape|symbolic link"):
        safe_extract(archive, tmp_path / "target")
    assert not (tmp_path / "target").exists() and not (tmp_path / "escape.txt").exists()


def test_import_checks_volume_shape(tmp_path):
    root = _cvat_task_export(tmp_path / "v")
    with pytest.raises(ReadError, match="is \\(6, 8\\) in the export"):
        import_cvat(root, "frame_a", LabelMap.from_names({1: "Car"}), shape=(5, 8))
    classes, _, lm = import_cvat(
        root, "frame_a", LabelMap.from_names({4: "Car", 9: "person"}), shape=(6, 8)
    )
    assert classes[1, 1] == 4 and classes[4, 6] == 9 and lm.names()[9] == "person"


def test_task_made_from_exported_images_folder(tmp_path):
    """Frames uploaded as ``JPEGImages/<case>/slice_NNNN.png`` keep that prefix in item ids."""
    from napari_medseg.export import ExportItem
    from napari_medseg.export.cvat import export_cvat

    labels = np.zeros((3, 6, 8), np.uint8)
    labels[1, 2:4, 2:5] = 1
    ours = tmp_path / "ours"
    export_cvat(ours, [ExportItem("vol01", labels)], LabelMap.from_names({1: "Car"}))
    cvat = tmp_path / "from_cvat"
    for p in ours.rglob("*.png"):
        rel = p.relative_to(ours)
        target = cvat / rel.parts[0] / "JPEGImages" / Path(*rel.parts[1:])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(p.read_bytes())
    (cvat / "labelmap.txt").write_text((ours / "labelmap.txt").read_text())
    (cvat / "ImageSets/Segmentation").mkdir(parents=True)
    items = [f"JPEGImages/vol01/slice_{i:04d}" for i in range(3)]
    (cvat / "ImageSets/Segmentation/default.txt").write_text("\n".join(items) + "\n")
    ds = open_dataset(cvat)
    assert ds.case_ids() == ["vol01"]
    assert np.array_equal(ds.load_case("vol01").masks[0].array, labels)
