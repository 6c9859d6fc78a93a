"""Case ids to file names, output paths kept inside their folder, metadata inside its dataset."""

from __future__ import annotations

import os

import pytest

from napari_medseg.core.errors import ReadError, WriteError
from napari_medseg.core.safe_names import (
    MAX_STEM,
    case_file,
    case_id_from_name,
    dataset_entry,
    output_path,
    safe_name,
)

HOSTILE_IDS = [
    "../../x/case",
    "/abs/path/case",
    "..",
    ".",
    ".hidden",
    "trailing.",
    "a/b",
    "a\\b",
    "C:evil",
    "CON",
    "nul.txt",
    "100%",
    "%2E%2E",
    "~user",
    "$HOME",
    "spaces in id",
    "ünïcode-名前",
    "nul\0byte",
    "x" * 300,
    "x" * 299 + "y",
]


def test_ordinary_ids_are_their_own_names():
    for cid in ("spleen_1", "BraTS-GLI-00000-000", "amos_0001", "case.v2", "PETCT_0af7ffe12a"):
        assert safe_name(cid) == cid


def test_hostile_ids_give_plain_distinct_reversible_names():
    names = [safe_name(cid) for cid in HOSTILE_IDS]
    assert len(set(names)) == len(names)
    for cid, name in zip(HOSTILE_IDS, names, strict=True):
        assert "/" not in name and "\\" not in name and "\0" not in name and ":" not in name
        assert not name.startswith(".") and not name.endswith(".")
        assert name.split(".")[0].upper() not in ("CON", "NUL")
        assert len(name.encode()) <= MAX_STEM
        back = case_id_from_name(name)
        assert back == cid or (back is None and len(cid) >= MAX_STEM // 3)


def test_empty_id_refused():
    with pytest.raises(WriteError):
        safe_name("")


def test_case_file_stays_inside(tmp_path):
    for cid in HOSTILE_IDS:
        path = case_file(tmp_path, cid, ".nii.gz")
        assert path.parent == tmp_path
        path.write_bytes(b"x")  # the file system accepts the name
    assert len(list(tmp_path.iterdir())) == len(HOSTILE_IDS)


def test_output_path_refuses_escapes_and_symlinks(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for bad in ("..", ".", "", "a/b", "a\\b"):
        with pytest.raises(WriteError):
            output_path(out, bad)
    os.symlink(tmp_path / "elsewhere.nii.gz", out / "case.nii.gz")
    with pytest.raises(WriteError, match="outside the output folder"):
        case_file(out, "case", ".nii.gz")
    assert output_path(out, "history", "case", "v0.nii.gz") == out / "history/case/v0.nii.gz"


@pytest.mark.parametrize(
    "entry", ["../x.nii.gz", "/etc/passwd", "~/x.nii.gz", "$HOME/x.nii.gz", "a/../../x", "C:\\x", 3]
)
def test_dataset_entry_refused(tmp_path, entry):
    with pytest.raises(ReadError) as err:
        dataset_entry(tmp_path, entry, tmp_path / "dataset.json", "training[0].image")
    assert "dataset.json" in str(err.value) and "training[0].image" in str(err.value)


def test_dataset_entry_inside(tmp_path):
    src = tmp_path / "dataset.json"
    assert (
        dataset_entry(tmp_path, "./imagesTr/a.nii.gz", src, "f") == tmp_path / "imagesTr/a.nii.gz"
    )
    assert dataset_entry(tmp_path, "imagesTr\\a.nii.gz", src, "f") == tmp_path / "imagesTr/a.nii.gz"
