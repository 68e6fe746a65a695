"""Operations of every plane are activity events (issue 13): sign-ins of service principals at the token endpoint
(success and failure, with the app id and address), portal writes with the user and the request's correlation id,
and a portal delete refused by a lock (409, nothing deleted, no event)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from arcportal.activity.models import ActivityEvent
from identity.models import ServicePrincipal
from identity.service_principals import service_principal_create
from machines.locks.services import lock_create_or_update
from machines.models import Machine, ResourceGroup
from tests.machines.factories import MachineFactory, ResourceGroupFactory

pytestmark = pytest.mark.django_db


def _token(client, tenant_id, client_id, secret):
    return client.post(
        f"/{tenant_id}/oauth2/v2.0/token",
        {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        REMOTE_ADDR="198.51.100.9",
    )


def test_client_credentials_sign_ins_are_events_with_the_app_id(client, subscription):
    created = service_principal_create(display_name="ci", role="Reader", scope=subscription.arm_id)
    app_id, tenant_id = str(created.service_principal.client_id), str(subscription.tenant.tenant_id)
    assert _token(client, tenant_id, app_id, created.secret).status_code == 200
    assert _token(client, tenant_id, app_id, "wrong").status_code == 401
    signins = ActivityEvent.objects.filter(operation_name__endswith="signIn/action").order_by("id")
    assert [(e.status, e.caller, e.caller_ip) for e in signins] == [
        ("Succeeded", app_id, "198.51.100.9"),
        ("Failed", app_id, "198.51.100.9"),
    ]
    assert signins[1].error["code"] == "InvalidClient" and signins[0].correlation_id
    assert ServicePrincipal.objects.get(client_id=app_id).use_count == 1
    assert ActivityEvent.objects.filter(operation_name="Microsoft.Identity/servicePrincipals/write").exists()


def test_portal_delete_is_recorded_with_the_user_and_correlation_id(portal_client, admin_user, subscription):
    group = ResourceGroupFactory(subscription=subscription, name="rg-web")
    machine = MachineFactory(resource_group=group, name="web-1")
    response = portal_client.post(
        reverse("machines:machine-delete"),
        {"machine": [machine.pk], "confirm": "delete"},
        HTTP_X_MS_CORRELATION_REQUEST_ID="portal-corr-1",
    )
    assert response.status_code == 302 and response["x-ms-correlation-request-id"] == "portal-corr-1"
    event = ActivityEvent.objects.get(operation_name="Microsoft.HybridCompute/machines/delete")
    assert (event.caller, event.correlation_id, event.resource_id) == (
        admin_user.get_username(),
        "portal-corr-1",
        machine.arm_id,
    )


def test_portal_deletes_refused_by_a_lock_delete_nothing(portal_client, subscription):
    group = ResourceGroupFactory(subscription=subscription, name="rg-web")
    machine = MachineFactory(resource_group=group, name="web-1")
    lock_create_or_update(scope=group.arm_id, name="no-delete", level="CanNotDelete")
    refused = portal_client.post(reverse("machines:machine-delete"), {"machine": [machine.pk], "confirm": "delete"})
    assert refused.status_code == 400 and "no-delete" in refused.content.decode()
    url = reverse("machines:resource-group-delete", args=[subscription.subscription_id, group.name])
    refused_group = portal_client.post(url, {"confirm_name": "rg-web"})
    assert refused_group.status_code == 409 and "no-delete" in refused_group.content.decode()
    assert Machine.objects.count() == 1 and ResourceGroup.objects.count() == 1
    assert not ActivityEvent.objects.filter(operation_name__endswith="/delete").exists()
