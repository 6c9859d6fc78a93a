"""DICOM SEG (written with highdicom) and RTSTRUCT (a known phantom's contours) beside their
series open as the case's masks, voxel for voxel, with segment/ROI names and colours."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from napari_medseg.core.errors import ReadError
from napari_medseg.io.detect import open_dataset
from napari_medseg.io.dicom import find_series
from napari_medseg.io.dicom_seg import read_dicom_seg
from napari_medseg.io.dicom_write import write_dicom_series
from napari_medseg.synthetic.phantom import torso

SPACING = (2.5, 0.8, 0.7)


@pytest.fixture
def series_dir(tmp_path):
    ct, _, labels = torso((8, 40, 36), seed=2)
    write_dicom_series(tmp_path / "study" / "ct", np.clip(ct, -1024, 3071), SPACING)
    return tmp_path / "study", labels


def write_seg(folder, masks: dict[str, np.ndarray], colors=None, kind="BINARY") -> None:
    """A highdicom SEG of binary masks or probabilities (display order = file order for
    axial series)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    [series] = find_series(folder / "ct")
    sources = [pydicom.dcmread(f) for f in series.files]
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=n,
            segment_label=name,
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Organ,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
            display_color=hd.color.CIELabColor.from_rgb(*colors[n - 1]) if colors else None,
        )
        for n, name in enumerate(masks, start=1)
    ]
    pixels = np.stack(list(masks.values()), axis=-1)
    pixels = pixels.astype(np.uint8 if kind == "BINARY" else np.float32)
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=pixels, segmentation_type=kind,
        segment_descriptions=descriptions, series_instance_uid=generate_uid(), series_number=99,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer="test",
        manufacturer_model_name="test", software_versions="1", device_serial_number="1",
    )  # fmt: skip
    (folder / "seg").mkdir()
    seg.save_as(folder / "seg" / "seg.dcm")


def test_seg_beside_its_series_is_the_case_mask(series_dir):
    folder, labels = series_dir
    masks = {"liver": labels == 1, "lesion": labels == 2}
    assert all(m.any() for m in masks.values())
    write_seg(folder, masks, colors=[(200, 100, 50), (20, 200, 90)])
    ds = open_dataset(folder)
    [case_id] = ds.case_ids()  # the SEG is not a case of its own
    case = ds.load_case(case_id)
    [mask] = case.masks
    assert mask.labelmap.names() == {0: "background", 1: "liver", 2: "lesion"}
    assert np.abs(np.subtract(mask.labelmap[1].color, (200, 100, 50))).max() <= 2  # via CIELab
    expected = np.where(masks["lesion"], 2, np.where(masks["liver"], 1, 0))
    np.testing.assert_array_equal(mask.array, expected)
    assert mask.shape == case.images[0].shape and mask.geometry == case.images[0].geometry


def test_read_dicom_seg_api_matches_highdicom(series_dir):
    import highdicom as hd

    folder, labels = series_dir
    write_seg(folder, {"body": labels > 0})
    [series] = find_series(folder / "ct")
    assert series.mask_files == []  # the SEG is in another folder than the one searched
    [series] = find_series(folder)
    arr, labelmap = read_dicom_seg(series.mask_files[0], series)
    seg = hd.seg.segread(series.mask_files[0])
    uids = [str(h.SOPInstanceUID) for h in series.headers]
    ref = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, combine_segments=True)
    np.testing.assert_array_equal(arr, ref)  # highdicom's own placement, by instance UID
    assert labelmap.names()[1] == "body"


def test_fractional_seg_is_thresholded_at_one_half(series_dir):
    folder, labels = series_dir
    probability = np.where(labels == 1, 0.8, np.where(labels == 2, 0.3, 0.0))
    write_seg(folder, {"liver": probability}, kind="FRACTIONAL")
    [series] = find_series(folder)
    arr, _ = read_dicom_seg(series.mask_files[0], series)
    np.testing.assert_array_equal(arr, (labels == 1).astype(np.uint8))


def _rtstruct(folder, series, rois) -> None:
    """``rois``: [(name, colour, [(slice, row0, row1, col0, col1, ...), ...])] of voxel boxes."""
    h = series.headers[0]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.3"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = (
        meta.MediaStorageSOPClassUID,
        meta.MediaStorageSOPInstanceUID,
    )
    ds.Modality, ds.PatientID, ds.StudyInstanceUID = "RTSTRUCT", h.PatientID, h.StudyInstanceUID
    ds.SeriesInstanceUID = generate_uid()
    ref_series = Dataset()
    ref_series.SeriesInstanceUID = series.series_uid
    study = Dataset()
    study.RTReferencedSeriesSequence = [ref_series]
    frame = Dataset()
    frame.RTReferencedStudySequence = [study]
    ds.ReferencedFrameOfReferenceSequence = [frame]
    ds.StructureSetROISequence, ds.ROIContourSequence = [], []
    ps_row, ps_col = (float(v) for v in h.PixelSpacing)
    for number, (name, color, boxes) in zip((3, 7), rois, strict=False):  # ROI numbers not 1..N
        roi = Dataset()
        roi.ROINumber, roi.ROIName = number, name
        ds.StructureSetROISequence.append(roi)
        item = Dataset()
        item.ReferencedROINumber, item.ROIDisplayColor = number, list(color)
        item.ContourSequence = []
        for k, r0, r1, c0, c1 in boxes:
            z = float(series.positions[k])  # axial: the position along the normal is z
            corners = [(c0 - 0.5, r0 - 0.5), (c1 + 0.5, r0 - 0.5), (c1 + 0.5, r1 + 0.5),
                       (c0 - 0.5, r1 + 0.5)]  # fmt: skip
            contour = Dataset()
            contour.ContourGeometricType = "CLOSED_PLANAR"
            contour.NumberOfContourPoints = 4
            contour.ContourData = [
                f"{v:.4f}" for c, r in corners for v in (c * ps_col, r * ps_row, z)
            ]
            item.ContourSequence.append(contour)
        ds.ROIContourSequence.append(item)
    (folder / "rt").mkdir()
    ds.save_as(folder / "rt" / "rtstruct.dcm", enforce_file_format=True)


@pytest.mark.parametrize("body_first", [True, False])
def test_rtstruct_contours_rasterised_on_the_series_grid(series_dir, body_first):
    folder, _ = series_dir
    [series] = find_series(folder)
    body = [(k, 5, 30, 4, 28) for k in range(1, 7)] + [(3, 10, 14, 10, 15)]  # a hole on slice 3
    rois = [("Body", (0, 255, 0), body), ("GTV", (255, 0, 0), [(5, 18, 22, 20, 24)])]
    _rtstruct(folder, series, rois if body_first else rois[::-1])
    case = open_dataset(folder).load_case(series.case_id)
    [mask] = case.masks
    body_id, gtv_id = (1, 2) if body_first else (2, 1)
    assert mask.labelmap.names() == {0: "background", body_id: "Body", gtv_id: "GTV"}
    assert mask.labelmap[gtv_id].color == (255, 0, 0)
    expected = np.zeros(case.images[0].shape, np.uint8)
    expected[1:7, 5:31, 4:29] = body_id
    expected[3, 10:15, 10:16] = 0
    expected[5, 18:23, 20:25] = gtv_id  # the smaller ROI stays visible inside the body
    np.testing.assert_array_equal(mask.array, expected)


def test_rtstruct_off_the_grid_is_refused(series_dir):
    folder, _ = series_dir
    [series] = find_series(folder)
    series.positions = [p + 1.1 for p in series.positions]  # contours written 1.1 mm off
    _rtstruct(folder, series, [("Body", (0, 255, 0), [(2, 5, 9, 5, 9)])])
    case = open_dataset(folder).load_case(find_series(folder)[0].case_id)
    with pytest.raises(ReadError, match="does not lie on a slice"):
        _ = case.masks[0].array
