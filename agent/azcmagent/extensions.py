"""The extension manager: applies the goal state's operations one at a time and reports each one.

For every operation, in ascending (sequence, kind, name) order and never twice for one sequence:

1. the local policy (``policy.py``) may refuse it → ``Failed`` with the reason;
2. protectedSettings/protectedParameters are decrypted in memory (``protocol.envelope_decrypt``, AAD
   ``<vmId>/<kind>/<name>/<sequence>``) and handed to the handler, never written or logged;
3. ``extensions/state.json`` records the operation in flight (atomically) and a ``Transitioning``/``Running`` report
   goes out (best effort);
4. the handler (``handlers/``) or the run command (``runcommand.py``) runs — in the goal-state worker thread, so
   heartbeats go on — and the terminal report is written to the state file's outbox together with the applied
   sequence (one atomic write), then delivered; undelivered reports are retried before every poll.

After a restart, an operation still in flight (its process killed if it is still there) is reported ``Failed``
(extensions) or ``Unknown`` (run commands): "The agent restarted while … was running".
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import threading
import time
from collections.abc import Callable
from typing import Any

from azcmagent import config, policy, protocol, runcommand
from azcmagent.download import Downloader
from azcmagent.extstate import ExtensionState
from azcmagent.goalstate import ExtensionOperation, GoalState, RunCommandOperation
from azcmagent.handlers import HandlerContext, HandlerResult, handler_class
from azcmagent.process import kill_group, process_start_ticks

logger = logging.getLogger("himds")

SAFE_COMPONENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
RESTARTED_EXTENSION = "The agent restarted while the extension operation was running"
RESTARTED_RUN_COMMAND = "The agent restarted while the script was running"
# send(kind, name, body) -> "ok" (accepted), "drop" (409 stale / 404 unknown: never retried), "retry", "stop"
Sender = Callable[[str, str, dict[str, Any]], str]
Operation = ExtensionOperation | RunCommandOperation


def safe_component(text: str) -> str:
    """A name usable as one directory level: itself when plain, else a stable hash of it."""
    if SAFE_COMPONENT.match(text) and text not in (".", ".."):
        return text
    return "x-" + hashlib.sha256(text.encode()).hexdigest()[:16]


class ExtensionManager:
    def __init__(
        self,
        *,
        paths: config.Paths,
        vm_id: str,
        key,
        thumbprint: str,
        send: Sender,
        downloader: Downloader,
        stop: threading.Event,
        env: dict[str, str],
        local_config: Callable[[], dict[str, Any]] = config.local_config,
    ) -> None:
        self.paths, self.vm_id, self.key, self.kid = paths, vm_id, key, thumbprint.lower()
        self.send, self.downloader, self.stop, self.env = send, downloader, stop, env
        self.local_config = local_config
        for directory in (paths.extensions, paths.runcommands):  # scripts and output: for the agent's user only
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            directory.chmod(0o700)
        self.state = ExtensionState(paths.extensions_state, vm_id=vm_id)

    # --- choosing ---------------------------------------------------------------------------------------------

    def next_operation(self, goal: GoalState) -> Operation | None:
        """The first operation not applied yet, in ascending (sequence, kind, name) order."""
        pending: list[tuple[int, int, str, Operation]] = []
        for operation in goal.extensions:
            if operation.sequence > self.state.applied("extensions", operation.name):
                pending.append((operation.sequence, 0, operation.name, operation))
        for operation in goal.run_commands:
            if operation.sequence > self.state.applied("runCommands", operation.name):
                pending.append((operation.sequence, 1, operation.name, operation))
        return min(pending, key=lambda item: item[:3])[3] if pending else None

    def apply(self, operation: Operation) -> None:
        if isinstance(operation, ExtensionOperation):
            self._apply_extension(operation)
        else:
            self._apply_run_command(operation)
        self.flush_outbox()

    # --- delivering -------------------------------------------------------------------------------------------

    def flush_outbox(self) -> bool:
        """Deliver the reports waiting in the outbox, oldest first; False when one has to wait for later."""
        for item in self.state.outbox():
            outcome = self.send(item["kind"], item["name"], item["body"])
            if outcome in ("ok", "drop"):
                if outcome == "drop":
                    logger.warning(
                        "The portal no longer wants the report of %s %s: dropped", item["kind"], item["name"]
                    )
                self.state.delivered(item["id"])
            else:
                return False
        return True

    def recover(self) -> None:
        """Report an operation the last run of the service left in flight."""
        flight = self.state.in_flight
        if not flight:
            return
        pid, ticks = flight.get("pid"), flight.get("pidStart")
        if pid and ticks and process_start_ticks(int(pid)) == ticks:
            kill_group(int(pid))  # the same process is still running: end it before reporting
        kind, name, sequence = flight["kind"], flight["name"], int(flight["sequence"])
        start = flight.get("startTime")
        if kind == "extensions":
            details = {k: flight[k] for k in ("publisher", "type", "version") if k in flight}
            entry = {**self.state.entry(kind, name), **details, "operation": flight.get("operation", "install")}
            entry["state"] = "Failed"
            report = protocol.extension_report(
                sequence=sequence,
                operation=flight.get("operation", "install"),
                state="Failed",
                message=RESTARTED_EXTENSION,
                start=start,
                handler_version=entry.get("version", ""),
            )
        else:
            entry = {"state": "Unknown"}
            report = protocol.run_command_report(
                sequence=sequence, state="Unknown", message=RESTARTED_RUN_COMMAND, start=start
            )
        logger.warning("%s %s sequence %s was interrupted by a restart: reported %s", kind, name, sequence, entry)
        self.state.finish(kind, name, sequence, entry, report)
        self.flush_outbox()

    # --- extensions -------------------------------------------------------------------------------------------

    def _record_pid(self, pid: int) -> None:
        self.state.started_process(pid, process_start_ticks(pid))

    def _finish_extension(self, op: ExtensionOperation, state: str, message: str, result: HandlerResult | None, start):
        report = protocol.extension_report(
            sequence=op.sequence,
            operation=op.operation,
            state=state,
            message=message,
            stdout=result.stdout if result else b"",
            stderr=result.stderr if result else b"",
            exit_code=result.exit_code if result else None,
            start=start,
            handler_version=op.type_handler_version,
        )
        entry = {
            "operation": op.operation,
            "state": state,
            "publisher": op.publisher,
            "type": op.type,
            "version": op.type_handler_version,
            "exitCode": result.exit_code if result else None,
        }
        self.state.finish("extensions", op.name, op.sequence, entry, report)
        logger.info("Extension %s (%s) sequence %s %s: %s", op.name, op.key, op.sequence, op.operation, state)

    def _apply_extension(self, op: ExtensionOperation) -> None:
        start = time.time()
        logger.info("Extension %s (%s) sequence %s: %s", op.name, op.key, op.sequence, op.operation)
        refusal = policy.extension_refusal(
            self.local_config(), publisher=op.publisher, type_=op.type, operation=op.operation
        )
        if refusal:
            return self._finish_extension(op, "Failed", refusal, None, start)
        handler_dir = self.paths.extensions / safe_component(f"{op.publisher}.{op.type}")
        cls = handler_class(op.publisher, op.type)
        if op.operation == "delete" and cls is None:
            return self._finish_extension(op, "Deleted", f"Nothing to remove: no handler for {op.key}.", None, start)
        if cls is None:
            return self._finish_extension(
                op, "Failed", f"no handler for {op.publisher}.{op.type} on this agent", None, start
            )
        try:
            protected = self._decrypt("extensions", op.name, op.sequence, op.protected_settings)
        except protocol.ProtocolError as exc:
            return self._finish_extension(op, "Failed", f"protectedSettings could not be decrypted: {exc}", None, start)
        if not isinstance(protected, dict):
            return self._finish_extension(op, "Failed", "protectedSettings must be a JSON object", None, start)
        self.state.begin(
            "extensions",
            op.name,
            op.sequence,
            op.operation,
            publisher=op.publisher,
            type=op.type,
            version=op.type_handler_version,
        )
        self._best_effort(
            "extensions",
            op.name,
            protocol.extension_report(
                sequence=op.sequence, operation=op.operation, state="Transitioning", message="", start=start
            ),
        )
        context = HandlerContext(self.downloader, self.stop, dict(self.env), on_start=self._record_pid)
        handler = cls(context)
        try:
            if op.operation == "delete":
                result = handler.uninstall(handler_dir)
            else:
                workdir = handler_dir / safe_component(op.type_handler_version or "0") / "download" / str(op.sequence)
                timeout = float(self.local_config().get("extensions.timeoutSeconds") or 5400)
                result = handler.enable(op.settings, protected, workdir, timeout)
        except Exception as exc:  # a handler bug is the operation's failure, not the agent's end
            logger.exception("Extension %s handler error", op.name)
            result = HandlerResult(False, f"The handler failed: {exc.__class__.__name__}: {exc}")
        finally:
            del protected
        if result.stopped:
            return None  # stays in flight: reported after the restart
        if op.operation == "delete":
            state = "Deleted" if result.ok else "Failed"
        else:
            state = "Succeeded" if result.ok else "Failed"
        return self._finish_extension(op, state, result.message, result, start)

    def _decrypt(self, kind: str, name: str, sequence: int, envelope: dict[str, Any] | None) -> Any:
        if envelope is None:
            return {}
        aad = protocol.envelope_aad(self.vm_id, kind, name, sequence)
        return protocol.envelope_decrypt(self.key, envelope, aad=aad, kid=self.kid)

    def _best_effort(self, kind: str, name: str, body: dict[str, Any]) -> None:
        try:
            self.send(kind, name, body)
        except Exception as exc:  # a progress report is optional
            logger.warning("Progress report for %s %s not sent: %s", kind, name, exc)

    # --- run commands -----------------------------------------------------------------------------------------

    def _finish_run(self, op: RunCommandOperation, outcome: runcommand.RunOutcome, start) -> None:
        report = protocol.run_command_report(
            sequence=op.sequence,
            state=outcome.state,
            message=outcome.message,
            stdout=outcome.stdout,
            stderr=outcome.stderr,
            exit_code=outcome.exit_code,
            start=start,
        )
        self.state.finish(
            "runCommands", op.name, op.sequence, {"state": outcome.state, "exitCode": outcome.exit_code}, report
        )
        logger.info("Run command %s sequence %s %s: %s", op.name, op.sequence, op.operation, outcome.state)

    def _apply_run_command(self, op: RunCommandOperation) -> None:
        start = time.time()
        logger.info("Run command %s sequence %s: %s", op.name, op.sequence, op.operation)
        run_root = self.paths.runcommands / safe_component(op.name)
        refusal = policy.run_command_refusal(self.local_config())
        if refusal:
            return self._finish_run(op, runcommand.RunOutcome("Failed", refusal), start)
        if op.operation == "delete":
            shutil.rmtree(run_root, ignore_errors=True)
            outcome = runcommand.RunOutcome("Canceled", "The run command was deleted: its files are removed.")
            return self._finish_run(op, outcome, start)
        try:
            protected = runcommand.protected_pairs(
                self._decrypt("runCommands", op.name, op.sequence, op.protected_parameters) or None
            )
        except (protocol.ProtocolError, ValueError) as exc:
            outcome = runcommand.RunOutcome("Failed", f"protectedParameters could not be decrypted: {exc}")
            return self._finish_run(op, outcome, start)
        self.state.begin("runCommands", op.name, op.sequence, op.operation)
        self._best_effort(
            "runCommands", op.name, protocol.run_command_report(sequence=op.sequence, state="Running", start=start)
        )
        run_dir = run_root / str(op.sequence)
        try:
            outcome = runcommand.execute(
                op,
                protected=protected,
                run_dir=run_dir,
                downloader=self.downloader,
                env=dict(self.env),
                stop=self.stop,
                on_start=self._record_pid,
            )
        except Exception as exc:  # an unexpected error is the run's failure, not the agent's end
            logger.exception("Run command %s error", op.name)
            outcome = runcommand.RunOutcome("Failed", f"The run failed: {exc.__class__.__name__}: {exc}")
        finally:
            del protected
        if not outcome.state:
            return None  # the agent is stopping: stays in flight, reported after the restart
        return self._finish_run(op, outcome, start)
