"""Encryption of secrets at rest (DESIGN.md §7): one Fernet key for the installation.

``ARC_FERNET_KEY`` (a urlsafe-base64 32-byte Fernet key) when set; otherwise a key derived from ``SECRET_KEY`` with
HKDF-SHA256, so that a default installation needs no extra setting. Rotating ``SECRET_KEY`` without setting
``ARC_FERNET_KEY`` makes stored ciphertext unreadable; production sets ``ARC_FERNET_KEY`` explicitly.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

_HKDF_INFO = b"arcportal fernet key v1"


def fernet_key() -> bytes:
    configured = getattr(settings, "ARC_FERNET_KEY", "")
    if configured:
        return configured.encode() if isinstance(configured, str) else configured
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        settings.SECRET_KEY.encode()
    )
    return base64.urlsafe_b64encode(derived)


def fernet() -> Fernet:
    return Fernet(fernet_key())


def encrypt_text(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt_text(ciphertext: str) -> str:
    return fernet().decrypt(ciphertext.encode()).decode()
