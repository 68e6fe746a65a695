"""Issue 12 acceptance, end to end: the real agent service (``python -m azcmagent.cli service run``, a subprocess)
against the real portal over TLS (``tls_live_server``), driven by the official SDK (``azure-mgmt-hybridcompute``).

The machine is registered and given its certificate through the portal's services (what ``azcmagent connect`` does,
tested in tests/agent/test_connect.py); the agent's home is laid out as ``connect`` leaves it. Heartbeat and
goal-state intervals are shortened through the portal's settings (the agent follows ``nextHeartbeatSeconds`` /
``nextPollSeconds``), never by sleeping.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path

import pytest
from azcmagent import identity
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from machines.models import Extension, Machine, RunCommand
from machines.services import machine_issue_certificate, machine_register, resource_group_create
from tests.agent.hosts import Host, free_port
from tests.machines.api.test_sdk import SDK

pytestmark = pytest.mark.integration

CSE = {"publisher": "Microsoft.Azure.Extensions", "type": "CustomScript", "typeHandlerVersion": "2.1"}


def wait_for(predicate, *, timeout: float = 60, what: str = "the condition", host: Host | None = None):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{host.log()[-3000:] if host else ''}")
        time.sleep(0.2)


def onboarded_host(tmp_path: Path, server, subscription, name: str) -> tuple[Host, Machine]:
    """A machine registered with the portal and an agent home pointing at it, as ``azcmagent connect`` leaves."""
    group = resource_group_create(subscription=subscription, name="rg-e2e", location="westeurope")
    home = tmp_path / f"host-{name}"
    (home / "certs").mkdir(parents=True)
    key = identity.new_key()
    vm_id = str(uuid.uuid4())
    registered = machine_register(
        resource_group=group,
        name=name,
        location="westeurope",
        properties={"vmId": vm_id, "clientPublicKey": identity.public_key_b64(key), "osName": "linux"},
        onboarding_method="ServicePrincipal",
        onboarded_by="e2e",
    )
    issued = machine_issue_certificate(machine_id=registered.instance.pk, public_key_b64=identity.public_key_b64(key))
    machine = Machine.objects.get(pk=registered.instance.pk)
    (home / "certs" / "machine.key").write_bytes(identity.key_pem(key))
    os.chmod(home / "certs" / "machine.key", 0o600)
    (home / "certs" / "machine.pem").write_bytes(issued.pem)
    (home / "certs" / "portal-ca.pem").write_bytes(Path(server.ca_file).read_bytes())
    agentconfig = {
        "tenantId": str(subscription.tenant.tenant_id),
        "subscriptionId": str(subscription.subscription_id),
        "resourceGroup": "rg-e2e",
        "resourceName": name,
        "resourcename": name,
        "location": "westeurope",
        "vmId": vm_id,
        "vmUuid": str(uuid.uuid4()).upper(),
        "correlationId": str(uuid.uuid4()),
        "cloud": "AzureCloud",
        "authType": "principal",
        "portalUrl": server.url,
        "caFile": str(home / "certs" / "portal-ca.pem"),
        "certificateThumbprint": issued.thumbprint,
        "resourceId": machine.arm_id,
        "identityPrincipalId": str(machine.identity_principal_id),
        "tags": {},
        "connectedAt": "2020-01-01T00:00:00Z",
    }
    (home / "agentconfig.json").write_text(json.dumps(agentconfig))
    tokens = tmp_path / f"tokens-{name}"
    host = Host(home, None, vm_id, key, str(machine.identity_principal_id), free_port(), tokens)
    host.set_config(**{"himds.port": host.himds_port, "himds.tokensDir": str(tokens)})
    return host, machine


@pytest.fixture
def portal(tls_live_server, subscription, settings):
    settings.ARC_HEARTBEAT_INTERVAL_SECONDS = 2
    settings.ARC_GOAL_STATE_SECONDS = 1
    return tls_live_server


@pytest.fixture
def host(portal, subscription, tmp_path):
    host, machine = onboarded_host(tmp_path, portal, subscription, "e2e-01")
    host.start()
    try:
        wait_for(
            lambda: Machine.objects.get(pk=machine.pk).last_heartbeat_at is not None, what="a heartbeat", host=host
        )
        yield host
    finally:
        host.stop()


def test_custom_script_install_update_uninstall_through_the_sdk_with_a_real_agent(portal, subscription, host):
    sdk = SDK(portal, subscription)
    extensions = sdk.hc.machine_extensions
    body = {
        "location": "westeurope",
        "properties": {
            **CSE,
            "settings": {"commandToExecute": "echo installed; echo $((6*7)); cat secret.txt 2>/dev/null; true"},
            "protectedSettings": {"fileUris": [], "storageAccountName": "acct-e2e-secret"},
        },
    }
    installed = extensions.begin_create_or_update("rg-e2e", "e2e-01", "CustomScript", body).result()
    assert installed.properties.provisioning_state == "Succeeded"
    view = installed.properties.instance_view
    assert view.status.code == "ProvisioningState/succeeded" and view.status.level == "Info"
    assert "[stdout]\ninstalled\n42" in view.status.message
    first = Extension.objects.get().last_report
    assert (first["sequence"], first["operation"], first["exitCode"]) == (1, "install", 0)
    handler = host.home / "extensions" / "Microsoft.Azure.Extensions.CustomScript"
    assert (handler / "2.1" / "download" / "1").is_dir()

    body["properties"]["forceUpdateTag"] = "again"
    body["properties"]["settings"] = {"commandToExecute": "echo updated"}
    updated = extensions.begin_create_or_update("rg-e2e", "e2e-01", "CustomScript", body).result()
    assert updated.properties.provisioning_state == "Succeeded"
    assert "updated" in updated.properties.instance_view.status.message
    assert Extension.objects.get().last_report["operation"] == "update"
    assert (handler / "2.1" / "download" / "2").is_dir()  # it ran again, as sequence 2

    extensions.begin_delete("rg-e2e", "e2e-01", "CustomScript").result()
    with pytest.raises(ResourceNotFoundError):
        extensions.get("rg-e2e", "e2e-01", "CustomScript")
    assert not handler.exists() and not Extension.objects.exists()
    host.stop()
    assert b"acct-e2e-secret" not in host.all_files_bytes()  # protectedSettings never reached a file or a log


def test_run_command_through_the_sdk_with_a_real_agent(portal, subscription, host):
    sdk = SDK(portal, subscription)
    body = {
        "location": "westeurope",
        "properties": {
            "source": {"script": 'echo "$GREETING from $(basename "$PWD")"; echo oops >&2; exit 3'},
            "parameters": [{"name": "GREETING", "value": "hello"}],
            "protectedParameters": [{"name": "TOKEN", "value": "pp-e2e-secret"}],
            "timeoutInSeconds": 60,
        },
    }
    run = sdk.hc.machine_run_commands.begin_create_or_update("rg-e2e", "e2e-01", "greet", body).result()
    view = run.properties.instance_view
    assert run.properties.provisioning_state == "Succeeded"
    assert (view.execution_state, view.exit_code) == ("Failed", 3)  # the script's outcome, as Azure shows it
    assert view.output == "hello from 1\n" and view.error == "oops\n"
    assert view.start_time is not None and view.end_time is not None
    assert [r.name for r in sdk.hc.machine_run_commands.list("rg-e2e", "e2e-01")] == ["greet"]
    sdk.hc.machine_run_commands.begin_delete("rg-e2e", "e2e-01", "greet").result()
    assert not RunCommand.objects.exists()
    assert not (host.home / "runcommands" / "greet").exists()


def test_a_blocklisted_type_fails_with_the_reason(portal, subscription, host):
    assert host.cli("config", "set", "extensions.blocklist", "Microsoft.Azure.Extensions/CustomScript").returncode == 0
    sdk = SDK(portal, subscription)
    body = {"location": "westeurope", "properties": {**CSE, "settings": {"commandToExecute": "echo no"}}}
    with pytest.raises(HttpResponseError) as info:
        sdk.hc.machine_extensions.begin_create_or_update("rg-e2e", "e2e-01", "CustomScript", body).result()
    assert info.value.error.code == "ExtensionOperationFailed"
    assert "blocked on this machine by its extensions.blocklist" in info.value.error.message
    shown = sdk.hc.machine_extensions.get("rg-e2e", "e2e-01", "CustomScript")
    assert shown.properties.provisioning_state == "Failed" and shown.properties.instance_view.status.level == "Error"


def test_an_agent_restarted_mid_run_reports_the_run_unknown(portal, subscription, host):
    sdk = SDK(portal, subscription)
    body = {"location": "westeurope", "properties": {"source": {"script": "sleep 300"}, "timeoutInSeconds": 600}}
    poller = sdk.hc.machine_run_commands.begin_create_or_update("rg-e2e", "e2e-01", "long", body)
    wait_for(lambda: RunCommand.objects.get(name="long").execution_state == "Running", what="Running", host=host)
    state = host.home / "extensions" / "state.json"
    wait_for(lambda: (json.loads(state.read_text()).get("inFlight") or {}).get("pid"), what="the pid", host=host)
    host.stop(signal.SIGKILL)  # killed: no chance to report
    host.start()
    with pytest.raises(HttpResponseError) as info:
        poller.result()
    assert "restarted" in info.value.error.message
    shown = sdk.hc.machine_run_commands.get("rg-e2e", "e2e-01", "long")
    assert shown.properties.instance_view.execution_state == "Unknown"
    assert shown.properties.provisioning_state == "Failed"
