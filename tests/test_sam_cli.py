"""``napari-medseg embed`` and ``presegment --engine sam`` with a tiny SAM checkpoint."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from napari_medseg.cli import main


def embed_args(dataset, checkpoint, cache) -> list[str]:
    """``napari-medseg embed`` on the CPU with a checkpoint and a cache folder."""
    paths = ["--checkpoint", str(checkpoint), "--cache", str(cache)]
    return ["embed", str(dataset), *paths, "--device", "cpu"]


def test_embed_fills_the_cache_and_a_second_run_computes_nothing(
    msd_spleen, tiny_sam_checkpoint, tmp_path, capsys
):
    cache = tmp_path / "cache"
    args = [*embed_args(msd_spleen, tiny_sam_checkpoint, cache), "--batch-size", "8"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "spleen_1: 16 slices, 16 encoded, 0 cached" in out
    assert "encoded 48 slices" in out  # 2 training + 1 test case
    assert len(list(cache.glob("*.npz"))) == 48
    assert main([*args, "--case", "spleen_2"]) == 0
    assert "spleen_2: 16 slices, 0 encoded, 16 cached" in capsys.readouterr().out
    assert main([*args, "--channels", "CT,CT,CT:-1000:1000", "--case", "spleen_2"]) == 0
    assert "16 encoded" in capsys.readouterr().out


def test_embed_uses_the_saved_checkpoint_setting(msd_spleen, tiny_sam_checkpoint, sam_home, capsys):
    from napari_medseg.engines.sam_settings import save_settings

    assert main(["embed", str(msd_spleen), "--case", "spleen_1"]) == 2
    assert "no SAM checkpoint" in capsys.readouterr().err
    save_settings(sam_checkpoint=str(tiny_sam_checkpoint))
    assert main(["embed", str(msd_spleen), "--case", "spleen_1"]) == 0
    assert len(list((sam_home / "sam-cache").glob("*.npz"))) == 16


@pytest.mark.parametrize("content", [None, b"not a model", b"PK\x03\x04 broken zip"])
def test_bad_checkpoint_is_one_line_naming_the_file(msd_spleen, tmp_path, capsys, content):
    ckpt = tmp_path / "sam_vit_b.pth"
    if content is not None:
        ckpt.write_bytes(content)
    assert (
        main(["embed", str(msd_spleen), "--checkpoint", str(ckpt), "--cache", str(tmp_path / "c")])
        == 2
    )
    err = capsys.readouterr().err
    assert str(ckpt) in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_presegment_with_stored_prompts(msd_spleen, tiny_sam_checkpoint, tmp_path, capsys):
    prompts = tmp_path / "prompts.json"
    prompts.write_text(
        json.dumps(
            {
                "labels": {"1": "spleen"},
                "cases": {
                    "spleen_1": [
                        {"slice": 8, "label": 1, "box": [10, 10, 40, 40], "propagate": True}
                    ]
                },
            }
        )
    )
    out = tmp_path / "out"
    cache = tmp_path / "cache"
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
            "--case",
            "spleen_1",
            "--out",
            str(out),
            "--workers",
            "0",
        ]
    )
    assert rc == 0, capsys.readouterr()
    mask = nib.load(out / "spleen_1.nii.gz")
    image = nib.load(msd_spleen / "imagesTr" / "spleen_1.nii.gz")
    assert mask.shape == image.shape
    np.testing.assert_allclose(mask.affine, image.affine)
    assert set(np.unique(np.asarray(mask.dataobj))) <= {0, 1}
    summary = json.loads((out / "summary.json").read_text())
    assert "spleen_1" in json.dumps(summary)
    # A case without prompts or boxes is reported, not a crash.
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
            "--case",
            "spleen_2",
            "--out",
            str(tmp_path / "out2"),
            "--workers",
            "0",
        ]
    )
    captured = capsys.readouterr()
    assert rc != 0 and "no stored SAM prompts" in captured.err + captured.out


def test_embed_keeps_the_cache_within_its_bound(msd_spleen, tiny_sam_checkpoint, tmp_path, capsys):
    cache = tmp_path / "cache"
    args = [
        "embed",
        str(msd_spleen),
        "--checkpoint",
        str(tiny_sam_checkpoint),
        "--cache",
        str(cache),
    ]
    assert main([*args, "--case", "spleen_1", "--cache-max-gb", str(30_000 / 2**30)]) == 0
    files = list(cache.glob("*.npz"))
    assert 0 < len(files) < 16 and sum(f.stat().st_size for f in files) <= 30_000
    assert "encoded 16 slices" in capsys.readouterr().out


def test_embed_around_a_slice_goes_outward(
    msd_spleen, tiny_sam_checkpoint, tmp_path, capsys, monkeypatch
):
    from napari_medseg.engines.sam import SamSession

    asked = []
    embed = SamSession.embed
    monkeypatch.setattr(
        SamSession,
        "embed",
        lambda self, slices=None, *a, **k: (
            asked.append(self.missing(slices)) or embed(self, slices, *a, **k)
        ),
    )
    cache = tmp_path / "cache"
    args = [*embed_args(msd_spleen, tiny_sam_checkpoint, cache), "--case", "spleen_1"]
    assert main([*args, "--around", "8", "--radius", "2"]) == 0
    assert (
        "spleen_1: 16 slices, 5 encoded, 0 cached, slices 6-10 around 8\n"
        in capsys.readouterr().out
    )
    assert asked == [[8, 9, 7, 10, 6]] and len(list(cache.glob("*.npz"))) == 5
    assert main([*args, "--around", "14"]) == 0  # the whole volume, nearest first
    assert (
        "spleen_1: 16 slices, 11 encoded, 5 cached, slices 0-15 around 14\n"
        in capsys.readouterr().out
    )
    assert asked[1] == [14, 15, 13, 12, 11, 5, 4, 3, 2, 1, 0]
    assert main([*args, "--around", "16"]) == 1
    assert "case spleen_1: --around 16: the case has 16 slices (0-15)" in capsys.readouterr().err
    assert main([*args, "--radius", "2"]) == 2
    assert "--radius needs --around SLICE" in capsys.readouterr().err
