"""DICOM series written with pydicom (explicit VR little endian): the derived series of a
DICOM SEG export of a NIfTI case, and the DICOM test and sample data.

File names follow a shuffled order and ``InstanceNumber`` runs backwards, so a reader that
trusts either instead of ``ImagePositionPatient`` gets the slices wrong.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)  # rows run to the patient's left, columns to posterior
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)  # rows run posterior, columns run inferior
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
SOP_CLASS = {"CT": CT_IMAGE_STORAGE, "MR": MR_IMAGE_STORAGE, "PT": PET_IMAGE_STORAGE}
F18_HALF_LIFE = 6586.2  # seconds


def _uid(*parts) -> str:
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=[str(p) for p in parts])


def write_dicom_series(
    folder: str | Path,
    array: np.ndarray,
    spacing,
    modality: str = "CT",
    orientation=AXIAL,
    origin=(0.0, 0.0, 0.0),
    patient_id: str = "SYN001",
    series_number: int = 1,
    description: str = "synthetic",
    series_uid: str | None = None,
    prefix: str = "IM",
    suffix: str = ".dcm",
    seed: int = 0,
    pet: dict | None = None,
) -> list[Path]:
    """Write ``array`` (slice, row, column) as one DICOM file per slice.

    For the default axial orientation, (slice, row, column) is the display order (z, y, x):
    rows toward posterior, columns toward the patient's left, slices toward superior.

    Parameters
    ----------
    array
        CT in HU, MR intensities, or PET SUV (``modality="PT"``), 3D.
    spacing
        (slice step, row spacing, column spacing) in mm.
    orientation
        ImageOrientationPatient (row direction, column direction).
    pet
        For PET: ``weight`` (kg), ``dose`` (Bq), ``delay`` (s from injection to series start),
        ``half_life`` (s). The stored values are Bq/ml with per-slice RescaleSlope.

    Returns
    -------
    The files in slice order (their names are shuffled).
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = array.shape[0]
    row, col = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    normal = np.cross(row, col)
    series_uid = series_uid or _uid(patient_id, series_number, description, "series")
    study_uid = _uid(patient_id, "study")
    frame_uid = _uid(series_uid, "frame of reference")
    names = np.random.default_rng(seed).permutation(n)
    pet = dict(
        {"weight": 75.0, "dose": 3.7e8, "delay": 3600.0, "half_life": F18_HALF_LIFE}, **(pet or {})
    )
    bqml_per_suv = pet["dose"] * 0.5 ** (pet["delay"] / pet["half_life"]) / (pet["weight"] * 1000.0)
    files = []
    for k in range(n):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = SOP_CLASS.get(modality, MR_IMAGE_STORAGE)
        meta.MediaStorageSOPInstanceUID = _uid(series_uid, k)
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = (
            meta.MediaStorageSOPClassUID,
            meta.MediaStorageSOPInstanceUID,
        )
        ds.PatientID, ds.PatientName = patient_id, f"Synthetic^{patient_id}"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame_uid, ""
        ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = "20240102"
        ds.StudyTime = ds.SeriesTime = "100000"
        ds.StudyID, ds.AccessionNumber = "1", f"ACC{patient_id}"
        ds.PatientBirthDate, ds.PatientSex, ds.ReferringPhysicianName = "", "O", ""
        ds.PatientPosition = "HFS"
        ds.AcquisitionTime = "100000"
        ds.Modality, ds.SeriesNumber, ds.SeriesDescription = modality, series_number, description
        ds.InstanceNumber = n - k  # deliberately backwards: readers must sort by position
        ds.ImageOrientationPatient = [f"{v:g}" for v in orientation]
        ipp = np.asarray(origin, float) + normal * spacing[0] * k
        ds.ImagePositionPatient = [f"{v:.4f}" for v in ipp]
        ds.PixelSpacing = [f"{spacing[1]:g}", f"{spacing[2]:g}"]
        ds.SliceThickness = (
            f"{spacing[0] * 1.5:g}"  # differs from the true step, as on many scanners
        )
        ds.Rows, ds.Columns = array.shape[1], array.shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        sl = np.asarray(array[k], float)
        if modality == "PT":
            _pet_tags(ds, pet)
            activity = sl * bqml_per_suv
            slope = (
                max(float(activity.max()), 1e-6) / 32000.0
            )  # per-slice scaling, as PET scanners do
            stored = np.rint(activity / slope).astype(np.int16)
            ds.RescaleSlope, ds.RescaleIntercept = f"{slope:.8g}", "0"
            ds.PixelRepresentation = 1
        elif modality == "CT":
            stored = np.clip(np.rint(sl) + 1024, 0, 4095).astype(
                np.uint16
            )  # 12-bit CT: -1024..3071 HU
            ds.BitsStored, ds.HighBit = 12, 11
            ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = "1", "-1024", "HU"
            ds.PixelRepresentation = 0
        else:
            stored = np.clip(np.rint(sl), 0, 65535).astype(np.uint16)
            ds.PixelRepresentation = 0
        ds.PixelData = stored.tobytes()
        path = folder / f"{prefix}{int(names[k]):04d}{suffix}"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files


def _pet_tags(ds, pet: dict) -> None:
    from pydicom.dataset import Dataset

    ds.Units, ds.DecayCorrection, ds.CorrectedImage = "BQML", "START", ["DECY", "ATTN"]
    ds.PatientWeight = f"{pet['weight']:g}"
    info = Dataset()
    info.RadionuclideTotalDose = f"{pet['dose']:g}"
    info.RadionuclideHalfLife = f"{pet['half_life']:g}"
    start = 10 * 3600 - pet["delay"]  # the series starts at 10:00:00
    h, rem = divmod(int(start), 3600)
    info.RadiopharmaceuticalStartTime = f"{h:02d}{rem // 60:02d}{rem % 60:02d}"
    info.Radiopharmaceutical = "Fluorodeoxyglucose"
    ds.RadiopharmaceuticalInformationSequence = [info]
