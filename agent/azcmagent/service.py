"""The agent service (himds): heartbeat now and every interval, back off on failure, stop when deleted.

``azcmagent service run`` runs the loop in the foreground, logging to ``log/himds.log``; ``connect`` starts it as a
detached process and records its pid in ``himds.pid``. Beside the heartbeat loop (the main thread) it runs HIMDS
(``himds.py``, from the start, so metadata answers even before the portal does) and, after the first successful
heartbeat, the goal-state worker (``worker.py``) that applies extensions and run commands in its own thread.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from azcmagent import __version__, config, identity, msi, sysinfo
from azcmagent.client import Portal, _json, error_text
from azcmagent.himds import HimdsServer
from azcmagent.worker import GoalStateWorker

logger = logging.getLogger("himds")

DEFAULT_INTERVAL = 300
BACKOFF_BASE = 5.0


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class BeatResult:
    ok: bool
    status_code: int
    stop: bool  # the portal said this identity is gone for good (410) or expired (403)
    next_seconds: int
    message: str


def proxy_url() -> str | None:
    """``proxy.url``, else ``HTTPS_PROXY`` (ARC-REFERENCE.md §3.3)."""
    return config.local_config().get("proxy.url") or os.environ.get("HTTPS_PROXY") or None


def portal_for(agentconfig: dict[str, Any]) -> Portal:
    proxy = proxy_url()
    return Portal(
        url=agentconfig["portalUrl"],
        tenant_id=agentconfig.get("tenantId", ""),
        ca_file=agentconfig.get("caFile") or None,
        proxy=proxy,
    )


def write_state(**values: Any) -> None:
    paths = config.paths()
    state = config.read_json(paths.state)
    state.update(values)
    config.write_json(paths.state, state)


def send_heartbeat() -> BeatResult:
    """One signed heartbeat with the current facts; records the outcome in state.json."""
    paths = config.paths()
    agentconfig = config.read_json(paths.agentconfig)
    if not agentconfig.get("vmId"):
        return BeatResult(False, 0, True, DEFAULT_INTERVAL, "The agent is not connected (no agentconfig.json).")
    key = identity.load_key(paths.key.read_bytes())
    body = json.dumps(sysinfo.facts(__version__), sort_keys=True).encode()
    token = identity.heartbeat_token(
        key, thumbprint=agentconfig["certificateThumbprint"], vm_id=agentconfig["vmId"], body=body
    )
    try:
        response = portal_for(agentconfig).heartbeat(vm_id=agentconfig["vmId"], body=body, token=token)
    except httpx.HTTPError as exc:
        write_state(lastError=f"Network error: {exc}", lastErrorAt=now_iso(), errorCode="AZCM0026")
        return BeatResult(False, 0, False, DEFAULT_INTERVAL, f"Could not reach {agentconfig['portalUrl']}: {exc}")
    data = _json(response)
    if response.status_code == 200:
        interval = int(data.get("nextHeartbeatSeconds") or DEFAULT_INTERVAL)
        write_state(
            status=data.get("status", "Connected"),
            lastHeartbeat=now_iso(),
            heartbeatIntervalSeconds=interval,
            lastError="",
            errorCode="",
        )
        return BeatResult(True, 200, False, interval, "Connected")
    message = error_text(data, response)
    if response.status_code == 410:
        write_state(status="Disconnected", lastError=message, lastErrorAt=now_iso(), errorCode="AZCM0065")
        return BeatResult(False, 410, True, DEFAULT_INTERVAL, message)
    if response.status_code == 403:
        write_state(status="Expired", lastError=message, lastErrorAt=now_iso(), errorCode="AZCM0065")
        return BeatResult(False, 403, True, DEFAULT_INTERVAL, message)
    write_state(lastError=message, lastErrorAt=now_iso(), errorCode="AZCM0066")
    return BeatResult(False, response.status_code, False, DEFAULT_INTERVAL, message)


def next_delay(result: BeatResult, *, failures: int, uniform=random.uniform) -> float:
    """Seconds until the next heartbeat: the interval the portal asked for, less up to 10% jitter (so a fleet
    restarted together spreads out and never beats later than asked); after the n-th failure in a row
    ``BACKOFF_BASE * 2**(n-1)`` (5, 10, 20, 40 … seconds) with jitter, never longer than the interval."""
    if result.ok:
        return result.next_seconds * uniform(0.9, 1.0)
    return min(float(result.next_seconds), BACKOFF_BASE * 2 ** max(0, failures - 1)) * uniform(0.8, 1.0)


def _setup_logging() -> None:
    paths = config.paths()
    paths.logs.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(paths.himds_log)
    handler.setFormatter(logging.Formatter('time="%(asctime)s" level=%(levelname)s msg="%(message)s"'))
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    # httpx logs every request's full URL at INFO: a download's query string (a SAS token) must not reach a log.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def child_environment(himds_port: int) -> dict[str, str]:
    """What extension handlers and run commands start with: the service's environment without the agent's own
    settings, plus the managed identity endpoints (as Azure's agent sets them for extensions)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZCMAGENT_")}
    env["IDENTITY_ENDPOINT"] = f"http://localhost:{himds_port}/metadata/identity/oauth2/token"
    env["IMDS_ENDPOINT"] = f"http://localhost:{himds_port}"
    return env


def start_himds(agentconfig: dict[str, Any], key, local: dict[str, Any]) -> HimdsServer | None:
    """HIMDS on 127.0.0.1:``himds.port``; None (logged) when the port can't be had: heartbeats go on regardless."""
    paths = config.paths()
    facts = sysinfo.facts(__version__)

    def metadata() -> dict[str, Any]:
        return msi.compute_metadata(config.read_json(paths.agentconfig) or agentconfig, facts)

    port = int(local["himds.port"])
    try:
        server = HimdsServer(
            port=port,
            tokens_dir=Path(local["himds.tokensDir"]),
            identity=msi.MachineIdentity(agentconfig=agentconfig, key=key, proxy=proxy_url()),
            metadata=metadata,
        )
    except OSError as exc:
        logger.error("HIMDS could not listen on 127.0.0.1:%s: %s", port, exc)
        return None
    return server.start()


def run(*, max_seconds: float | None = None, sleep=time.sleep) -> int:
    """The service loop. Ends on SIGTERM/SIGINT, after ``max_seconds`` (``AZCMAGENT_SERVICE_MAX_SECONDS``), or when
    the portal answers that the machine was deleted (410) or its identity expired (403)."""
    _setup_logging()
    paths = config.paths()
    if max_seconds is None and os.environ.get("AZCMAGENT_SERVICE_MAX_SECONDS"):
        max_seconds = float(os.environ["AZCMAGENT_SERVICE_MAX_SECONDS"])
    started = time.monotonic()
    stopping = {"flag": False}

    def _stop(signum, frame):
        stopping["flag"] = True
        logger.info("Received signal %s: stopping the agent service", signum)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    paths.pid.write_text(str(os.getpid()))
    logger.info("Agent service (himds) started, version %s, pid %s", __version__, os.getpid())
    agentconfig = config.read_json(paths.agentconfig)
    local = config.local_config()
    key = identity.load_key(paths.key.read_bytes()) if agentconfig.get("vmId") and paths.key.exists() else None
    himds = start_himds(agentconfig, key, local) if key is not None else None
    worker_stop = threading.Event()
    worker: GoalStateWorker | None = None
    failures = 0
    try:
        while not stopping["flag"]:
            result = send_heartbeat()
            if result.ok:
                failures = 0
                logger.info("Heartbeat sent: status %s, next in %ss", result.message, result.next_seconds)
                delay = next_delay(result, failures=0)
                if worker is None and key is not None:
                    worker = GoalStateWorker(
                        agentconfig=agentconfig,
                        key=key,
                        paths=paths,
                        stop=worker_stop,
                        proxy=proxy_url(),
                        env=child_environment(int(local["himds.port"])),
                    )
                    worker.start()
            elif result.stop:
                if result.status_code == 410:
                    logger.error(
                        "The machine was deleted from Azure Arc (HTTP 410 MachineDeleted): %s. Stopping the agent "
                        "service; run 'azcmagent disconnect --force-local-only' and connect again.",
                        result.message,
                    )
                else:
                    logger.error("Stopping the agent service: %s (HTTP %s)", result.message, result.status_code)
                return 0
            else:
                failures += 1
                delay = next_delay(result, failures=failures)
                logger.warning(
                    "Heartbeat failed (attempt %s, HTTP %s): %s; retrying in %.0fs",
                    failures,
                    result.status_code,
                    result.message,
                    delay,
                )
            end = time.monotonic() + delay
            while not stopping["flag"] and time.monotonic() < end:
                if max_seconds is not None and time.monotonic() - started >= max_seconds:
                    logger.info("Service lifetime limit reached: stopping")
                    return 0
                sleep(min(0.2, max(0.0, end - time.monotonic())))
        logger.info("Agent service stopped")
        return 0
    finally:
        worker_stop.set()
        if worker is not None:
            worker.join(timeout=10)  # a running handler is ended (process group) within a few seconds
        if himds is not None:
            himds.stop()
        try:
            if paths.pid.read_text().strip() == str(os.getpid()):
                paths.pid.unlink()
        except OSError:
            pass


def start_detached() -> int:
    """Start ``azcmagent service run`` in the background (own session, output to himds.log); returns its pid."""
    paths = config.paths()
    paths.logs.mkdir(parents=True, exist_ok=True)
    stop()
    with open(paths.himds_log, "ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "azcmagent.cli", "service", "run"],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,
            close_fds=True,
        )
    paths.pid.write_text(str(process.pid))
    return process.pid


def running_pid() -> int | None:
    try:
        pid = int(config.paths().pid.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except OSError:
        return None
    return pid


def stop(timeout: float = 5.0) -> bool:
    """Stop the background service if it runs; True if one was stopped."""
    pid = running_pid()
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except OSError:
            break
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                break
        except ChildProcessError:
            pass
        time.sleep(0.05)
    else:
        os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
    with contextlib.suppress(OSError):
        config.paths().pid.unlink()
    return True
