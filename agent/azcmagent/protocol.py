"""The agent <-> portal wire protocol v1, as code both sides (and the fleet simulator, and tests) can import.

No Django, no portal code: only PyJWT and cryptography. docs/extensions.md and the contract (goal state, status
reports, protected-settings envelopes, machine identity tokens) describe what these helpers produce.

* **Machine JWTs** — every agent-plane request is signed by the machine key: RS256, header ``x5t`` = base64url of the
  identity certificate's SHA-1 thumbprint, claims ``sub``/``vmId``, ``iat``, ``nbf``, ``exp`` (<= 5 minutes), a unique
  ``jti``, ``bodySha256`` (base64url SHA-256 of the exact body bytes). ``request_token`` adds ``htm`` (method) and
  ``htu`` (path) so a token is good for one request only; ``heartbeat_token`` leaves them out (old agents did).
* **Client assertions** (``client_assertion``) — the machine identity's proof of possession at the token endpoint.
* **Envelopes** (``envelope_encrypt``/``envelope_decrypt``) — protectedSettings/protectedParameters encrypted to the
  machine key: RSA-OAEP-256 wraps a fresh AES-256 key, AES-256-GCM encrypts the JSON, the AAD binds the envelope to
  ``<vmId>/<kind>/<name>/<sequence>``.
* **Reports** (``extension_report``/``run_command_report``) — the bodies the agent posts, with the output tails cut
  to the last 4 KiB of valid UTF-8 (``tail_text``).
* **Goal state** — ``azcmagent.goalstate.parse_goal_state`` reads the portal's answer into typed operations.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import jwt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = 1
MACHINE_TOKEN_SECONDS = 300  # the portal refuses machine tokens that live longer
CLIENT_ASSERTION_SECONDS = 600
MESSAGE_LIMIT = 4096  # bytes of UTF-8 in every message/output field of a report
REPORT_BODY_LIMIT = 64 * 1024  # the portal refuses larger report bodies
ENVELOPE_ALG = "RSA-OAEP-256+A256GCM"
ENVELOPE_KINDS = ("extensions", "runCommands")
EXTENSION_OPERATIONS = ("install", "update", "delete")
EXTENSION_STATES = ("Transitioning", "Succeeded", "Failed", "Deleted")
RUN_COMMAND_OPERATIONS = ("run", "delete")
RUN_COMMAND_STATES = ("Running", "Succeeded", "Failed", "TimedOut", "Canceled", "Unknown")
TERMINAL_RUN_COMMAND_STATES = ("Succeeded", "Failed", "TimedOut", "Canceled", "Unknown")
DEFAULT_POLL_SECONDS = 30
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


class ProtocolError(ValueError):
    """A message that does not follow the protocol (the text never contains secret material)."""


# --- paths ------------------------------------------------------------------------------------------------------


def heartbeat_path(vm_id: str) -> str:
    return f"/his/machines/{vm_id}/heartbeat"


def goal_state_path(vm_id: str) -> str:
    return f"/his/machines/{vm_id}/goalstate"


def extension_status_path(vm_id: str, name: str) -> str:
    return f"/his/machines/{vm_id}/extensions/{quote(name, safe='')}/status"


def run_command_status_path(vm_id: str, name: str) -> str:
    return f"/his/machines/{vm_id}/runcommands/{quote(name, safe='')}/status"


def token_path(tenant_id: str) -> str:
    return f"/{tenant_id}/oauth2/v2.0/token"


# --- machine JWTs -----------------------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def body_sha256(body: bytes) -> str:
    """base64url SHA-256 of the exact body bytes (an empty body hashes b"")."""
    return b64url(hashlib.sha256(body).digest())


def x5t(thumbprint: str) -> str:
    """The JWT header ``x5t`` for a certificate thumbprint given in hex (either case)."""
    return b64url(bytes.fromhex(thumbprint))


def machine_token(
    key: rsa.RSAPrivateKey,
    *,
    thumbprint: str,
    vm_id: str,
    body: bytes,
    method: str | None = None,
    path: str | None = None,
    now: float | None = None,
    lifetime: int = MACHINE_TOKEN_SECONDS,
    jti: str | None = None,
) -> str:
    """A short-lived machine JWT; with ``method``/``path`` it carries ``htm``/``htu`` (the path without query)."""
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "sub": vm_id,
        "vmId": vm_id,
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime,
        "jti": jti or str(uuid.uuid4()),
        "bodySha256": body_sha256(body),
    }
    if method is not None:
        claims["htm"] = method.upper()
    if path is not None:
        claims["htu"] = urlsplit(path).path
    return jwt.encode(claims, key, algorithm="RS256", headers={"x5t": x5t(thumbprint)})


def heartbeat_token(key: rsa.RSAPrivateKey, *, thumbprint: str, vm_id: str, body: bytes, **options: Any) -> str:
    """The heartbeat's token as agents always sent it (no ``htm``/``htu``; the portal accepts both forms)."""
    return machine_token(key, thumbprint=thumbprint, vm_id=vm_id, body=body, **options)


def request_token(
    key: rsa.RSAPrivateKey,
    *,
    thumbprint: str,
    vm_id: str,
    method: str,
    path: str,
    body: bytes = b"",
    **options: Any,
) -> str:
    """A token bound to one request (``htm`` + ``htu``): what the goal-state and status endpoints require."""
    return machine_token(key, thumbprint=thumbprint, vm_id=vm_id, body=body, method=method, path=path, **options)


def client_assertion(
    key: rsa.RSAPrivateKey,
    *,
    thumbprint: str,
    client_id: str,
    audience: str,
    now: float | None = None,
    lifetime: int = CLIENT_ASSERTION_SECONDS,
    jti: str | None = None,
) -> str:
    """The JWT client assertion of the machine identity at ``audience`` (the token endpoint URL)."""
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime,
        "jti": jti or str(uuid.uuid4()),
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"x5t": x5t(thumbprint)})


# --- envelopes --------------------------------------------------------------------------------------------------


def envelope_aad(vm_id: str, kind: str, name: str, sequence: int) -> bytes:
    if kind not in ENVELOPE_KINDS:
        raise ProtocolError(f"kind must be one of {', '.join(ENVELOPE_KINDS)}")
    return f"{vm_id}/{kind}/{name}/{int(sequence)}".encode()


def public_key_from_b64(public_key_b64: str) -> rsa.RSAPublicKey:
    """The machine's ``clientPublicKey`` (base64 DER SubjectPublicKeyInfo) as a key object."""
    key = serialization.load_der_public_key(base64.b64decode(public_key_b64))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ProtocolError("the machine key is not an RSA key")
    return key


def envelope_encrypt(public_key: rsa.RSAPublicKey, value: Any, *, aad: bytes, kid: str) -> dict[str, str]:
    """Encrypt the JSON of ``value`` to the machine's public key (portal side; tests)."""
    plaintext = json.dumps(value, separators=(",", ":")).encode()
    content_key = AESGCM.generate_key(bit_length=256)
    iv = os.urandom(12)
    return {
        "alg": ENVELOPE_ALG,
        "kid": kid.lower(),
        "key": base64.b64encode(public_key.encrypt(content_key, _OAEP)).decode(),
        "iv": base64.b64encode(iv).decode(),
        "ciphertext": base64.b64encode(AESGCM(content_key).encrypt(iv, plaintext, aad)).decode(),
    }


def envelope_decrypt(private_key: rsa.RSAPrivateKey, envelope: Any, *, aad: bytes, kid: str | None = None) -> Any:
    """The protected object of an envelope; ProtocolError for anything wrong (never the plaintext in the message)."""
    if not isinstance(envelope, dict):
        raise ProtocolError("the envelope is not a JSON object")
    if envelope.get("alg") != ENVELOPE_ALG:
        raise ProtocolError(f"the envelope's alg must be {ENVELOPE_ALG}")
    if kid is not None and str(envelope.get("kid", "")).lower() != kid.lower():
        raise ProtocolError("the envelope was encrypted to another certificate (kid does not match)")
    try:
        wrapped = base64.b64decode(str(envelope["key"]), validate=True)
        iv = base64.b64decode(str(envelope["iv"]), validate=True)
        ciphertext = base64.b64decode(str(envelope["ciphertext"]), validate=True)
    except (KeyError, binascii.Error, ValueError) as exc:
        raise ProtocolError("the envelope needs base64 key, iv and ciphertext") from exc
    if len(iv) != 12:
        raise ProtocolError("the envelope's iv must be 12 bytes")
    try:
        content_key = private_key.decrypt(wrapped, _OAEP)
    except ValueError as exc:
        raise ProtocolError("the envelope's key does not decrypt with this machine's key") from exc
    if len(content_key) != 32:
        raise ProtocolError("the envelope's content key must be 32 bytes")
    try:
        plaintext = AESGCM(content_key).decrypt(iv, ciphertext, aad)
    except InvalidTag as exc:
        raise ProtocolError("the envelope does not authenticate (tampered, or meant for another operation)") from exc
    try:
        return json.loads(plaintext)
    except ValueError as exc:
        raise ProtocolError("the envelope's content is not JSON") from exc


# --- reports ----------------------------------------------------------------------------------------------------


def iso(moment: datetime | float | str | None = None) -> str:
    """ISO 8601 UTC with milliseconds and ``Z`` (a string is taken as already formatted)."""
    if isinstance(moment, str):
        return moment
    if moment is None:
        moment = datetime.now(UTC)
    elif not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def tail_text(data: bytes | str, limit: int = MESSAGE_LIMIT) -> str:
    """The last ``limit`` bytes as text: invalid UTF-8 and NUL replaced by U+FFFD, never more than ``limit`` bytes
    of UTF-8, never starting in the middle of a character."""
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else bytes(data)
    if len(raw) > limit:
        raw = raw[-limit:]
        skip = 0
        while skip < 3 and skip < len(raw) and 0x80 <= raw[skip] <= 0xBF:  # a cut multi-byte character
            skip += 1
        raw = raw[skip:]
    text = raw.decode("utf-8", "replace").replace("\x00", "\ufffd")
    encoded = text.encode()
    while len(encoded) > limit:  # replacements are 3 bytes each: cut whole characters from the front
        text = text[max(1, (len(encoded) - limit) // 3) :]
        encoded = text.encode()
    return text


_EXTENSION_STATUS = {
    "Transitioning": ("ProvisioningState/transitioning", "Info", "Transitioning"),
    "Succeeded": ("ProvisioningState/succeeded", "Info", "Provisioning succeeded"),
    "Failed": ("ProvisioningState/failed", "Error", "Provisioning failed"),
    "Deleted": ("ProvisioningState/deleted", "Info", "Deleted"),
}


def extension_report(
    *,
    sequence: int,
    operation: str,
    state: str,
    message: str,
    stdout: bytes | str = b"",
    stderr: bytes | str = b"",
    exit_code: int | None = None,
    start: datetime | float | str | None = None,
    end: datetime | float | str | None = None,
    handler_version: str = "",
    now: datetime | float | None = None,
) -> dict[str, Any]:
    """``POST …/extensions/{name}/status`` body; ``end`` is filled for terminal states (``now`` if not given)."""
    if operation not in EXTENSION_OPERATIONS:
        raise ProtocolError(f"operation must be one of {', '.join(EXTENSION_OPERATIONS)}")
    if state not in EXTENSION_STATES:
        raise ProtocolError(f"state must be one of {', '.join(EXTENSION_STATES)}")
    code, level, display = _EXTENSION_STATUS[state]
    outcome = code.rsplit("/", 1)[1]
    stamp = iso(now)
    substatuses = [
        {
            "code": f"ComponentStatus/{stream}/{outcome}",
            "level": "Info",
            "displayStatus": display,
            "message": tail_text(output),
        }
        for stream, output in (("StdOut", stdout), ("StdErr", stderr))
    ]
    terminal = state != "Transitioning"
    return {
        "sequence": int(sequence),
        "operation": operation,
        "state": state,
        "status": {
            "code": code,
            "level": level,
            "displayStatus": display,
            "message": tail_text(message),
            "time": stamp,
        },
        "substatuses": substatuses,
        "exitCode": exit_code,
        "startTime": iso(start) if start is not None else stamp,
        "endTime": (iso(end) if end is not None else stamp) if terminal else None,
        "handlerVersion": handler_version,
    }


def run_command_report(
    *,
    sequence: int,
    state: str,
    message: str = "",
    stdout: bytes | str = b"",
    stderr: bytes | str = b"",
    exit_code: int | None = None,
    start: datetime | float | str | None = None,
    end: datetime | float | str | None = None,
    now: datetime | float | None = None,
) -> dict[str, Any]:
    """``POST …/runcommands/{name}/status`` body; ``endTime`` only for terminal states."""
    if state not in RUN_COMMAND_STATES:
        raise ProtocolError(f"executionState must be one of {', '.join(RUN_COMMAND_STATES)}")
    stamp = iso(now)
    terminal = state in TERMINAL_RUN_COMMAND_STATES
    return {
        "sequence": int(sequence),
        "executionState": state,
        "exitCode": exit_code,
        "output": tail_text(stdout),
        "error": tail_text(stderr),
        "executionMessage": tail_text(message),
        "startTime": iso(start) if start is not None else stamp,
        "endTime": (iso(end) if end is not None else stamp) if terminal else None,
    }


def _shrink_texts(body: dict[str, Any], limit: int) -> dict[str, Any]:
    shrunk = json.loads(json.dumps(body))
    for holder, key in [(shrunk, "output"), (shrunk, "error"), (shrunk, "executionMessage")] + [
        (item, "message") for item in [shrunk.get("status") or {}, *(shrunk.get("substatuses") or [])]
    ]:
        if isinstance(holder.get(key), str):
            holder[key] = tail_text(holder[key], limit)
    return shrunk


def encode_report(body: dict[str, Any], *, limit: int = REPORT_BODY_LIMIT) -> bytes:
    """The report as UTF-8 JSON within the portal's body limit: output made of control characters is escaped six
    bytes per character, so the text fields are cut further (keeping their ends) until the body fits."""
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    text_limit = MESSAGE_LIMIT
    while len(raw) > limit and text_limit > 64:
        text_limit //= 2
        raw = json.dumps(_shrink_texts(body, text_limit), ensure_ascii=False, separators=(",", ":")).encode()
    return raw
