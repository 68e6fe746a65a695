"""An agent's public key as the ARM body carries it (``properties.clientPublicKey``). Pure: ``cryptography`` only.

Base64 of the DER SubjectPublicKeyInfo of an RSA key of at least 2048 bits; two encodings of the same key compare
equal (``same_public_key``).
"""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key


def load_public_key_b64(value: str):
    """An agent's ``clientPublicKey``: base64 of the DER SubjectPublicKeyInfo of an RSA key (≥ 2048 bits)."""
    try:
        key = load_der_public_key(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ValueError("not base64 DER SubjectPublicKeyInfo") from exc
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise ValueError("an RSA key of at least 2048 bits is required")
    return key


def same_public_key(a: str, b: str) -> bool:
    try:
        return load_public_key_b64(a).public_numbers() == load_public_key_b64(b).public_numbers()
    except ValueError:
        return False
