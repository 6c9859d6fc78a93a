"""QIDO-RS study search: patient id, modality, study date (range), accession number."""

from __future__ import annotations

from napari_medseg.pacs.client import Server, errors

FIELDS = (
    "StudyInstanceUID", "PatientID", "PatientName", "StudyDate", "StudyDescription",
    "AccessionNumber", "ModalitiesInStudy", "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)  # fmt: skip
KEYS = {  # our JSON key -> DICOM keyword
    "study_uid": "StudyInstanceUID", "patient_id": "PatientID", "patient_name": "PatientName",
    "study_date": "StudyDate", "description": "StudyDescription",
    "accession": "AccessionNumber", "modalities": "ModalitiesInStudy",
    "series": "NumberOfStudyRelatedSeries", "instances": "NumberOfStudyRelatedInstances",
}  # fmt: skip


def _value(item: dict, keyword: str):
    """A value from a DICOM JSON dataset (first value; all values for ModalitiesInStudy)."""
    from pydicom.datadict import tag_for_keyword

    tag = f"{tag_for_keyword(keyword):08X}"
    values = (item.get(tag) or {}).get("Value") or []
    if keyword == "ModalitiesInStudy":
        return [str(v) for v in values]
    if not values:
        return None
    v = values[0]
    if isinstance(v, dict):  # PersonName
        return str(v.get("Alphabetic", ""))
    return v


def search_studies(server: Server, patient: str | None = None, modality: str | None = None,
                   study_date: str | None = None, accession: str | None = None,
                   limit: int | None = None) -> list[dict]:  # fmt: skip
    """Matching studies as dicts with the keys of :data:`KEYS`.

    ``study_date`` is a DICOM date or range (``20240101``, ``20240101-20240131``); ``patient``
    may use QIDO wildcards (``SYN*``).
    """
    filters = {
        k: v
        for k, v in (
            ("PatientID", patient),
            ("ModalitiesInStudy", modality),
            ("StudyDate", study_date),
            ("AccessionNumber", accession),
        )  # fmt: skip
        if v
    }
    with errors(server, "study search"):
        found = server.client().search_for_studies(
            fields=list(FIELDS), search_filters=filters, limit=limit
        )
        if not isinstance(found, list) or not all(isinstance(s, dict) for s in found):
            raise ValueError("QIDO answer is not a list of datasets")
        studies = [{key: _value(item, kw) for key, kw in KEYS.items()} for item in found]
    return [s for s in studies if s["study_uid"]]
