"""The goal-state worker: a thread of the agent service that polls ``GET /his/machines/{vmId}/goalstate`` and has the
extension manager apply what changed, one operation at a time.

It starts after the service's first successful heartbeat. Every request is signed with a request-bound machine
token (``htm``/``htu``). A poll sends ``If-None-Match`` with the last etag (304: nothing changed, the cached goal state
stands); after an operation it polls again at once, otherwise after ``nextPollSeconds`` less up to 10% jitter. Failed
polls back off 5, 10, 20 … seconds up to the interval. The heartbeat loop keeps running in the main thread meanwhile.
"""

from __future__ import annotations

import logging
import random
import threading
from typing import Any

import httpx

from azcmagent import config, protocol
from azcmagent.client import Portal, _json, error_text
from azcmagent.download import Downloader
from azcmagent.extensions import ExtensionManager
from azcmagent.goalstate import GoalState, parse_goal_state

logger = logging.getLogger("himds")
BACKOFF_BASE = 5.0
MAX_POLL_SECONDS = 3600  # whatever nextPollSeconds says


class GoalStateWorker(threading.Thread):
    def __init__(
        self,
        *,
        agentconfig: dict[str, Any],
        key,
        paths: config.Paths,
        stop: threading.Event,
        proxy: str | None,
        env: dict[str, str],
    ) -> None:
        super().__init__(name="goal-state", daemon=True)
        self.vm_id = agentconfig["vmId"]
        self.thumbprint = agentconfig["certificateThumbprint"]
        self.key = key
        self.stop_event = stop
        self.portal = Portal(
            url=agentconfig["portalUrl"],
            tenant_id=agentconfig.get("tenantId", ""),
            ca_file=agentconfig.get("caFile") or None,
            proxy=proxy,
        )
        self.manager = ExtensionManager(
            paths=paths,
            vm_id=self.vm_id,
            key=key,
            thumbprint=self.thumbprint,
            send=self.send,
            downloader=Downloader(portal_url=agentconfig["portalUrl"], ca_file=self.portal.ca_file, proxy=proxy),
            stop=stop,
            env=env,
        )
        self.goal: GoalState | None = None
        self.http: httpx.Client | None = None

    def run(self) -> None:
        try:
            with self.portal.http() as http:
                self.http = http
                self._loop()
        except Exception:  # never silently: the service log shows why extensions stopped
            logger.exception("The goal-state worker stopped on an error")

    def _loop(self) -> None:
        failures = 0
        delay = 0.0
        recovered = False
        while not self.stop_event.wait(delay):
            try:
                if not recovered:
                    self.manager.recover()
                    recovered = True
                self.manager.flush_outbox()
                goal = self.poll()
                if goal is not None:
                    failures = 0
                    operation = self.manager.next_operation(goal)
                    if operation is not None and not self.stop_event.is_set():
                        self.manager.apply(operation)
                        delay = 0.0
                        continue
                    delay = min(goal.next_poll_seconds, MAX_POLL_SECONDS) * random.uniform(0.9, 1.0)  # noqa: S311
                    continue
            except Exception:  # a full disk, a bug: logged, and tried again after a pause rather than given up
                logger.exception("The goal-state worker hit an error")
            failures += 1
            interval = min(
                self.goal.next_poll_seconds if self.goal else protocol.DEFAULT_POLL_SECONDS, MAX_POLL_SECONDS
            )
            delay = min(float(interval), BACKOFF_BASE * 2 ** (failures - 1)) * random.uniform(0.8, 1.0)  # noqa: S311

    def _token(self, method: str, path: str, body: bytes = b"") -> str:
        return protocol.request_token(
            self.key, thumbprint=self.thumbprint, vm_id=self.vm_id, method=method, path=path, body=body
        )

    def poll(self) -> GoalState | None:
        """The current goal state, or None when it could not be read (logged)."""
        path = protocol.goal_state_path(self.vm_id)
        headers = {"Authorization": f"Bearer {self._token('GET', path)}"}
        if self.goal is not None and self.goal.etag:
            headers["If-None-Match"] = self.goal.etag
        try:
            response = self.http.get(path, headers=headers)
        except httpx.HTTPError as exc:
            logger.warning("Goal state: could not reach the portal: %s", exc)
            return None
        if response.status_code == 304 and self.goal is not None:
            return self.goal
        if response.status_code != 200:
            logger.warning("Goal state: HTTP %s %s", response.status_code, error_text(_json(response), response))
            return None
        try:
            goal = parse_goal_state(response.json())
        except (ValueError, protocol.ProtocolError) as exc:
            logger.error("Goal state: the portal's answer does not follow the protocol: %s", exc)
            return None
        if self.goal is None or goal.etag != self.goal.etag:
            logger.info(
                "Goal state %s: %s extension(s), %s run command(s)",
                goal.etag,
                len(goal.extensions),
                len(goal.run_commands),
            )
        self.goal = goal
        return goal

    def send(self, kind: str, name: str, body: dict[str, Any]) -> str:
        """POST one status report: "ok", "drop" (409 stale / 404 unknown), "stop" (410/403) or "retry"."""
        if kind == "extensions":
            path = protocol.extension_status_path(self.vm_id, name)
        else:
            path = protocol.run_command_status_path(self.vm_id, name)
        raw = protocol.encode_report(body)
        headers = {"Authorization": f"Bearer {self._token('POST', path, raw)}", "Content-Type": "application/json"}
        try:
            response = self.http.post(path, content=raw, headers=headers)
        except httpx.HTTPError as exc:
            logger.warning("Status of %s %s not delivered (will retry): %s", kind, name, exc)
            return "retry"
        if response.status_code == 200:
            return "ok"
        detail = error_text(_json(response), response)
        if response.status_code in (403, 410):
            logger.warning("Status of %s %s: HTTP %s %s", kind, name, response.status_code, detail)
            return "stop"
        if 400 <= response.status_code < 500 and response.status_code not in (401, 408, 429):
            # 409 StaleSequence, 404 unknown name, 400 a body the portal will never take: sending again won't help
            logger.warning("Status of %s %s refused (HTTP %s %s)", kind, name, response.status_code, detail)
            return "drop"
        logger.warning("Status of %s %s: HTTP %s %s (will retry)", kind, name, response.status_code, detail)
        return "retry"
