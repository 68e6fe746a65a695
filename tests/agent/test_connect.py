"""``azcmagent connect`` as a real subprocess against the portal over TLS (tls_live_server)."""

from __future__ import annotations

import json
import re
import stat
import time
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from machines.models import Machine, MachineStatusEvent
from tests.agent.conftest import connect_args

pytestmark = pytest.mark.integration


def _sp_args(sp, secret):
    return ["--service-principal-id", str(sp.client_id), "--service-principal-secret", secret]


def _arm_token(server, tenant, sp, secret) -> str:
    response = httpx.post(
        f"{server.url}/{tenant.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": str(sp.client_id),
            "client_secret": secret,
            "scope": "https://management.azure.com/.default",
        },
        verify=server.ca_file,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def test_connect_with_a_service_principal_onboards_and_connects(
    tls_live_server, make_agent, make_service_principal, subscription, tenant, resource_group
):
    sp, secret = make_service_principal()
    agent = make_agent(AZCMAGENT_NO_SERVICE="1")
    correlation_id = "0f6b2c3e-1a2b-4c5d-8e9f-0a1b2c3d4e5f"
    tags = "Datacenter=CH01,City=Baar,Owner='Shared Infrastructure Services'"
    result = agent.run(
        *connect_args(subscription, tenant, extra=_sp_args(sp, secret)),
        "--tags",
        tags,
        "--correlation-id",
        correlation_id,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Successfully Onboarded Resource to Azure" in result.stdout
    vm_id = re.search(r'msg="Successfully Onboarded Resource to Azure" VM Id=([0-9a-f-]{36})', result.stdout).group(1)

    machine = Machine.objects.get(resource_group=resource_group, name="web-01")
    assert str(machine.vm_id) == vm_id
    assert machine.vm_uuid == agent.vm_uuid
    assert machine.status == "Connected" and machine.last_heartbeat_at is not None
    assert machine.provisioning_state == "Succeeded"
    assert machine.onboarded_by == str(sp.client_id)
    assert machine.correlation_id == correlation_id
    assert machine.agent_version == "1.50.0" and machine.os_name == "linux"
    assert machine.certificate_expires_at - timezone.now() > timedelta(days=89)
    assert {t.key: t.value for t in machine.tag_set.all()} == {
        "Datacenter": "CH01",
        "City": "Baar",
        "Owner": "Shared Infrastructure Services",
    }
    assert MachineStatusEvent.objects.filter(machine=machine, to_status="Connected").count() == 1

    agentconfig = json.loads((agent.home / "agentconfig.json").read_text())
    assert agentconfig["certificateThumbprint"] == machine.certificate_thumbprint
    assert agentconfig["vmId"] == vm_id and agentconfig["resourceGroup"] == "arc-servers"
    assert agentconfig["tenantId"] == str(tenant.tenant_id) and agentconfig["portalUrl"] == tls_live_server.url
    # For HIMDS: the machine identity the portal assigned, and the tags (metadata while the portal is unreachable).
    assert agentconfig["identityPrincipalId"] == str(machine.identity_principal_id)
    assert agentconfig["tags"] == {"Datacenter": "CH01", "City": "Baar", "Owner": "Shared Infrastructure Services"}
    assert stat.S_IMODE((agent.home / "certs" / "machine.key").stat().st_mode) == 0o600

    token = _arm_token(tls_live_server, tenant, sp, secret)
    arm = httpx.get(
        f"{tls_live_server.url}/subscriptions/{subscription.subscription_id}/resourceGroups/arc-servers"
        "/providers/Microsoft.HybridCompute/machines/web-01?api-version=2024-07-10",
        headers={"Authorization": f"Bearer {token}"},
        verify=tls_live_server.ca_file,
    )
    assert arm.status_code == 200, arm.text
    assert arm.json()["properties"]["status"] == "Connected"
    assert arm.json()["properties"]["vmId"] == vm_id

    show = agent.run("show")
    assert show.returncode == 0
    assert re.search(r"^Agent Status\s+: Connected$", show.stdout, re.MULTILINE), show.stdout
    assert re.search(rf"^VM ID\s+: {vm_id}$", show.stdout, re.MULTILINE)
    shown = json.loads(agent.run("show", "-j").stdout)
    assert shown["status"] == "Connected" and shown["resourceName"] == "web-01"


def test_connect_again_on_an_onboarded_machine_exits_67(
    make_agent, make_service_principal, subscription, tenant, resource_group
):
    sp, secret = make_service_principal()
    agent = make_agent(AZCMAGENT_NO_SERVICE="1")
    assert agent.run(*connect_args(subscription, tenant, extra=_sp_args(sp, secret))).returncode == 0
    again = agent.run(*connect_args(subscription, tenant, extra=_sp_args(sp, secret)))
    assert again.returncode == 67
    assert "AZCM0067" in again.stdout
    assert Machine.objects.count() == 1


def test_a_second_host_under_an_existing_name_exits_44(
    make_agent, make_service_principal, subscription, tenant, resource_group
):
    sp, secret = make_service_principal()
    first, second = make_agent(AZCMAGENT_NO_SERVICE="1"), make_agent(AZCMAGENT_NO_SERVICE="1")
    assert first.run(*connect_args(subscription, tenant, extra=_sp_args(sp, secret))).returncode == 0
    before = Machine.objects.values().get()
    result = second.run(*connect_args(subscription, tenant, extra=_sp_args(sp, secret)))
    assert result.returncode == 44, result.stdout + result.stderr
    assert "AZCM0044" in result.stdout and "ResourceExists" in result.stdout + result.stderr
    assert Machine.objects.values().get() == before
    assert not (second.home / "agentconfig.json").exists()


def test_the_same_hardware_reattaches_after_a_local_disconnect_keeping_history(
    make_agent, make_service_principal, subscription, tenant, resource_group
):
    sp, secret = make_service_principal()
    agent = make_agent(AZCMAGENT_NO_SERVICE="1")
    assert agent.run(*connect_args(subscription, tenant, extra=_sp_args(sp, secret))).returncode == 0
    machine = Machine.objects.get()
    old_vm_id, old_thumbprint = machine.vm_id, machine.certificate_thumbprint
    events_before = list(MachineStatusEvent.objects.filter(machine=machine).values_list("pk", flat=True))
    assert events_before

    local = agent.run("disconnect", "--force-local-only")
    assert local.returncode == 0, local.stdout + local.stderr
    assert not (agent.home / "agentconfig.json").exists()
    assert Machine.objects.filter(pk=machine.pk).exists()  # only local

    again = agent.run(*connect_args(subscription, tenant, extra=_sp_args(sp, secret)))
    assert again.returncode == 0, again.stdout + again.stderr
    machine.refresh_from_db()
    assert Machine.objects.count() == 1
    assert machine.vm_id != old_vm_id and machine.certificate_thumbprint != old_thumbprint
    assert set(events_before) <= set(MachineStatusEvent.objects.filter(machine=machine).values_list("pk", flat=True))
    agentconfig = json.loads((agent.home / "agentconfig.json").read_text())
    assert agentconfig["vmId"] == str(machine.vm_id)


def test_another_host_claiming_the_same_hardware_id_cannot_take_the_machine_over(
    make_agent, make_service_principal, subscription, tenant, resource_group
):
    """Issue 10 item 5: the vmUuid is readable through ARM, so it proves nothing; the machine key does."""
    sp, secret = make_service_principal()
    first = make_agent(AZCMAGENT_NO_SERVICE="1")
    assert first.run(*connect_args(subscription, tenant, extra=_sp_args(sp, secret))).returncode == 0
    before = Machine.objects.values().get()
    intruder = make_agent(vm_uuid=first.vm_uuid, AZCMAGENT_NO_SERVICE="1")  # same SMBIOS UUID, no key
    result = intruder.run(*connect_args(subscription, tenant, extra=_sp_args(sp, secret)))
    assert result.returncode == 44, result.stdout + result.stderr
    assert "AZCM0044" in result.stdout and "ResourceExists" in result.stdout + result.stderr
    assert Machine.objects.values().get() == before
    assert not (intruder.home / "agentconfig.json").exists()


def test_connect_again_after_an_interrupted_connect_proves_the_key_it_kept(
    make_agent, make_service_principal, subscription, tenant, resource_group
):
    """The ARM resource was created but the local configuration was not written (a crash, a failed certificate
    request): the key on disk is the current key of the machine, so connect re-attaches with a proof."""
    sp, secret = make_service_principal()
    agent = make_agent(AZCMAGENT_NO_SERVICE="1")
    assert agent.run(*connect_args(subscription, tenant, extra=_sp_args(sp, secret))).returncode == 0
    machine = Machine.objects.get()
    (agent.home / "agentconfig.json").unlink()
    again = agent.run(*connect_args(subscription, tenant, extra=_sp_args(sp, secret)))
    assert again.returncode == 0, again.stdout + again.stderr
    reattached = Machine.objects.get()
    assert reattached.pk == machine.pk and reattached.client_public_key != machine.client_public_key
    assert reattached.status == "Connected" and reattached.provisioning_state == "Succeeded"


def test_disconnect_deletes_the_resource_and_the_local_identity(
    make_agent, make_service_principal, subscription, tenant, resource_group
):
    from identity.models import Role

    sp, secret = make_service_principal()
    agent = make_agent(AZCMAGENT_NO_SERVICE="1")
    assert agent.run(*connect_args(subscription, tenant, extra=_sp_args(sp, secret))).returncode == 0

    # The onboarding role may create machines but not delete them (as in Azure): exit 43, nothing removed.
    refused = agent.run("disconnect", *_sp_args(sp, secret))
    assert refused.returncode == 43 and "AZCM0043" in refused.stdout and "AuthorizationFailed" in refused.stderr
    assert Machine.objects.exists() and (agent.home / "agentconfig.json").exists()

    admin_sp, admin_secret = make_service_principal(display_name="Arc admin", role=Role.CONTRIBUTOR)
    result = agent.run("disconnect", *_sp_args(admin_sp, admin_secret))
    assert result.returncode == 0, result.stdout + result.stderr
    assert not Machine.objects.exists()
    assert not (agent.home / "agentconfig.json").exists() and not (agent.home / "certs" / "machine.key").exists()
    show = agent.run("show")
    assert re.search(r"^Agent Status\s+: Disconnected$", show.stdout, re.MULTILINE)


def test_a_secret_that_starts_with_a_dash_is_taken_as_the_value(make_agent, subscription, tenant):
    agent = make_agent(AZCMAGENT_NO_SERVICE="1")
    result = agent.run(*connect_args(subscription, tenant), "-i", str(tenant.tenant_id), "-p", "-starts-with-dash")
    # Parsed (no AZCM0023); the portal refuses the unknown client instead.
    assert result.returncode == 41, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("case", "expected_code"),
    [("expired", 41), ("revoked", 41), ("over_max_uses", 41), ("wrong_scope", 42)],
)
def test_an_unusable_service_principal_fails_with_a_clear_message_and_creates_nothing(
    case, expected_code, make_agent, make_service_principal, subscription, tenant, resource_group
):
    from identity.service_principals import service_principal_authenticate, service_principal_revoke
    from machines.services import resource_group_create

    if case == "expired":
        sp, secret = make_service_principal(
            expires_at=timezone.now() - timedelta(days=1), now=timezone.now() - timedelta(days=2)
        )
    elif case == "revoked":
        sp, secret = make_service_principal()
        service_principal_revoke(service_principal=sp)
    elif case == "over_max_uses":
        sp, secret = make_service_principal(max_uses=1)
        service_principal_authenticate(client_id=str(sp.client_id), secret=secret)
    else:
        other = resource_group_create(subscription=subscription, name="other-rg", location="westeurope")
        sp, secret = make_service_principal(scope=other.arm_id)
    agent = make_agent(AZCMAGENT_NO_SERVICE="1")
    result = agent.run(*connect_args(subscription, tenant, extra=_sp_args(sp, secret)))
    assert result.returncode == expected_code, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert f"AZCM00{expected_code}" in output
    if expected_code == 41:
        assert str(sp.client_id) in output and "invalid_client" in output
    else:
        assert "AuthorizationFailed" in output
    assert not Machine.objects.exists()
    assert not (agent.home / "agentconfig.json").exists()


def test_bad_arguments_exit_23_and_an_unknown_region_exits_20(make_agent, subscription, tenant):
    agent = make_agent()
    missing = agent.run("connect", "--resource-group", "rg")
    assert missing.returncode == 23 and "AZCM0023" in missing.stdout
    args = connect_args(subscription, tenant)
    args[args.index("westeurope")] = "atlantis"
    region = agent.run(*args)
    assert region.returncode == 20 and "AZCM0020" in region.stdout
    bad_tags = agent.run(*connect_args(subscription, tenant), "--tags", "Owner='unterminated")
    assert bad_tags.returncode == 23


def test_the_service_stops_with_a_clear_log_line_when_the_machine_is_deleted(
    settings, db_lock, make_agent, make_service_principal, subscription, tenant, resource_group
):
    from machines.services import machine_delete

    settings.ARC_HEARTBEAT_INTERVAL_SECONDS = 1
    sp, secret = make_service_principal()
    agent = make_agent()
    assert agent.run(*connect_args(subscription, tenant, extra=_sp_args(sp, secret))).returncode == 0
    pid = agent.service_pid()
    assert pid is not None
    with db_lock:
        machine = Machine.objects.get()
    first_beat = machine.last_heartbeat_at
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with db_lock:
            machine.refresh_from_db()
        if machine.last_heartbeat_at > first_beat:
            break
        time.sleep(0.2)
    assert machine.last_heartbeat_at > first_beat, "the background service sends heartbeats"

    with db_lock:
        machine_delete(machine=machine)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and agent.service_pid() is not None:
        time.sleep(0.2)
    assert agent.service_pid() is None, "the service stopped and removed its pid file"
    log = (agent.home / "log" / "himds.log").read_text()
    assert "The machine was deleted from Azure Arc (HTTP 410 MachineDeleted)" in log
    assert "Stopping the agent service" in log


def test_connect_with_an_access_token(make_agent, subscription, tenant, resource_group, admin_user):
    from identity.tokens import issue_user_token

    token = issue_user_token(user=admin_user, tenant_id=str(tenant.tenant_id), issuer="https://test").access_token
    agent = make_agent(AZCMAGENT_NO_SERVICE="1")
    result = agent.run(*connect_args(subscription, tenant, extra=["--access-token", token]))
    assert result.returncode == 0, result.stdout + result.stderr
    machine = Machine.objects.get()
    assert machine.onboarded_by == "admin" and machine.status == "Connected"
    assert json.loads((agent.home / "agentconfig.json").read_text())["authType"] == "token"


def test_an_invalid_access_token_exits_41(make_agent, subscription, tenant, resource_group):
    agent = make_agent(AZCMAGENT_NO_SERVICE="1")
    result = agent.run(*connect_args(subscription, tenant, extra=["--access-token", "not-a-token"]))
    assert result.returncode == 41, result.stdout + result.stderr
    assert not Machine.objects.exists()
