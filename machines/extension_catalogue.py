"""The extensions the portal's + Add offers, and the ARM ``properties`` a catalogue form turns into. Pure: no Django.

The portal writes an extension through the same service as ARM PUT (``machines.services.extension_create_or_update``)
with the body an ARM client would send, so the portal and the API follow one rule. Types the reference agent can
run are listed here; the agent answers any other type honestly ("no handler for Publisher.Type on this agent").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CatalogueEntry:
    key: str  # the URL slug of its settings form
    label: str
    publisher: str
    type: str
    version: str
    os_type: str  # "linux" or "windows": the machines it is meant for
    description: str
    runs_in: str  # what commandToExecute runs in, for the form's help text

    @property
    def full_type(self) -> str:
        return f"{self.publisher}.{self.type}"


CATALOGUE: tuple[CatalogueEntry, ...] = (
    CatalogueEntry(
        key="custom-script-linux",
        label="Custom Script for Linux",
        publisher="Microsoft.Azure.Extensions",
        type="CustomScript",
        version="2.1",
        os_type="linux",
        description="Downloads files and runs a command or script on a Linux machine: configuration, software "
        "installation, any post-deployment task.",
        runs_in="/bin/sh",
    ),
    CatalogueEntry(
        key="custom-script-windows",
        label="Custom Script Extension for Windows",
        publisher="Microsoft.Compute",
        type="CustomScriptExtension",
        version="1.10",
        os_type="windows",
        description="Downloads files and runs a command or PowerShell script on a Windows machine.",
        runs_in="cmd.exe (use powershell -ExecutionPolicy Unrestricted -File … for scripts)",
    ),
)


def catalogue_get(key: str) -> CatalogueEntry | None:
    return next((entry for entry in CATALOGUE if entry.key == key), None)


def catalogue_for(os_type: str) -> list[tuple[CatalogueEntry, bool]]:
    """Every entry with whether it fits a machine of ``os_type`` (entries for that OS first)."""
    os_type = (os_type or "").lower()
    return sorted(((entry, entry.os_type == os_type) for entry in CATALOGUE), key=lambda pair: not pair[1])


def extension_properties(
    entry: CatalogueEntry,
    *,
    command: str,
    file_uris: list[str],
    protected_settings: dict[str, Any],
    automatic_upgrade: bool,
) -> dict[str, Any]:
    """The ARM ``properties`` of the extension a catalogue form describes: public settings (``commandToExecute``,
    ``fileUris``) and ``protectedSettings`` (stored encrypted, never shown again)."""
    settings: dict[str, Any] = {}
    if file_uris:
        settings["fileUris"] = list(file_uris)
    if command:
        settings["commandToExecute"] = command
    properties: dict[str, Any] = {
        "publisher": entry.publisher,
        "type": entry.type,
        "typeHandlerVersion": entry.version,
        "autoUpgradeMinorVersion": True,
        "enableAutomaticUpgrade": bool(automatic_upgrade),
        "settings": settings,
    }
    if protected_settings:
        properties["protectedSettings"] = dict(protected_settings)
    return properties
