"""The shape of the agent's status reports (``azcmagent.protocol.extension_report`` / ``run_command_report``),
checked before anything is stored: known keys only, each with its JSON type; ``ValueError`` says what is wrong."""

from __future__ import annotations

from typing import Any

EXTENSION_STATES = ("Transitioning", "Succeeded", "Failed", "Deleted")
RUN_COMMAND_STATES = ("Running", "Succeeded", "Failed", "TimedOut", "Canceled", "Unknown")
LEVELS = ("Info", "Warning", "Error")
TEXT_LIMIT = 8192  # characters; the agent sends at most 4 KiB of UTF-8 per field
MAX_SUBSTATUSES = 10


def _sequence(data: dict[str, Any]) -> int:
    value = data.get("sequence")
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError("sequence must be a whole number >= 1")
    return value


def _text(data: dict[str, Any], key: str, *, limit: int = TEXT_LIMIT) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError(f"{key} must be a string of at most {limit} characters")
    return value


def _int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not -(2**31) <= value < 2**31:
        raise ValueError(f"{key} must be a 32-bit whole number or null")
    return value


def _status(value: Any, key: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be an object")
    status = {name: _text(value, name) for name in ("code", "level", "displayStatus", "message", "time")}
    if status["level"] is not None and status["level"] not in LEVELS:
        raise ValueError(f"{key}.level must be one of {', '.join(LEVELS)}")
    return {name: text for name, text in status.items() if text is not None}


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def extension_report_clean(data: Any) -> dict[str, Any]:
    data = _object(data)
    state = data.get("state")
    if state not in EXTENSION_STATES:
        raise ValueError(f"state must be one of {', '.join(EXTENSION_STATES)}")
    substatuses = data.get("substatuses") or []
    if not isinstance(substatuses, list) or len(substatuses) > MAX_SUBSTATUSES:
        raise ValueError(f"substatuses must be a list of at most {MAX_SUBSTATUSES} objects")
    return {
        "sequence": _sequence(data),
        "operation": _text(data, "operation", limit=20),
        "state": state,
        "status": _status(data.get("status"), "status"),
        "substatuses": [_status(item, "substatuses[]") for item in substatuses],
        "exitCode": _int(data, "exitCode"),
        "startTime": _text(data, "startTime", limit=40),
        "endTime": _text(data, "endTime", limit=40),
        "handlerVersion": _text(data, "handlerVersion", limit=50),
    }


def run_command_report_clean(data: Any) -> dict[str, Any]:
    data = _object(data)
    state = data.get("executionState")
    if state not in RUN_COMMAND_STATES:
        raise ValueError(f"executionState must be one of {', '.join(RUN_COMMAND_STATES)}")
    return {
        "sequence": _sequence(data),
        "executionState": state,
        "exitCode": _int(data, "exitCode"),
        "output": _text(data, "output") or "",
        "error": _text(data, "error") or "",
        "executionMessage": _text(data, "executionMessage") or "",
        "startTime": _text(data, "startTime", limit=40),
        "endTime": _text(data, "endTime", limit=40),
    }
