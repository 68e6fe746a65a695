"""The machine identity: an RSA key pair made on the machine, a CSR proving possession, signed heartbeat JWTs, and
the proof of possession of a machine's current key that re-attaching a registered machine needs."""

from __future__ import annotations

import base64
import hashlib
import time
import uuid

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from azcmagent import protocol
from azcmagent.protocol import b64url as b64url  # kept importable from here (older callers)

HEARTBEAT_TOKEN_SECONDS = protocol.MACHINE_TOKEN_SECONDS
KEY_PROOF_HEADER = "X-ArcPortal-Key-Proof"
KEY_PROOF_TYPE = "arc-key-proof+jwt"
KEY_PROOF_SECONDS = 120


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_key(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the machine key is not an RSA key")
    return key


def public_key_b64(key: rsa.RSAPrivateKey) -> str:
    """``clientPublicKey``: base64 of the DER SubjectPublicKeyInfo."""
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def csr_pem(key: rsa.RSAPrivateKey, *, vm_id: str) -> str:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, vm_id)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def certificate_thumbprint(pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(pem)
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - an identifier, as Windows shows it


def heartbeat_token(
    key: rsa.RSAPrivateKey,
    *,
    thumbprint: str,
    vm_id: str,
    body: bytes,
    now: float | None = None,
    lifetime: int = HEARTBEAT_TOKEN_SECONDS,
    jti: str | None = None,
) -> str:
    """A short-lived JWT for one heartbeat: RS256 by the machine key, ``x5t`` = certificate thumbprint, and the
    SHA-256 of the exact body so a changed body fails (``azcmagent.protocol.heartbeat_token``)."""
    return protocol.heartbeat_token(
        key, thumbprint=thumbprint, vm_id=vm_id, body=body, now=now, lifetime=lifetime, jti=jti
    )


def key_proof(
    key: rsa.RSAPrivateKey, *, method: str, path: str, body: bytes, now: float | None = None, jti: str | None = None
) -> str:
    """Proof that this host holds ``key``, the key the portal has on record for the machine, bound to one request:
    ``htm``/``htu`` = method and path, ``bodySha256`` = the exact body (which names the new key and vmId).
    Sent as ``X-ArcPortal-Key-Proof`` with the registration PUT of a machine that is already registered."""
    issued = int(now if now is not None else time.time())
    claims = {
        "iat": issued,
        "nbf": issued,
        "exp": issued + KEY_PROOF_SECONDS,
        "jti": jti or str(uuid.uuid4()),
        "htm": method.upper(),
        "htu": path,
        "bodySha256": b64url(hashlib.sha256(body).digest()),
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"typ": KEY_PROOF_TYPE})
