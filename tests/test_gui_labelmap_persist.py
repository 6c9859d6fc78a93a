"""Issue 12 (1, 3): labelmap edits belong to the dataset and survive layer replacement, review,
restarts and exports; work layers stay; the export panel exports the case on screen, by name."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from napari_medseg.core.labelmap_io import read_labelmap
from napari_medseg.io.masks import mask_path, write_mask

pytestmark = pytest.mark.gui


def wait(qtbot, worker, timeout=60000):
    with qtbot.waitSignal(worker.finished, timeout=timeout):
        pass


def show(state, case_id):
    state.show(state.load(case_id))


def names_and_colours(layer):
    names = dict(zip(layer.features["index"], layer.features["name"], strict=True))
    return names, {
        k: tuple(np.round(np.asarray(v[:3]) * 255).astype(int))
        for k, v in layer.colormap.color_dict.items()
        if k
    }


def test_edits_persist_across_review_restart_qa_and_export(
    make_napari_viewer, qtbot, msd_brain, tmp_path
):
    from napari_medseg._qt.export_widget import ExportWidget
    from napari_medseg._qt.labelmap_editor import LabelmapEditorWidget
    from napari_medseg._qt.review_widget import MASK_NAME, ReviewWidget
    from napari_medseg.cli import main
    from napari_medseg.viewer_state import ViewerState, state_for

    viewer = make_napari_viewer()
    state = state_for(viewer)
    state.set_dataset(msd_brain)
    first, second = state.dataset.case_ids()[:2]
    show(state, first)
    editor = LabelmapEditorWidget(viewer)
    editor.layer_combo.setCurrentText("label")
    editor.table.item(1, 1).setText("oedema")
    editor.table.selectRow(1)
    editor.recolor((10, 200, 30))

    # The review session replaces the layers: the edit is still what the mask shows.
    review = ReviewWidget(viewer)
    review.start(str(tmp_path / "review"), "alice")
    wait(qtbot, review.open_case(first))
    names, colours = names_and_colours(viewer.layers[MASK_NAME])
    assert names[1] == "oedema" and colours[1] == (10, 200, 30)
    assert "label" not in viewer.layers

    # A pre-segmentation of the case on screen is work: the case browser reopening the
    # case keeps it and the review mask (they used to vanish).
    viewer.add_labels(
        np.zeros_like(viewer.layers[MASK_NAME].data),
        name=f"{first} threshold otsu",
        metadata={
            "medseg": {"case": first, "role": "mask", "derived": True, "engine": "threshold"}
        },
    )
    show(state, first)
    assert {MASK_NAME, f"{first} threshold otsu", "label"} <= {ly.name for ly in viewer.layers}

    # Accept: the panel jumps to the next case; the export panel says and exports that case.
    export = ExportWidget(viewer)
    wait(qtbot, review.verdict("accepted"))
    qtbot.waitUntil(lambda: review.current == second, timeout=60000)
    assert export.layer_combo.currentText() == MASK_NAME
    assert f"<b>{second}</b>" in export.case_label.text()
    assert f"{first} threshold otsu" not in viewer.layers  # another case's work is gone
    export.out_edit.setText(str(tmp_path / "cvat"))
    wait(qtbot, export.export())
    assert export.status.text().startswith(f"{second} exported as cvat")
    exported = read_labelmap(tmp_path / "cvat" / "labelmap.txt")
    assert exported[1].name == "oedema" and exported[1].color == (10, 200, 30)
    pngs = list((tmp_path / "cvat" / "SegmentationClass").rglob("*.png"))
    assert pngs and all(second in str(p) and first not in str(p) for p in pngs)

    # A restart: a new viewer state reads the dataset's edits back.
    fresh = ViewerState(viewer)
    fresh.set_dataset(msd_brain)
    case, layers = fresh.load(second)
    assert case.labelmap[1].name == "oedema"
    # The CLI (export, QA) uses them too.
    out = tmp_path / "cli_cvat"
    assert (
        main(["export", str(msd_brain), "--case", first, "--format", "cvat", "--out", str(out)])
        == 0
    )
    assert read_labelmap(out / "labelmap.txt")[1].name == "oedema"
    masks = tmp_path / "masks"
    write_mask(case.reference_image(), case.masks[0].array, mask_path(masks, second))
    assert (
        main(
            [
                "qa",
                str(msd_brain),
                "--case",
                second,
                "--masks",
                str(masks),
                "--out",
                str(tmp_path / "qa"),
            ]
        )
        == 0
    )
    rows = list(csv.DictReader((tmp_path / "qa" / "report.csv").open()))
    assert {r["label"]: r["name"] for r in rows}["1"] == "oedema"


def test_layers_that_stay_keep_their_order_above_the_new_images(make_napari_viewer, msd_spleen):
    from napari_medseg.viewer_state import state_for

    viewer = make_napari_viewer()
    state = state_for(viewer)
    state.set_dataset(msd_spleen)
    show(state, "spleen_1")
    shape = viewer.layers["CT"].data.shape
    meta = {
        "medseg": {"case": "spleen_1", "role": "mask", "derived": True, "root": str(msd_spleen)}
    }
    viewer.add_labels(np.zeros(shape, np.uint8), name="work", metadata=meta)
    viewer.add_points(name="prompts", ndim=3)
    show(state, "spleen_1")
    assert [ly.name for ly in viewer.layers] == ["CT", "work", "prompts", "label"]
    show(state, "spleen_2")  # another case: its work goes, plain layers stay
    assert [ly.name for ly in viewer.layers] == ["CT", "prompts", "label"]
