"""Run command on the machine: the script in a fresh run directory, run with ``/bin/bash``.

``source.script`` is written to ``runcommands/<name>/<sequence>/script.sh`` (``source.scriptUri`` downloaded there);
``parameters`` and the decrypted ``protectedParameters`` become environment variables (names
``^[A-Za-z_][A-Za-z0-9_]*$``; protected values are never written to disk); ``timeoutInSeconds`` (0 or absent: 5400)
ends the process group as ``TimedOut``; output is capped like an extension's (last 4 KiB each in the report).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azcmagent.download import Downloader, DownloadError
from azcmagent.goalstate import RunCommandOperation
from azcmagent.process import run_process
from azcmagent.protocol import ENV_NAME

DEFAULT_TIMEOUT_SECONDS = 5400
SCRIPT_NAME = "script.sh"


@dataclass(frozen=True)
class RunOutcome:
    state: str  # Succeeded | Failed | TimedOut; "" when the agent stopped during the run (reported after restart)
    message: str
    exit_code: int | None = None
    stdout: bytes = b""
    stderr: bytes = b""


def protected_pairs(value: Any) -> list[tuple[str, str]]:
    """The decrypted protectedParameters: a list of ``{"name", "value"}`` (ARM's shape) or a name → value object."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [(str(k), "" if v is None else str(v)) for k, v in value.items()]
    if isinstance(value, list) and all(isinstance(p, dict) and isinstance(p.get("name"), str) for p in value):
        return [(p["name"], "" if p.get("value") is None else str(p["value"])) for p in value]
    raise ValueError("protectedParameters must be a list of {name, value}")


def execute(
    operation: RunCommandOperation,
    *,
    protected: list[tuple[str, str]],
    run_dir: Path,
    downloader: Downloader,
    env: dict[str, str],
    stop: threading.Event,
    on_start: Callable[[int], None] | None = None,
) -> RunOutcome:
    bad = [name for name, _ in [*operation.parameters, *protected] if not ENV_NAME.match(name)]
    if bad:
        return RunOutcome(
            "Failed",
            f"Parameter name(s) {', '.join(repr(b) for b in bad)} are not valid environment variable names "
            "(letters, digits and _, not starting with a digit).",
        )
    if operation.run_as_user:
        return RunOutcome("Failed", "runAsUser is not supported by this agent: scripts run as the agent's user.")
    if operation.command_id and not (operation.script or operation.script_uri):
        return RunOutcome(
            "Failed", f"commandId {operation.command_id!r} is not supported by this agent: use source.script."
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    script = run_dir / SCRIPT_NAME
    if operation.script:
        script.write_text(operation.script)
    elif operation.script_uri:
        try:
            downloader.fetch(operation.script_uri, run_dir, name=SCRIPT_NAME)
        except DownloadError as exc:
            return RunOutcome("Failed", f"The script could not be downloaded: {exc}")
    else:
        return RunOutcome("Failed", "source.script or source.scriptUri is required.")
    variables = dict(env)
    variables.update(operation.parameters)
    variables.update(protected)
    timeout = operation.timeout_seconds or DEFAULT_TIMEOUT_SECONDS
    result = run_process(
        ["/bin/bash", str(script)],
        cwd=run_dir,
        env=variables,
        timeout=timeout,
        stdout_path=run_dir / "stdout",
        stderr_path=run_dir / "stderr",
        stop=stop,
        on_start=on_start,
    )
    if result.stopped:
        return RunOutcome("", "The agent stopped while the script was running.", None, result.stdout, result.stderr)
    if result.timed_out:
        state, message = "TimedOut", f"The script did not finish within {timeout} seconds and was killed."
    elif result.exit_code == 0:
        state, message = "Succeeded", "The script finished with exit code 0."
    else:
        state, message = "Failed", f"The script exited with code {result.exit_code}."
    return RunOutcome(state, message, result.exit_code, result.stdout, result.stderr)
