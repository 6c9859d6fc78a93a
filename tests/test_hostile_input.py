"""Hostile and damaged input, through the CLI as users run it (a subprocess each).

Every refusal is checked the same way (:func:`refused`): exit code 2, one line naming the file,
no traceback; the input tree is unchanged and nothing is written outside ``--out``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_medseg.synthetic.msd import make_msd, write_nifti
from napari_medseg.synthetic.nnunet import make_nnunet

REPO = Path(__file__).resolve().parents[1]
SHAPE = (4, 16, 16)


def cli(*args, env: dict | None = None, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """``python -m napari_medseg.cli ARGS`` with this checkout first on the path."""
    full = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "napari_medseg.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=full,
        timeout=timeout,
        **kw,
    )


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` (links not followed) with its SHA-256."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(root))] = "link:" + os.readlink(p)
        elif p.is_file():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[str(p.relative_to(root)) + "/"] = ""
    return out


def refused(proc: subprocess.CompletedProcess, names: str, rc: int = 2) -> str:
    """The CLI refused with exit code ``rc`` (1: a case failed, the others were reported) and
    one line that names ``names``; no traceback."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == rc, (proc.returncode, proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert names in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def world(tmp_path):
    """A folder holding only ``data/``: anything new outside ``out/`` is a stray write."""
    (tmp_path / "data").mkdir()
    return tmp_path


def stray(world: Path, before: dict, out: Path | None = None) -> list[str]:
    """Paths created or changed under ``world`` outside ``out``."""
    after = tree(world)
    prefix = f"{out.relative_to(world)}" if out is not None else None
    return [
        k
        for k, v in after.items()
        if before.get(k) != v and not (prefix and (k == prefix + "/" or k.startswith(prefix + "/")))
    ]


# -- 1. names from data never leave the output folder ------------------------------------------
def test_hostile_case_ids_stay_inside_out(world):
    """nnU-Net ``dataset`` keys are case ids: ``../../x/case`` and ``/abs/case`` are file names."""
    ds = make_nnunet(world / "data", "autopet2", shape=SHAPE, dataset_key=".")
    meta = json.loads((ds / "dataset.json").read_text())
    entries = list(meta["dataset"].values())
    meta["dataset"] = {"../../x/case": entries[0], "/abs/path/case": entries[1]}
    (ds / "dataset.json").write_text(json.dumps(meta))
    before, out = tree(world), world / "out"
    proc = cli("presegment", ds, "--engine", "threshold", "--method", "otsu", "--channel", "CT",
               "--workers", "0", "--out", out)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert stray(world, before, out) == []
    written = sorted(p.name for p in out.glob("*.nii.gz"))
    assert written == ["%2E.%2F..%2Fx%2Fcase.nii.gz", "%2Fabs%2Fpath%2Fcase.nii.gz"]
    before, exp = tree(world), world / "exp"
    proc = cli("export", ds, "--format", "nifti", "--masks", out, "--out", exp)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in exp.glob("*.nii.gz")) == written
    assert stray(world, before, exp) == []


@pytest.mark.parametrize("entry", ["../outside.nii.gz", "$HOME/x.nii.gz"])  # more: test_safe_names
def test_metadata_pointing_outside_is_refused(world, entry):
    ds = make_msd(world / "data", "Task09_Spleen", n_train=1, n_test=0, shape=SHAPE)
    write_nifti(world / "outside.nii.gz", np.zeros(SHAPE, np.int16), (1, 1, 1))
    meta = json.loads((ds / "dataset.json").read_text())
    meta["training"][0]["label"] = entry
    (ds / "dataset.json").write_text(json.dumps(meta))
    before = tree(world)
    line = refused(cli("info", ds), "dataset.json")
    assert "training[0].label" in line
    assert tree(world) == before


# -- 4. metadata validated: one line naming file and field ---------------------------------------
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"labels": {"one": "spleen"}}, "labels.one"),
        ({"training": [{"label": "./labelsTr/x.nii.gz"}]}, "training[0]"),
    ],
)
def test_malformed_dataset_json(world, change, field):
    ds = make_msd(world / "data", "Task09_Spleen", n_train=1, n_test=0, shape=SHAPE)
    meta = json.loads((ds / "dataset.json").read_text())
    (ds / "dataset.json").write_text(json.dumps({**meta, **change}))
    before = tree(world)
    assert f" {field}" in refused(cli("info", ds), "dataset.json")
    assert tree(world) == before


def test_dataset_json_not_utf8(world):
    ds = make_msd(world / "data", "Task09_Spleen", n_train=1, n_test=0, shape=SHAPE)
    text = (ds / "dataset.json").read_text().replace("synthetic", "synth\u00e9tique")
    (ds / "dataset.json").write_bytes(text.encode("latin-1"))
    assert "not utf-8" in refused(cli("info", ds), "dataset.json")


# -- 5. ambiguity refused or reported --------------------------------------------------------------
def test_same_name_in_two_splits_gives_two_cases(world):
    ds = make_nnunet(world / "data", "autopet2", shape=SHAPE)
    tr = sorted((ds / "imagesTr").glob("*_0000.nii.gz"))[0]
    for f in (ds / "imagesTs").glob("*"):
        f.unlink()
    for f in (ds / "imagesTr").glob(tr.name.replace("_0000", "_000?")):
        (ds / "imagesTs" / f.name).write_bytes(f.read_bytes())
    proc = cli("info", ds, "--json")
    assert proc.returncode == 0, proc.stderr
    ids = [c["id"] for c in json.loads(proc.stdout)["cases"]]
    stem = tr.name[: -len("_0000.nii.gz")]
    assert stem in ids and f"imagesTs/{stem}" in ids


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "-1"], "--workers: must be 0 or more"),
        (["--method", "value", "--threshold", "nan"], "--threshold: must be a finite number"),
    ],
)
def test_bad_numbers_refused(world, args, message):
    ds = make_msd(world / "data", "Task09_Spleen", n_train=1, n_test=0, shape=SHAPE)
    before = tree(world)
    proc = cli("presegment", ds, "--engine", "threshold", "--out", world / "out", *args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert tree(world) == before


@pytest.mark.parametrize("command", ["embed", "train"])
def test_batch_size_below_one_refused(world, command):
    """A negative batch size used to make ``embed`` report slices cached that were not."""
    ds = make_msd(world / "data", "Task09_Spleen", n_train=1, n_test=0, shape=SHAPE)
    before = tree(world)
    out = ["--cache", world / "cache"] if command == "embed" else ["--out", world / "model.pt"]
    proc = cli(command, ds, "--checkpoint", world / "none.pt", *out, "--batch-size", "-2")
    assert proc.returncode == 2 and "--batch-size: must be 1 or more" in proc.stderr
    assert "Traceback" not in proc.stderr and tree(world) == before


def test_unreachable_scheduler_fails_fast(world):
    ds = make_msd(world / "data", "Task09_Spleen", n_train=1, n_test=0, shape=SHAPE)
    proc = cli("presegment", ds, "--engine", "threshold", "--method", "otsu", "--out",
               world / "out", "--scheduler", "tcp://127.0.0.1:9", timeout=60)  # fmt: skip
    line = refused(proc, "scheduler")
    assert "tcp://127.0.0.1:9" in line


def test_nan_statistics_are_null(world):
    ds = make_msd(world / "data", "Task09_Spleen", n_train=1, n_test=0, shape=SHAPE)
    image = ds / "imagesTr" / "spleen_1.nii.gz"
    arr = np.zeros(SHAPE, np.float32)
    arr[0, 0, 0], arr[0, 0, 1] = np.nan, np.inf
    write_nifti(image, arr, (5.0, 0.8, 0.8))
    proc = cli("info", ds, "--json", "--case", "spleen_1")
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout)["cases"][0]["images"][0]["stats"]
    assert stats["mean"] is None or np.isfinite(stats["mean"])
    assert None in stats.values()


def test_closed_stdout_ends_quietly(world):
    ds = make_msd(world / "data", "Task09_Spleen", n_train=2, n_test=1, shape=SHAPE)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        f"{sys.executable} -m napari_medseg.cli info --json {ds} | head -1",
        shell=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.stdout.strip() == "{"
    assert proc.stderr == ""


# -- 2. never delete or replace what we did not write ----------------------------------------------
def test_cache_folder_with_foreign_files_or_inside_data_refused(world):
    ds = make_msd(world / "data", "Task09_Spleen", n_train=1, n_test=0, shape=SHAPE)
    mine = world / "mine"
    mine.mkdir()
    np.savez(mine / "my_results.npz", x=np.arange(3))
    before = tree(world)
    line = refused(cli("embed", ds, "--checkpoint", world / "none.pth", "--cache", mine,
                       "--cache-max-gb", "0"), "mine")  # fmt: skip
    assert "my_results.npz" in line
    refused(cli("embed", ds, "--checkpoint", world / "none.pth", "--cache", ds / "cache"),
            "inside the source data")  # fmt: skip
    assert tree(world) == before


def test_cache_trims_only_its_own_files(tmp_path):
    from napari_medseg.engines.sam_cache import EmbeddingCache, slice_key

    cache = EmbeddingCache(tmp_path / "cache", max_bytes=0)
    for i in range(2):
        key = slice_key(np.full((4, 4, 3), i, np.uint8), "m")
        cache.put(key, np.zeros((2, 2, 2)), {})
    np.savez(tmp_path / "cache" / "user.npz", x=np.arange(3))  # put there after the cache
    assert cache.count() == 2
    assert cache.trim() == 2
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["index.txt", "user.npz"]
    assert EmbeddingCache(tmp_path / "cache").clear() == 0


def test_export_keeps_user_files_and_refuses_foreign_folders(world):
    ds = make_msd(world / "data", "Task09_Spleen", n_train=1, n_test=0, shape=SHAPE)
    busy = world / "busy"
    busy.mkdir()
    (busy / "labelmap.txt").write_text("# an export of someone else's\n")
    (busy / "notes.txt").write_text("keep me")
    before = tree(world)
    for fmt in ("cvat", "nifti", "coco"):
        refused(cli("export", ds, "--format", fmt, "--out", busy), "busy")
    assert tree(world) == before
    exp = world / "exp"
    assert cli("export", ds, "--format", "cvat", "--out", exp).returncode == 0
    (exp / "notes.txt").write_text("my notes")
    (exp / "SegmentationClass" / "mine.txt").write_text("mine too")
    proc = cli("export", ds, "--format", "cvat", "--out", exp)
    assert proc.returncode == 0, proc.stderr
    assert (exp / "notes.txt").read_text() == "my notes"
    assert (exp / "SegmentationClass" / "mine.txt").read_text() == "mine too"
    assert (exp / "labelmap.txt").is_file()


def test_leftovers_of_a_killed_run_are_removed(world):
    ds = make_msd(world / "data", "Task09_Spleen", n_train=1, n_test=0, shape=SHAPE)
    dead = subprocess.Popen(["true"])  # a finished process's pid: the killed run's
    dead.wait()
    tmp_zip = world / f".exp.zip.medseg-tmp-{dead.pid}-x1y2.zip"
    tmp_zip.write_bytes(b"PK half a zip")
    tmp_dir = world / f".exp.medseg-tmp-{dead.pid}-abcd"
    (tmp_dir / "SegmentationClass").mkdir(parents=True)
    live = world / f".exp.zip.medseg-tmp-{os.getpid()}-live.zip"  # a run still going: kept
    live.write_bytes(b"PK")
    proc = cli("export", ds, "--format", "cvat", "--zip", "--out", world / "exp")
    assert proc.returncode == 0, proc.stderr
    assert not tmp_zip.exists() and live.exists()
    proc = cli("export", ds, "--format", "cvat", "--out", world / "exp")
    assert proc.returncode == 0, proc.stderr
    assert not tmp_dir.exists()


# -- 3. bounded resources ----------------------------------------------------------------------------
def _nifti_claiming(path: Path, shape) -> Path:
    """A NIfTI whose header claims ``shape`` but holds a few voxels."""
    import nibabel as nib

    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.int16)
    hdr.set_data_shape(shape)
    hdr["vox_offset"] = 352
    path.write_bytes(hdr.binaryblock + b"\0" * 4 + np.zeros(8, np.int16).tobytes())
    return path


@pytest.mark.parametrize(
    ("shape", "env"),
    [((30_000, 30_000, 30_000), {}), ((200, 200, 200), {"NAPARI_MEDSEG_MAX_BYTES": "1M"})],
)
def test_header_sizes_checked_before_allocating(world, shape, env):
    path = _nifti_claiming(world / "data" / "huge.nii", shape)
    before = tree(world)
    line = refused(cli("info", path, "--case", "huge", env=env), "huge.nii", rc=1)
    assert "would need" in line and "NAPARI_MEDSEG_MAX_BYTES" in line
    assert tree(world) == before


def test_absurd_unet_config_refused(world):
    import torch

    ds = make_msd(world / "data", "Task09_Spleen", n_train=1, n_test=0, shape=SHAPE)
    ckpt = world / "model.pt"
    torch.save({"state_dict": {}, "config": {"init_features": 10**6}}, ckpt)
    line = refused(cli("presegment", ds, "--engine", "unet", "--checkpoint", ckpt, "--out",
                       world / "out", "--workers", "0"), "model.pt")  # fmt: skip
    assert "init_features=1000000" in line and "would need" in line
    torch.save({"state_dict": {}, "config": {"init_features": "wide"}}, ckpt)
    assert "init_features" in refused(
        cli("presegment", ds, "--engine", "unet", "--checkpoint", ckpt, "--out", world / "out",
            "--workers", "0"), "model.pt")  # fmt: skip


# -- CVAT imports: ambiguity, encodings, damaged members, zip bombs ----------------------------------
@pytest.fixture
def cvat_export(world):
    ds = make_msd(world / "data", "Task09_Spleen", n_train=1, n_test=0, shape=SHAPE)
    out = world / "data" / "cvat"
    assert cli("export", ds, "--format", "cvat", "--out", out).returncode == 0
    return out


def test_cvat_shared_label_colour_refused(cvat_export):
    lm = cvat_export / "labelmap.txt"
    lines = lm.read_text().splitlines()
    lines.append("other:" + lines[-1].split(":")[1] + "::")
    lm.write_text("\n".join(lines) + "\n")
    assert "shared by labels" in refused(cli("info", cvat_export), "labelmap.txt")


def test_cvat_damaged_files_refused(cvat_export):
    subset = cvat_export / "ImageSets" / "Segmentation" / "default.txt"
    good = subset.read_bytes()
    subset.write_bytes(good + "caf\u00e9\n".encode("latin-1"))
    assert "not UTF-8" in refused(cli("info", cvat_export), "default.txt")
    subset.write_bytes(good + b"../../outside/slice_0000\n")
    assert "line " in refused(cli("info", cvat_export), "default.txt")
    subset.write_bytes(good)
    png = sorted((cvat_export / "SegmentationClass").rglob("*.png"))[0]
    png.write_bytes(b"\x89PNG garbage")
    before = tree(cvat_export.parent)
    refused(cli("info", cvat_export, "--case", png.parent.name), png.name, rc=1)
    assert tree(cvat_export.parent) == before


def test_cvat_zip_bomb_refused(world, cvat_export):
    import zipfile

    bomb = world / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(cvat_export.rglob("*")):
            if p.is_file() and p.name != "labelmap.txt":
                zf.write(p, p.relative_to(cvat_export).as_posix())
        zf.writestr("labelmap.txt", (cvat_export / "labelmap.txt").read_text() + "#" * 2**22)
    assert "zip bomb" in refused(cli("info", bomb), "bomb.zip")


# -- 4. metadata files: validated, one line naming file and field ------------------------------------
@pytest.fixture
def review_out(world):
    ds = make_msd(world / "data", "Task09_Spleen", n_train=1, n_test=0, shape=SHAPE)
    out = world / "review"
    assert cli("review", ds, "--out", out, "status").returncode == 0
    return ds, out


def test_malformed_session_json(review_out):
    ds, out = review_out
    state = json.loads((out / "session.json").read_text())
    state["cases"] = {"spleen_1": {"status": "finished"}}
    (out / "session.json").write_text(json.dumps(state))
    before = tree(out.parent)
    line = refused(cli("review", ds, "--out", out, "status"), "session.json")
    assert "cases.spleen_1.status" in line
    (out / "session.json").write_bytes(b"\xff\xfe{}")
    assert "not utf-8" in refused(cli("review", ds, "--out", out, "status"), "session.json")
    assert {k: v for k, v in tree(out.parent).items() if "session.json" not in k} == {
        k: v for k, v in before.items() if "session.json" not in k
    }


def test_empty_lock_is_stale_after_the_timeout(review_out):
    ds, out = review_out
    lock = out / "locks" / "spleen_1.lock"
    lock.parent.mkdir(exist_ok=True)
    lock.write_bytes(b"")  # what a crash between create and write leaves
    args = ("review", ds, "--out", out, "--stale-after", "60", "set-status", "spleen_1", "accepted")
    assert "open by another session" in refused(cli(*args), "spleen_1.lock")
    os.utime(lock, (lock.stat().st_mtime - 120,) * 2)
    proc = cli(*args)
    assert proc.returncode == 0, proc.stderr
    lock.write_text('{"owner": "x", "pid": "many", "host": 3}')  # garbage: also stale in time
    os.utime(lock, (lock.stat().st_mtime - 120,) * 2)
    proc = cli(*args[:-2], "spleen_1", "in_progress")
    assert proc.returncode == 0, proc.stderr


def test_malformed_audit_log(review_out):
    ds, out = review_out
    with open(out / "audit.log", "ab") as fh:
        fh.write(b'{"time": "t", "who": "x", "action": 5}\n')
    line = refused(cli("review", ds, "--out", out, "audit"), "audit.log")
    assert "action" in line and "line" in line


def test_malformed_summary_json(world):
    ds = make_msd(world / "data", "Task09_Spleen", n_train=1, n_test=0, shape=SHAPE)
    out = world / "out"
    out.mkdir()
    (out / "summary.json").write_text(json.dumps({"cases": {"spleen_1": {"status": 3}}}))
    before = tree(world)
    line = refused(cli("presegment", ds, "--engine", "threshold", "--method", "otsu",
                       "--workers", "0", "--out", out), "summary.json")  # fmt: skip
    assert "cases.spleen_1.status" in line
    assert tree(world) == before


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-8"])
def test_voc_xml_entities_refused_in_any_encoding(world, encoding):
    from napari_medseg.synthetic.lss import make_lss

    ds = make_lss(world / "data" / "lss", n_patients=1, n_slices=3, size=32)
    xml = sorted((ds / "Foramina_Detection").rglob("*.xml"))[0]
    doc = xml.read_text()
    bomb = '<!DOCTYPE annotation [<!ENTITY e "RFS1">]>'
    head = f'<?xml version="1.0" encoding="{encoding[:6].upper()}"?>'
    xml.write_bytes((head + bomb + doc.replace("RFS", "&e;", 1)).encode(encoding))
    line = refused(cli("info", ds, "--case", xml.parent.name), xml.name, rc=1)
    assert "DOCTYPE" in line


# -- 5. damaged DICOM series: reported in ``problems``, spacing never guessed silently ----------------
def test_dicom_missing_position_and_truncated_file_reported(world):
    import pydicom

    from napari_medseg.io.dicom_write import write_dicom_series

    series = world / "data" / "dicom"
    files = write_dicom_series(series, np.zeros((5, 8, 8), np.int16), (3.0, 1.0, 1.0))
    ds = pydicom.dcmread(files[2])
    ds.SliceThickness = 4.5
    del ds.ImagePositionPatient
    ds.save_as(files[2])
    before = tree(world)
    proc = cli("info", series, "--json")
    assert proc.returncode == 0, proc.stderr
    (case,) = json.loads(proc.stdout)["cases"]
    assert any("lack ImagePositionPatient" in p and files[2].name in p for p in case["problems"])
    files[4].write_bytes(files[4].read_bytes()[:200])  # truncated: header cut short
    proc = cli("info", series, "--json")
    assert proc.returncode == 0, proc.stderr
    (case,) = json.loads(proc.stdout)["cases"]
    assert any(p.startswith(files[4].name) for p in case["problems"])
    assert set(tree(world)) == set(before)  # only the files this test damaged changed


@pytest.mark.parametrize("command", ["presegment", "review", "qa", "export"])
def test_out_that_is_a_file_for_every_command(world, command):
    ds = make_msd(world / "data", "Task09_Spleen", n_train=1, n_test=0, shape=SHAPE)
    (world / "out").write_text("my notes")
    args = {
        "presegment": ("presegment", ds, "--engine", "threshold", "--out", world / "out"),
        "review": ("review", ds, "--out", world / "out", "status"),
        "qa": ("qa", ds, "--masks", ds / "labelsTr", "--out", world / "out"),
        "export": ("export", ds, "--format", "nifti", "--out", world / "out"),
    }[command]
    refused(cli(*args), "out")
    assert (world / "out").read_text() == "my notes"
