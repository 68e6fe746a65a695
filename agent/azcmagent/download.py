"""Downloads for handlers (``fileUris``) and run commands (``scriptUri``): https only, through the agent's proxy.

A URI on the portal's own host is verified with the portal CA (``caFile``), any other host with the system's trust
store. Redirects are followed by hand (at most 5) so every hop is checked the same way. Error messages name the URI
without its query string (a SAS token there is a secret).
"""

from __future__ import annotations

import os
import re
import ssl
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import httpx

MAX_BYTES = 512 * 1024 * 1024
MAX_REDIRECTS = 5
TIMEOUT = httpx.Timeout(60.0, connect=15.0)
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")


class DownloadError(Exception):
    pass


def display_uri(uri: str) -> str:
    """``scheme://host/path``: no user info, no query (SAS tokens), no fragment."""
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


def file_name(uri: str) -> str:
    """The name a URI's file is saved under: its last path segment, which must be a plain file name."""
    name = unquote(urlsplit(uri).path.rsplit("/", 1)[-1])
    if not SAFE_NAME.match(name) or name in (".", ".."):
        raise DownloadError(f"{display_uri(uri)} does not end in a usable file name (letters, digits, . _ + -)")
    return name


class Downloader:
    def __init__(self, *, portal_url: str, ca_file: str | None, proxy: str | None) -> None:
        portal = urlsplit(portal_url)
        self.portal_origin = (portal.hostname, portal.port or 443)
        self.ca_file = ca_file or None
        self.proxy = proxy or None

    def _verify(self, uri: str) -> ssl.SSLContext:
        parts = urlsplit(uri)
        if self.ca_file and (parts.hostname, parts.port or 443) == self.portal_origin:
            return ssl.create_default_context(cafile=self.ca_file)
        return ssl.create_default_context()

    def fetch(self, uri: str, directory: Path, *, name: str | None = None, limit: int = MAX_BYTES) -> Path:
        """Save ``uri`` as ``directory/<name or its file name>``; DownloadError with a clear reason otherwise."""
        target = directory / (name or file_name(uri))
        current = uri
        for _ in range(MAX_REDIRECTS + 1):
            if urlsplit(current).scheme.lower() != "https":
                raise DownloadError(f"only https:// URIs are downloaded, not {display_uri(current)}")
            location = self._get(current, target, limit)
            if location is None:
                return target
            current = urljoin(current, location)
        raise DownloadError(f"{display_uri(uri)}: more than {MAX_REDIRECTS} redirects")

    def _get(self, uri: str, target: Path, limit: int) -> str | None:
        try:
            with (
                httpx.Client(verify=self._verify(uri), proxy=self.proxy, timeout=TIMEOUT) as client,
                client.stream("GET", uri) as response,
            ):
                if response.is_redirect:
                    return response.headers.get("location", "")
                if response.status_code != 200:
                    raise DownloadError(f"{display_uri(uri)} answered HTTP {response.status_code}")
                size = 0
                tmp = target.with_name(target.name + ".part")
                with open(tmp, "wb") as handle:
                    for chunk in response.iter_bytes(64 * 1024):
                        size += len(chunk)
                        if size > limit:
                            raise DownloadError(f"{display_uri(uri)} is larger than {limit} bytes")
                        handle.write(chunk)
                os.replace(tmp, target)
                return None
        except httpx.HTTPError as exc:
            raise DownloadError(f"could not download {display_uri(uri)}: {exc.__class__.__name__}: {exc}") from exc
        finally:
            target.with_name(target.name + ".part").unlink(missing_ok=True)
