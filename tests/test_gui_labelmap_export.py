"""Labelmap editor and export dock widgets in a real viewer (run under Xvfb)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_medseg.io.detect import open_dataset
from napari_medseg.layers import case_layers

pytestmark = pytest.mark.gui


def _open_brain(viewer, root):
    ds = open_dataset(root)
    case = ds.load_case(ds.case_ids()[0])
    for data, kwargs, kind in case_layers(case, str(root), ds.format):
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    return viewer.layers["label"]


def test_labelmap_editor_edits_layer_and_undo(make_napari_viewer, qtbot, msd_brain, monkeypatch):
    from napari_medseg._qt import labelmap_editor
    from napari_medseg._qt.labelmap_editor import LabelmapEditorWidget

    errors = []
    monkeypatch.setattr(labelmap_editor, "report_error", lambda exc: errors.append(str(exc)))
    viewer = make_napari_viewer()
    layer = _open_brain(viewer, msd_brain)
    widget = LabelmapEditorWidget(viewer)
    viewer.window.add_dock_widget(widget)
    before = layer.data.copy()
    assert widget.table.rowCount() == 4
    assert [widget.table.item(r, 1).text() for r in range(4)] == [
        "background",
        "edema",
        "non-enhancing tumor",
        "enhancing tumour",
    ]

    widget.table.item(1, 1).setText("oedema")  # rename in the table
    assert widget.editor.labelmap[1].name == "oedema"
    assert list(layer.features["name"])[1] == "oedema"
    assert layer.metadata["medseg"]["volume"].labelmap[1].name == "oedema"  # stored for exports

    widget.table.selectRow(3)
    widget.recolor((10, 20, 30))
    assert np.allclose(layer.colormap.color_dict[3][:3], np.array([10, 20, 30]) / 255)
    assert widget.table.item(3, 2).background().color().getRgb()[:3] == (10, 20, 30)

    widget.table.selectRow(2)
    widget.merge_target.setCurrentIndex(1)  # label 2 into label 1
    widget._guard(widget.merge)
    assert not errors, errors
    assert not (layer.data == 2).any() and (layer.data[before == 2] == 1).all()
    assert widget.table.rowCount() == 3

    widget.table.selectRow(2)  # now label 3: try to give it label 1's colour
    widget._guard(lambda: widget.recolor(widget.editor.labelmap[1].color))
    assert errors and "shared by" in errors[-1] and "shared by" in widget.message.text()
    widget.table.item(1, 1).setText("a:b")
    assert "':'" in errors[-1] and widget.table.item(1, 1).text() == "oedema"

    for _ in range(3):
        widget._guard(widget.undo)
    assert np.array_equal(layer.data, before)
    assert widget.editor.labelmap[2].name == "non-enhancing tumor" and widget.table.rowCount() == 4


def test_export_widget_cvat_round_trip(make_napari_viewer, qtbot, msd_brain, tmp_path):
    from napari_medseg._qt.export_widget import ExportWidget

    viewer = make_napari_viewer()
    layer = _open_brain(viewer, msd_brain)
    widget = ExportWidget(viewer)
    viewer.window.add_dock_widget(widget)
    assert widget.layer_combo.currentText() == "label"
    widget.out_edit.setText(str(tmp_path / "cvat"))
    widget.images_box.setChecked(True)
    widget.axis_combo.setCurrentText("coronal")
    assert widget.export() is not None
    qtbot.waitUntil(lambda: bool(widget.last_written), timeout=60_000)
    assert (tmp_path / "cvat" / "labelmap.txt").is_file()
    assert widget.progress.value() == widget.progress.maximum() == layer.data.shape[1]
    assert any((tmp_path / "cvat" / "JPEGImages").rglob("coronal_0000.png"))

    added = widget.import_cvat(str(tmp_path / "cvat"))
    assert [lay.name for lay in added] == ["label (CVAT)", "instances"]
    assert np.array_equal(added[0].data, layer.data)
    assert added[0].scale.tolist() == layer.scale.tolist()


def test_export_widget_refusal_is_a_message(make_napari_viewer, qtbot, msd_brain, monkeypatch):
    from napari_medseg._qt import _jobs
    from napari_medseg._qt.export_widget import ExportWidget

    errors = []
    monkeypatch.setattr(_jobs, "report_error", lambda exc: errors.append(str(exc)))
    viewer = make_napari_viewer()
    _open_brain(viewer, msd_brain)
    widget = ExportWidget(viewer)
    widget.out_edit.setText(str(msd_brain / "inside"))
    widget.export()
    qtbot.waitUntil(lambda: bool(errors), timeout=60_000)
    assert "inside the source" in errors[0]
    assert not (msd_brain / "inside").exists()
