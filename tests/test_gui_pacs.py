"""PACS panel: search a real local Orthanc, open a study off the GUI thread, see its image."""

from __future__ import annotations

import numpy as np
import pytest

from napari_medseg.io.dicom_write import write_dicom_series
from napari_medseg.pacs.local_orthanc import find_orthanc, local_orthanc, upload

_, _, WHY = find_orthanc()
pytestmark = pytest.mark.skipif(bool(WHY), reason=f"needs Orthanc with DICOMweb: {WHY}")


def test_pacs_panel_searches_and_opens_a_study(make_napari_viewer, qtbot, tmp_path):
    from napari_medseg._qt.pacs_widget import PacsWidget

    arr = np.random.default_rng(0).integers(-1000, 1000, (8, 32, 32))
    files = write_dicom_series(tmp_path / "ct", arr, (2.0, 0.8, 0.8), patient_id="GUI01")
    with local_orthanc(tmp_path / "orthanc", "doc", "pw-123456") as url:
        upload(url, files, ("doc", "pw-123456"))
        viewer = make_napari_viewer()
        widget = PacsWidget(viewer)
        viewer.window.add_dock_widget(widget)
        widget.url_edit.setText(url)
        widget.user_edit.setText("doc")
        widget.password_edit.setText("pw-123456")
        widget.patient_edit.setText("GUI01")
        widget.cache_edit.setText(str(tmp_path / "cache"))
        widget.search()
        qtbot.waitUntil(lambda: widget.worker is None, timeout=30_000)
        assert widget.table.rowCount() == 1 and widget.table.item(0, 0).text() == "GUI01"
        widget.open_study()
        qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)
        images = [ly for ly in viewer.layers if ly.__class__.__name__ == "Image"]
        assert len(images) == 1 and images[0].data.shape == (8, 32, 32)
        assert "opened" in widget.status.text() and "pw-123456" not in widget.status.text()
        assert widget.progress.value() == widget.progress.maximum() == 8

        # Review the opened study; Accept sends the reviewed mask back as DICOM SEG.
        from napari_medseg._qt.review_widget import ReviewWidget

        review = ReviewWidget(viewer)
        assert review.start(str(tmp_path / "review"), "doc") is not None
        review.next_case()
        qtbot.waitUntil(lambda: review.mask_layer is not None, timeout=30_000)
        review.mask_layer.data[2:5, 10:20, 8:16] = 1
        review.send_box.setChecked(True)
        review.verdict("accepted")
        qtbot.waitUntil(lambda: "DICOM SEG sent" in review.info.text(), timeout=60_000)
        from napari_medseg.pacs.client import Auth, Server

        client = Server.parse(url, Auth("doc", "pw-123456")).client()
        (seg,) = client.search_for_series(search_filters={"Modality": "SEG"})
        (seg_ds,) = client.retrieve_series(seg["0020000D"]["Value"][0], seg["0020000E"]["Value"][0])
        assert seg_ds.SegmentSequence[0].SegmentAlgorithmType == "MANUAL"
        assert int(np.unpackbits(np.frombuffer(seg_ds.PixelData, np.uint8)).sum()) == 3 * 10 * 8

        widget.password_edit.setText("wrong")
        widget.search()
        qtbot.waitUntil(lambda: widget.worker is None, timeout=30_000)
        assert "refused the credentials" in widget.status.text()
        assert "wrong" not in widget.status.text()
