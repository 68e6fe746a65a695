"""The goal state (``GET /his/machines/{vmId}/goalstate``) read into typed operations; bad shapes refused.

Protected settings/parameters stay encrypted here (``azcmagent.protocol.envelope_decrypt`` opens them when an
operation runs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from azcmagent.protocol import (
    DEFAULT_POLL_SECONDS,
    EXTENSION_OPERATIONS,
    RUN_COMMAND_OPERATIONS,
    ProtocolError,
)


@dataclass(frozen=True)
class ExtensionOperation:
    name: str
    publisher: str
    type: str
    type_handler_version: str
    sequence: int
    operation: str
    settings: dict[str, Any]
    protected_settings: dict[str, Any] | None  # the envelope, still encrypted
    force_update_tag: str | None = None
    auto_upgrade_minor_version: bool = True
    enable_automatic_upgrade: bool = False

    @property
    def key(self) -> str:
        """``Publisher/Type`` as the allow/block lists name it."""
        return f"{self.publisher}/{self.type}"


@dataclass(frozen=True)
class RunCommandOperation:
    name: str
    sequence: int
    operation: str
    script: str | None
    script_uri: str | None
    command_id: str | None
    parameters: list[tuple[str, str]]
    protected_parameters: dict[str, Any] | None  # the envelope, still encrypted
    timeout_seconds: int
    run_as_user: str | None = None


@dataclass(frozen=True)
class GoalState:
    etag: str
    next_poll_seconds: int
    extensions: list[ExtensionOperation] = field(default_factory=list)
    run_commands: list[RunCommandOperation] = field(default_factory=list)


def _or_default(value: Any, default: Any) -> Any:
    """null means "none"; any other value is checked as it is (an empty object where a list belongs is an error)."""
    return default if value is None else value


def _text(item: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = item.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise ProtocolError(f"{key} must be a non-empty string")
    return value


def _sequence(item: dict[str, Any]) -> int:
    value = item.get("sequence")
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProtocolError("sequence must be a whole number >= 0")
    return value


def _envelope(item: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = item.get(key)
    if value is not None and not isinstance(value, dict):
        raise ProtocolError(f"{key} must be an envelope object or null")
    return value or None


def _extension(item: Any) -> ExtensionOperation:
    if not isinstance(item, dict):
        raise ProtocolError("every extension must be an object")
    operation = item.get("operation")
    if operation not in EXTENSION_OPERATIONS:
        raise ProtocolError(f"extension operation must be one of {', '.join(EXTENSION_OPERATIONS)}")
    settings = _or_default(item.get("settings"), {})
    if not isinstance(settings, dict):
        raise ProtocolError("settings must be an object")
    tag = item.get("forceUpdateTag")
    return ExtensionOperation(
        name=str(_text(item, "name")),
        publisher=str(_text(item, "publisher")),
        type=str(_text(item, "type")),
        type_handler_version=_text(item, "typeHandlerVersion", required=False) or "",
        sequence=_sequence(item),
        operation=operation,
        settings=settings,
        protected_settings=_envelope(item, "protectedSettings"),
        force_update_tag=None if tag is None else str(tag),
        auto_upgrade_minor_version=bool(item.get("autoUpgradeMinorVersion", True)),
        enable_automatic_upgrade=bool(item.get("enableAutomaticUpgrade", False)),
    )


def _run_command(item: Any) -> RunCommandOperation:
    if not isinstance(item, dict):
        raise ProtocolError("every run command must be an object")
    operation = item.get("operation")
    if operation not in RUN_COMMAND_OPERATIONS:
        raise ProtocolError(f"run command operation must be one of {', '.join(RUN_COMMAND_OPERATIONS)}")
    source = _or_default(item.get("source"), {})
    if not isinstance(source, dict):
        raise ProtocolError("source must be an object")
    parameters = []
    parameters_in = _or_default(item.get("parameters"), [])
    if not isinstance(parameters_in, list):
        raise ProtocolError("parameters must be a list")
    for parameter in parameters_in:
        if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str):
            raise ProtocolError("every parameter is an object with a name and a value")
        parameters.append((parameter["name"], "" if parameter.get("value") is None else str(parameter["value"])))
    timeout = item.get("timeoutInSeconds") or 0
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 0:
        raise ProtocolError("timeoutInSeconds must be a whole number >= 0")
    return RunCommandOperation(
        name=str(_text(item, "name")),
        sequence=_sequence(item),
        operation=operation,
        script=_text(source, "script", required=False),
        script_uri=_text(source, "scriptUri", required=False),
        command_id=_text(source, "commandId", required=False),
        parameters=parameters,
        protected_parameters=_envelope(item, "protectedParameters"),
        timeout_seconds=timeout,
        run_as_user=_text(item, "runAsUser", required=False),
    )


def parse_goal_state(data: Any) -> GoalState:
    """The goal-state JSON (``GET …/goalstate`` 200 body) as typed operations; ProtocolError if malformed."""
    if not isinstance(data, dict):
        raise ProtocolError("the goal state must be a JSON object")
    extensions = _or_default(data.get("extensions"), [])
    run_commands = _or_default(data.get("runCommands"), [])
    if not isinstance(extensions, list) or not isinstance(run_commands, list):
        raise ProtocolError("extensions and runCommands must be lists")
    poll = data.get("nextPollSeconds", DEFAULT_POLL_SECONDS)
    if not isinstance(poll, int) or isinstance(poll, bool) or poll < 1:
        raise ProtocolError("nextPollSeconds must be a whole number >= 1")
    return GoalState(
        etag=str(data.get("etag") or ""),
        next_poll_seconds=poll,
        extensions=[_extension(item) for item in extensions],
        run_commands=[_run_command(item) for item in run_commands],
    )
