"""Issue 12: a radiologist's first hour, walked through the GUI as a user would, under Xvfb.

open a dataset -> case browser -> open a case -> rename and recolour a label -> threshold
pre-segment -> SAM point prompt (tiny model) -> review session, accept -> QA -> export CVAT ->
reopen the export. After every step: what the user sees (layers, names, colours, statuses,
files) and a screenshot in the folder the test prints; no error may reach napari's reporter.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from napari_medseg.core.labelmap_io import read_labelmap
from napari_medseg.io.masks import read_mask
from napari_medseg.layers import LayerInfo

pytestmark = pytest.mark.gui

NEW_NAME, NEW_COLOUR = "Milz", (20, 200, 120)


def rgb(layer, label_id):
    return tuple(int(round(c * 255)) for c in layer.colormap.color_dict[label_id][:3])


def label_names(layer):
    return dict(zip(layer.features["index"], layer.features["name"], strict=True))


def test_first_hour_walk(
    make_napari_viewer, qtbot, msd_spleen, tmp_path, tiny_sam_checkpoint, sam_home
):
    from napari.utils.notifications import notification_manager

    from napari_medseg._qt.case_browser import CaseBrowserWidget
    from napari_medseg._qt.export_widget import ExportWidget
    from napari_medseg._qt.labelmap_editor import LabelmapEditorWidget
    from napari_medseg._qt.presegment_widget import PresegmentWidget
    from napari_medseg._qt.qa_widget import QAWidget
    from napari_medseg._qt.review_widget import MASK_NAME, ReviewWidget
    from napari_medseg._qt.sam_widget import SamWidget
    from napari_medseg.engines.sam_settings import save_settings
    from napari_medseg.launch import WINDOW

    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"\nwalk screenshots: {shots}")
    reported = []
    notification_manager.notification_ready.connect(
        lambda n: reported.append(n) if n.severity >= "error" else None
    )
    viewer = make_napari_viewer(show=True)
    viewer.window.resize(*WINDOW)
    step = iter(range(1, 100))

    def shot(name: str) -> None:
        qtbot.wait(100)
        viewer.screenshot(path=str(shots / f"{next(step):02d}_{name}.png"), canvas_only=False)
        assert not reported, [str(n.message) for n in reported]

    def dock(widget, title):
        viewer.window.add_dock_widget(widget, name=title, area="right", tabify=True)
        return widget

    def finish(worker, timeout=60000):
        with qtbot.waitSignal(worker.finished, timeout=timeout):
            pass
        qtbot.wait(50)

    # 1. Open the dataset in the case browser.
    browser = dock(CaseBrowserWidget(viewer), "Cases")
    browser.open_dataset(str(msd_spleen))
    ids = [browser.table.item(r, 0).text() for r in range(browser.table.rowCount())]
    assert ids[:2] == ["spleen_1", "spleen_2"] and "cases" in browser.info.text()
    qtbot.waitUntil(lambda: browser.table.item(0, 2) is not None, timeout=20000)
    assert browser.table.item(0, 2).text() == "yes"  # has a mask
    shot("dataset")

    # 2. Open a case.
    finish(browser.open_case("spleen_1"))
    assert [ly.name for ly in viewer.layers] == ["CT", "label"]
    assert browser.info.text().endswith("case spleen_1")
    assert viewer.dims.axis_labels[-3:] == ("S-I", "A-P", "R-L")
    label = viewer.layers["label"]
    assert label_names(label)[1] == "spleen"
    shot("case_open")

    # 3. Rename and recolour the spleen label.
    editor = dock(LabelmapEditorWidget(viewer), "Labels")
    editor.layer_combo.setCurrentText("label")
    editor.table.item(1, 1).setText(NEW_NAME)
    editor.table.selectRow(1)
    editor.recolor(NEW_COLOUR)
    assert label_names(label)[1] == NEW_NAME and rgb(label, 1) == NEW_COLOUR
    shot("labelmap_edited")

    # 4. Threshold pre-segmentation (the default rule: Otsu on a CT-only case).
    pre = dock(PresegmentWidget(viewer), "Pre-seg")
    assert pre.method.currentText() == "otsu"
    pre.run_threshold()
    qtbot.waitUntil(lambda: pre.worker is None, timeout=60000)
    thr = viewer.layers["spleen_1 threshold otsu"]
    assert thr.data.any() and "voxels labelled" in pre.status.text()
    shot("threshold")

    # 5. SAM: a positive click on the pre-segmentation layer, then accept.
    save_settings(sam_checkpoint=str(tiny_sam_checkpoint), sam_device="cpu")
    sam = dock(SamWidget(viewer), "SAM")
    sam.target.setCurrentText(thr.name)  # the user picks the layer to refine
    finish(sam.embed_case(), timeout=120000)
    qtbot.waitUntil(lambda: not sam.busy, timeout=60000)
    assert "slices embedded" in sam.status.text()
    z = viewer.dims.current_step[0]
    pos, _neg, _box = sam.prompt_layers()
    before = np.array(thr.data)
    pos.add(np.array([[z, 24, 24]]))
    qtbot.waitUntil(lambda: not sam.busy and sam.prediction is not None, timeout=60000)
    pred, pz = sam.prediction
    assert pz == z and pred.mask.any()
    sam.accept()
    assert (thr.data[z][pred.mask & (before[z] == 0)] == sam.label_id.value()).all()
    shot("sam_accepted")

    # 6. Review session: the case's layers are replaced; the edit and the work stay.
    review = dock(ReviewWidget(viewer), "Review")
    out = tmp_path / "review"
    assert review.start(str(out), "alice") is not None
    finish(review.open_case("spleen_1"))
    mask = viewer.layers[MASK_NAME]
    assert label_names(mask)[1] == NEW_NAME and rgb(mask, 1) == NEW_COLOUR
    assert thr.name in viewer.layers and np.array_equal(
        viewer.layers[thr.name].data[z], thr.data[z]
    )
    order = [ly.name for ly in viewer.layers]
    assert order.index(thr.name) > order.index("CT")  # above the new image, not hidden by it
    assert review.queue.item(0, 1).text() == "in_progress"
    shot("review_open")
    finish(review.verdict("accepted"))
    qtbot.waitUntil(lambda: review.current == "spleen_2", timeout=60000)
    assert review.session.entry("spleen_1")["status"] == "accepted"
    assert (out / "spleen_1.nii.gz").is_file()
    assert browser.table.item(0, 3).text() == "accepted"
    assert review.info.text().startswith("spleen_1 saved as accepted; now showing spleen_2")
    shot("accepted_next_case")

    # 7. QA of the session's masks against the dataset's.
    qa = dock(QAWidget(viewer), "QA")
    qa.masks_edit.setText(str(out))
    qa.report_edit.setText(str(tmp_path / "qa"))
    finish(qa.run())
    assert qa.info.text().startswith("3 cases checked") or "cases checked" in qa.info.text()
    rows = list(csv.DictReader((tmp_path / "qa" / "report.csv").open()))
    spleen_1 = next(r for r in rows if r["case"] == "spleen_1")
    assert spleen_1["name"] == NEW_NAME and float(spleen_1["dice"]) == 1.0
    assert "low_dice" not in spleen_1["flags"]
    shot("qa")

    # 8. Export CVAT: the panel names the case on screen; go back to the accepted one first.
    export = dock(ExportWidget(viewer), "Export")
    assert "spleen_2" in export.case_label.text()
    finish(review.previous_case())
    qtbot.waitUntil(lambda: review.current == "spleen_1", timeout=60000)
    qtbot.waitUntil(lambda: "spleen_1" in export.case_label.text(), timeout=10000)
    assert export.layer_combo.currentText() == MASK_NAME
    cvat = tmp_path / "cvat"
    export.out_edit.setText(str(cvat))
    finish(export.export())
    assert export.status.text().startswith("spleen_1 exported as cvat")
    exported = read_labelmap(cvat / "labelmap.txt")
    assert exported[1].name == NEW_NAME and exported[1].color == NEW_COLOUR
    assert NEW_NAME in (cvat / "labelmap.txt").read_text()
    shot("exported")

    case = browser.state.dataset.load_case("spleen_1")

    # 9. Reopen the export: the case browser lists it, the label keeps its name and colour.
    browser.open_dataset(str(cvat))
    assert browser.table.rowCount() == 1
    finish(browser.open_case(browser.table.item(0, 0).text()))
    reopened = next(ly for ly in viewer.layers if LayerInfo.from_layer(ly).role == "mask")
    assert label_names(reopened)[1] == NEW_NAME and rgb(reopened, 1) == NEW_COLOUR
    assert MASK_NAME not in viewer.layers and review.current is None  # the review let it go
    assert reopened.data[viewer.dims.current_step[0]].any()  # a slice with the mask on screen
    saved = read_mask(out / "spleen_1.nii.gz", case.reference_image()).array
    assert np.array_equal(reopened.data, saved)
    shot("export_reopened")
    assert len(list(shots.iterdir())) == 10
