"""Proof of possession of a machine's current key, for re-attaching a machine that an agent already registered.

Pure (PyJWT and cryptography, no Django). The agent (``azcmagent.identity.key_proof``) signs a short JWT with the
key the portal has on record for the machine and sends it in ``X-ArcPortal-Key-Proof`` with the registration PUT:

* header ``alg`` = ``RS256``, ``typ`` = ``arc-key-proof+jwt`` (explicit typing, RFC 8725 §3.11: no other token of
  ours, such as a heartbeat JWT signed by the same key, can pass for a proof);
* claims ``iat``, ``exp`` (at most ``MAX_LIFETIME_SECONDS`` after ``iat``), optional ``nbf``, ``jti``,
  ``htm`` = ``PUT``, ``htu`` = the request path (no query, no host; percent-encoding allowed) and ``bodySha256`` =
  base64url(SHA-256 of the exact body bytes).

So a proof is bound to one request: the body names the *new* key and vmId, so a proof read off the wire can only
re-register the key the real agent chose, and once that registration is done the stored key is the new one, which
the old proof was not signed with. ``jti`` is not remembered: a replay inside the five minutes repeats the same
registration with the same new key, which the portal treats as unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import jwt

HEADER = "X-ArcPortal-Key-Proof"
TOKEN_TYPE = "arc-key-proof+jwt"  # noqa: S105 - a JWT "typ", not a secret
MAX_LIFETIME_SECONDS = 300
CLOCK_SKEW_SECONDS = 60
MAX_TOKEN_LENGTH = 8192


class KeyProofInvalid(ValueError):
    """The proof is malformed or not bound to this request (the message says how)."""


class KeyProofWrongKey(KeyProofInvalid):
    """The proof is well formed but not signed by the machine's current key."""


@dataclass(frozen=True)
class KeyProof:
    """What a registration request offers as proof: the token and the request it must be bound to."""

    token: str
    method: str
    path: str
    body: bytes

    def __repr__(self) -> str:
        return f"KeyProof({self.method} {self.path}, {len(self.token)} characters)"


def body_sha256(body: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()


def verify_key_proof(proof: KeyProof, *, public_key: Any, now: float) -> dict[str, Any]:
    """The proof's claims, or ``KeyProofWrongKey`` / ``KeyProofInvalid``. ``public_key``: the machine's current
    key (an RSA public key object); ``now``: Unix time."""
    token = proof.token.strip()
    if not token:
        raise KeyProofInvalid(f"the request carries no {HEADER} header.")
    if len(token) > MAX_TOKEN_LENGTH:
        raise KeyProofInvalid("the key proof is too long.")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise KeyProofInvalid(f"the key proof is not a JWT ({exc}).") from exc
    if header.get("typ") != TOKEN_TYPE:
        raise KeyProofInvalid(f"the key proof's header must have typ '{TOKEN_TYPE}'.")
    try:
        claims = jwt.decode(
            token,
            key=public_key,
            algorithms=["RS256"],
            options={
                "require": ["iat", "exp", "htm", "htu", "bodySha256"],
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
            },
        )
    except jwt.InvalidSignatureError as exc:
        raise KeyProofWrongKey("the key proof is not signed by the machine's current key.") from exc
    except jwt.InvalidAlgorithmError as exc:
        raise KeyProofInvalid("the key proof must be signed with RS256.") from exc
    except jwt.InvalidTokenError as exc:
        raise KeyProofInvalid(f"the key proof is not valid ({exc}).") from exc
    _check_times(claims, now=now)
    if str(claims["htm"]).upper() != proof.method.upper():
        raise KeyProofInvalid(f"the key proof is for {claims['htm']}, not {proof.method}.")
    if not isinstance(claims["htu"], str) or unquote(claims["htu"].split("?", 1)[0]) != proof.path:
        raise KeyProofInvalid("the key proof is for another path (htu).")
    if not isinstance(claims["bodySha256"], str) or not hmac.compare_digest(
        claims["bodySha256"], body_sha256(proof.body)
    ):
        raise KeyProofInvalid("the key proof is for another body (bodySha256).")
    return claims


def _check_times(claims: dict[str, Any], *, now: float) -> None:
    try:
        issued, expires = float(claims["iat"]), float(claims["exp"])
        not_before = float(claims.get("nbf", issued))
    except (TypeError, ValueError) as exc:
        raise KeyProofInvalid("the key proof's iat, nbf and exp must be numbers.") from exc
    if expires - issued > MAX_LIFETIME_SECONDS:
        raise KeyProofInvalid(f"a key proof may live at most {MAX_LIFETIME_SECONDS} seconds.")
    if expires + CLOCK_SKEW_SECONDS < now:
        raise KeyProofInvalid("the key proof has expired.")
    if min(issued, not_before) - CLOCK_SKEW_SECONDS > now:
        raise KeyProofInvalid("the key proof is not valid yet (check the machine's clock).")
