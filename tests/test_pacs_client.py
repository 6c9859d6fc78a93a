"""DICOMweb helpers without a server: credentials kept out of URLs and reprs, multipart parsing
split at any byte, UIDs as file names."""

from __future__ import annotations

import pytest

from napari_medseg.pacs.client import Auth, PacsError, Server, public, split_url
from napari_medseg.pacs.retrieve import dicom_part, iter_parts, safe_uid


def test_credentials_never_reach_urls_or_reprs():
    base, auth = split_url("http://ann:pa55@pacs.example:8042/dicom-web/?x=1")
    assert base == "http://pacs.example:8042/dicom-web" and (auth.user, auth.password) == (
        "ann",
        "pa55",
    )
    assert (
        public("http://ann:pa55@pacs.example/dicom-web?token=abc")
        == "http://pacs.example/dicom-web"
    )
    server = Server.parse("http://ann:pa55@pacs.example/dicom-web")
    assert "pa55" not in repr(server) and "pa55" not in server.url
    bearer = Server.parse("https://pacs.example/dicom-web", Auth(token="tok-123"))
    assert "tok-123" not in repr(bearer)
    assert bearer.session().headers["Authorization"] == "Bearer tok-123"
    assert Server.parse("http://h/dicom-web", Auth("u", "p")).session().auth == ("u", "p")
    with pytest.raises(PacsError, match="not a DICOMweb URL"):
        split_url("ftp://ann:pa55@host/x")


def _dicom(tag: bytes) -> bytes:
    return b"\0" * 128 + b"DICM" + tag


def test_multipart_parts_survive_any_chunking():
    parts = [_dicom(b"one" * 50), _dicom(b"two\r\n--not-the-boundary"), _dicom(b"")]
    body = (
        b"".join(b"--BND\r\nContent-Type: application/dicom\r\n\r\n" + p + b"\r\n" for p in parts)
        + b"--BND--\r\n"
    )
    for size in (1, 7, 64, len(body)):
        chunks = [body[i : i + size] for i in range(0, len(body), size)]
        assert list(iter_parts(chunks, b"BND")) == parts
    with pytest.raises(ValueError, match="ended early"):
        list(iter_parts([body[:200]], b"BND"))
    ctype = 'multipart/related; type="application/dicom"; boundary="BND"'
    assert dicom_part(body, ctype) == parts[0]
    assert dicom_part(parts[1], "application/dicom") == parts[1]
    with pytest.raises(ValueError):
        dicom_part(b"<html>no</html>", "text/html")


def test_uids_are_safe_file_names():
    assert safe_uid("1.2.840.10008.1") == "1.2.840.10008.1"
    for bad in ("../../etc", "1.2/3", "", ".1.2", "1.2 3"):
        with pytest.raises(PacsError):
            safe_uid(bad)
