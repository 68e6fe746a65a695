"""An installation made before the identity app existed migrates forward without losing a row (issue 11).

The database is taken back to the state of today's ``main`` before the move (machines 0007, onboarding 0001, no
identity app), filled through the historical models of that state — a tenant, a subscription, a resource group, a
machine with tags, an extension and a status event, a webhook delivery, a heartbeat nonce, a service principal, a
device code, a generated script and a failure report — then migrated forward to the current leaves. Every row is
found again, field by field, through today's models (``identity.Tenant``, ``identity.ServicePrincipal``, …). The
move is a change of Django state only: the tables and their foreign keys stay (``db_table`` = the old names).
"""

from __future__ import annotations

import datetime as dt
import io
import uuid

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

PRE_MOVE = [("machines", "0007_heartbeatnonce_in_fallback"), ("onboarding", "0001_initial"), ("identity", None)]
AT = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def pre_move_database(transactional_db):
    """The test database at the pre-move state; migrated forward to the leaves again whatever happens."""
    executor = MigrationExecutor(connection)
    executor.migrate(PRE_MOVE)
    old_apps = MigrationExecutor(connection).loader.project_state([n for n in PRE_MOVE if n[1]]).apps
    try:
        yield old_apps
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def _fill(old) -> dict:
    """Rows of every kind the move touches, written through the historical models of the pre-move state."""
    user = old.get_model("auth", "User").objects.create(username="alice", password="!")
    tenant = old.get_model("machines", "Tenant").objects.create(tenant_id=uuid.uuid4(), display_name="Contoso")
    subscription = old.get_model("machines", "Subscription").objects.create(tenant=tenant, display_name="Prod")
    group = old.get_model("machines", "ResourceGroup").objects.create(
        subscription=subscription, name="rg-upgrade", location="westeurope", tags={"env": "prod"}
    )
    machine = old.get_model("machines", "Machine").objects.create(
        resource_group=group,
        name="srv-01",
        location="westeurope",
        vm_id=uuid.uuid4(),
        client_public_key="MIIB-key",
        certificate_thumbprint="AB" * 20,
        status="Connected",
        last_heartbeat_at=AT,
        last_status_change=AT,
        correlation_id="corr-1",
        onboarding_method="ServicePrincipal",
    )
    old.get_model("machines", "MachineTag").objects.create(machine=machine, key="Datacenter", value="CH01")
    old.get_model("machines", "Extension").objects.create(
        machine=machine, name="CustomScript", location="westeurope", publisher="Microsoft.Azure.Extensions"
    )
    event = old.get_model("machines", "MachineStatusEvent").objects.create(
        machine=machine, from_status="AwaitingConnection", to_status="Connected", at=AT, reason="Heartbeat"
    )
    webhook = old.get_model("machines", "Webhook").objects.create(
        subscription=subscription, url="https://hooks.test/x", secret_encrypted="cipher"
    )
    old.get_model("machines", "WebhookDelivery").objects.create(webhook=webhook, event=event, payload={"id": 1})
    old.get_model("machines", "HeartbeatNonce").objects.create(key="vm:jti", expires_at=AT)
    principal = old.get_model("onboarding", "ServicePrincipal").objects.create(
        display_name="onboarder",
        secret_hash="pbkdf2_sha256$1$salt$hash",
        role="Azure Connected Machine Onboarding",
        scope=f"/subscriptions/{subscription.subscription_id}/resourceGroups/rg-upgrade",
        expires_at=AT + dt.timedelta(days=365),
        max_uses=10,
        use_count=3,
        created_by=user,
    )
    device_code = old.get_model("onboarding", "DeviceCode").objects.create(
        device_code_hash="f" * 64,
        user_code="WDJH-MJHT",
        client_id="azcmagent",
        state="approved",
        expires_at=AT + dt.timedelta(minutes=15),
        machine_name="srv-01",
        resource_group="rg-upgrade",
        subscription_id=str(subscription.subscription_id),
        requesting_ip="192.0.2.7",
        decided_by=user,
        decided_at=AT,
    )
    script = old.get_model("onboarding", "ScriptGeneration").objects.create(
        created_by=user, created_by_name="alice", os="linux", auth_type="principal", options={"a": 1}
    )
    failure = old.get_model("onboarding", "OnboardingFailure").objects.create(
        correlation_id=str(script.correlation_id), operation="onboarding", message_type="Error", payload={"x": 1}
    )
    return {
        "user": user.pk,
        "tenant": (tenant.pk, tenant.tenant_id),
        "subscription": subscription.pk,
        "group": group.pk,
        "machine": (machine.pk, machine.vm_id),
        "principal": (principal.pk, principal.client_id, principal.object_id),
        "device_code": device_code.pk,
        "script": script.correlation_id,
        "failure": failure.pk,
    }


def test_a_pre_move_database_migrates_forward_and_keeps_every_row(pre_move_database):
    ids = _fill(pre_move_database)
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    from django.contrib.auth import get_user_model

    from identity.models import DeviceCode, ServicePrincipal, Tenant
    from machines.models import Extension, HeartbeatNonce, Machine, MachineStatusEvent, Subscription, WebhookDelivery
    from onboarding.models import OnboardingFailure, ScriptGeneration

    tenant = Tenant.objects.get()
    assert (tenant.pk, tenant.tenant_id, tenant.display_name) == (*ids["tenant"], "Contoso")
    subscription = Subscription.objects.select_related("tenant").get()
    assert subscription.pk == ids["subscription"] and subscription.tenant == tenant  # the FK now names identity's
    machine = Machine.objects.select_related("resource_group__subscription__tenant").get()
    assert (machine.pk, machine.vm_id, machine.status, machine.last_heartbeat_at) == (*ids["machine"], "Connected", AT)
    assert machine.resource_group.pk == ids["group"] and machine.resource_group.tags == {"env": "prod"}
    assert machine.resource_group.subscription.tenant == tenant
    assert {(t.key, t.value) for t in machine.tag_set.all()} == {("Datacenter", "CH01")}
    assert Extension.objects.get().machine == machine
    event = MachineStatusEvent.objects.get()
    assert (event.machine, event.from_status, event.to_status, event.at) == (
        machine,
        "AwaitingConnection",
        "Connected",
        AT,
    )
    assert WebhookDelivery.objects.get().event == event
    assert HeartbeatNonce.objects.get().key == "vm:jti"
    user = get_user_model().objects.get(pk=ids["user"])
    principal = ServicePrincipal.objects.get()
    assert (principal.pk, principal.client_id, principal.object_id) == ids["principal"]
    assert (principal.role, principal.max_uses, principal.use_count, principal.created_by) == (
        "Azure Connected Machine Onboarding",
        10,
        3,
        user,
    )
    assert principal.scope.endswith("/resourceGroups/rg-upgrade")
    code = DeviceCode.objects.get()
    assert (code.pk, code.user_code, code.state, code.decided_by, code.machine_name) == (
        ids["device_code"],
        "WDJH-MJHT",
        "approved",
        user,
        "srv-01",
    )
    assert ScriptGeneration.objects.get().correlation_id == ids["script"]
    assert OnboardingFailure.objects.get().pk == ids["failure"]


def test_the_foreign_key_to_the_tenant_still_holds_in_the_database(transactional_db):
    """State moved, the table and its constraint did not: a subscription can't point at a tenant that isn't there."""
    from identity.models import Tenant
    from machines.models import Subscription

    tenant = Tenant.objects.create()
    with pytest.raises(IntegrityError), transaction.atomic():
        Subscription.objects.create(tenant_id=tenant.pk + 1000, display_name="orphan")
    assert Tenant._meta.db_table == "machines_tenant"


def test_the_migrations_describe_the_models_exactly(db):
    """No pending change: the state-only moves leave Django's migration state equal to the models."""
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()
