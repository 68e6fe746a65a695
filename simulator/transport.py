"""Heartbeats over asyncio streams: one HTTP/1.1 POST on a new TLS connection per beat, as an agent sends it, for
about half the client CPU of httpx (onboarding stays on httpx). No Django."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import ssl
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx


def skip_failing_sniffio_import() -> None:
    """httpcore 1.0.x tries ``import sniffio`` for every lock it sets up (several per request), and anyio ≥ 4.11 no
    longer installs sniffio: every failed import searches ``sys.path`` again (encode/httpcore#1103). Profiled here,
    that was ~7% of the simulator's CPU. When sniffio is not installed, mark it absent in ``sys.modules`` so the
    import fails at once; httpcore then assumes asyncio, as it does after the slow failure."""
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


# --- Heartbeats over asyncio streams ------------------------------------------------------------------------------


@dataclass
class RawResponse:
    status_code: int
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)


class HeartbeatTransportError(Exception):
    """The portal's answer could not be read (no status line, a truncated chunk)."""


class HeartbeatSender:
    """One heartbeat = one HTTP/1.1 POST on a new TLS connection (``Connection: close``), over asyncio streams.

    The same request an agent sends — a new TLS handshake each time, as gunicorn's sync workers close every
    connection anyway — for about half the client CPU of ``httpx.AsyncClient`` (measured on this box: 1.3 against
    2.8 ms per request, TLS included). At 10,000 machines a minute the simulator shares 2 CPUs with the portal it
    measures, so that CPU is the portal's. Onboarding (a few requests per machine) stays on httpx.
    """

    def __init__(self, portal_url: str, ssl_ctx: ssl.SSLContext | bool, *, timeout: float, user_agent: str) -> None:
        parts = urlsplit(portal_url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"not an https:// URL: {portal_url}")
        self.host, self.port = parts.hostname, parts.port or 443
        self.netloc, self.prefix = parts.netloc, parts.path.rstrip("/")
        self.ssl = ssl_ctx if isinstance(ssl_ctx, ssl.SSLContext) else ssl.create_default_context()
        self.timeout, self.user_agent = timeout, user_agent

    def request_bytes(self, path: str, body: bytes, headers: Mapping[str, str]) -> bytes:
        lines = [f"POST {self.prefix}{path} HTTP/1.1", f"Host: {self.netloc}", f"User-Agent: {self.user_agent}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
        return "\r\n".join(lines).encode("latin-1") + body

    async def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> RawResponse:
        async with asyncio.timeout(self.timeout):
            reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self.ssl)
            try:
                writer.write(self.request_bytes(path, body, headers))
                raw = await reader.read()  # until the server closes, as "Connection: close" asks
            finally:
                writer.close()
                with contextlib.suppress(OSError, ssl.SSLError):
                    await writer.wait_closed()
        return parse_response(raw)


def parse_response(raw: bytes) -> RawResponse:
    """An HTTP/1.1 response read to the end of the connection: status, and the body (Content-Length or chunked)."""
    head, separator, rest = raw.partition(b"\r\n\r\n")
    if not separator:
        raise HeartbeatTransportError("no complete response head")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise HeartbeatTransportError(f"bad status line {status_line[:40]!r}")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _unchunk(rest)
    elif "content-length" in headers:
        length = int(headers["content-length"])
        if len(rest) < length:
            raise HeartbeatTransportError("body shorter than its Content-Length")
        body = rest[:length]
    else:
        body = rest
    return RawResponse(int(parts[1]), body)


def _unchunk(data: bytes) -> bytes:
    body, position = bytearray(), 0
    while True:
        end = data.find(b"\r\n", position)
        if end < 0:
            raise HeartbeatTransportError("truncated chunked body")
        size = int(data[position:end].split(b";", 1)[0], 16)
        if size == 0:
            return bytes(body)
        start = end + 2
        if len(data) < start + size + 2:
            raise HeartbeatTransportError("truncated chunked body")
        body += data[start : start + size]
        position = start + size + 2


# Errors of one heartbeat without an answer: counted by class name, like httpx's.
HEARTBEAT_ERRORS = (OSError, EOFError, TimeoutError, HeartbeatTransportError, ValueError)


def _answer(response: httpx.Response | RawResponse) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
