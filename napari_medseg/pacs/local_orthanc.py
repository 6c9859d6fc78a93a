"""A throwaway local Orthanc with its DICOMweb plugin (tests, benchmarks, demos).

It listens on 127.0.0.1 only, on a free port, keeps its database in a given folder, optionally
requires a user and password, and stops when the context ends. :func:`find_orthanc` says why
it cannot start where the Debian packages ``orthanc`` and ``orthanc-dicomweb`` are missing.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

PLUGIN_DIRS = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc", "/usr/local/share/orthanc/plugins")


def find_orthanc() -> tuple[str | None, str | None, str]:
    """(Orthanc binary, DICOMweb plugin, why not) - the reason is empty when both exist."""
    binary = shutil.which("Orthanc") or next(
        (p for p in ("/usr/sbin/Orthanc", "/usr/bin/Orthanc") if Path(p).is_file()), None
    )
    plugin = next(
        (str(p) for d in PLUGIN_DIRS for p in sorted(Path(d).glob("libOrthancDicomWeb.so*"))
         if Path(d).is_dir()),
        None,
    )  # fmt: skip
    if binary is None:
        return None, plugin, "Orthanc is not installed (Debian package orthanc)"
    if plugin is None:
        return (
            binary,
            None,
            "the Orthanc DICOMweb plugin is missing (Debian package orthanc-dicomweb)",
        )
    return binary, plugin, ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def local_orthanc(folder: str | Path, user: str | None = None, password: str | None = None,
                  timeout: float = 30.0) -> Iterator[str]:  # fmt: skip
    """Run Orthanc with its database in ``folder``; yields the DICOMweb root URL."""
    import requests

    binary, plugin, why = find_orthanc()
    if why:
        raise RuntimeError(why)
    folder = Path(folder)
    (folder / "db").mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = {
        "Name": "napari-medseg-test",
        "StorageDirectory": str(folder / "db"),
        "IndexDirectory": str(folder / "db"),
        "HttpPort": port,
        "DicomServerEnabled": False,
        "DicomPort": free_port(),
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": user is not None,
        "RegisteredUsers": {user: password or ""} if user is not None else {},
        "HttpThreadsCount": 16,
        "Plugins": [plugin],
        "DicomWeb": {
            "Enable": True,
            "Root": "/dicom-web/",
            "StudiesMetadata": "MainDicomTags",
            "SeriesMetadata": "MainDicomTags",
        },  # fmt: skip
    }
    (folder / "orthanc.json").write_text(json.dumps(config, indent=2))
    log = open(folder / "orthanc.log", "wb")  # noqa: SIM115 - closed after the process ends
    proc = subprocess.Popen([binary, str(folder / "orthanc.json")], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    auth = (user, password or "") if user is not None else None
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"Orthanc exited at start (see {folder / 'orthanc.log'})")
            try:
                if requests.get(url + "/system", auth=auth, timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"Orthanc did not start within {timeout:g} s")
            time.sleep(0.1)
        yield url + "/dicom-web"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def upload(url: str, files, auth: tuple[str, str] | None = None) -> None:
    """Store files through Orthanc's REST API (``/instances``), the way a modality would."""
    import requests

    base = url.rsplit("/dicom-web", 1)[0]
    with requests.Session() as session:
        session.auth = auth
        for f in files:
            session.post(
                base + "/instances", data=Path(f).read_bytes(), timeout=30
            ).raise_for_status()
