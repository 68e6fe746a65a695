"""HIMDS, the Hybrid Instance Metadata Service, on ``127.0.0.1:<himds.port>`` (default 40342) in the agent service.

* ``GET /metadata/instance`` and ``/metadata/instance/compute`` (``Metadata: true`` and ``api-version`` required,
  else 400): the machine's IMDS metadata from agentconfig.json and its own facts — it answers while the portal is
  unreachable.
* ``GET /metadata/identity/oauth2/token?api-version=2019-11-01|2020-06-01&resource=…``: Arc's challenge. Without
  ``Authorization`` → 401 ``WWW-Authenticate: Basic realm=<path>``, the path of a fresh one-time ``.key`` file (64
  characters, mode 0640, group ``himds`` when that group exists) in ``himds.tokensDir``; the same request with
  ``Authorization: Basic <the file's contents>`` → the token JSON (``access_token``, ``expires_in``, ``expires_on``,
  ``not_before``, ``resource``, ``token_type``) for exactly that resource. A secret works once and for
  ``CHALLENGE_SECONDS``; its file is removed when used or expired.

Only loopback clients are served (the socket is bound to 127.0.0.1 and the peer address is checked again); a request
carrying ``X-Forwarded-For`` (relayed by a proxy) is refused, as Azure's IMDS does.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import logging
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from azcmagent.msi import MachineIdentity, TokenError

try:
    import grp
except ImportError:  # not on Windows
    grp = None

logger = logging.getLogger("himds")

API_VERSIONS = {"2018-02-01", "2019-06-01", "2019-08-15", "2019-11-01", "2020-06-01", "2021-02-01"}
TOKEN_API_VERSIONS = {"2019-11-01", "2020-06-01"}
CHALLENGE_SECONDS = 60
MAX_CHALLENGES = 1000
MAX_RESOURCE_LENGTH = 1000
FILE_GROUP = "himds"  # the group that may read challenge files (as on Azure's agent)


def is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback


def valid_resource(resource: str) -> bool:
    if not resource or len(resource) > MAX_RESOURCE_LENGTH or any(c.isspace() or not c.isprintable() for c in resource):
        return False
    try:
        uuid.UUID(resource)
        return True
    except ValueError:
        pass
    parts = urlsplit(resource)
    return parts.scheme in ("https", "http", "api") and bool(parts.netloc)


class Challenges:
    """One-time secrets, each in its own ``.key`` file; only a hash of each is kept in memory."""

    def __init__(self, directory: Path, lifetime: float = CHALLENGE_SECONDS, clock=time.monotonic) -> None:
        self.directory, self.lifetime, self.clock = directory, lifetime, clock
        self._open: dict[str, tuple[Path, float]] = {}
        self._lock = threading.Lock()
        self._remove_stale()

    def _remove_stale(self) -> None:
        """Challenge files an earlier run left behind (it was killed): unusable, since only that run knew them."""
        cutoff = time.time() - self.lifetime
        for path in self.directory.glob("*.key") if self.directory.is_dir() else ():
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()

    def _prune(self) -> None:
        now = self.clock()
        for digest, (path, created) in list(self._open.items()):
            if now - created > self.lifetime:
                del self._open[digest]
                path.unlink(missing_ok=True)

    def issue(self) -> Path | None:
        """A fresh secret file (None when too many are open)."""
        secret = secrets.token_hex(32)
        with self._lock:
            self._prune()
            if len(self._open) >= MAX_CHALLENGES:
                return None
            self.directory.mkdir(mode=0o750, parents=True, exist_ok=True)
            path = self.directory / f"{uuid.uuid4().hex}.key"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o640)
            try:
                os.fchmod(fd, 0o640)
                if grp is not None:
                    with contextlib.suppress(KeyError, PermissionError):  # no himds group: owner and its group
                        os.fchown(fd, -1, grp.getgrnam(FILE_GROUP).gr_gid)
                os.write(fd, secret.encode())
            finally:
                os.close(fd)
            self._open[hashlib.sha256(secret.encode()).hexdigest()] = (path, self.clock())
            return path

    def redeem(self, secret: str) -> bool:
        """True once for a secret issued less than ``lifetime`` ago; its file is removed either way."""
        digest = hashlib.sha256(secret.encode()).hexdigest()
        with self._lock:
            found = self._open.pop(digest, None)
            if found is None:
                return False
            path, created = found
            path.unlink(missing_ok=True)
            return self.clock() - created <= self.lifetime

    def close(self) -> None:
        with self._lock:
            for path, _ in self._open.values():
                path.unlink(missing_ok=True)
            self._open.clear()


class HimdsHandler(BaseHTTPRequestHandler):
    server_version = "HIMDS"
    sys_version = ""
    server: HimdsServer

    def log_message(self, format: str, *args: Any) -> None:
        logger.info("HIMDS %s %s", self.address_string(), format % args)

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def _error(self, status: int, error: str, description: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, {"error": error, "error_description": description}, headers)

    def do_GET(self) -> None:
        if not is_loopback(self.client_address[0]):
            return self._error(403, "forbidden", "HIMDS answers requests from this machine's loopback only.")
        if self.headers.get("X-Forwarded-For"):
            return self._error(400, "bad_request", "Requests relayed through a proxy (X-Forwarded-For) are refused.")
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        routes = {
            "/metadata/instance": self._instance,
            "/metadata/instance/compute": self._compute,
            "/metadata/identity/oauth2/token": self._token,
        }
        route = routes.get(url.path.rstrip("/") or "/")
        if route is None:
            return self._error(404, "not_found", f"No such HIMDS endpoint: {url.path}")
        if (self.headers.get("Metadata") or "").lower() != "true":
            return self._error(400, "bad_request", "Required metadata header not specified (Metadata: true).")
        if not query.get("api-version"):
            return self._error(400, "bad_request", "api-version was not specified in the request.")
        return route(query)

    def _method_not_allowed(self) -> None:
        self._error(405, "method_not_allowed", "HIMDS endpoints answer GET only.", {"Allow": "GET"})

    do_POST = do_PUT = do_DELETE = do_PATCH = _method_not_allowed

    def _instance(self, query: dict[str, str]) -> None:
        if query["api-version"] not in API_VERSIONS:
            return self._error(400, "bad_request", f"Unsupported api-version {query['api-version']}.")
        return self._send(200, {"compute": self.server.metadata(), "network": {"interface": []}})

    def _compute(self, query: dict[str, str]) -> None:
        if query["api-version"] not in API_VERSIONS:
            return self._error(400, "bad_request", f"Unsupported api-version {query['api-version']}.")
        return self._send(200, self.server.metadata())

    def _token(self, query: dict[str, str]) -> None:
        if query["api-version"] not in TOKEN_API_VERSIONS:
            return self._error(400, "invalid_request", "api-version must be 2019-11-01 or 2020-06-01.")
        if {"client_id", "object_id", "msi_res_id", "mi_res_id"} & set(query):
            return self._error(
                400, "invalid_request", "Arc-enabled servers have a system-assigned identity only: no user-assigned."
            )
        resource = query.get("resource", "")
        if not valid_resource(resource):
            return self._error(400, "invalid_request", "resource must be an absolute URI or an application id.")
        authorization = self.headers.get("Authorization") or ""
        if not authorization:
            try:
                path = self.server.challenges.issue()
            except OSError as exc:
                logger.error("HIMDS cannot write a challenge file: %s", exc)
                return self._error(
                    500, "server_error", f"HIMDS cannot write its challenge file in {self.server.challenges.directory}."
                )
            if path is None:
                return self._error(429, "too_many_requests", "Too many open challenges: try again shortly.")
            return self._error(
                401,
                "unauthorized",
                "Read the file named in WWW-Authenticate and send its contents as Authorization: Basic <contents>.",
                {"WWW-Authenticate": f"Basic realm={path}"},
            )
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "basic" or not self.server.challenges.redeem(secret.strip()):
            return self._error(
                401, "unauthorized", "The secret is wrong, expired or already used: ask again without Authorization."
            )
        try:
            token = self.server.identity.token(resource)
        except TokenError as exc:
            logger.warning("HIMDS token for %s refused: %s", resource, exc)
            return self._error(exc.status, exc.error, exc.description)
        now = int(time.time())
        expires_in = str(max(0, int(token["expires_on"]) - now))
        return self._send(
            200,
            {
                "access_token": token["access_token"],
                "expires_in": expires_in,
                "expires_on": str(token["expires_on"]),
                "ext_expires_in": expires_in,
                "not_before": str(token["not_before"]),
                "resource": token["resource"],
                "token_type": token["token_type"],
            },
        )


class HimdsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        *,
        port: int,
        tokens_dir: Path,
        identity: MachineIdentity,
        metadata: Callable[[], dict[str, Any]],
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__((host, port), HimdsHandler)
        self.identity, self.metadata = identity, metadata
        self.challenges = Challenges(tokens_dir)
        self.thread = threading.Thread(target=self.serve_forever, name="himds", daemon=True)

    def start(self) -> HimdsServer:
        self.thread.start()
        logger.info("HIMDS listening on http://%s:%s", *self.server_address[:2])
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.challenges.close()
