"""Hostile input in the panels: the same one-line errors as the CLI, as notifications, never a
traceback (needs Xvfb)."""

from __future__ import annotations

import json

import pytest

from napari_medseg.io.detect import open_dataset
from napari_medseg.layers import case_layers

pytestmark = pytest.mark.gui


@pytest.fixture
def shown(monkeypatch):
    """What the panels showed through report_error (the notification path)."""
    from napari_medseg._qt import _jobs, _util, case_browser, review_widget

    errors: list[str] = []
    real = _util.report_error

    def capture(exc):
        errors.append(str(exc))
        real(exc)  # the real notification must not raise either

    for module in (_jobs, case_browser, review_widget):
        monkeypatch.setattr(module, "report_error", capture)
    return errors


def test_browser_refuses_hostile_dataset_json(make_napari_viewer, msd_spleen, shown):
    from napari_medseg._qt.case_browser import CaseBrowserWidget

    meta = json.loads((msd_spleen / "dataset.json").read_text())
    meta["training"][0]["image"] = "../../outside.nii.gz"
    (msd_spleen / "dataset.json").write_text(json.dumps(meta))
    widget = CaseBrowserWidget(make_napari_viewer())
    widget.open_dataset(str(msd_spleen))
    assert len(shown) == 1 and "dataset.json" in shown[0] and "training[0].image" in shown[0]


def test_review_panel_reports_malformed_session(make_napari_viewer, msd_spleen, tmp_path, shown):
    from napari_medseg._qt.review_widget import ReviewWidget

    out = tmp_path / "review"
    out.mkdir()
    (out / "session.json").write_text(json.dumps({"format": "msd", "cases": {"x": 3}}))
    viewer = make_napari_viewer()
    viewer.open(str(msd_spleen), plugin="napari-medseg")
    assert ReviewWidget(viewer).start(str(out), "alice") is None
    assert len(shown) == 1 and "session.json" in shown[0] and "cases.x" in shown[0]


def test_export_panel_keeps_foreign_folder(make_napari_viewer, qtbot, msd_spleen, tmp_path, shown):
    from napari_medseg._qt.export_widget import ExportWidget

    viewer = make_napari_viewer()
    ds = open_dataset(msd_spleen)
    for data, kwargs, kind in case_layers(ds.load_case("spleen_1"), str(msd_spleen), ds.format):
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("keep me")
    widget = ExportWidget(viewer)
    widget.out_edit.setText(str(busy))
    widget.export()
    qtbot.waitUntil(lambda: bool(shown), timeout=60_000)
    assert "busy" in shown[0] and "not empty" in shown[0] and "\n" not in shown[0]
    assert [p.name for p in busy.iterdir()] == ["notes.txt"]
