"""A simulated onboarded host for the agent-service tests: the files ``azcmagent connect`` leaves (agentconfig.json,
the machine key and certificate, the portal CA) pointing at a ``FakePortal``, and the service run as a real
``python -m azcmagent.cli service run`` process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from azcmagent import identity

from tests.agent.fake_portal import FakePortal


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Host:
    home: Path
    portal: FakePortal
    vm_id: str
    key: Any
    principal_id: str
    himds_port: int
    tokens_dir: Path
    process: subprocess.Popen | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def agentconfig(self) -> dict[str, Any]:
        return json.loads((self.home / "agentconfig.json").read_text())

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZCMAGENT_", "DJANGO_"))}
        env.update(
            AZCMAGENT_HOME=str(self.home),
            AZCMAGENT_SERVICE_MAX_SECONDS="120",
            AZCMAGENT_INSTALL_CONFIG=str(self.home / "no-install.json"),
            NO_PROXY="127.0.0.1,localhost",
        )
        env.update(self.extra_env)
        return env

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "azcmagent.cli", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.home,
        )

    def set_config(self, **values: Any) -> None:
        path = self.home / "localconfig.json"
        stored = json.loads(path.read_text()) if path.exists() else {}
        stored.update({k.replace("__", "."): v for k, v in values.items()})
        path.write_text(json.dumps(stored))

    def start(self) -> subprocess.Popen:
        (self.home / "log").mkdir(exist_ok=True)
        out = open(self.home / "log" / "service.out", "ab")  # noqa: SIM115 - the child holds it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "azcmagent.cli", "service", "run"],
            env=self.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=self.home,
        )
        out.close()
        self.wait_himds()
        return self.process

    def wait_himds(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"the agent service ended early:\n{self.log()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.himds_port), timeout=0.5):
                return
            time.sleep(0.05)
        raise AssertionError(f"HIMDS did not listen on {self.himds_port}:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=5)

    def log(self) -> str:
        parts = []
        for name in ("himds.log", "service.out"):
            path = self.home / "log" / name
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)

    def himds(self, path: str, **kwargs) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.himds_port}{path}", timeout=30, **kwargs)

    def all_files_bytes(self) -> bytes:
        """Everything the agent wrote under its home and its tokens directory (to look for secrets)."""
        data = b""
        for root in (self.home, self.tokens_dir):
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    data += path.read_bytes()
        return data


def make_host(tmp_path: Path, portal: FakePortal, *, tokens_dir: Path | None = None, tags=None) -> Host:
    """An onboarded machine on its own AZCMAGENT_HOME, registered with the fake portal."""
    home = tmp_path / f"host-{uuid.uuid4().hex[:8]}"
    (home / "certs").mkdir(parents=True)
    key = identity.new_key()
    vm_id = str(uuid.uuid4())
    principal_id = str(uuid.uuid4())
    subscription = str(uuid.uuid4())
    resource_id = (
        f"/subscriptions/{subscription}/resourceGroups/rg-arc/providers/Microsoft.HybridCompute/machines/web-01"
    )
    certificate = portal.issue_machine_certificate(key.public_key(), vm_id)
    (home / "certs" / "machine.key").write_bytes(identity.key_pem(key))
    os.chmod(home / "certs" / "machine.key", 0o600)
    (home / "certs" / "machine.pem").write_bytes(certificate)
    (home / "certs" / "portal-ca.pem").write_bytes(portal.ca_file.read_bytes())
    portal.add_machine(
        vm_id=vm_id,
        public_key=key.public_key(),
        certificate_pem=certificate,
        principal_id=principal_id,
        resource_id=resource_id,
    )
    agentconfig = {
        "tenantId": portal.tenant_id,
        "subscriptionId": subscription,
        "resourceGroup": "rg-arc",
        "resourceName": "web-01",
        "resourcename": "web-01",
        "location": "westeurope",
        "vmId": vm_id,
        "vmUuid": str(uuid.uuid4()).upper(),
        "correlationId": str(uuid.uuid4()),
        "cloud": "AzureCloud",
        "authType": "principal",
        "portalUrl": portal.url,
        "caFile": str(home / "certs" / "portal-ca.pem"),
        "certificateThumbprint": identity.certificate_thumbprint(certificate),
        "resourceId": resource_id,
        "identityPrincipalId": principal_id,
        "tags": tags if tags is not None else {"env": "test", "team": "arc"},
        "connectedAt": "2020-01-01T00:00:00Z",
    }
    (home / "agentconfig.json").write_text(json.dumps(agentconfig))
    tokens = tokens_dir or home.parent / f"{home.name}-tokens"
    port = free_port()
    host = Host(home, portal, vm_id, key, principal_id, port, tokens)
    host.set_config(**{"himds.port": port, "himds.tokensDir": str(tokens)})
    return host
