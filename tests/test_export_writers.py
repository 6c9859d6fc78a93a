"""napari writer contributions (File > Save Selected Layers), called as npe2 calls them."""

from __future__ import annotations

import numpy as np

from napari_medseg.io.detect import open_dataset


def test_writer_contributions(msd_spleen, tmp_path):
    from napari_medseg._reader import napari_get_reader
    from napari_medseg._writer import write_coco, write_cvat, write_nifti

    layers = napari_get_reader(str(msd_spleen))(str(msd_spleen))
    assert write_cvat(str(tmp_path / "a.zip"), layers) == [str(tmp_path / "a.zip")]
    label = next(t for t in layers if t[2] == "labels")
    assert write_nifti(str(tmp_path / "m.nii.gz"), label[0], label[1]) == [
        str(tmp_path / "m.nii.gz")
    ]
    assert write_coco(str(tmp_path / "c.json"), layers) == [str(tmp_path / "c.json")]
    import nibabel as nib

    src = nib.load(str(msd_spleen / "labelsTr" / "spleen_1.nii.gz"))
    got = nib.load(str(tmp_path / "m.nii.gz"))
    assert np.allclose(src.affine, got.affine) and np.array_equal(
        np.asarray(src.dataobj), np.asarray(got.dataobj)
    )
    assert (
        open_dataset(tmp_path / "a.zip").load_case("spleen_1").masks[0].array.sum()
        == label[0].sum()
    )


def test_writer_plain_layers_and_instances(tmp_path):
    """Layers not opened by napari-medseg: names from features, an 'instances' layer for objects."""
    from napari_medseg._writer import write_cvat
    from napari_medseg.export.cvat import import_cvat

    seg = np.zeros((3, 10, 12), np.uint8)
    seg[:, 2:5, 2:5] = 1
    seg[1, 6:9, 6:11] = 2
    inst = np.where(seg == 1, 4, np.where(seg == 2, 9, 0)).astype(np.uint16)
    features = {"index": np.array([0, 1, 2]), "name": np.array(["background", "cyst", "tumour"])}
    layers = [
        (seg, {"name": "seg", "features": features}, "labels"),
        (inst, {"name": "instances"}, "labels"),
        (np.random.default_rng(0).normal(size=seg.shape), {"name": "img"}, "image"),
    ]
    out = tmp_path / "plain.cvat"
    assert write_cvat(str(out), layers) == [str(out)]
    assert (out / "labelmap.txt").read_text().splitlines()[1:] == [
        "background:0,0,0::",
        "cyst:230,25,75::",
        "tumour:60,180,75::",
    ]
    assert len(list((out / "JPEGImages").rglob("*.png"))) == 3
    classes, instances, _ = import_cvat(out)
    assert np.array_equal(classes, seg) and np.array_equal(instances, inst)
