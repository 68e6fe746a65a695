"""The Azure CLI (``.venv-az/bin/az``, built by ``make venv`` from requirements-cli.txt) against the portal over TLS.

``az`` is a fixture: a service principal (Owner of the default subscription) signed in with the CLI exactly as
docs/cli.md shows — ``az config set core.instance_discovery=false``, ``az cloud register`` with the live server's
URL, ``az cloud set``, ``az login --service-principal`` — in a temporary ``AZURE_CONFIG_DIR`` of its own, with the
portal CA as ``REQUESTS_CA_BUNDLE``, telemetry off and none of this process's Azure settings. Each command runs as a
real ``az`` process; in a ``--clock-shift-days`` run it gets the moved clock like every other Python process.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
AZ = ROOT / ".venv-az" / "bin" / "az"
CLOUD = "ArcPortal"


class AzError(AssertionError):
    def __init__(self, args, result: subprocess.CompletedProcess):
        super().__init__(f"az {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
        self.result = result


def az_environment(config_dir: Path, ca_file: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "AZ_", "MSAL_", "REQUESTS_CA"))}
    env.pop("VIRTUAL_ENV", None)
    env.update(
        AZURE_CONFIG_DIR=str(config_dir),
        REQUESTS_CA_BUNDLE=ca_file,
        # Nothing leaves the machine: no telemetry upload, no survey, no version check, no colour in the output.
        AZURE_CORE_COLLECT_TELEMETRY="false",
        AZURE_CORE_SURVEY_MESSAGE="false",
        AZURE_CORE_NO_COLOR="true",
        AZURE_CORE_OUTPUT="json",
    )
    return env


@dataclass
class AzureCli:
    server: Any
    config_dir: Path
    tenant_id: str = ""
    subscription_id: str = ""
    client_id: str = ""
    secret: str = field(default="", repr=False)

    @property
    def env(self) -> dict[str, str]:
        return az_environment(self.config_dir, self.server.ca_file)

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        if not AZ.exists():
            pytest.fail(f"{AZ} is missing: run `make venv` (requirements-cli.txt)")
        result = subprocess.run(
            [str(AZ), *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise AzError(args, result)
        return result

    def json(self, *args: str) -> Any:
        """The command's JSON output (``-o json``); an empty output is ``None``."""
        out = self.run(*args, "--output", "json").stdout.strip()
        return json.loads(out) if out else None

    def fails(self, *args: str) -> str:
        """Run a command that must fail; its error output."""
        result = self.run(*args, check=False)
        assert result.returncode != 0, f"az {' '.join(args)} succeeded:\n{result.stdout}"
        return result.stderr

    def sign_in(self) -> Any:
        """docs/cli.md's setup: the portal as a cloud, then the service principal's sign-in (its output)."""
        self.run("config", "set", "core.instance_discovery=false")
        self.run("cloud", "register", "--name", CLOUD, "--endpoint-resource-manager", f"{self.server.url}/")
        self.run("cloud", "set", "--name", CLOUD)
        return self.json(
            "login",
            "--service-principal",
            "--username",
            self.client_id,
            f"--password={self.secret}",  # `=`: a secret may start with '-' (the CLI's own advice)
            "--tenant",
            self.tenant_id,
        )


@pytest.fixture
def az_cli(tls_live_server, tmp_path) -> AzureCli:
    """The CLI with a fresh configuration directory, not signed in."""
    return AzureCli(server=tls_live_server, config_dir=tmp_path / "azure-config")


@pytest.fixture
def az_principal(subscription):
    """A service principal that owns the default subscription: (client id, secret)."""
    from identity.service_principals import service_principal_create

    created = service_principal_create(display_name="az-cli", role="Owner", scope=subscription.arm_id)
    return str(created.service_principal.client_id), created.secret


@pytest.fixture
def az(az_cli, az_principal, subscription) -> AzureCli:
    """The CLI signed in as an Owner of the default subscription (docs/cli.md's three setup commands)."""
    az_cli.tenant_id = str(subscription.tenant.tenant_id)
    az_cli.subscription_id = str(subscription.subscription_id)
    az_cli.client_id, az_cli.secret = az_principal
    az_cli.login_output = az_cli.sign_in()
    return az_cli
