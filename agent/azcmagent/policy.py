"""The machine owner's say over extensions (``localconfig.json``, ``azcmagent config``): pure rules, no I/O.

* ``extensions.enabled`` false: every extension operation and every run command is refused;
* ``extensions.blocklist``: the listed ``Publisher/Type`` are refused (the blocklist wins over the allowlist);
* ``extensions.allowlist``: when not empty, everything not listed is refused.

Entries compare case-insensitively. Removing an extension (``delete``) is allowed by the lists (it only takes
software away), but not while extensions are disabled altogether.
"""

from __future__ import annotations

from typing import Any

DISABLED = "Extensions are disabled on this machine (azcmagent config extensions.enabled=false)"
RUN_COMMANDS_DISABLED = (
    "Run commands are disabled on this machine because extensions are (azcmagent config extensions.enabled=false)"
)


def _listed(entries: Any, key: str) -> bool:
    return key.lower() in {str(entry).strip().lower() for entry in entries or []}


def extension_refusal(local: dict[str, Any], *, publisher: str, type_: str, operation: str) -> str | None:
    """Why the local policy refuses this operation, or None when it is allowed."""
    if local.get("extensions.enabled") is False:
        return DISABLED
    if operation == "delete":
        return None
    key = f"{publisher}/{type_}"
    if _listed(local.get("extensions.blocklist"), key):
        return (
            f"{key} is blocked on this machine by its extensions.blocklist (azcmagent config get extensions.blocklist)"
        )
    allow = local.get("extensions.allowlist") or []
    if allow and not _listed(allow, key):
        return (
            f"{key} is not in this machine's extensions.allowlist, so it is not allowed "
            "(azcmagent config get extensions.allowlist)"
        )
    return None


def run_command_refusal(local: dict[str, Any]) -> str | None:
    return RUN_COMMANDS_DISABLED if local.get("extensions.enabled") is False else None
