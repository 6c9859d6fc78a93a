"""``napari-medseg review``: every panel action has a command-line path on the same session."""

from __future__ import annotations

import json

import numpy as np

from napari_medseg.cli import main
from napari_medseg.io.detect import open_dataset
from napari_medseg.io.masks import mask_path, read_mask, write_mask
from napari_medseg.review.session import ReviewSession


def review(root, out, *args):
    return main(["review", str(root), "--out", str(out), "--reviewer", "carol", *args])


def test_review_cli_round_trip(msd_spleen, tmp_path, capsys):
    out = tmp_path / "review"
    assert review(msd_spleen, out, "next") == 0
    assert capsys.readouterr().out.strip() == "spleen_1"
    case = open_dataset(msd_spleen).load_case("spleen_1")
    fixed = case.masks[0].array.copy()
    fixed[2, 10:20, 10:20] = 1
    corrected = write_mask(case.reference_image(), fixed, tmp_path / "fixed.nii.gz")
    assert (
        review(
            msd_spleen,
            out,
            "set-status",
            "spleen_1",
            "accepted",
            "--notes",
            "fixed tip",
            "--mask",
            str(corrected),
        )
        == 0
    )
    np.testing.assert_array_equal(
        read_mask(mask_path(out, "spleen_1"), case.reference_image()).array, fixed
    )
    assert review(msd_spleen, out, "set-status", "spleen_2", "rejected") == 0
    capsys.readouterr()
    assert review(msd_spleen, out, "--json", "status") == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["spleen_1"]["status"] == "accepted" and rows["spleen_1"]["versions"] == 2
    assert rows["spleen_2"]["status"] == "rejected" and rows["spleen_3"]["status"] == "todo"
    assert review(msd_spleen, out, "next", "--status", "todo") == 0
    assert capsys.readouterr().out.strip() == "spleen_3"
    assert review(msd_spleen, out, "history", "spleen_1") == 0
    text = capsys.readouterr().out
    assert "v0 initial by dataset" in text and "v1 correction by carol" in text
    assert review(msd_spleen, out, "compare", "spleen_1") == 0
    assert capsys.readouterr().out.startswith("label 1: dice ")
    assert review(msd_spleen, out, "audit", "spleen_1") == 0
    assert "carol save spleen_1" in capsys.readouterr().out
    # A verdict on a reviewed case must go through a reopen: a one-line error, exit code 2.
    assert review(msd_spleen, out, "set-status", "spleen_1", "needs_fix") == 2
    assert "reopen it first" in capsys.readouterr().err


def test_review_cli_respects_a_lock_held_by_the_panel(msd_spleen, tmp_path, capsys):
    out = tmp_path / "review"
    panel = ReviewSession.open(msd_spleen, out, "alice")
    panel.open_case("spleen_1")
    assert review(msd_spleen, out, "set-status", "spleen_1", "rejected") == 2
    assert "open by alice" in capsys.readouterr().err
    assert review(msd_spleen, out, "status") == 0
    assert "open by alice" in capsys.readouterr().out
