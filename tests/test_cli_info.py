"""The ``napari-medseg info`` contract other tools rely on."""

import json

import pytest

from napari_medseg.cli import main


def run_json(capsys, *argv):
    assert main(["info", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_info_json_lists_every_case_without_stats(msd_brain, capsys):
    report = run_json(capsys, str(msd_brain))
    assert report["format"] == "msd"
    assert [c["id"] for c in report["cases"]] == ["braintumour_1", "braintumour_2", "braintumour_3"]
    case = report["cases"][0]
    assert [i["name"] for i in case["images"]] == ["FLAIR", "T1w", "t1gd", "T2w"]
    img = case["images"][0]
    assert set(img) >= {"name", "shape", "spacing", "dtype", "modality"}
    assert img["shape"] == [16, 48, 48] and img["spacing"] == pytest.approx(
        [5.0, 0.8, 0.8], rel=1e-6
    )
    assert img["modality"] == "MR" and "stats" not in img
    assert case["masks"][0]["labels"] == {
        "0": "background",
        "1": "edema",
        "2": "non-enhancing tumor",
        "3": "enhancing tumour",
    }
    assert case["boxes"] == 0
    assert report["cases"][2]["masks"] == []  # test case: no label


def test_info_case_reports_stats_and_voxels(msd_spleen, capsys):
    import nibabel as nib
    import numpy as np

    report = run_json(capsys, str(msd_spleen), "--case", "spleen_2")
    (case,) = report["cases"]
    ct = np.asanyarray(nib.load(msd_spleen / "imagesTr" / "spleen_2.nii.gz").dataobj)
    stats = case["images"][0]["stats"]
    assert stats["min"] == ct.min() and stats["max"] == ct.max()
    assert stats["mean"] == pytest.approx(ct.mean())
    lab = np.asanyarray(nib.load(msd_spleen / "labelsTr" / "spleen_2.nii.gz").dataobj)
    assert case["masks"][0]["voxels"] == {"0": int((lab == 0).sum()), "1": int((lab == 1).sum())}


@pytest.mark.parametrize("what", ["missing", "empty", "unknown"])
def test_info_bad_paths_exit_nonzero_with_one_line(tmp_path, capsys, what):
    path = tmp_path / what
    if what == "empty":
        path.mkdir()
    elif what == "unknown":
        path.mkdir()
        (path / "notes.txt").write_text("hello")
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_info_unknown_case_is_an_error(msd_spleen, capsys):
    assert main(["info", str(msd_spleen), "--case", "nope"]) == 2
    assert "no case 'nope'" in capsys.readouterr().err
