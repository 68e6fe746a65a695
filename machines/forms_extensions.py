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


def _parameter_lines(text: str, what: str) -> list[dict[str, str]]:
    """``NAME=value`` lines (blank lines ignored) as ARM ``parameters``; names are environment-variable names."""
    parameters, seen = [], set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not PARAMETER_NAME_RE.match(name):
            raise ValidationError(
                f"{what}, line {number}: write NAME=value, NAME being letters, digits and '_' (not starting with a "
                "digit, at most 64)."
            )
        if name.upper() in seen:
            raise ValidationError(f"{what}: '{name}' is given twice.")
        seen.add(name.upper())
        parameters.append({"name": name, "value": value})
    if len(parameters) > MAX_PARAMETERS:
        raise ValidationError(f"{what}: at most {MAX_PARAMETERS}; {len(parameters)} were given.")
    return parameters


class RunCommandForm(GuardedForm):
    """Run command: the script (bash or PowerShell per the machine's OS), its parameters, a timeout."""

    script = forms.CharField(
        label="Script",
        max_length=MAX_SCRIPT_TEXT,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false"}),
        error_messages={"required": "Write the script to run."},
    )
    parameters = forms.CharField(
        label="Parameters (one NAME=value per line)",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="The script sees each parameter as an environment variable.",
    )
    protected_parameters = forms.CharField(
        label="Protected parameters (one NAME=value per line)",
        required=False,
        strip=False,
        widget=WriteOnlyTextarea(attrs={"rows": 2, "autocomplete": "off", "spellcheck": "false"}),
        help_text="Environment variables too; stored encrypted, sent only to this machine, never shown again.",
    )
    timeout_seconds = forms.IntegerField(
        label="Timeout (seconds)",
        min_value=1,
        max_value=86400,
        initial=600,
        error_messages={"required": "Give a timeout in seconds (1 to 86400)."},
    )

    def clean_script(self) -> str:
        script = self.cleaned_data["script"]
        if not script.strip():
            raise ValidationError("Write the script to run.")
        return script

    def clean_parameters(self) -> list[dict[str, str]]:
        return _parameter_lines(self.cleaned_data["parameters"], "Parameters")

    def clean_protected_parameters(self) -> list[dict[str, str]]:
        return _parameter_lines(self.cleaned_data["protected_parameters"], "Protected parameters")

    def clean(self):
        cleaned = super().clean()
        public, protected = cleaned.get("parameters"), cleaned.get("protected_parameters")
        if public and protected:
            both = {p["name"].upper() for p in public} & {p["name"].upper() for p in protected}
            if both:
                self.add_error("protected_parameters", f"{', '.join(sorted(both))} is also a parameter.")
        return cleaned

    def properties(self) -> dict[str, Any]:
        """The ARM ``properties`` of the run (as ``azure-mgmt-hybridcompute``'s ``machine_run_commands`` sends)."""
        properties: dict[str, Any] = {
            "source": {"script": self.cleaned_data["script"]},
            "parameters": self.cleaned_data["parameters"],
            "timeoutInSeconds": self.cleaned_data["timeout_seconds"],
            "asyncExecution": False,
        }
        if self.cleaned_data["protected_parameters"]:
            properties["protectedParameters"] = self.cleaned_data["protected_parameters"]
        return properties
