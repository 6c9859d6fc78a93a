"""WADO-RS study retrieval into a local cache, parallel and resumable.

The study lands in ``<out>/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``;
``<out>`` then opens as a DICOM dataset with every command. A series with nothing cached yet
comes as one streamed WADO-RS series answer whose ``application/dicom`` parts are written to
disk as they arrive (no decode and re-encode, no whole series in memory); series run in
parallel, and instances still missing afterwards (a partly cached series, an answer cut short)
are fetched one by one by several threads. Every file is written atomically: a file in the
cache is always a whole instance, so an interrupted retrieval resumes by fetching only the
missing ones. ``<out>/.medseg-pacs.json``
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
    part = next(iter_parts([body], _boundary(content_type)), b"")
    if part[128:132] != b"DICM":
        raise ValueError("the part is not a DICOM file")
    return part


def iter_parts(chunks, boundary: bytes):
    """The bodies of a multipart/related stream, one at a time, as the chunks arrive."""
    delim = b"\r\n--" + boundary
    buf = bytearray(b"\r\n")  # the first delimiter may open the stream without a CRLF
    chunks = iter(chunks)

    def until(token: bytes) -> int:
        search = 0
        while (i := buf.find(token, search)) < 0:
            search = max(0, len(buf) - len(token))
            chunk = next(chunks, None)
            if chunk is None:
                raise ValueError("the multipart answer ended early")
            buf.extend(chunk)
        return i

    del buf[: until(delim) + len(delim)]
    while True:
        while len(buf) < 2:
            chunk = next(chunks, None)
            if chunk is None:
                raise ValueError("the multipart answer ended early")
            buf.extend(chunk)
        if buf[:2] == b"--":
            return
        del buf[: until(b"\r\n\r\n") + 4]
        end = until(delim)
        yield bytes(buf[:end])
        del buf[: end + len(delim)]


def _boundary(content_type: str) -> bytes:
    for p in content_type.split(";"):
        if p.strip().lower().startswith("boundary="):
            return p.split("=", 1)[1].strip().strip('"').encode()
    raise ValueError("no multipart boundary")


def _sop_uid(part: bytes) -> str:
    import io

    import pydicom

    if part[128:132] != b"DICM":
        raise ValueError("a part is not a DICOM file")
    ds = pydicom.dcmread(
        io.BytesIO(part), stop_before_pixels=True, specific_tags=["SOPInstanceUID"]
    )
    return str(ds.SOPInstanceUID)


class _Fetcher:
    """Fetches single instances with one HTTP session per thread."""

    def __init__(self, server: Server, study_uid: str):
        self.server, self.study_uid = server, study_uid
        self.local = threading.local()

    def session(self):
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = self.server.session()
        return session

    def series(self, series_uid: str, paths: dict[str, Path], progress) -> None:
        """Stream a whole series, writing each expected instance as its part arrives.

        Parts cut short or missing are left for :meth:`__call__`."""
        url = f"{self.server.url}/studies/{self.study_uid}/series/{series_uid}"
        with errors(self.server, f"series {series_uid}"):
            response = self.session().get(
                url, headers={"Accept": ACCEPT}, timeout=TIMEOUT, stream=True
            )
            with response:
                if response.status_code == 404:
                    return
                response.raise_for_status()
                boundary = _boundary(response.headers.get("Content-Type", ""))
                try:
                    for part in iter_parts(response.iter_content(1 << 20), boundary):
                        path = paths.get(_sop_uid(part))
                        if path is not None and not path.exists():
                            with atomic_path(path) as tmp:
                                tmp.write_bytes(part)
                            progress()
                except ValueError as exc:
                    if "ended early" not in str(exc):
                        raise

    def __call__(self, series_uid: str, sop_uid: str, path: Path) -> None:
        session = self.session()
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
    instances = instance_uids(server, study_uid)
    paths = {
        (series, sop): out / safe_uid(study_uid) / safe_uid(series) / f"{safe_uid(sop)}.dcm"
        for series, sop in instances
    }
    missing = [key for key, path in paths.items() if not path.is_file()]
    total, fetch = len(instances), _Fetcher(server, study_uid)
    count = [total - len(missing)]
    lock = threading.Lock()

    def step() -> None:
        with lock:
            count[0] += 1
            if progress:
                progress(count[0], total)

    if progress:
        progress(count[0], total)
    by_series: dict[str, dict[str, Path]] = {}
    for series, sop in missing:
        by_series.setdefault(series, {})[sop] = paths[series, sop]
    whole = [se for se, sops in by_series.items()
             if len(sops) == sum(1 for s, _ in instances if s == se)]  # fmt: skip
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        for future in as_completed([pool.submit(fetch.series, se, by_series[se], step)
                                    for se in whole]):  # fmt: skip
            future.result()
        left = [(se, sop, paths[se, sop]) for se, sop in missing if not paths[se, sop].is_file()]
        for future in as_completed([pool.submit(fetch, *job) for job in left]):
            future.result()
            step()
    except MedsegError as exc:
        pool.shutdown(wait=True, cancel_futures=True)
        _record(out, server, study_uid, total, False)
        kept = sum(1 for p in paths.values() if p.is_file())
        raise PacsError(f"{exc.problem}; {kept} of {total} instances are in {out}, "
                        "run again to resume") from exc  # fmt: skip
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    _record(out, server, study_uid, total, True)
    return Retrieved(out / safe_uid(study_uid), total, len(missing))


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
