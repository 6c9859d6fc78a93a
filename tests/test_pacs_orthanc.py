"""DICOMweb against a real Orthanc (with its DICOMweb plugin) on a free loopback port:
upload, search, retrieve, open, pre-segment, store the SEG back, read it back from the server;
and the failures (unreachable, wrong password, study gone mid-retrieve, garbage answers)."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from napari_medseg.cli import main
from napari_medseg.io.detect import open_dataset
from napari_medseg.io.dicom_write import write_dicom_series
from napari_medseg.pacs.local_orthanc import find_orthanc, free_port, local_orthanc, upload

_, _, WHY = find_orthanc()
pytestmark = pytest.mark.skipif(bool(WHY), reason=f"needs Orthanc with DICOMweb: {WHY}")

USER, PASSWORD = "reviewer", "s3cret-Pa55"


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    with local_orthanc(tmp_path_factory.mktemp("orthanc"), USER, PASSWORD) as url:
        yield url


@pytest.fixture
def creds(monkeypatch):
    monkeypatch.setenv("NAPARI_MEDSEG_PACS_PASSWORD", PASSWORD)
    return ["--user", USER]


def ct_study(folder: Path, patient: str, n: int = 16) -> list[Path]:
    """A CT with a bright block (what the threshold engine should find)."""
    arr = np.full((n, 64, 64), -800.0)
    arr[4:12, 20:44, 16:40] = 300.0
    arr += np.random.default_rng(1).normal(0, 20, arr.shape)
    return write_dicom_series(folder, arr, (2.0, 0.7, 0.7), patient_id=patient,
                              origin=(-22.0, -22.0, 40.0))  # fmt: skip


def cli_json(capsys, *argv) -> dict:
    assert main(list(argv)) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def orthanc_rest(url: str, method: str, path: str):
    import requests

    base = url.rsplit("/dicom-web", 1)[0]
    r = requests.request(method, base + path, auth=(USER, PASSWORD), timeout=30)
    r.raise_for_status()
    return r.json() if r.content else None


def no_secret_in(*folders: Path) -> bool:
    return all(
        PASSWORD.encode() not in f.read_bytes()
        for folder in folders
        for f in folder.rglob("*")
        if f.is_file()
    )


def test_round_trip_search_open_presegment_store_and_read_back(orthanc, creds, tmp_path, capsys):
    from dicomweb_client.api import DICOMwebClient

    from napari_medseg.io.dicom_seg import read_dicom_seg
    from napari_medseg.pacs.client import Auth, Server

    upload(orthanc, ct_study(tmp_path / "scanner", "RT001"), (USER, PASSWORD))
    found = cli_json(capsys, "pacs", "search", orthanc, "--patient", "RT001", "--modality", "CT",
                     "--json", *creds)  # fmt: skip
    (study,) = found["studies"]
    assert study["accession"] == "ACCRT001" and study["instances"] == 16

    def uids(*filters) -> list[str]:
        got = cli_json(capsys, "pacs", "search", orthanc, *filters, "--json", *creds)
        return [s["study_uid"] for s in got["studies"]]

    assert uids("--modality", "MR") == []  # no MR on the server
    assert uids("--accession", "ACCRT001", "--study-date", "20240101-20240131") == [
        study["study_uid"]
    ]
    assert uids("--accession", "ACCRT001", "--study-date", "20230101-20231231") == []
    cache = tmp_path / "cache"
    got = cli_json(capsys, "pacs", "open", orthanc, study["study_uid"], "--out", str(cache),
                   "--json", *creds)  # fmt: skip
    assert got["instances"] == got["fetched"] == 16
    ds = open_dataset(cache)
    (cid,) = ds.case_ids()
    image = ds.load_case(cid).reference_image()
    assert image.shape == (16, 64, 64)

    pre = tmp_path / "pre"
    assert main(["presegment", str(cache), "--engine", "threshold", "--method", "otsu",
                 "--workers", "0", "--out", str(pre)]) == 0  # fmt: skip
    capsys.readouterr()
    out = tmp_path / "seg"
    sent = cli_json(capsys, "export", str(cache), "--format", "dicom-seg", "--masks", str(pre),
                    "--out", str(out), "--send", orthanc, "--json", *creds)  # fmt: skip
    assert len(sent["sent"]) == 1 and sent["server"] == orthanc

    # Read the SEG back from the server (dicomweb-client, not our retriever) onto the series.
    server = Server.parse(orthanc, Auth(USER, PASSWORD))
    client = DICOMwebClient(orthanc, session=server.session())
    segs = client.search_for_series(study["study_uid"], search_filters={"Modality": "SEG"})
    assert len(segs) == 1
    (seg_ds,) = client.retrieve_series(study["study_uid"], segs[0]["0020000E"]["Value"][0])
    seg_ds.save_as(tmp_path / "from_server.dcm")
    labels, labelmap = read_dicom_seg(tmp_path / "from_server.dcm", ds._cases[cid]["image"])
    from napari_medseg.io.masks import read_mask

    mask = read_mask(pre / f"{cid}.nii.gz", image).array
    assert mask.any()
    np.testing.assert_array_equal(labels > 0, mask > 0)
    assert seg_ds.SegmentSequence[0].SegmentAlgorithmName == "threshold"

    # Opening again fetches only what is new (the SEG), which then opens as the case's mask.
    again = cli_json(capsys, "pacs", "open", orthanc, study["study_uid"], "--out", str(cache),
                     "--json", *creds)  # fmt: skip
    assert again["instances"] == 17 and again["fetched"] == 1
    case = open_dataset(cache).load_case(cid)
    np.testing.assert_array_equal(case.masks[0].array > 0, mask > 0)
    assert no_secret_in(cache, out, pre)
    assert PASSWORD not in capsys.readouterr().err


def test_wrong_password_is_one_clear_line_and_writes_nothing(
    orthanc, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("NAPARI_MEDSEG_PACS_PASSWORD", "wrong")
    uid = "1.2.3.4"
    assert main(["pacs", "open", orthanc, uid, "--out", str(tmp_path / "c"), "--user", USER]) == 2
    err = capsys.readouterr().err
    assert "refused the credentials (HTTP 401)" in err and len(err.strip().splitlines()) == 1
    assert "wrong" not in err and not (tmp_path / "c").exists()


def test_unreachable_server(tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}/dicom-web"
    assert main(["pacs", "search", url]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the DICOMweb server" in err and len(err.strip().splitlines()) == 1


def test_study_vanishing_mid_retrieve_leaves_a_consistent_resumable_cache(orthanc, tmp_path):
    """Resuming a partly cached series (instance by instance) while the study is deleted."""
    import pydicom

    from napari_medseg.pacs.client import Auth, PacsError, Server
    from napari_medseg.pacs.retrieve import RECORD, retrieve_study

    files = ct_study(tmp_path / "scanner", "GONE01", n=8)
    upload(orthanc, files, (USER, PASSWORD))
    study_uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    (orthanc_id,) = [
        s["ID"]
        for s in orthanc_rest(orthanc, "GET", "/studies?expand")
        if s["MainDicomTags"]["StudyInstanceUID"] == study_uid
    ]
    server = Server.parse(orthanc, Auth(USER, PASSWORD))
    cache = tmp_path / "cache"
    first = pydicom.dcmread(files[0], stop_before_pixels=True)  # from an earlier, cut-off run
    earlier = cache / study_uid / first.SeriesInstanceUID / f"{first.SOPInstanceUID}.dcm"
    earlier.parent.mkdir(parents=True)
    earlier.write_bytes(files[0].read_bytes())

    def delete_after_first(done: int, total: int) -> None:
        if done == 2:
            orthanc_rest(orthanc, "DELETE", f"/studies/{orthanc_id}")

    with pytest.raises(PacsError, match="no longer on .* run again to resume"):
        retrieve_study(server, study_uid, cache, progress=delete_after_first, workers=1)
    kept = [f for f in cache.rglob("*") if f.is_file() and f.name != RECORD]
    assert 2 <= len(kept) < 8
    for f in kept:  # every file in the cache is a whole instance; no temporary left behind
        assert f.suffix == ".dcm" and not f.name.startswith(".")
        pydicom.dcmread(f).pixel_array  # noqa: B018
    record = json.loads((cache / RECORD).read_text())
    assert record["studies"][study_uid]["complete"] is False
    upload(orthanc, files, (USER, PASSWORD))
    res = retrieve_study(server, study_uid, cache)
    assert res.instances == 8 and res.fetched == 8 - len(kept)
    assert json.loads((cache / RECORD).read_text())["studies"][study_uid]["complete"] is True


class _Garbage(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        body = b"<html>hello, this is not DICOMweb</html>"
        self.send_response(200)
        self.send_header("Content-Type", "application/dicom+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_server_answering_garbage(tmp_path, capsys):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/dicom-web"
        assert main(["pacs", "search", url]) == 2
        assert "answered something that is not DICOMweb" in capsys.readouterr().err
        assert main(["pacs", "open", url, "1.2.3", "--out", str(tmp_path / "c")]) == 2
        err = capsys.readouterr().err
        assert "not DICOMweb" in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "c").exists()
    finally:
        httpd.shutdown()


def test_study_deleted_after_listing(orthanc, tmp_path):
    """The series answer is 404: the instance fetch names what is gone; nothing is written."""
    import pydicom

    from napari_medseg.pacs.client import Auth, PacsError, Server
    from napari_medseg.pacs.retrieve import retrieve_study

    files = ct_study(tmp_path / "scanner", "GONE02", n=4)
    upload(orthanc, files, (USER, PASSWORD))
    study_uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    studies = orthanc_rest(orthanc, "GET", "/studies?expand")
    (oid,) = [s["ID"] for s in studies if s["MainDicomTags"]["StudyInstanceUID"] == study_uid]

    def delete_now(done: int, total: int) -> None:
        if done == 0:
            orthanc_rest(orthanc, "DELETE", f"/studies/{oid}")

    with pytest.raises(PacsError, match="no longer on .* 0 of 4 instances"):
        retrieve_study(Server.parse(orthanc, Auth(USER, PASSWORD)), study_uid, tmp_path / "c",
                       progress=delete_now)  # fmt: skip
    assert not list((tmp_path / "c").rglob("*.dcm"))
