"""WADO-RS study retrieval into a local cache, parallel and resumable.

The study lands in ``<out>/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``;
``<out>`` then opens as a DICOM dataset with every command. Instances are fetched as raw
``application/dicom`` parts (no decode and re-encode) by several threads, each written to disk
as soon as it arrives, atomically: a file in the cache is always a whole instance, so an
interrupted retrieval resumes by fetching only the missing ones. ``<out>/.medseg-pacs.json``
records which studies came from which server (no credentials) and whether they are complete.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from napari_medseg.core.atomic import atomic_path, write_text
from napari_medseg.core.errors import MedsegError
from napari_medseg.pacs.client import TIMEOUT, PacsError, Server, errors

RECORD = ".medseg-pacs.json"
WORKERS = 8
ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'


@dataclass
class Retrieved:
    folder: Path  # <out>/<study uid>
    instances: int
    fetched: int  # fetched by this call; the others were already in the cache


def instance_uids(server: Server, study_uid: str) -> list[tuple[str, str]]:
    """(series UID, SOP instance UID) of every instance of the study (QIDO-RS)."""
    with errors(server, f"listing study {study_uid}"):
        found = server.client().search_for_instances(
            study_instance_uid=study_uid, fields=["SeriesInstanceUID", "SOPInstanceUID"]
        )
        if not isinstance(found, list):
            raise ValueError("QIDO answer is not a list")
        out = [(item["0020000E"]["Value"][0], item["00080018"]["Value"][0]) for item in found]
    if not out:
        raise PacsError(f"no study {study_uid} on {server.url}")
    return out


def dicom_part(body: bytes, content_type: str) -> bytes:
    """The one ``application/dicom`` part of a multipart/related answer (or a bare file)."""
    if body[128:132] == b"DICM":
        return body
    boundary = next(
        (p.split("=", 1)[1].strip().strip('"') for p in content_type.split(";")
         if p.strip().lower().startswith("boundary=")),
        None,
    )  # fmt: skip
    if boundary is None:
        raise ValueError("no multipart boundary")
    start = body.find(b"\r\n\r\n", body.find(b"--" + boundary.encode()))
    end = body.rfind(b"\r\n--" + boundary.encode())
    if start < 0 or end < 0:
        raise ValueError("malformed multipart message")
    part = body[start + 4 : end]
    if part[128:132] != b"DICM":
        raise ValueError("the part is not a DICOM file")
    return part


class _Fetcher:
    """Fetches single instances with one HTTP session per thread."""

    def __init__(self, server: Server, study_uid: str):
        self.server, self.study_uid = server, study_uid
        self.local = threading.local()

    def __call__(self, series_uid: str, sop_uid: str, path: Path) -> None:
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = self.server.session()
        url = (f"{self.server.url}/studies/{self.study_uid}/series/{series_uid}"
               f"/instances/{sop_uid}")  # fmt: skip
        with errors(self.server, f"instance {sop_uid}"):
            response = session.get(url, headers={"Accept": ACCEPT}, timeout=TIMEOUT)
            if response.status_code == 404:
                raise PacsError(
                    f"instance {sop_uid} of study {self.study_uid} is no longer on "
                    f"{self.server.url} (the study changed while retrieving)"
                )
            response.raise_for_status()
            data = dicom_part(response.content, response.headers.get("Content-Type", ""))
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)


def retrieve_study(server: Server, study_uid: str, out: str | Path,
                   progress: Callable[[int, int], None] | None = None,
                   workers: int = WORKERS) -> Retrieved:  # fmt: skip
    """Fetch the instances of ``study_uid`` missing from ``out`` (see the module docstring)."""
    out = Path(out)
    todo, have = [], 0
    instances = instance_uids(server, study_uid)
    for series_uid, sop_uid in instances:
        path = out / safe_uid(study_uid) / safe_uid(series_uid) / f"{safe_uid(sop_uid)}.dcm"
        if path.is_file():
            have += 1
        else:
            todo.append((series_uid, sop_uid, path))
    total = len(instances)
    if progress:
        progress(have, total)
    fetch = _Fetcher(server, study_uid)
    done = have
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        futures = [pool.submit(fetch, *job) for job in todo]
        for future in as_completed(futures):
            future.result()
            done += 1
            if progress:
                progress(done, total)
    except MedsegError as exc:
        pool.shutdown(wait=True, cancel_futures=True)
        _record(out, server, study_uid, total, False)
        kept = sum(1 for *_, p in todo if p.is_file()) + have
        raise PacsError(f"{exc.problem}; {kept} of {total} instances are in {out}, "
                        "run again to resume") from exc  # fmt: skip
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    _record(out, server, study_uid, total, True)
    return Retrieved(out / safe_uid(study_uid), total, len(todo))


def safe_uid(uid: str) -> str:
    """A UID as a file name: UIDs are digits and dots; anything else is refused."""
    uid = str(uid).strip()
    if not uid or not all(c.isdigit() or c == "." for c in uid) or uid.strip(".") != uid:
        raise PacsError(f"the server sent an invalid UID {uid[:80]!r}")
    return uid


def _record(out: Path, server: Server, study_uid: str, instances: int, complete: bool) -> None:
    """Note in ``out/.medseg-pacs.json`` where the study came from (never the credentials)."""
    path = out / RECORD
    try:
        record = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        record = {}
    studies = record.get("studies") if isinstance(record.get("studies"), dict) else {}
    studies[study_uid] = {
        "server": server.url,
        "instances": instances,
        "complete": complete,
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_text(path, json.dumps({"format": "napari-medseg-pacs-cache", "studies": studies},
                                indent=2) + "\n")  # fmt: skip
