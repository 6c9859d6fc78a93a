"""Enhanced multi-frame CT/MR/PET: one header per frame from the functional groups.

Each frame's position, orientation, pixel spacing, rescale and frame content (temporal
position, stack, trigger delay, diffusion) come from its per-frame functional groups, falling
back to the shared ones. The frame headers then go through the same stacking, sorting and
4D ordering as the files of a classic series.
"""

from __future__ import annotations

import numpy as np

# Top-level attributes every frame header carries.
COPIED = (
    "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
    "SamplesPerPixel", "PhotometricInterpretation", "Modality", "SeriesInstanceUID",
    "SeriesDescription", "SeriesNumber", "PatientID", "StudyDate", "SeriesDate", "SeriesTime",
    "AcquisitionDate", "AcquisitionTime", "Units", "DecayCorrection", "PatientWeight",
    "RadiopharmaceuticalInformationSequence", "SOPInstanceUID", "RescaleSlope",
    "RescaleIntercept",
)  # fmt: skip
# (functional group sequence, attribute in it, attribute of the frame header)
GROUPS = (
    ("PlanePositionSequence", "ImagePositionPatient", "ImagePositionPatient"),
    ("PlaneOrientationSequence", "ImageOrientationPatient", "ImageOrientationPatient"),
    ("PixelMeasuresSequence", "PixelSpacing", "PixelSpacing"),
    ("PixelMeasuresSequence", "SliceThickness", "SliceThickness"),
    ("PixelMeasuresSequence", "SpacingBetweenSlices", "SpacingBetweenSlices"),
    ("PixelValueTransformationSequence", "RescaleSlope", "RescaleSlope"),
    ("PixelValueTransformationSequence", "RescaleIntercept", "RescaleIntercept"),
    ("FrameContentSequence", "TemporalPositionIndex", "TemporalPositionIdentifier"),
    ("FrameContentSequence", "StackID", "StackID"),
    ("CardiacSynchronizationSequence", "NominalCardiacTriggerDelayTime", "TriggerTime"),
    ("MRDiffusionSequence", "DiffusionBValue", "DiffusionBValue"),
    ("MREchoSequence", "EffectiveEchoTime", "EchoTime"),
)


def is_enhanced(hdr) -> bool:
    return int(hdr.get("NumberOfFrames", 1) or 1) > 1 and "PerFrameFunctionalGroupsSequence" in hdr


def _item(group, name: str):
    seq = group.get(name) if group is not None else None
    return seq[0] if seq else None


def frame_headers(hdr) -> list:
    """One light header per frame (``frame_index`` = its 0-based frame number)."""
    from pydicom.dataset import Dataset

    shared = _item(hdr, "SharedFunctionalGroupsSequence")
    out = []
    for f, per in enumerate(hdr.PerFrameFunctionalGroupsSequence):
        fh = Dataset()
        for name in COPIED:
            if name in hdr:
                elem = hdr[name]
                fh.add_new(elem.tag, elem.VR, elem.value)  # own element: values change per frame
        for group, name, target in GROUPS:
            item = _item(per, group) or _item(shared, group)
            if item is not None and name in item:
                setattr(fh, target, item[name].value)
        direction = _item(_item(per, "MRDiffusionSequence"), "DiffusionGradientDirectionSequence")
        if direction is not None and "DiffusionGradientOrientation" in direction:
            fh.DiffusionGradientOrientation = direction.DiffusionGradientOrientation
        fh.frame_index = f
        out.append(fh)
    return out


def enhanced_frames(ds) -> np.ndarray:
    """Every frame's stored values, (frames, rows, cols)."""
    from napari_medseg.io.dicom_pixels import decoded

    arr = decoded(ds)
    return arr.reshape(int(ds.NumberOfFrames), int(ds.Rows), int(ds.Columns), *arr.shape[3:])
