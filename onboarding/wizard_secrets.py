"""A service-principal secret pasted into the wizard, kept server-side until the script is generated, once.

The Basics tab posts the secret once; from then on it never travels in the page (no hidden field, the password box
is never filled back in). It waits in the session, Fernet-encrypted (``arcportal.crypto``) and keyed by the
principal's client id, until ``secret_take`` hands it to the script being generated and forgets it. A new service
principal's secret is never kept at all: it is put in the script of the response that created the principal.
"""

from __future__ import annotations

from cryptography.fernet import InvalidToken

from arcportal.crypto import decrypt_text, encrypt_text

SESSION_KEY = "onboarding_wizard_secret"


def secret_keep(session, *, client_id: str, secret: str) -> None:
    session[SESSION_KEY] = {"client_id": client_id.strip().lower(), "secret": encrypt_text(secret)}


def secret_held(session, *, client_id: str) -> bool:
    held = session.get(SESSION_KEY)
    return bool(held) and held.get("client_id") == client_id.strip().lower()


def secret_take(session, *, client_id: str) -> str:
    """The kept secret of ``client_id`` (``""`` if none); whatever was kept is forgotten either way."""
    held = session.pop(SESSION_KEY, None)
    if not held or held.get("client_id") != client_id.strip().lower():
        return ""
    try:
        return decrypt_text(str(held.get("secret", "")))
    except InvalidToken:  # a rotated key or a tampered session: no secret, the script gets the placeholder
        return ""
