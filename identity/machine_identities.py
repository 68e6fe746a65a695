"""Machine identities: a machine's system-assigned identity signs in at the token endpoint with a client assertion
signed by its machine key (docs/extensions.md "HIMDS", docs/decisions.md "Managed identity").

Identity (layer 2) can't read machines (layer 3), and the machine row is the one truth about whether an identity may
sign in (deleted, Expired, certificate re-issued or expired, identity removed). So identity keeps no copy: it asks a
**resolver** that the machines app registers when it starts (``register_resolver``, from ``MachinesConfig.ready``):
``resolver(principal_id=..., thumbprint=..., now=...) -> MachineCredential | None``. Nothing to keep in step on
onboarding, re-attach, delete (also cascading from a resource group or subscription) or expiry.

The grant (``client_credentials`` with ``client_assertion``):

* ``client_assertion_type`` = ``urn:ietf:params:oauth:client-assertion-type:jwt-bearer``;
* the assertion is an RS256 JWT whose header ``x5t`` names the machine's *current* certificate and whose signature
  verifies with the machine's registered key (PyJWT); ``iss`` = ``sub`` = ``client_id`` = the principal id;
  ``aud`` = this token endpoint's URL; ``exp`` at most ``MAX_ASSERTION_SECONDS`` after ``iat``; ``jti`` used once
  (``ClientAssertionNonce``, a unique row until the assertion expires).

Every refusal is the same ``invalid_client`` message (``WRONG_ASSERTION``): it does not tell which principal ids exist.
The access token is an app token (``idtyp`` ``app``) with ``oid`` = ``sub`` = ``appid`` = the principal id,
``xms_mirid`` = the machine's resource id (as Entra's managed-identity tokens carry) and ``xms_arc_x5t`` = the
certificate thumbprint it was issued against; ``identity.authentication`` asks the resolver again on every ARM request,
so the token stops working once the machine is deleted, Expired or re-keyed.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from django.db import IntegrityError, transaction

logger = logging.getLogger(__name__)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_SECONDS = 600  # the agent's assertions live 10 minutes (azcmagent.protocol.CLIENT_ASSERTION_SECONDS)
CLOCK_SKEW_SECONDS = 60
MIRID_CLAIM = "xms_mirid"
THUMBPRINT_CLAIM = "xms_arc_x5t"
WRONG_ASSERTION = (
    "The client assertion is not valid for this client id: unknown, deleted or Expired machine, a certificate that is "
    "not the machine's current one, a wrong audience or signature, an expired assertion, or one already used."
)


class AssertionRefused(Exception):
    """The client assertion does not sign anyone in (``WRONG_ASSERTION``); the log says why."""


@dataclass(frozen=True)
class MachineCredential:
    """What identity needs of a machine identity: its key, current certificate and whether it may sign in now."""

    principal_id: str
    thumbprint: str  # upper-case hex SHA-1 of the machine's current certificate
    public_key_b64: str  # base64 DER SubjectPublicKeyInfo, as the machine registered it
    resource_id: str
    refused: str = ""  # why it may not sign in ("" = it may)


Resolver = Callable[..., MachineCredential | None]
_resolvers: list[Resolver] = []


def register_resolver(resolver: Resolver) -> None:
    """Called once by the machines app when it starts; the last registered resolver answers."""
    if resolver not in _resolvers:
        _resolvers.append(resolver)


def machine_credential_get(*, principal_id: str, thumbprint: str, now: dt.datetime) -> MachineCredential | None:
    try:
        principal_id = str(uuid.UUID(str(principal_id)))
    except ValueError:
        return None
    if not _resolvers or not thumbprint:
        return None
    return _resolvers[-1](principal_id=principal_id, thumbprint=thumbprint.upper(), now=now)


def thumbprint_from_x5t(x5t: Any) -> str:
    """``x5t`` (base64url SHA-1, RFC 7515 §4.1.7) → upper-case hex, or ``""``."""
    if not isinstance(x5t, str) or not x5t or len(x5t) > 64:
        return ""
    try:
        raw = base64.urlsafe_b64decode(x5t + "=" * (-len(x5t) % 4))
    except (binascii.Error, ValueError):
        return ""
    return raw.hex().upper() if len(raw) == 20 else ""


def _public_key(value: str):
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        key = load_der_public_key(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise AssertionRefused("the machine's registered key does not load") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise AssertionRefused("the machine's registered key is not an RSA key")
    return key


def _claim_jti(*, client_id: str, jti: str, expires_at: dt.datetime, now: dt.datetime) -> None:
    """Record ``jti`` as used (unique row); a second use is a replay. Rows of expired assertions are dropped."""
    from identity.models import ClientAssertionNonce

    key = hashlib.sha256(f"{client_id}\n{jti}".encode()).hexdigest()
    ClientAssertionNonce.objects.filter(expires_at__lt=now).delete()
    try:
        with transaction.atomic():
            ClientAssertionNonce.objects.create(key=key, expires_at=expires_at)
    except IntegrityError as exc:
        raise AssertionRefused("the assertion's jti was already used (replay)") from exc


def machine_assertion_verify(
    *, client_id: str, assertion: str, audiences: list[str], now: dt.datetime
) -> MachineCredential:
    """The machine credential that signed ``assertion`` for ``client_id``, or ``AssertionRefused``."""
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError as exc:
        raise AssertionRefused(f"not a JWT: {exc}") from exc
    credential = machine_credential_get(
        principal_id=client_id, thumbprint=thumbprint_from_x5t(header.get("x5t")), now=now
    )
    if credential is None:
        raise AssertionRefused("no machine identity with this principal id and certificate")
    if credential.refused:
        raise AssertionRefused(credential.refused)
    try:
        claims = jwt.decode(
            assertion,
            _public_key(credential.public_key_b64),
            algorithms=["RS256"],
            audience=audiences,
            issuer=credential.principal_id,
            leeway=CLOCK_SKEW_SECONDS,
            options={"require": ["exp", "iat", "jti", "iss", "sub", "aud"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError as exc:
        raise AssertionRefused(f"the assertion does not verify: {exc}") from exc
    try:
        issued, expires = int(claims["iat"]), int(claims["exp"])
    except (TypeError, ValueError, OverflowError) as exc:
        raise AssertionRefused("iat and exp must be numbers") from exc
    stamp = int(now.timestamp())
    if str(claims["sub"]).lower() != credential.principal_id:
        raise AssertionRefused("sub is not the client id")
    if expires - issued > MAX_ASSERTION_SECONDS:
        raise AssertionRefused(f"the assertion lives longer than {MAX_ASSERTION_SECONDS} s")
    if expires + CLOCK_SKEW_SECONDS <= stamp or issued - CLOCK_SKEW_SECONDS > stamp:
        raise AssertionRefused("the assertion has expired or is not valid yet")
    jti = str(claims["jti"])
    if not jti or len(jti) > 200:
        raise AssertionRefused("jti must be 1 to 200 characters")
    _claim_jti(
        client_id=credential.principal_id,
        jti=jti,
        expires_at=dt.datetime.fromtimestamp(expires + CLOCK_SKEW_SECONDS, tz=dt.UTC),
        now=now,
    )
    return credential


def machine_credential_for_claims(*, claims: dict[str, Any], now: dt.datetime) -> MachineCredential | None:
    """The machine identity an access token names, if it may still act (``identity.authentication``)."""
    credential = machine_credential_get(
        principal_id=str(claims.get("oid", "")), thumbprint=str(claims.get(THUMBPRINT_CLAIM, "")), now=now
    )
    if credential is None or credential.refused or credential.resource_id != claims.get(MIRID_CLAIM):
        return None
    return credential
