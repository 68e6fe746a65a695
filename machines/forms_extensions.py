"""Portal forms of a machine's Extensions and Run command pages (validation only; the views call the services).

Protected values (protected command, protected settings, protected parameters) are write-only: the forms never
render them back (``PasswordInput(render_value=False)`` / empty textareas), not even after an error.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError

from arcportal.forms import GuardedForm
from arcportal.textguard import MAX_SCRIPT_TEXT
from machines import validation

MAX_FILE_URIS = 20
MAX_PARAMETERS = 20
PARAMETER_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class WriteOnlyTextarea(forms.Textarea):
    """A textarea that never shows its value again (protected settings)."""

    def format_value(self, value):
        return None


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValidationError(f"{what} must be a JSON object: {exc.msg} (line {exc.lineno}).") from exc
    if not isinstance(value, dict):
        raise ValidationError(f'{what} must be a JSON object, like {{"commandToExecute": "…"}}.')
    return value


class ExtensionCreateForm(GuardedForm):
    """Settings of a Custom Script extension: the command, the files it needs, and protected values."""

    name = forms.CharField(label="Extension name", max_length=64, strip=True)
    command_to_execute = forms.CharField(
        label="Command",
        required=False,
        strip=True,
        max_length=MAX_SCRIPT_TEXT,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    file_uris = forms.CharField(
        label="File URIs (one per line)", required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    protected_command = forms.CharField(
        label="Protected command",
        required=False,
        max_length=MAX_SCRIPT_TEXT,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Runs instead of Command; stored encrypted, sent only to this machine, never shown again.",
    )
    protected_settings = forms.CharField(
        label="Other protected settings (JSON)",
        required=False,
        max_length=MAX_SCRIPT_TEXT,
        widget=WriteOnlyTextarea(attrs={"rows": 3, "autocomplete": "off", "spellcheck": "false"}),
        help_text='For example {"storageAccountKey": "…"}. Stored encrypted, never shown again.',
    )
    automatic_upgrade = forms.BooleanField(label="Enable automatic upgrade", required=False)

    def __init__(self, *args, existing_names: frozenset[str] = frozenset(), **kwargs):
        super().__init__(*args, **kwargs)
        self.existing_names = {name.lower() for name in existing_names}

    def clean_name(self):
        name = self.cleaned_data["name"]
        try:
            validation.validate_extension_name(name)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
        if name.lower() in self.existing_names:
            raise ValidationError(f"This machine already has an extension named '{name}'. Choose another name.")
        return name

    def clean_file_uris(self) -> list[str]:
        uris = [line.strip() for line in self.cleaned_data["file_uris"].splitlines() if line.strip()]
        if len(uris) > MAX_FILE_URIS:
            raise ValidationError(f"At most {MAX_FILE_URIS} file URIs; {len(uris)} were given.")
        for uri in uris:
            parts = urlsplit(uri)
            if parts.scheme != "https" or not parts.hostname:
                raise ValidationError(f"'{uri[:200]}' is not an https:// URL (the agent fetches files over TLS only).")
        return uris

    def clean_protected_settings(self) -> dict[str, Any]:
        text = self.cleaned_data["protected_settings"].strip()
        return _json_object(text, "Protected settings") if text else {}

    def clean(self):
        cleaned = super().clean()
        command, protected = cleaned.get("command_to_execute"), cleaned.get("protected_command")
        settings = cleaned.get("protected_settings")
        if settings is None:
            return cleaned
        if protected and "commandToExecute" in settings:
            self.add_error("protected_settings", "commandToExecute is given twice: as Protected command and here.")
        elif not (command or protected or "commandToExecute" in settings):
            self.add_error("command_to_execute", "Give the command to run (or a protected command).")
        elif command and (protected or "commandToExecute" in settings):
            self.add_error("command_to_execute", "Give the command once: either Command or Protected command.")
        size = len(json.dumps([command or "", protected or "", settings, cleaned.get("file_uris") or []]))
        if size > MAX_SCRIPT_TEXT:
            raise ValidationError(f"The settings are {size} characters; at most {MAX_SCRIPT_TEXT} (256 KiB).")
        return cleaned

    def protected(self) -> dict[str, Any]:
        """The protectedSettings object of the cleaned form."""
        value = dict(self.cleaned_data["protected_settings"])
        if self.cleaned_data["protected_command"]:
            value["commandToExecute"] = self.cleaned_data["protected_command"]
        return value


class ExtensionUninstallForm(GuardedForm):
    """The grid's Uninstall: the selected extensions (names of this machine's extensions), confirmed."""

    extension = forms.MultipleChoiceField(
        error_messages={"required": "Select the extensions to uninstall.", "invalid_choice": "%(value)s is not an "
                        "extension of this machine (it may have been removed already); refresh the list."}
    )  # fmt: skip

    def __init__(self, *args, names: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["extension"].choices = [(name, name) for name in names]
