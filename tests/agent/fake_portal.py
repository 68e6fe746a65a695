"""A small, faithful stand-in for the portal's agent plane (the goal-state protocol, v1), over HTTPS on 127.0.0.1.

It speaks exactly the contract the real portal builds to (docs/extensions.md; ``azcmagent.protocol``): every
request's machine JWT is verified with the machine's public key — RS256, ``x5t`` = the certificate thumbprint,
``sub``/``vmId``, lifetime <= 300 s, unique ``jti``, ``bodySha256`` of the exact body, and ``htm``/``htu`` naming this
request on the goal-state and status endpoints (optional on the heartbeat, but checked when present). It serves
goal states with etags (304 on ``If-None-Match``), encrypts protectedSettings/protectedParameters to the machine key
with the AAD ``<vmId>/<kind>/<name>/<sequence>``, takes status reports (404 unknown name, 409 stale sequence), issues
machine-identity tokens for a client assertion, and serves plain files under ``/files/``. Kept in this one file so
the end-to-end tests can later run against the real portal instead.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
from azcmagent import protocol
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def issue_certificate(ca_key, ca_cert, public_key, cn: str, *, server: bool = False) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
    )
    if server:
        import ipaddress

        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(ca_key, hashes.SHA256())


def make_ca() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Fake ArcPortal CA"))
        .issuer_name(_name("Fake ArcPortal CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class Entry:
    """One extension or run command as the portal keeps it."""

    kind: str  # extensions | runCommands
    name: str
    sequence: int
    operation: str
    body: dict[str, Any]  # the goal-state entry without sequence/operation/protected*
    protected: Any = None  # plaintext; encrypted per answer
    reported: int = -1  # last sequence with a terminal report
    reports: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Machine:
    vm_id: str
    public_key: rsa.RSAPublicKey
    thumbprint: str  # upper-case hex
    principal_id: str
    resource_id: str = ""
    deleted: bool = False
    identity_refused: bool = False  # the token endpoint says invalid_client (e.g. a revoked certificate)
    entries: dict[tuple[str, str], Entry] = field(default_factory=dict)


class FakePortal:
    def __init__(self, directory: Path) -> None:
        self.ca_key, self.ca_cert = make_ca()
        self.ca_file = directory / "portal-ca.pem"
        self.ca_file.write_bytes(pem(self.ca_cert))
        server_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        server_cert = issue_certificate(self.ca_key, self.ca_cert, server_key.public_key(), "127.0.0.1", server=True)
        (directory / "server.pem").write_bytes(pem(server_cert) + pem(self.ca_cert))
        (directory / "server.key").write_bytes(
            server_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(directory / "server.pem", directory / "server.key")
        self.token_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.tenant_id = str(uuid.uuid4())
        self.machines: dict[str, Machine] = {}
        self._gone: dict[tuple[str, str, str], list[dict[str, Any]]] = {}  # reports of entries no longer listed
        self.files: dict[str, bytes] = {}  # served at /files/<name>, no authentication (like a blob URL)
        self.redirects: dict[str, str] = {}  # /redirect/<name> → 302 Location
        self.heartbeats: list[tuple[str, float]] = []
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status)
        self.rejections: list[tuple[str, str]] = []  # (path, error code): a correct agent causes none
        self.token_requests: list[dict[str, str]] = []
        self.next_heartbeat_seconds = 1
        self.next_poll_seconds = 1
        self.token_lifetime = 3600
        self.version = itertools.count(1)
        self.etag_version = next(self.version)
        self.jtis: set[str] = set()
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.server: ThreadingHTTPServer | None = None
        self.port = 0

    # --- lifecycle --------------------------------------------------------------------------------------------

    def start(self, port: int = 0) -> FakePortal:
        server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        server.daemon_threads = True
        server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        server.portal = self  # type: ignore[attr-defined]
        self.server, self.port = server, server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    # --- what tests do ----------------------------------------------------------------------------------------

    def add_machine(self, *, vm_id: str, public_key, certificate_pem: bytes, principal_id: str, resource_id: str):
        cert = x509.load_pem_x509_certificate(certificate_pem)
        thumbprint = cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - an identifier
        self.machines[vm_id] = Machine(vm_id, public_key, thumbprint, principal_id, resource_id)

    def issue_machine_certificate(self, public_key, vm_id: str) -> bytes:
        return pem(issue_certificate(self.ca_key, self.ca_cert, public_key, vm_id))

    def _bump(self) -> None:
        self.etag_version = next(self.version)
        self.changed.notify_all()

    def put_extension(self, vm_id: str, name: str, *, publisher: str, type_: str, version: str = "2.1",
                      settings: dict | None = None, protected: dict | None = None,
                      force_update_tag: str | None = None) -> int:  # fmt: skip
        with self.lock:
            machine = self.machines[vm_id]
            entry = machine.entries.get(("extensions", name))
            operation = "install" if entry is None or entry.operation == "delete" else "update"
            sequence = (entry.sequence + 1) if entry else 1
            body = {
                "name": name,
                "publisher": publisher,
                "type": type_,
                "typeHandlerVersion": version,
                "autoUpgradeMinorVersion": True,
                "enableAutomaticUpgrade": False,
                "forceUpdateTag": force_update_tag,
                "settings": settings or {},
            }
            machine.entries[("extensions", name)] = Entry(
                "extensions", name, sequence, operation, body, protected, entry.reported if entry else -1,
                entry.reports if entry else [],
            )  # fmt: skip
            self._bump()
            return sequence

    def delete_extension(self, vm_id: str, name: str) -> int:
        with self.lock:
            entry = self.machines[vm_id].entries[("extensions", name)]
            entry.sequence += 1
            entry.operation = "delete"
            self._bump()
            return entry.sequence

    def run_command(self, vm_id: str, name: str, *, script: str | None = None, script_uri: str | None = None,
                    parameters: list | None = None, protected: list | None = None, timeout: int = 60,
                    run_as_user: str | None = None) -> int:  # fmt: skip
        with self.lock:
            machine = self.machines[vm_id]
            entry = machine.entries.get(("runCommands", name))
            sequence = (entry.sequence + 1) if entry else 1
            body = {
                "name": name,
                "source": {"script": script, "scriptUri": script_uri, "commandId": None},
                "parameters": parameters or [],
                "timeoutInSeconds": timeout,
                "runAsUser": run_as_user,
            }
            machine.entries[("runCommands", name)] = Entry(
                "runCommands", name, sequence, "run", body, protected, entry.reported if entry else -1,
                entry.reports if entry else [],
            )  # fmt: skip
            self._bump()
            return sequence

    def delete_run_command(self, vm_id: str, name: str) -> int:
        with self.lock:
            entry = self.machines[vm_id].entries[("runCommands", name)]
            entry.sequence += 1
            entry.operation = "delete"
            self._bump()
            return entry.sequence

    def reports(self, vm_id: str, kind: str, name: str) -> list[dict[str, Any]]:
        with self.lock:
            entry = self.machines[vm_id].entries.get((kind, name))
            return list(entry.reports) if entry else list(self._gone.get((vm_id, kind, name), []))

    def wait_for(self, predicate, timeout: float = 30.0, what: str = "the condition"):
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}; rejections={self.rejections}")
                self.changed.wait(min(left, 0.2))

    def wait_for_report(self, vm_id: str, kind: str, name: str, *, terminal: bool = True, sequence: int | None = None,
                        timeout: float = 30.0) -> dict[str, Any]:  # fmt: skip
        key = "state" if kind == "extensions" else "executionState"
        waiting = ("Transitioning", "Running")

        def found():
            for report in reversed(self.reports(vm_id, kind, name)):
                if sequence is not None and report["sequence"] != sequence:
                    continue
                if (report[key] not in waiting) == terminal:
                    return report
            return None

        return self.wait_for(found, timeout, f"a {'terminal' if terminal else 'progress'} report of {kind}/{name}")

    # --- goal state -------------------------------------------------------------------------------------------

    def goal_state(self, machine: Machine) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "etag": f'"{self.etag_version}"',
            "nextPollSeconds": self.next_poll_seconds,
            "extensions": [],
            "runCommands": [],
        }
        for entry in sorted(machine.entries.values(), key=lambda e: (e.kind, e.name)):
            if entry.kind == "runCommands" and entry.reported >= entry.sequence:
                continue  # runs are listed while pending only
            envelope = None
            if entry.protected is not None:
                aad = protocol.envelope_aad(machine.vm_id, entry.kind, entry.name, entry.sequence)
                envelope = protocol.envelope_encrypt(
                    machine.public_key, entry.protected, aad=aad, kid=machine.thumbprint
                )
            item = {**entry.body, "sequence": entry.sequence, "operation": entry.operation}
            item["protectedSettings" if entry.kind == "extensions" else "protectedParameters"] = envelope
            answer[entry.kind].append(item)
        return answer

    def take_report(self, machine: Machine, kind: str, name: str, body: dict[str, Any]) -> tuple[int, dict]:
        entry = machine.entries.get((kind, name))
        if entry is None:
            return 404, {"error": {"code": "NotFound", "message": f"No {kind} named {name}."}}
        if not isinstance(body.get("sequence"), int) or body["sequence"] < entry.sequence:
            return 409, {"error": {"code": "StaleSequence", "message": "This report's sequence is older."}}
        state = body.get("state" if kind == "extensions" else "executionState")
        if state not in (protocol.EXTENSION_STATES if kind == "extensions" else protocol.RUN_COMMAND_STATES):
            return 400, {"error": {"code": "InvalidRequest", "message": f"Unknown state {state!r}."}}
        entry.reports.append(body)
        if state not in ("Transitioning", "Running"):
            entry.reported = body["sequence"]
            if state == "Deleted" or (kind == "runCommands" and entry.operation == "delete"):
                del machine.entries[(kind, name)]
                self._gone[(machine.vm_id, kind, name)] = entry.reports
            self._bump()
        self.changed.notify_all()
        return 200, {}

    # --- authentication ---------------------------------------------------------------------------------------

    def verify(self, machine: Machine, token: str, *, method: str, path: str, body: bytes, bound: bool) -> str | None:
        """None when the machine JWT is good for this request, else the 401 error code."""
        try:
            decoded = jwt.decode_complete(
                token, machine.public_key, algorithms=["RS256"],
                options={"require": ["exp", "iat", "jti", "sub"], "verify_aud": False},
            )  # fmt: skip
        except jwt.PyJWTError:
            return "InvalidSignature"
        claims, header = decoded["payload"], decoded["header"]
        if header.get("x5t") != protocol.x5t(machine.thumbprint):
            return "UnknownThumbprint"
        if claims["exp"] - claims["iat"] > protocol.MACHINE_TOKEN_SECONDS:
            return "TokenLifetimeTooLong"
        if claims.get("sub") != machine.vm_id or claims.get("vmId") != machine.vm_id:
            return "InvalidToken"
        if claims.get("bodySha256") != protocol.body_sha256(body):
            return "BodyMismatch"
        binds = bound or "htm" in claims or "htu" in claims  # the heartbeat: checked only when present
        if binds and (claims.get("htm") != method or claims.get("htu") != path):
            return "InvalidToken"
        with self.lock:
            if claims["jti"] in self.jtis:
                return "ReplayedToken"
            self.jtis.add(claims["jti"])
        return None

    def machine_token(self, form: dict[str, str]) -> tuple[int, dict]:
        self.token_requests.append({k: v for k, v in form.items() if k != "client_assertion"})
        audience = f"{self.url}/{self.tenant_id}/oauth2/v2.0/token"
        machine = next((m for m in self.machines.values() if m.principal_id == form.get("client_id")), None)
        bad = {"error": "invalid_client", "error_description": "The client assertion is not valid."}
        refused = machine is None or machine.deleted or machine.identity_refused
        if refused or form.get("client_assertion_type") != ASSERTION_TYPE:
            return 401, bad
        if form.get("grant_type") != "client_credentials" or not form.get("scope", "").endswith("/.default"):
            return 400, {"error": "invalid_request", "error_description": "client_credentials with a .default scope"}
        try:
            decoded = jwt.decode_complete(
                form.get("client_assertion", ""), machine.public_key, algorithms=["RS256"], audience=audience,
                options={"require": ["exp", "iat", "jti", "iss", "sub", "aud"]},
            )  # fmt: skip
        except jwt.PyJWTError:
            return 401, bad
        claims = decoded["payload"]
        if decoded["header"].get("x5t") != protocol.x5t(machine.thumbprint):
            return 401, bad
        if claims["iss"] != machine.principal_id or claims["sub"] != machine.principal_id:
            return 401, bad
        if claims["exp"] - claims["iat"] > protocol.CLIENT_ASSERTION_SECONDS or claims["jti"] in self.jtis:
            return 401, bad
        self.jtis.add(claims["jti"])
        resource = form["scope"][: -len("/.default")]
        now = int(time.time())
        access = jwt.encode(
            {"aud": resource, "iss": f"{self.url}/{self.tenant_id}/v2.0", "iat": now, "nbf": now,
             "exp": now + self.token_lifetime, "oid": machine.principal_id, "sub": machine.principal_id,
             "appid": machine.principal_id, "azp": machine.principal_id, "idtyp": "app", "tid": self.tenant_id,
             "xms_mirid": machine.resource_id, "jti": str(uuid.uuid4())},
            self.token_key, algorithm="RS256",
        )  # fmt: skip
        return 200, {"access_token": access, "token_type": "Bearer", "expires_in": self.token_lifetime}


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakePortal"

    def log_message(self, format, *args):  # quiet
        pass

    @property
    def portal(self) -> FakePortal:
        return self.server.portal  # type: ignore[attr-defined]

    def _answer(self, status: int, body: dict | None = None, headers: dict | None = None) -> None:
        raw = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)
        self.portal.requests.append((self.command, urlsplit(self.path).path, status))

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self):
        path = urlsplit(self.path).path
        if path.startswith("/redirect/") and path[len("/redirect/") :] in self.portal.redirects:
            return self._answer(302, None, {"Location": self.portal.redirects[path[len("/redirect/") :]]})
        if path.startswith("/files/"):
            data = self.portal.files.get(unquote(path[len("/files/") :]))
            if data is None:
                return self._answer(404, {"error": {"code": "NotFound", "message": path}})
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return None
        return self._agent("GET", path, b"")

    def do_POST(self):
        path = urlsplit(self.path).path
        body = self._body()
        if path == f"/{self.portal.tenant_id}/oauth2/v2.0/token":
            form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
            with self.portal.lock:
                status, answer = self.portal.machine_token(form)
            return self._answer(status, answer)
        return self._agent("POST", path, body)

    def _agent(self, method: str, path: str, body: bytes):
        portal = self.portal
        parts = path.strip("/").split("/")
        if len(parts) < 4 or parts[:2] != ["his", "machines"]:
            return self._answer(404, {"error": {"code": "NotFound", "message": path}})
        with portal.lock:
            machine = portal.machines.get(parts[2])
            if machine is None or machine.deleted:
                return self._answer(410, {"error": {"code": "MachineDeleted", "message": "No such machine."}})
            route = tuple(parts[3:])
            bound = route != ("heartbeat",)
            token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            code = portal.verify(machine, token, method=method, path=path, body=body, bound=bound)
            if code is not None:
                portal.rejections.append((path, code))
                return self._answer(401, {"error": {"code": code, "message": "The machine token is refused."}})
            if method == "POST" and route == ("heartbeat",):
                portal.heartbeats.append((machine.vm_id, time.monotonic()))
                portal.changed.notify_all()
                return self._answer(200, {"status": "Connected", "nextHeartbeatSeconds": portal.next_heartbeat_seconds})
            if method == "GET" and route == ("goalstate",):
                etag = f'"{portal.etag_version}"'
                if self.headers.get("If-None-Match") == etag:
                    return self._answer(304, None, {"ETag": etag})
                return self._answer(200, portal.goal_state(machine), {"ETag": etag})
            if (
                method == "POST"
                and len(route) == 3
                and route[0] in ("extensions", "runcommands")
                and route[2] == "status"
            ):
                kind = "extensions" if route[0] == "extensions" else "runCommands"
                try:
                    report = json.loads(body)
                except ValueError:
                    return self._answer(400, {"error": {"code": "InvalidJson", "message": "Not JSON."}})
                status, answer = portal.take_report(machine, kind, unquote(route[1]), report)
                return self._answer(status, answer)
        return self._answer(404, {"error": {"code": "NotFound", "message": path}})
