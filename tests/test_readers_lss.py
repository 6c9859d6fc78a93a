"""LSS lumbar spine: v4, v1 and authors' layouts, VOC boxes on their slice, palette masks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_medseg.core.errors import ReadError
from napari_medseg.io.datasets.lss import LSSDataset, palette_labels, read_voc
from napari_medseg.io.detect import open_dataset
from napari_medseg.layers import case_layers
from napari_medseg.synthetic.lss import LEVELS, PNG_SCALE, make_lss


@pytest.fixture
def v4(tmp_path):
    return make_lss(tmp_path / "LSS", "v4")


def _box_mean(image, box):
    return float(
        image[box.slice_index, int(box.y0) : int(box.y1), int(box.x0) : int(box.x1)].mean()
    )


def test_v4_dicom_boxes_land_on_their_slice(v4):
    ds = open_dataset(v4)
    assert isinstance(ds, LSSDataset) and ds.case_ids() == ["1001", "1002"]
    case = ds.load_case("1001")
    [img] = case.images
    assert (
        img.modality == "MR"
        and img.shape == (5, 64, 64)
        and img.spacing == pytest.approx((4.0, 0.6, 0.6))
    )
    assert not img.loaded
    dicom_files = sorted((v4 / "DICOM" / "1001").iterdir())
    assert len(case.boxes) == 10
    xmls = sorted((v4 / "Foramina_Detection" / "1001").glob("*.xml"))
    from napari_medseg.io.dicom import find_series

    stems = [f.stem for f in find_series(v4 / "DICOM" / "1001")[0].files]
    assert stems != sorted(f.stem for f in dicom_files)  # file names do not follow slice order
    expected_slices = {stems.index(x.stem) for x in xmls}
    assert {b.slice_index for b in case.boxes} == expected_slices == {0, 4}
    arr = img.array
    for box in case.boxes:
        # The synthetic foramina are dark ovals: the box (rescaled from 128 px PNGs) sits on them.
        assert _box_mean(arr, box) < 0.6 * float(
            arr[2, int(box.y0) : int(box.y1), int(box.x0) : int(box.x1)].mean()
        )
        assert box.properties["level"] in LEVELS
        assert box.label[:3] in ("RFS", "LFS") and box.properties["grade"] == int(box.label[3])
        assert box.properties["side"] == ("right" if box.label[0] == "R" else "left")
    voc = read_voc(xmls[0])
    b0 = [b for b in case.boxes if b.slice_index == stems.index(xmls[0].stem)][0]
    assert (
        b0.x0 == voc.objects[0]["box"][0] / PNG_SCALE
        and b0.y1 == voc.objects[0]["box"][3] / PNG_SCALE
    )
    grades = {b.properties["grade_name"] for b in case.boxes}
    assert grades <= {"Normal", "Mild", "Moderate", "Severe"}


def test_v4_colour_mask_palette_and_slice(v4):
    case = open_dataset(v4).load_case("1002")
    [mask] = case.masks
    assert mask.shape == case.images[0].shape
    assert mask.labelmap.names() == {
        0: "background",
        1: "vertebral body",
        2: "IVD",
        3: "sacrum",
        4: "posterior A",
        5: "posterior B",
    }
    assert case.metadata["palette"]["0"] == [0, 0, 0] and len(case.metadata["palette"]) == 6
    m, img = mask.array, case.images[0].array
    index = case.metadata["mask_slice"]
    assert index == 2 and m[index].max() == 5 and not m[:index].any() and not m[index + 1 :].any()
    # Colours are numbered in sorted order: check one against the PNG, and the mask's placement.
    from PIL import Image

    png = np.asarray(Image.open(v4 / "Segmentation" / "Masks" / "1002.png"))
    colour = case.metadata["palette"]["3"]
    np.testing.assert_array_equal(m[index] == 3, (png == colour).all(axis=-1))
    means = [img[index][m[index] == k].mean() for k in range(1, 6)]
    assert max(means) > 1.8 * min(
        means
    )  # distinct tissues under distinct labels (e.g. the bright discs)


def test_v1_flat_layout_png_slices_and_grey_mask(tmp_path):
    root = make_lss(tmp_path / "v1", "v1", colour_masks=False)
    ds = open_dataset(root)
    assert ds.format == "lss" and ds.case_ids() == ["1001", "1002"]
    case = ds.load_case("1001")
    [img] = case.images
    assert img.shape == (5, 128, 128) and img.dtype == np.uint8
    assert {b.slice_index for b in case.boxes} == {0, 4}
    box = case.boxes[0]
    voc = read_voc(root / "Foramina_Detection" / "Annotations" / "1001_IM0000.xml")
    assert (box.x0, box.y0, box.x1, box.y1) == voc.objects[0]["box"]  # PNG pixels, no rescale
    [mask] = case.masks
    # Grey values 0..5 map to ids 0..5 and the six README classes by count.
    assert set(np.unique(mask.array)) == {0, 1, 2, 3, 4, 5}
    assert case.metadata["palette"] == {str(i): i for i in range(6)}
    assert any("resampled" in p for p in case.problems)  # the 64 px mask onto 128 px slices


def test_authors_layout_and_single_patient_folder(tmp_path):
    root = make_lss(tmp_path / "authors", "authors")
    ds = open_dataset(root)
    assert ds.format == "lss" and ds.case_ids() == ["1001", "1002"]
    case = ds.load_case("1002")
    assert case.images[0].shape == (5, 64, 64) and len(case.boxes) == 10 and not case.masks
    one = open_dataset(root / "1002" / "Sagittal")
    assert one.format == "lss" and one.case_ids() == ["1002"]
    assert len(one.load_case("1002").boxes) == 10


def test_entity_tricks_and_broken_xml_fail_one_case(v4):
    xml = sorted((v4 / "Foramina_Detection" / "1001").glob("*.xml"))[0]
    text = xml.read_text()
    xml.write_text(
        '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + text
    )
    ds = open_dataset(v4)
    with pytest.raises(ReadError, match="DOCTYPE") as err:
        ds.load_case("1001")
    assert xml.name in str(err.value)
    other = sorted((v4 / "Foramina_Detection" / "1002").glob("*.xml"))[0]
    other.write_text(
        "<annotation><object><name>RFS1</name><bndbox><xmin>a</xmin></bndbox></object></annotation>"
    )
    with pytest.raises(ReadError, match=other.name):
        ds.load_case("1002")


def test_palette_rules():
    six = np.array(
        [[10, 20, 30], [40, 50, 60]], np.uint8
    )  # no black and six values: lowest is background
    labels, lm, palette = palette_labels(six)
    assert labels.tolist() == [[0, 1, 2], [3, 4, 5]] and lm.names()[1] == "vertebral body"
    three = np.array(
        [[7, 9, 200]], np.uint8
    )  # not the documented count: generic names, no background
    labels, lm, palette = palette_labels(three)
    assert labels.tolist() == [[1, 2, 3]] and lm.names() == {
        0: "background",
        1: "class_1",
        2: "class_2",
        3: "class_3",
    }
    assert palette == {1: 7, 2: 9, 3: 200}


def test_layers_and_info_cli(v4, capsys):
    from napari_medseg.cli import main

    case = open_dataset(v4).load_case("1001")
    layers = case_layers(case)
    assert [layer[2] for layer in layers] == ["image", "labels", "shapes"]
    shapes = layers[2]
    assert len(shapes[0]) == 10 and shapes[0][0].shape == (4, 3)
    assert list(shapes[1]["features"]["grade_name"])[0] in ("Normal", "Mild", "Moderate", "Severe")
    assert main(["info", str(v4), "--json", "--case", "1001"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["format"] == "lss"
    [c] = report["cases"]
    assert (
        c["boxes"] == 10
        and c["images"][0]["modality"] == "MR"
        and c["images"][0]["shape"] == [5, 64, 64]
    )
    assert c["masks"][0]["labels"]["2"] == "IVD" and c["masks"][0]["voxels"]["2"] > 0
    assert c["images"][0]["stats"]["max"] > 1000
    size = sum(f.stat().st_size for f in v4.rglob("*") if f.is_file())
    assert size < 400_000


def test_mask_written_on_the_sagittal_dicom_grid_and_read_back(v4, tmp_path):
    import SimpleITK as sitk

    from napari_medseg.io.masks import case_mask_from_folder, mask_path, write_mask

    case = open_dataset(v4).load_case("1001")
    image, mask = case.images[0], case.masks[0]
    out = write_mask(image, mask.array, mask_path(tmp_path / "curated", case.id))
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(v4 / "DICOM" / "1001")))
    dicom, written = reader.Execute(), sitk.ReadImage(str(out))
    assert written.GetSize() == dicom.GetSize()
    np.testing.assert_allclose(written.GetOrigin(), dicom.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(written.GetDirection(), dicom.GetDirection(), atol=1e-4)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(written), mask.array)  # slice, row, column
    back = case_mask_from_folder(tmp_path / "curated", case)
    assert back.shape == image.shape
    np.testing.assert_array_equal(back.array, mask.array)
