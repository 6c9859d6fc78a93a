"""A DICOMweb connection with optional basic or bearer auth, and one-line errors.

:func:`connect` builds a ``dicomweb_client.DICOMwebClient`` whose ``requests`` session carries
the credentials; :func:`errors` turns any failure of a request into a :class:`PacsError` that
names the server (without credentials) and says what went wrong.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from napari_medseg.core.errors import MedsegError

TIMEOUT = 30.0  # seconds per request


class PacsError(MedsegError):
    """A DICOMweb server could not be reached, refused us, or answered something unusable."""


@dataclass(frozen=True)
class Auth:
    """Basic (``user`` + ``password``) or bearer (``token``) credentials; repr hides secrets."""

    user: str | None = None
    password: str | None = None
    token: str | None = None

    def __repr__(self) -> str:
        kind = "bearer" if self.token else "basic" if self.user else "none"
        return f"Auth({kind})"

    def apply(self, session) -> None:
        if self.token:
            session.headers["Authorization"] = f"Bearer {self.token}"
        elif self.user:
            session.auth = (self.user, self.password or "")


def split_url(url: str) -> tuple[str, Auth]:
    """The URL without ``user:password@`` and the credentials it carried."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PacsError(f"not a DICOMweb URL (expected http(s)://host[:port]/path): {public(url)}")
    auth = Auth(parts.username, parts.password) if parts.username else Auth()
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", "")), auth


def public(url: str) -> str:
    """``url`` safe to show: credentials, query and fragment removed."""
    parts = urlsplit(url.strip())
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass
class Server:
    """Where to talk to: the base URL (no credentials) and how to authenticate."""

    url: str
    auth: Auth = Auth()

    @classmethod
    def parse(cls, url: str, auth: Auth | None = None) -> Server:
        base, from_url = split_url(url)
        return cls(base, auth if auth is not None and (auth.user or auth.token) else from_url)

    def session(self):
        import requests

        session = requests.Session()
        self.auth.apply(session)
        return session

    def client(self):
        """A fresh ``DICOMwebClient`` (one per thread: sessions are not shared across threads)."""
        from dicomweb_client.api import DICOMwebClient

        client = DICOMwebClient(self.url, session=self.session(), timeout=TIMEOUT)
        client.set_http_retry_params(retry=False)
        return client


@contextlib.contextmanager
def errors(server: Server, what: str) -> Iterator[None]:
    """Translate a failed request into one :class:`PacsError` line."""
    import requests

    try:
        yield
    except PacsError:
        raise
    except requests.HTTPError as exc:
        raise PacsError(http_problem(server, what, exc.response)) from exc
    except requests.ConnectionError as exc:
        raise PacsError(f"cannot reach the DICOMweb server at {server.url} ({what})") from exc
    except requests.Timeout as exc:
        raise PacsError(f"{server.url} did not answer within {TIMEOUT:g} s ({what})") from exc
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise PacsError(
            f"{server.url} answered something that is not DICOMweb ({what}: {type(exc).__name__})"
        ) from exc


def http_problem(server: Server, what: str, response) -> str:
    code = getattr(response, "status_code", 0)
    if code in (401, 403):
        return f"{server.url} refused the credentials (HTTP {code}) ({what})"
    if code == 404:
        return f"not found on {server.url} (HTTP 404) ({what})"
    return f"{server.url} answered HTTP {code} ({what})"
