"""``napari-medseg qa`` on an MSD task laid out like the real one: CSV rows, flags, HTML report."""

from __future__ import annotations

import csv
import json
import re
from html import escape as html_escape

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_medseg.cli import main
from napari_medseg.io.detect import open_dataset
from napari_medseg.io.masks import mask_path, write_mask
from napari_medseg.review.metrics import compare
from napari_medseg.review.report import COLUMNS, svg_values
from napari_medseg.synthetic.msd import make_msd


@pytest.fixture
def qa_setup(tmp_path):
    root = make_msd(tmp_path / "data", "Task09_Spleen", n_train=3, n_test=1)
    ds = open_dataset(root)
    masks = tmp_path / "masks"
    c1, c2, c3 = (ds.load_case(c) for c in ("spleen_1", "spleen_2", "spleen_3"))
    write_mask(c1.reference_image(), c1.masks[0].array, mask_path(masks, "spleen_1"))  # perfect
    bad = ndi.binary_erosion(c2.masks[0].array).astype(np.uint8)
    bad[2, 2, 2] = 5  # an undeclared label
    write_mask(c2.reference_image(), bad, mask_path(masks, "spleen_2"))
    wrong = np.zeros((16, 40, 48), np.uint8)  # another grid
    nib.save(nib.Nifti1Image(wrong, np.eye(4)), str(mask_path(masks, "spleen_3")))
    return root, ds, masks, bad  # spleen_4 (test split) has no mask at all


def read_rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_qa_cli_writes_csv_and_html(qa_setup, tmp_path, capsys):
    root, ds, masks, bad = qa_setup
    assert main(["qa", str(root), "--masks", str(masks), "--out", str(tmp_path / "report")]) == 0
    rows = read_rows(tmp_path / "report" / "report.csv")
    assert tuple(rows[0].keys()) == COLUMNS
    by = {(r["case"], r["label"]): r for r in rows}
    perfect = by[("spleen_1", "1")]
    assert (perfect["name"], float(perfect["dice"]), float(perfect["hd95_mm"])) == (
        "spleen",
        1.0,
        0.0,
    )
    assert perfect["flags"] == "" or "undeclared" not in perfect["flags"]
    # The eroded mask: metrics equal an independent computation through compare's own inputs.
    ref = ds.load_case("spleen_2").masks[0].array
    (expect,) = compare(bad, ref, ds.load_case("spleen_2").reference_image().spacing, labels=[1])
    assert float(by[("spleen_2", "1")]["dice"]) == pytest.approx(expect.dice, abs=1e-4)
    assert float(by[("spleen_2", "1")]["dice"]) == pytest.approx(
        2 * np.sum((bad == 1) & (ref == 1)) / (np.sum(bad == 1) + np.sum(ref == 1)), abs=1e-4
    )
    assert "undeclared_label" in by[("spleen_2", "5")]["flags"]
    assert "undeclared_label" not in by[("spleen_2", "1")]["flags"]
    assert by[("spleen_2", "5")]["name"] == "label_5"
    assert by[("spleen_3", "1")]["flags"] == "grid_mismatch" and by[("spleen_3", "1")]["dice"] == ""
    assert by[("spleen_4", "1")]["flags"] == "missing"
    html = (tmp_path / "report" / "report.html").read_text()
    assert "<svg" in html and "spleen_2" in html
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html), (
        "the report must be self-contained"
    )
    order = [m.group(1) for m in re.finditer(r"<tr[^>]*><td>(spleen_\d)</td>", html)]
    assert order.index("spleen_1") > order.index("spleen_2"), "worst cases first"
    assert "spleen_3" in capsys.readouterr().err


def test_qa_against_a_reference_folder(qa_setup, tmp_path):
    root, ds, masks, bad = qa_setup
    # Compare a folder with itself: every readable case agrees perfectly.
    assert (
        main(
            [
                "qa",
                str(root),
                "--masks",
                str(masks),
                "--reference",
                str(masks),
                "--case",
                "spleen_2",
                "--out",
                str(tmp_path / "r2"),
            ]
        )
        == 0
    )
    rows = read_rows(tmp_path / "r2" / "report.csv")
    assert [(r["case"], r["label"], r["dice"]) for r in rows] == [
        ("spleen_2", "1", "1.0000"),
        ("spleen_2", "5", "1.0000"),
    ]


def test_qa_refuses_report_inside_source_and_missing_folder(qa_setup, capsys):
    root, ds, masks, _ = qa_setup
    assert main(["qa", str(root), "--masks", str(masks), "--out", str(root / "qa")]) == 2
    assert (
        main(["qa", str(root), "--masks", str(root / "nope"), "--out", str(masks.parent / "r")])
        == 2
    )
    err = capsys.readouterr().err
    assert "refusing to write inside the source" in err and "no such masks folder" in err


def test_a_corrupt_reference_is_flagged_and_the_run_goes_on(qa_setup, tmp_path):
    root, ds, masks, _ = qa_setup
    refs = tmp_path / "refs"
    refs.mkdir()
    mask_path(refs, "spleen_1").write_bytes(b"not a nifti")
    case = ds.load_case("spleen_2")
    write_mask(case.reference_image(), case.masks[0].array, mask_path(refs, "spleen_2"))
    out = tmp_path / "r3"
    args = ["qa", str(root), "--masks", str(masks), "--reference", str(refs), "--out", str(out)]
    assert main(args) == 0
    by = {(r["case"], r["label"]): r for r in read_rows(out / "report.csv")}
    assert by[("spleen_1", "1")]["flags"] == "unreadable"
    assert by[("spleen_2", "1")]["dice"] != ""


def test_bad_agreement_is_flagged_with_its_slice_and_the_run_is_recorded(qa_setup, tmp_path):
    """Issue 12 (2): an over-segmented mask (Dice ~0.1) used to pass as "0 flagged"."""
    root, ds, masks, _ = qa_setup
    case = ds.load_case("spleen_1")
    image = case.reference_image()
    loose = tmp_path / "loose"
    blob = np.zeros(image.shape[:3], np.uint8)
    blob[2:-2, 4:-4, 4:-4] = 1  # an Otsu-like box around the body
    write_mask(image, blob, mask_path(loose, "spleen_1"))
    out = tmp_path / "r4"
    args = ["qa", str(root), "--masks", str(loose), "--case", "spleen_1", "--out", str(out)]
    assert main(args) == 0
    (row,) = read_rows(out / "report.csv")
    assert list(row)[COLUMNS.index("flags") + 1] == "slice" == COLUMNS[-1]
    assert row["flags"].split(";")[:2] == ["low_dice", "volume_diff"]
    slices = row["slice"].split(";")
    assert len(slices) == len(row["flags"].split(";")) and all(s.isdigit() for s in slices[:2])
    assert 0 <= int(slices[0]) < image.shape[0]
    html = (out / "report.html").read_text()
    run = json.loads((out / "report.json").read_text())
    assert run["dataset"] == str(root.resolve()) and run["masks"] == str(loose.resolve())
    assert run["version"].startswith("napari-medseg ") and run["flagged"] == ["spleen_1"]
    assert run["options"]["min_dice"] == 0.8
    for text in (str(loose.resolve()), run["date"], run["version"]):
        assert html_escape(text) in html
    assert "<th>slice</th>" in html
    assert "<circle" in html and "<rect x" not in html.split("flags (rows)")[0]  # one value: a dot
    # Looser thresholds from the command line: the same mask passes the agreement checks.
    args += ["--min-dice", "0.01", "--max-volume-diff", "1000", "--out", str(tmp_path / "r5")]
    assert main(args) == 0
    (row,) = read_rows(tmp_path / "r5" / "report.csv")
    assert "low_dice" not in row["flags"] and "volume_diff" not in row["flags"]


def test_a_reference_label_absent_from_the_mask_is_missing(qa_setup, tmp_path):
    root, ds, masks, _ = qa_setup
    case = ds.load_case("spleen_1")
    empty = tmp_path / "empty"
    write_mask(
        case.reference_image(),
        np.zeros(case.masks[0].shape, np.uint8),
        mask_path(empty, "spleen_1"),
    )
    out = tmp_path / "r6"
    assert (
        main(["qa", str(root), "--masks", str(empty), "--case", "spleen_1", "--out", str(out)]) == 0
    )
    (row,) = read_rows(out / "report.csv")
    assert row["flags"] == "empty;missing"
    ref = np.asarray(case.masks[0].array)
    assert int(row["slice"].split(";")[1]) == int(np.argmax((ref == 1).sum(axis=(1, 2))))


def test_plots_fit_the_number_of_values():
    few, many = svg_values([0.5, 0.9], "dice"), svg_values(list(np.linspace(0, 1, 50)), "dice")
    assert few.count("<circle") == 2 and "<rect" not in few and "0.9" in few
    assert "<circle" not in many and 5 <= many.count("<rect") <= 20
