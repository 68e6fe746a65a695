"""logrus-style output lines: ``time="…" level=info msg="…" key=value`` (what azcmagent prints)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime


def _quote(value: str) -> str:
    if value and all(ch.isalnum() or ch in "-_./:@" for ch in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def line(level: str, msg: str, **fields: object) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    parts = [f'time="{stamp}"', f"level={level}", f"msg={_quote(msg)}"]
    for key, value in fields.items():
        parts.append(f"{key.replace('_', ' ')}={_quote(str(value))}")
    return " ".join(parts)


def emit(level: str, msg: str, *, stream=None, **fields: object) -> None:
    stream = stream or (sys.stderr if level in ("error", "fatal") else sys.stdout)
    text = line(level, msg, **fields)
    print(text, file=stream, flush=True)
    _append_cli_log(text)


def _append_cli_log(text: str) -> None:
    """Keep a copy in ``log/azcmagent.log`` under AZCMAGENT_HOME (best effort: a missing home is not an error)."""
    from azcmagent import config

    path = config.paths().cli_log
    try:
        if path.parent.parent.exists():
            path.parent.mkdir(exist_ok=True)
            with open(path, "a") as handle:
                handle.write(text + "\n")
    except OSError:
        pass


def info(msg: str, **fields: object) -> None:
    emit("info", msg, **fields)


def warning(msg: str, **fields: object) -> None:
    emit("warning", msg, **fields)


def error(msg: str, **fields: object) -> None:
    emit("error", msg, **fields)


def fatal(msg: str, **fields: object) -> None:
    emit("fatal", msg, **fields)
