"""STOW-RS: send DICOM files (our SEG exports) to a DICOMweb server."""

from __future__ import annotations

from pathlib import Path

from napari_medseg.pacs.client import PacsError, Server, errors


def store_files(server: Server, paths: list[str | Path]) -> list[str]:
    """Store ``paths`` on the server; returns the stored SOP Instance UIDs.

    A server that answers with a failed-SOP list is an error naming the first failed file.
    """
    import pydicom

    datasets = [pydicom.dcmread(p) for p in paths]
    with errors(server, "storing " + ", ".join(Path(p).name for p in paths)):
        answer = server.client().store_instances(datasets=datasets)
    failed = getattr(answer, "FailedSOPSequence", None) if answer is not None else None
    if failed:
        uid = str(failed[0].get("ReferencedSOPInstanceUID", "?"))
        bad = next((p for p, d in zip(paths, datasets, strict=True) if d.SOPInstanceUID == uid),
                   paths[0])  # fmt: skip
        raise PacsError(f"{server.url} did not store {Path(bad).name} (failed SOP {uid})")
    return [str(d.SOPInstanceUID) for d in datasets]


def send_reviewed_seg(server: Server, case, mask, labelmap, out: str | Path, source=None) -> Path:
    """A reviewed mask as a MANUAL DICOM SEG in ``out`` (next to the review's masks), stored
    on ``server``; returns the SEG file. The case must come from DICOM (e.g. the PACS)."""
    from napari_medseg.core.safe_names import case_file
    from napari_medseg.export import ExportItem
    from napari_medseg.export.dicom_seg import SEG_SUFFIX, Algorithm, write_seg_file

    item = ExportItem(case.id, mask, reference=case.reference_image(), source=source)
    path = case_file(Path(out) / "dicom-seg", case.id, SEG_SUFFIX)
    written = write_seg_file(path, item, labelmap, Algorithm())
    store_files(server, [written.path])
    return written.path
