"""Pre-segment widget in a real viewer: threshold and U-Net on a case, dataset runs, fine-tuning."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_medseg.core.geometry import Geometry
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.model import Case, Volume
from napari_medseg.io.detect import open_dataset
from napari_medseg.layers import case_layers

pytestmark = pytest.mark.gui


def add_case(viewer, case, root=None, fmt=None):
    for data, kwargs, kind in case_layers(case, root, fmt):
        getattr(viewer, f"add_{kind}")(data, **kwargs)


@pytest.fixture
def spleen_widget(make_napari_viewer, msd_spleen):
    from napari_medseg._qt.presegment_widget import PresegmentWidget

    viewer = make_napari_viewer()
    ds = open_dataset(msd_spleen)
    add_case(viewer, ds.load_case("spleen_1"), str(msd_spleen), ds.format)
    w = PresegmentWidget(viewer)
    viewer.window.add_dock_widget(w)
    return w


def wait(qtbot, w, timeout=120000):
    qtbot.waitUntil(lambda: w.worker is None, timeout=timeout)
    qtbot.wait(50)


def test_suv_threshold_on_petct_case_adds_named_labels(make_napari_viewer, qtbot):
    from napari_medseg._qt.presegment_widget import PresegmentWidget
    from napari_medseg.synthetic.phantom import torso

    ct, pet, labels = torso((16, 40, 40), seed=1)
    geom = Geometry((3.0, 2.0, 2.0), (0.0, 0.0, 0.0), np.eye(3))
    case = Case(
        "petct_1",
        [
            Volume.from_array("CT", ct, geom, modality="CT"),
            Volume.from_array("SUV", pet, geom, modality="PET", channel="SUV"),
        ],
    )
    viewer = make_napari_viewer()
    add_case(viewer, case)
    w = PresegmentWidget(viewer)
    assert [w.channel.itemText(i) for i in range(w.channel.count())] == ["auto", "CT", "SUV"]
    assert w.method.currentText() == "suv"  # a PET case starts on SUV thresholds
    w.method.setCurrentText("suv41")
    w.run_threshold()
    wait(qtbot, w)
    layer = viewer.layers["petct_1 threshold suv41"]
    assert np.array_equal(layer.data > 0, labels == 3)
    assert tuple(layer.scale) == (3.0, 2.0, 2.0)
    assert list(layer.features["name"]) == ["background", "lesion"]
    assert (
        layer.metadata["medseg"]["role"] == "mask" and layer.metadata["medseg"]["case"] == "petct_1"
    )


def test_ct_only_case_starts_on_otsu(spleen_widget):
    assert spleen_widget.method.currentText() == "otsu"


def test_unet_on_case_and_errors_as_notifications(spleen_widget, qtbot, tmp_path, monkeypatch):
    from napari_medseg.engines.unet_model import UNet, UNetConfig, save_checkpoint

    w = spleen_widget
    errors = []
    monkeypatch.setattr("napari_medseg._qt._util.show_error", errors.append)
    w.checkpoint.setText(str(tmp_path / "missing.pt"))
    w.run_unet()
    wait(qtbot, w)
    assert errors and "missing.pt" in errors[0] and "Traceback" not in errors[0]

    config = UNetConfig(1, 1, 4, LabelMap.from_names({1: "spleen"}).to_json(), ["CT"])
    w.checkpoint.setText(str(save_checkpoint(UNet(1, 1, 4), config, tmp_path / "m.pt")))
    w.device.setCurrentText("cpu")
    w.run_unet()
    wait(qtbot, w)
    layer = w.viewer.layers["spleen_1 unet"]
    assert layer.data.shape == w.viewer.layers["CT"].data.shape
    assert list(layer.features["name"]) == ["background", "spleen"]
    assert w.progress.value() == w.progress.maximum()


def test_dataset_run_then_fine_tune_then_cancel(spleen_widget, qtbot, tmp_path):
    w = spleen_widget
    w.dataset_engine.setCurrentText("threshold")
    w.method.setCurrentText("value")
    w.threshold_auto.setChecked(False)
    w.threshold.setValue(45.0)
    w.out_dir.setText(str(tmp_path / "pre"))
    w.run_dataset()
    wait(qtbot, w)
    summary = json.loads((tmp_path / "pre" / "summary.json").read_text())
    assert sorted(summary["done"]) == ["spleen_1", "spleen_2", "spleen_3"]
    assert w.status.text().startswith("3 done, 0 skipped, 0 failed")

    model = tmp_path / "tuned.pt"
    w.model_out.setText(str(model))
    w.epochs.setValue(1)
    w.features.setValue(4)
    w.run_training()
    wait(qtbot, w)
    assert model.exists() and w.checkpoint.text() == str(model)
    assert "Best validation Dice" in w.status.text()

    w.epochs.setValue(500)
    w.run_training()
    w.cancel()
    wait(qtbot, w)
    assert "ancel" in w.status.text()


def test_unet_without_a_checkpoint_fails_at_once_in_the_panels_words(
    spleen_widget, qtbot, tmp_path, monkeypatch
):
    """Issue 12 (4): it failed after torch loaded, naming --checkpoint, with the bar at 100 %."""
    w = spleen_widget
    errors = []
    monkeypatch.setattr("napari_medseg._qt._util.show_error", errors.append)
    for button, run in ((w.unet_button, w.run_unet), (w.dataset_button, w.run_dataset)):
        errors.clear()
        w.checkpoint.setText("")
        w.dataset_engine.setCurrentText("unet")
        w.out_dir.setText(str(tmp_path / "out"))
        run()
        assert w.worker is None, "nothing starts without a model"
        (msg,) = errors
        assert "Checkpoint field" in msg and button.text() in msg and "--" not in msg
    errors.clear()
    w.method.setCurrentText("value")
    w.threshold_auto.setChecked(True)
    w.run_threshold()
    assert w.worker is None and "Threshold field" in errors[0] and "--" not in errors[0]
    # A failure inside the worker leaves the bar empty, not at 100 %.
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    w.checkpoint.setText(str(bad))
    errors.clear()
    w.run_unet()
    wait(qtbot, w)
    assert errors and "bad.pt" in errors[0]
    assert w.progress.value() == 0 and "Failed" in w.status.text()
