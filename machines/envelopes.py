"""Protected settings/parameters on their way to the agent: encrypted to the machine's key (wire protocol v1,
``agent/azcmagent/protocol.py``, which the portal may not import: the agent installs without it and the portal
without the agent). Pure: ``cryptography`` only.

RSA-OAEP-256 wraps a fresh AES-256 key, AES-256-GCM encrypts the JSON, the AAD binds the envelope to
``<vmId>/<kind>/<name>/<sequence>`` so it opens only for that machine, entry and operation.
``tests/machines/test_envelopes.py`` checks that the agent's ``envelope_decrypt`` opens what this writes.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ENVELOPE_ALG = "RSA-OAEP-256+A256GCM"
ENVELOPE_KINDS = ("extensions", "runCommands")
_OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def envelope_aad(vm_id: str, kind: str, name: str, sequence: int) -> bytes:
    if kind not in ENVELOPE_KINDS:
        raise ValueError(f"kind must be one of {', '.join(ENVELOPE_KINDS)}")
    return f"{vm_id}/{kind}/{name}/{int(sequence)}".encode()


def envelope_encrypt(public_key: rsa.RSAPublicKey, value: Any, *, aad: bytes, kid: str) -> dict[str, str]:
    """The envelope of the JSON of ``value`` for the holder of ``public_key`` (``kid`` = certificate thumbprint)."""
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
