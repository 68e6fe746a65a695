"""Managed identity end to end (issue 16, acceptance): a real agent onboarded by the at-scale script against the real
portal over TLS, its service serving HIMDS, and on "the machine" a Python process with azure-identity's
``ManagedIdentityCredential`` (IDENTITY_ENDPOINT/IMDS_ENDPOINT as the installer sets them for services) listing the
resource group's machines with azure-mgmt-hybridcompute. The token comes from the portal's token endpoint for a
client assertion signed by the machine key; without a role assignment ARM answers AuthorizationFailed, with Reader on
its resource group assigned to the machine identity (azure-mgmt-authorization) the list. A token of an Expired or
deleted machine is refused, and HIMDS still answers metadata once the portal is down.

azure-identity reads the challenge file only from /var/opt/azcmagent/tokens (docs/extensions.md "HIMDS"): the agent
runs with that directory (``real_tokens_dir``; CI runs as root) and leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import sysconfig
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters
from django.utils import timezone

from arcportal import authz
from machines.models import Machine
from tests.agent.conftest import OutputReader, stop_agent_service
from tests.agent.hosts import free_port
from tests.agent.test_himds import real_tokens_dir  # noqa: F401 - the fixture
from tests.agent_env import agent_environment
from tests.machines.api.test_role_assignments_sdk import authorization_client
from tests.machines.api.test_sdk import SDK

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

GROUP = "arc-msi"
READER = authz.ROLES_BY_NAME[authz.READER].id
SNIPPET = """
import json, sys
from azure.core.exceptions import HttpResponseError
from azure.identity import ManagedIdentityCredential
from azure.mgmt.hybridcompute import HybridComputeManagementClient

portal, ca_file, subscription, group, mode = sys.argv[1:6]
credential = ManagedIdentityCredential()
try:
    if mode == "list":
        client = HybridComputeManagementClient(credential, subscription, base_url=portal, connection_verify=ca_file)
        names = [m.name for m in client.machines.list_by_resource_group(group)]
        result = {"machines": names}
    else:  # a token for another resource: a fresh request to the portal, not HIMDS's cache
        result = {"token": credential.get_token(mode).token}
except HttpResponseError as exc:  # ClientAuthenticationError (the credential's or ARM's 401) included
    code = exc.error.code if exc.error else None
    result = {"status": exc.status_code, "code": code, "type": type(exc).__name__, "message": str(exc)}
print(json.dumps(result))
"""


def _render_script(server, subscription, tenant, created) -> str:
    from onboarding.scripts import ScriptOptions, render_onboarding_script

    return render_onboarding_script(
        ScriptOptions(
            os="linux",
            subscription_id=str(subscription.subscription_id),
            resource_group=GROUP,
            location="westeurope",
            tags={"scenario": "managed identity"},
            service_principal_id=str(created.service_principal.client_id),
            service_principal_secret=created.secret,
        ),
        correlation_id=str(uuid.uuid4()),
        tenant_id=str(tenant.tenant_id),
        base_url=server.url,
    )


def _wait_listening(port: int, home: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    logs = "\n".join(p.read_text(errors="replace") for p in (home / "log").glob("*.log"))
    raise AssertionError(f"HIMDS did not listen on {port}:\n{logs}")


class Machine_:
    """'The machine': runs the snippet with the environment services get from the installer."""

    def __init__(self, server, subscription, himds_port: int):
        self.server = server
        self.subscription = subscription
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("AZCMAGENT_", "AZURE_", "MSI_", "IDENTITY_"))
        }
        self.env.update(
            IDENTITY_ENDPOINT=f"http://localhost:{himds_port}/metadata/identity/oauth2/token",
            IMDS_ENDPOINT=f"http://localhost:{himds_port}",
            NO_PROXY="localhost,127.0.0.1",
        )

    def run(self, mode: str) -> dict:
        args = [self.server.url, self.server.ca_file, str(self.subscription.subscription_id), GROUP, mode]
        result = subprocess.run(
            [sys.executable, "-c", SNIPPET, *args], env=self.env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])


def test_managed_identity_credential_on_an_onboarded_machine_acts_as_the_machine(
    tls_live_server,
    db_lock,
    subscription,
    tenant,
    tmp_path,
    real_tokens_dir,  # noqa: F811
):
    from identity.models import Role
    from identity.service_principals import service_principal_create
    from machines.services import resource_group_create

    resource_group_create(subscription=subscription, name=GROUP, location="westeurope")
    created = service_principal_create(display_name="fleet", role=Role.ONBOARDING, scope=subscription.arm_id)
    script = tmp_path / "OnboardingScript.sh"
    script.write_text(_render_script(tls_live_server, subscription, tenant, created))
    prefix, home = tmp_path / "prefix", tmp_path / "agent-home"
    home.mkdir()
    himds_port = free_port()
    # The agent's settings before it connects: HIMDS on a free port, challenge files where azure-identity looks.
    (home / "localconfig.json").write_text(
        json.dumps({"himds.port": himds_port, "himds.tokensDir": str(real_tokens_dir)})
    )
    env = agent_environment(
        TMPDIR=str(tmp_path),
        AZCMAGENT_PREFIX=str(prefix),
        AZCMAGENT_HOME=str(home),
        AZCMAGENT_VM_UUID=str(uuid.uuid4()).upper(),
        AZCMAGENT_SERVICE_MAX_SECONDS="240",
        AZCMAGENT_SITE_PACKAGES=sysconfig.get_paths()["purelib"],
        PIP_NO_INDEX="1",
    )
    process = subprocess.Popen(
        ["bash", str(script)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    reader = OutputReader(process)
    try:
        reader.wait_for(r"Successfully Onboarded Resource to Azure", timeout=240)
        assert reader.finish(timeout=60) == 0, reader.text
        _wait_listening(himds_port, home)
        with db_lock:
            machine = Machine.objects.select_related("resource_group__subscription").get(resource_group__name=GROUP)
            principal_id = str(machine.identity_principal_id)
        agentconfig = json.loads((home / "agentconfig.json").read_text())
        assert agentconfig["identityPrincipalId"] == principal_id
        on_machine = Machine_(tls_live_server, subscription, himds_port)

        # No role assignment: the identity signs in, and ARM refuses the read.
        refused = on_machine.run("list")
        assert refused["status"] == 403 and refused["code"] == "AuthorizationFailed", refused
        assert principal_id in refused["message"]

        # Reader on its resource group, assigned to the machine identity through ARM (azure-mgmt-authorization):
        # the same process now lists the group's machines.
        with db_lock:
            owner = SDK(tls_live_server, subscription)
        # Closed after use: a kept-alive connection would keep a server thread, and its database session, open.
        with owner.credential, authorization_client(owner) as owner_auth:
            assignment = owner_auth.role_assignments.create(
                f"{subscription.arm_id}/resourceGroups/{GROUP}",
                str(uuid.uuid4()),
                RoleAssignmentCreateParameters(
                    role_definition_id=(
                        f"{subscription.arm_id}/providers/Microsoft.Authorization/roleDefinitions/{READER}"
                    ),
                    principal_id=principal_id,
                    principal_type="ServicePrincipal",
                ),
            )
        assert assignment.principal_id == principal_id
        assert on_machine.run("list") == {"machines": [machine.name]}

        # Expired: a fresh token is refused at the token endpoint (HIMDS passes invalid_client on).
        with db_lock:
            Machine.objects.filter(pk=machine.pk).update(last_heartbeat_at=timezone.now() - timedelta(days=400))
        expired = on_machine.run("https://management.core.windows.net//.default")
        assert "token" not in expired and "invalid_client" in expired["message"], expired
        # ... and the token HIMDS already holds no longer authenticates on ARM.
        stale = on_machine.run("list")
        assert stale["status"] == 401 and stale["code"] == "InvalidAuthenticationToken", stale
        with db_lock:
            Machine.objects.filter(pk=machine.pk).update(last_heartbeat_at=timezone.now())
        assert "token" in on_machine.run("https://management.core.windows.net/.default")

        # Deleted: the same.
        with db_lock:
            Machine.objects.filter(pk=machine.pk).delete()
        deleted = on_machine.run("https://management.azure.com//.default")
        assert "token" not in deleted and "invalid_client" in deleted["message"], deleted
        gone = on_machine.run("list")
        assert gone["status"] == 401 and "deleted" in gone["message"], gone

        # The portal goes down: HIMDS still answers the machine's metadata.
        httpd = tls_live_server.thread.httpd
        httpd.shutdown()
        httpd.server_close()
        with pytest.raises(httpx.ConnectError):
            httpx.get(tls_live_server.url, verify=ssl.create_default_context(cafile=tls_live_server.ca_file), timeout=5)
        compute = httpx.get(
            f"http://127.0.0.1:{himds_port}/metadata/instance/compute",
            params={"api-version": "2020-06-01"},
            headers={"Metadata": "true"},
            timeout=30,
        )
        assert compute.status_code == 200, compute.text
        assert compute.json()["resourceGroupName"] == GROUP and compute.json()["vmId"] == agentconfig["vmId"]
    finally:
        stop_agent_service(home)
