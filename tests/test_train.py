"""Fine-tuning the U-Net on curated masks: patient split, best-Dice checkpoint, cancel, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_medseg.core.errors import MedsegError
from napari_medseg.engines.base import make_engine
from napari_medseg.engines.training import patient_split, train_unet
from napari_medseg.engines.unet_model import load_checkpoint
from napari_medseg.io.detect import open_dataset
from napari_medseg.io.masks import mask_path, write_mask
from napari_medseg.synthetic.msd import write_nifti
from napari_medseg.synthetic.phantom import ellipsoid


def make_lesion_task(root, n=6, shape=(8, 32, 32), spacing=(4.0, 1.0, 1.0)):
    """An MSD task of FLAIR MRI phantoms, each with one lesion of random place and size."""
    folder = root / "Task90_Lesion"
    training = []
    for i in range(n):
        rng = np.random.default_rng(100 + i)
        head = ellipsoid(shape, (0, 0, 0), (1.2, 0.85, 0.7))
        centre = (0.0, *rng.uniform(-0.35, 0.35, 2))
        lesion = ellipsoid(shape, centre, (0.9, *rng.uniform(0.15, 0.3, 2))) & head
        img = np.where(head, 400.0, 0.0) + 250.0 * lesion + rng.normal(0, 30, shape) * head
        name = f"lesion_{i + 1:03d}.nii.gz"
        write_nifti(folder / "imagesTr" / name, img.astype(np.float32), spacing)
        write_nifti(folder / "labelsTr" / name, lesion.astype(np.uint8), spacing, np.uint8)
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    meta = {
        "name": "Lesion",
        "modality": {"0": "FLAIR"},
        "labels": {"0": "background", "1": "lesion"},
        "numTraining": n,
        "numTest": 0,
        "training": training,
        "test": [],
    }
    (folder / "dataset.json").write_text(json.dumps(meta, indent=2))
    return folder


@pytest.fixture(scope="module")
def lesion_task(tmp_path_factory):
    return make_lesion_task(tmp_path_factory.mktemp("data"))


def test_training_reaches_validation_dice(lesion_task, tmp_path):
    dataset = open_dataset(lesion_task)
    epochs, ticks = [], []
    out = tmp_path / "model.pt"
    result = train_unet(
        dataset,
        dataset.case_ids(),
        None,
        out,
        epochs=10,
        init_features=8,
        batch_size=4,
        lr=3e-3,
        device="cpu",
        report=epochs.append,
        progress=lambda d, t: ticks.append((d, t)),
    )
    assert result.best_dice >= 0.8
    assert not set(result.train_ids) & set(result.val_ids)
    assert sorted(result.train_ids + result.val_ids) == dataset.case_ids()
    assert [e["epoch"] for e in epochs] == list(range(1, 11))
    assert all({"loss", "val_dice", "best_dice"} <= set(e) for e in epochs)
    assert ticks[-1][0] == ticks[-1][1]
    # The saved checkpoint is the best epoch's, and it segments the held-out patient as well.
    model, config = load_checkpoint(out)
    assert config.channels == ["FLAIR"] and config.labelmap.names() == {
        0: "background",
        1: "lesion",
    }
    assert config.normalisation["method"] == "percentile_zscore"
    case = dataset.load_case(result.val_ids[0])
    mask = make_engine("unet", checkpoint=out, device="cpu").segment_case(case).mask
    truth = case.masks[0].array > 0
    dice = (
        2
        * np.count_nonzero((mask > 0) & truth)
        / (np.count_nonzero(mask) + np.count_nonzero(truth))
    )
    assert dice == pytest.approx(result.best_dice, abs=1e-6)


def test_split_keeps_each_patient_on_one_side():
    cases = {f"P{p}_t{t}": f"P{p}" for p in range(5) for t in range(3)}
    train, val = patient_split(cases, 0.4, seed=3)
    assert {cases[c] for c in train}.isdisjoint({cases[c] for c in val})
    assert len({cases[c] for c in val}) == 2 and len(train) + len(val) == 15
    with pytest.raises(MedsegError, match="at least 2 patients"):
        patient_split({"a": "P", "b": "P"}, 0.5, seed=0)


def test_fine_tune_from_checkpoint_on_curated_folder(lesion_task, tmp_path):
    dataset = open_dataset(lesion_task)
    base = tmp_path / "base.pt"
    train_unet(dataset, dataset.case_ids()[:2], None, base, epochs=1, init_features=4, batch_size=4)
    curated = tmp_path / "curated"
    for cid in dataset.case_ids()[2:5]:  # reviewers corrected three cases
        case = dataset.load_case(cid)
        write_mask(case.reference_image(), case.masks[0].array, mask_path(curated, cid))
    out = tmp_path / "tuned.pt"
    result = train_unet(
        dataset, dataset.case_ids(), curated, out, checkpoint=base, epochs=1, batch_size=4
    )
    assert sorted(result.skipped) == ["lesion_001", "lesion_002", "lesion_006"]
    assert sorted(result.train_ids + result.val_ids) == ["lesion_003", "lesion_004", "lesion_005"]
    _, config = load_checkpoint(out)
    assert config.init_features == 4  # the base network was tuned, not replaced


def test_model_is_never_written_into_the_source(lesion_task):
    from napari_medseg.core.errors import WriteError

    dataset = open_dataset(lesion_task)
    with pytest.raises(WriteError, match="inside the source"):
        train_unet(dataset, dataset.case_ids(), None, lesion_task / "model.pt", epochs=1)


def test_cancel_stops_before_writing(lesion_task, tmp_path):
    dataset = open_dataset(lesion_task)
    out = tmp_path / "m.pt"
    result = train_unet(
        dataset,
        dataset.case_ids()[:3],
        None,
        out,
        epochs=5,
        init_features=4,
        cancelled=lambda: True,
    )
    assert result.cancelled and result.history == [] and not out.exists()


def test_train_cli(lesion_task, tmp_path, capsys):
    from napari_medseg.cli import main

    out = tmp_path / "m.pt"
    rc = main(
        [
            "train",
            str(lesion_task),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--features",
            "4",
            "--batch-size",
            "4",
            "--case",
            "lesion_001",
            "--case",
            "lesion_002",
            "--device",
            "cpu",
        ]
    )
    assert rc == 0 and out.exists()
    printed = capsys.readouterr()
    assert "best validation Dice" in printed.out and "epoch 1/1" in printed.err
    bad = main(
        [
            "train",
            str(lesion_task),
            "--out",
            str(tmp_path / "x.pt"),
            "--masks",
            str(tmp_path / "none"),
        ]
    )
    assert bad == 2  # no curated mask anywhere: a one-line error
