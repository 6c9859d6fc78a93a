"""Batch pre-segmentation on a local dask cluster: failures recorded, runs resumable."""

from __future__ import annotations

import json

import pytest

from napari_medseg.batch import presegment_dataset
from napari_medseg.core.errors import WriteError
from napari_medseg.io.detect import open_dataset
from napari_medseg.io.masks import mask_path, read_mask
from napari_medseg.synthetic.msd import make_msd

OPTIONS = {"method": "value", "threshold": 45.0, "channel": "CT", "min_size": 20}


@pytest.fixture
def spleen_with_bad_case(tmp_path):
    root = make_msd(tmp_path / "data", "Task09_Spleen", n_train=3, n_test=1, shape=(8, 32, 32))
    bad = root / "imagesTr" / "spleen_2.nii.gz"
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])  # truncated download
    return root


def test_local_cluster_records_failure_and_resumes(spleen_with_bad_case, tmp_path):
    out = tmp_path / "out"
    seen = []
    summary = presegment_dataset(
        spleen_with_bad_case,
        "threshold",
        OPTIONS,
        out,
        workers=2,
        processes=False,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert sorted(summary["done"]) == ["spleen_1", "spleen_3", "spleen_4"]
    assert [f["id"] for f in summary["failed"]] == ["spleen_2"]
    assert "spleen_2.nii.gz" in summary["failed"][0]["reason"]
    assert seen[-1] == (4, 4)
    on_disk = json.loads((out / "summary.json").read_text())
    assert (
        on_disk["cases"]["spleen_1"]["status"] == "done"
        and on_disk["cases"]["spleen_1"]["seconds"] > 0
    )
    assert on_disk["engine"] == "threshold" and on_disk["options"] == OPTIONS
    assert not mask_path(out, "spleen_2").exists()
    assert sorted(p.name for p in out.iterdir()) == [
        "spleen_1.nii.gz",
        "spleen_3.nii.gz",
        "spleen_4.nii.gz",
        "summary.json",
    ]
    dataset = open_dataset(spleen_with_bad_case)
    ref = dataset.load_case("spleen_3").reference_image()
    assert read_mask(mask_path(out, "spleen_3"), ref).array.any()

    before = mask_path(out, "spleen_1").stat().st_mtime_ns
    again = presegment_dataset(
        spleen_with_bad_case, "threshold", OPTIONS, out, workers=1, processes=False
    )
    assert sorted(again["skipped"]) == ["spleen_1", "spleen_3", "spleen_4"]
    assert [f["id"] for f in again["failed"]] == ["spleen_2"]  # retried, still bad
    assert mask_path(out, "spleen_1").stat().st_mtime_ns == before


def test_interrupted_run_keeps_finished_cases(tmp_path):
    root = make_msd(tmp_path / "data", "Task09_Spleen", n_train=2, n_test=1, shape=(8, 32, 32))
    out = tmp_path / "out"
    first = presegment_dataset(root, "threshold", OPTIONS, out, ["spleen_1"], workers=0)
    assert first["done"] == ["spleen_1"]
    (out / ".spleen_2.nii.gz.abc.nii.gz").write_bytes(b"partial")  # left by a killed writer
    second = presegment_dataset(root, "threshold", OPTIONS, out, workers=0)
    assert second["skipped"] == ["spleen_1"] and sorted(second["done"]) == ["spleen_2", "spleen_3"]
    assert open_dataset(root).case_ids() == ["spleen_1", "spleen_2", "spleen_3"]
    redo = presegment_dataset(
        root, "threshold", OPTIONS, out, ["spleen_1"], workers=0, overwrite=True
    )
    assert redo["cases"]["spleen_1"]["status"] == "done"


def test_refuses_output_inside_source(tmp_path):
    root = make_msd(tmp_path / "data", "Task09_Spleen", n_train=1, n_test=0, shape=(4, 16, 16))
    with pytest.raises(WriteError, match="inside the source"):
        presegment_dataset(root, "threshold", OPTIONS, root / "masks", workers=0)


def test_bad_engine_options_fail_once_before_any_case(tmp_path):
    from napari_medseg.cli import main

    root = make_msd(tmp_path / "data", "Task09_Spleen", n_train=1, n_test=0, shape=(4, 16, 16))
    rc = main(
        [
            "presegment",
            str(root),
            "--engine",
            "unet",
            "--out",
            str(tmp_path / "o"),
            "--workers",
            "0",
        ]
    )
    assert rc == 2
    assert not (tmp_path / "o" / "summary.json").exists()


def test_engine_reloaded_when_checkpoint_is_rewritten(tmp_path):
    import os

    from napari_medseg.batch.runner import _engine
    from napari_medseg.core.labelmap import LabelMap
    from napari_medseg.engines.unet_model import UNet, UNetConfig, save_checkpoint

    path = tmp_path / "m.pt"

    def save(name):
        config = UNetConfig(1, 1, 4, LabelMap.from_names({1: name}).to_json(), ["CT"])
        save_checkpoint(UNet(1, 1, 4), config, path)

    save("before")
    options = {"checkpoint": str(path), "device": "cpu"}
    first = _engine("unet", options)
    assert _engine("unet", options) is first  # loaded once per process
    save("after")  # fine-tuned again into the same file
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 10**9))
    assert _engine("unet", options).config.labelmap[1].name == "after"


def test_presegment_cli_passes_sam_options_through(
    msd_spleen, tiny_sam_checkpoint, sam_home, tmp_path
):
    from napari_medseg.cli import main

    prompts = tmp_path / "prompts.json"
    box = {"slice": 8, "label": 1, "box": [10, 10, 30, 30]}
    prompts.write_text(
        json.dumps({"labels": {"1": "spleen"}, "cases": {"spleen_1": [box], "spleen_3": [box]}})
    )
    out, cache = tmp_path / "sam-masks", tmp_path / "emb"
    rc = main(
        [
            "presegment",
            str(msd_spleen),
            "--engine",
            "sam",
            "--checkpoint",
            str(tiny_sam_checkpoint),
            "--cache",
            str(cache),
            "--prompts",
            str(prompts),
            "--device",
            "cpu",
            "--workers",
            "0",
            "--out",
            str(out),
        ]
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["options"] == {
        "checkpoint": str(tiny_sam_checkpoint),
        "cache": str(cache),
        "prompts": str(prompts),
        "device": "cpu",
    }
    assert sorted(summary["done"]) == ["spleen_1", "spleen_3"]
    assert [f["id"] for f in summary["failed"]] == ["spleen_2"] and "prompt" in summary["failed"][
        0
    ]["reason"]
    assert rc == 1 and mask_path(out, "spleen_3").exists()


def test_default_workers_run_small_jobs_inline():
    from napari_medseg.batch.runner import INLINE_BELOW_CASES, default_workers

    assert default_workers(3, cores=8) == 0
    assert default_workers(INLINE_BELOW_CASES, cores=2) == 0
    assert default_workers(INLINE_BELOW_CASES, cores=8) is None
