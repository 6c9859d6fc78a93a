"""The human-in-the-loop loop through the CLI contracts that tie the commands together:
presegment -> review -> qa -> export --masks -> info on the export, on a PET/CT dataset."""

import csv
import json

import nibabel as nib
import numpy as np

from napari_medseg.cli import main
from napari_medseg.synthetic.petct import make_synthetic_petct


def test_presegment_review_qa_export_round(tmp_path, capsys):
    data = make_synthetic_petct(tmp_path / "data", n_cases=2, shape=(12, 32, 32))
    pre, review, report, cvat = (tmp_path / n for n in ("pre", "review", "qa", "cvat"))
    before = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}

    # 1. Pre-segment every case with the SUV threshold engine (inline, no cluster).
    assert main(["presegment", str(data), "--engine", "threshold", "--method", "suv", "--workers", "0",
                 "--out", str(pre)]) == 0  # fmt: skip
    summary = json.loads((pre / "summary.json").read_text())
    assert sorted(summary["done"]) == ["synpet_000", "synpet_001"] and not summary["failed"]
    seg = nib.load(data / "synpet_000" / "seg.nii.gz")
    mask = nib.load(pre / "synpet_000.nii.gz")
    np.testing.assert_array_equal(mask.affine, seg.affine)  # on the source grid

    # 2. A reviewer accepts one case, starting from the pre-segmentation.
    assert main(["review", str(data), "--out", str(review), "--reviewer", "ana", "--initial", str(pre),
                 "set-status", "synpet_000", "accepted", "--mask", str(pre / "synpet_000.nii.gz")]) == 0  # fmt: skip
    assert main(["review", str(data), "--out", str(review), "--json", "status"]) == 0
    capsys.readouterr()
    assert (review / "synpet_000.nii.gz").is_file()

    # 3. QA of the reviewed masks against the dataset's own segmentation.
    assert main(["qa", str(data), "--masks", str(review), "--out", str(report)]) == 0
    rows = list(csv.DictReader((report / "report.csv").open()))
    assert rows[0].keys() >= {"case", "label", "name", "dice", "iou", "hd95_mm", "assd_mm", "flags"}
    lesion = [r for r in rows if r["case"] == "synpet_000" and r["name"] == "lesion"]
    assert lesion and float(lesion[0]["dice"]) > 0.5  # SUV 2.5 finds the hot lesion
    assert (report / "report.html").read_text().lstrip().lower().startswith("<!doctype html")

    # 4. Export the reviewed mask for CVAT and read the export back as a dataset.
    assert main(["export", str(data), "--case", "synpet_000", "--format", "cvat", "--masks", str(review),
                 "--out", str(cvat)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["info", str(cvat), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "cvat" and info["cases"][0]["masks"]

    # Source data untouched throughout.
    assert {p: p.read_bytes() for p in data.rglob("*") if p.is_file()} == before
