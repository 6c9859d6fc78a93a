"""NIfTI/MHA exports on the source grid, and COCO RLE checked by an independent decoder."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from napari_medseg.core.errors import WriteError
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.export import ExportItem
from napari_medseg.export.coco import coco_document, encode, rle_counts, rle_string
from napari_medseg.export.nifti import native_suffix, write_file
from napari_medseg.io.detect import open_dataset


def test_nifti_cli_on_source_grid(tmp_path, msd_brain):
    import SimpleITK as sitk

    from napari_medseg.cli import main

    out = tmp_path / "nifti"
    assert (
        main(
            [
                "export",
                str(msd_brain),
                "--case",
                "braintumour_1",
                "--format",
                "nifti",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    src = nib.load(str(msd_brain / "labelsTr/braintumour_1.nii.gz"))
    got = nib.load(str(out / "braintumour_1.nii.gz"))
    assert np.allclose(got.affine, src.affine)
    assert np.array_equal(np.asarray(got.dataobj), np.asarray(src.dataobj))
    image = sitk.ReadImage(str(msd_brain / "imagesTr/braintumour_1.nii.gz"))
    mask = sitk.ReadImage(str(out / "braintumour_1.nii.gz"))
    assert np.allclose(mask.GetOrigin(), image.GetOrigin()[:3]) and np.allclose(
        mask.GetSpacing(), image.GetSpacing()[:3]
    )
    assert np.allclose(
        np.reshape(mask.GetDirection(), (3, 3)), np.reshape(image.GetDirection(), (4, 4))[:3, :3]
    )


def test_nifti_from_curated_masks_folder(tmp_path, msd_spleen):
    from napari_medseg.cli import main
    from napari_medseg.io.masks import write_mask

    case = open_dataset(msd_spleen).load_case("spleen_2")
    curated = case.masks[0].array.copy()
    curated[0, :4, :4] = 1
    write_mask(case.reference_image(), curated, tmp_path / "curated" / "spleen_2.nii.gz")
    out = tmp_path / "o"
    args = [
        "export",
        str(msd_spleen),
        "--format",
        "nifti",
        "--out",
        str(out),
        "--masks",
        str(tmp_path / "curated"),
    ]
    assert main(args) == 0  # spleen_1 has no curated mask: skipped
    assert sorted(p.name for p in out.iterdir()) == [
        ".napari-medseg-export.json",
        "spleen_2.nii.gz",
    ]
    back = open_dataset(msd_spleen).load_case("spleen_2")
    from napari_medseg.io.masks import read_mask

    assert np.array_equal(read_mask(out / "spleen_2.nii.gz", back.reference_image()).array, curated)
    assert (
        main(["export", str(msd_spleen), "--format", "nifti", "--out", str(msd_spleen / "x")]) == 2
    )


def test_mha_source_gets_mha_mask(tmp_path):
    import SimpleITK as sitk

    from napari_medseg.io.volumes import read_itk

    arr = np.zeros((6, 10, 12), np.int16)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.7, 0.8, 2.5))
    img.SetOrigin((10.0, -20.0, 5.0))
    img.SetDirection((0, 1, 0, 1, 0, 0, 0, 0, 1))
    src = tmp_path / "src" / "ct.mha"
    src.parent.mkdir()
    sitk.WriteImage(img, str(src))
    vol = read_itk(src)
    assert native_suffix(vol) == ".mha"
    mask = np.zeros(vol.shape, np.uint8)
    mask[2, 3:5, 4:9] = 2
    out = write_file(
        tmp_path / "out" / "ct.mha", ExportItem("ct", mask, reference=vol, source=src.parent)
    )
    back = sitk.ReadImage(str(out))
    assert np.allclose(back.GetOrigin(), img.GetOrigin()) and np.allclose(
        back.GetSpacing(), img.GetSpacing()
    )
    assert np.allclose(back.GetDirection(), img.GetDirection())
    assert int(sitk.GetArrayFromImage(back).sum()) == 2 * 10
    assert np.array_equal(read_itk(out, labelmap=LabelMap.from_names({2: "x"})).array, mask)
    with pytest.raises(WriteError, match="inside the source"):
        write_file(src.parent / "m.mha", ExportItem("ct", mask, reference=vol, source=src.parent))


# ---- an independent COCO RLE decoder (after pycocotools' rleFrString / rleDecode) ----------
def decode_string(s: str) -> list[int]:
    counts, p = [], 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            c = ord(s[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p, k = p + 1, k + 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def decode_mask(rle: dict) -> np.ndarray:
    h, w = rle["size"]
    flat, value, pos = np.zeros(h * w, np.uint8), 0, 0
    for n in decode_string(rle["counts"]):
        flat[pos : pos + n] = value
        pos, value = pos + n, 1 - value
    assert pos == h * w
    return flat.reshape((h, w), order="F")


def test_rle_known_values():
    m = np.array([[0, 1], [0, 1], [1, 1]], np.uint8)  # column-major: 0 0 1 1 1 1
    assert rle_counts(m) == [2, 4]
    assert rle_counts(np.ones((2, 2))) == [0, 4]
    assert rle_string([4]) == "4"
    assert decode_string(rle_string([0, 4])) == [0, 4]


def test_rle_random_masks_round_trip():
    rng = np.random.default_rng(0)
    for shape in [(1, 1), (5, 7), (64, 48), (240, 240)]:
        for density in (0.0, 0.02, 0.5, 1.0):
            m = rng.random(shape) < density
            assert np.array_equal(decode_mask(encode(m)), m)
    big = np.zeros((300, 300), bool)
    big[10:290, 5:295] = True  # long runs (> 2**15) and negative deltas
    assert np.array_equal(decode_mask(encode(big)), big)


def test_coco_document_matches_masks(tmp_path):
    from napari_medseg.synthetic.phantom import torso

    _, _, labels = torso((6, 40, 48), seed=2)
    lm = LabelMap.from_names({1: "liver", 2: "spleen", 3: "lesion"})
    doc = coco_document([ExportItem("c", labels)], lm)
    assert [c["name"] for c in doc["categories"]] == ["liver", "spleen", "lesion"]
    assert len(doc["images"]) == 6 and doc["images"][0]["file_name"] == "c/slice_0000.png"
    rebuilt = np.zeros_like(labels)
    for ann in doc["annotations"]:
        m = decode_mask(ann["segmentation"])
        assert ann["area"] == int(m.sum()) and ann["iscrowd"] == 1
        x, y, w, h = ann["bbox"]
        assert m[y : y + h, x : x + w].sum() == m.sum()
        z = ann["image_id"] - 1
        assert not rebuilt[z][m.astype(bool)].any()  # instances never overlap
        rebuilt[z][m.astype(bool)] = ann["category_id"]
    assert np.array_equal(rebuilt, labels)
    json.dumps(doc)


def test_coco_cli(tmp_path, msd_spleen):
    from napari_medseg.cli import main

    out = tmp_path / "coco"
    assert (
        main(
            ["export", str(msd_spleen), "--case", "spleen_1", "--format", "coco", "--out", str(out)]
        )
        == 0
    )
    doc = json.loads((out / "instances_default.json").read_text())
    mask = open_dataset(msd_spleen).load_case("spleen_1").masks[0].array
    assert len(doc["images"]) == mask.shape[0]
    total = sum(decode_mask(a["segmentation"]).sum() for a in doc["annotations"])
    assert total == int((mask > 0).sum())


def test_native_suffix_cli_for_mha_dataset(tmp_path):
    """Curated masks of an MHA image: ``--suffix native`` writes MHA, the default NIfTI."""
    import SimpleITK as sitk

    from napari_medseg.cli import main
    from napari_medseg.io.masks import read_mask, write_mask

    src = tmp_path / "src"
    src.mkdir()
    img = sitk.GetImageFromArray(np.zeros((4, 8, 8), np.int16))
    img.SetSpacing((0.5, 0.5, 2.0))
    img.SetOrigin((3.0, 4.0, 5.0))
    sitk.WriteImage(img, str(src / "ct.mha"))
    ds = open_dataset(src / "ct.mha")
    case = ds.load_case(ds.case_ids()[0])
    mask = np.zeros((4, 8, 8), np.uint8)
    mask[1, 2:4, 2:6] = 1
    write_mask(case.reference_image(), mask, tmp_path / "curated" / f"{case.id}.nii.gz")
    for suffix, ext in (("native", ".mha"), (".nii.gz", ".nii.gz")):
        out = tmp_path / suffix.strip(".")
        args = ["export", str(src / "ct.mha"), "--format", "nifti", "--out", str(out)]
        assert main([*args, "--suffix", suffix, "--masks", str(tmp_path / "curated")]) == 0
        written = out / f"{case.id}{ext}"
        assert np.array_equal(read_mask(written, case.reference_image()).array, mask)
    back = sitk.ReadImage(str(tmp_path / "native" / f"{case.id}.mha"))
    assert np.allclose(back.GetOrigin(), img.GetOrigin()) and np.allclose(
        back.GetSpacing(), img.GetSpacing()
    )
