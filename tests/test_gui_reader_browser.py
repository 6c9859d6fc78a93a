"""File > Open through the plugin's reader, and the case browser (needs Xvfb)."""

import numpy as np
import pytest

from napari_medseg._reader import napari_get_reader
from napari_medseg.layers import CT_WINDOW

pytestmark = pytest.mark.gui


def test_reader_declines_what_is_not_ours(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    assert napari_get_reader(str(tmp_path / "notes.txt")) is None
    assert napari_get_reader(str(tmp_path / "missing")) is None


def test_reader_layers_have_geometry_contrast_and_label_names(msd_spleen):
    layers = napari_get_reader(str(msd_spleen))(str(msd_spleen))
    (ct, ct_kw, ct_kind), (mask, m_kw, m_kind) = layers
    assert ct_kind == "image" and m_kind == "labels"
    assert ct_kw["scale"] == pytest.approx((5.0, 0.8, 0.8))
    assert ct_kw["contrast_limits"] == CT_WINDOW
    assert np.issubdtype(mask.dtype, np.integer)
    assert list(m_kw["features"]["name"]) == ["background", "spleen"]
    assert m_kw["colormap"].map(1)[:3] == pytest.approx(np.array([230, 25, 75]) / 255)
    assert m_kw["metadata"]["medseg"]["case"] == "spleen_1"


def test_case_browser_lists_cases_and_opens_one(make_napari_viewer, qtbot, msd_spleen):
    from napari_medseg._qt.case_browser import CaseBrowserWidget

    viewer = make_napari_viewer()
    viewer.open(str(msd_spleen), plugin="napari-medseg")
    widget = CaseBrowserWidget(viewer)
    assert widget.table.rowCount() == 3
    qtbot.waitUntil(
        lambda: widget.table.item(2, 2) is not None and widget.table.item(2, 2).text() == "no",
        timeout=10000,
    )
    assert widget.table.item(0, 1).text() == "CT"
    worker = widget.open_case("spleen_3")
    with qtbot.waitSignal(worker.finished, timeout=20000):
        pass
    qtbot.waitUntil(
        lambda: widget.state.case is not None and widget.state.case.id == "spleen_3", timeout=10000
    )
    names = [ly.name for ly in viewer.layers]
    assert names == ["CT"], names  # the previous case's image and mask were replaced
    assert viewer.layers["CT"].metadata["medseg"]["case"] == "spleen_3"
    assert viewer.dims.current_step[0] == 8  # opened at the middle slice
    status = viewer.layers["CT"].get_status((0, 0, 0))
    assert status is not None


def test_label_name_shows_in_status_bar(make_napari_viewer, msd_spleen):
    viewer = make_napari_viewer()
    viewer.open(str(msd_spleen), plugin="napari-medseg")
    labels = viewer.layers["label"]
    z, y, x = np.argwhere(labels.data == 1)[0]
    world = labels.data_to_world((z, y, x))
    status = labels.get_status(world, world=True)
    text = status["coordinates"] if isinstance(status, dict) else status
    assert "spleen" in text


def test_reader_error_reaches_user_without_traceback(make_napari_viewer, tmp_path):
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"not a nifti file at all")
    viewer = make_napari_viewer()
    with pytest.raises(Exception) as err:
        viewer.open(str(bad), plugin="napari-medseg")
    assert "bad.nii.gz" in str(err.value)
