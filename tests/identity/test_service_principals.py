"""Service principals: create (secret once), authenticate, expiry/revoke/max uses, and the secret never leaking."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from identity.models import Role, ServicePrincipal
from identity.service_principals import (
    InvalidCredentials,
    service_principal_authenticate,
    service_principal_create,
    service_principal_revoke,
)

pytestmark = pytest.mark.django_db


def token_request(client, tenant_id, client_id, secret, **extra):
    data = {
        "client_id": client_id,
        "client_secret": secret,
        "grant_type": "client_credentials",
        "scope": "https://management.azure.com/.default",
        "client_info": "1",
        **extra,
    }
    return client.post(f"/{tenant_id}/oauth2/v2.0/token", data)


def all_database_text() -> str:
    """Every row of every table, as text: a secret stored anywhere in plain text shows up here."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - table names come from introspection
            chunks.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(chunks)


def test_create_stores_only_a_hash_and_returns_the_secret_once(subscription):
    created = service_principal_create(display_name="onboard", role=Role.ONBOARDING, scope=subscription.arm_id)
    principal = ServicePrincipal.objects.get()
    assert len(created.secret) >= 32
    assert principal.secret_hash != created.secret and created.secret not in principal.secret_hash
    assert principal.expires_at - timezone.now() > dt.timedelta(days=364)  # default one year
    assert created.secret not in repr(created)
    assert created.secret not in all_database_text()


def test_create_rejects_bad_role_and_scope(subscription):
    from arcportal.exceptions import Invalid

    with pytest.raises(Invalid):
        service_principal_create(display_name="x", role="God", scope=subscription.arm_id)
    with pytest.raises(Invalid):
        service_principal_create(display_name="x", role=Role.READER, scope="/not/a/scope")
    with pytest.raises(Invalid):
        service_principal_create(
            display_name="x", role=Role.READER, scope=f"{subscription.arm_id}/resourceGroups/rg/providers/x/y/z"
        )
    assert not ServicePrincipal.objects.exists()


def test_scope_is_stored_canonically(subscription):
    created = service_principal_create(
        display_name="x", role=Role.READER, scope=f"{subscription.arm_id}/resourcegroups/My-RG"
    )
    assert created.service_principal.scope == f"{subscription.arm_id}/resourceGroups/My-RG"


def test_command_prints_the_az_ad_sp_create_for_rbac_shape(subscription):
    out = io.StringIO()
    call_command(
        "create_service_principal",
        "--name",
        "fleet",
        "--role",
        "Reader",
        "--scope",
        subscription.arm_id,
        stdout=out,
    )
    printed = json.loads(out.getvalue())
    assert set(printed) == {"appId", "displayName", "password", "tenant"}
    assert printed["displayName"] == "fleet"
    assert printed["tenant"] == str(subscription.tenant.tenant_id)
    principal = ServicePrincipal.objects.get(client_id=printed["appId"])
    assert principal.role == "Reader" and principal.scope == subscription.arm_id
    assert service_principal_authenticate(client_id=printed["appId"], secret=printed["password"]) == principal


def test_authenticate_counts_uses_and_records_last_use(subscription):
    created = service_principal_create(display_name="x", role=Role.OWNER, scope=subscription.arm_id)
    now = timezone.now()
    principal = service_principal_authenticate(
        client_id=str(created.service_principal.client_id), secret=created.secret, now=now
    )
    assert principal.use_count == 1 and principal.last_used_at == now


@pytest.mark.parametrize("case", ["wrong-secret", "unknown-client", "expired", "revoked", "max-uses", "bad-id"])
def test_refused_sign_ins_are_invalid_client(case, subscription, client):
    created = service_principal_create(display_name="x", role=Role.OWNER, scope=subscription.arm_id, max_uses=1)
    principal = created.service_principal
    client_id, secret = str(principal.client_id), created.secret
    if case == "wrong-secret":
        secret = "wrong"
    elif case == "unknown-client":
        client_id = "00000000-0000-0000-0000-000000000001"
    elif case == "bad-id":
        client_id = "not-a-guid"
    elif case == "expired":
        ServicePrincipal.objects.filter(pk=principal.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    elif case == "revoked":
        service_principal_revoke(service_principal=principal)
    elif case == "max-uses":
        service_principal_authenticate(client_id=client_id, secret=secret)
    with pytest.raises(InvalidCredentials):
        service_principal_authenticate(client_id=client_id, secret=secret)
    response = token_request(client, subscription.tenant.tenant_id, client_id, secret)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.json()["error_description"]


def test_revoking_stops_tokens_already_issued(subscription):
    from tests.armclient import ArmClient

    created = service_principal_create(display_name="x", role=Role.OWNER, scope=subscription.arm_id)
    from identity.tokens import issue_app_token

    token = issue_app_token(
        service_principal=created.service_principal, tenant_id=str(subscription.tenant.tenant_id), issuer="x"
    ).access_token
    arm = ArmClient(token)
    path = f"{subscription.arm_id}/resourcegroups?api-version=2025-04-01"
    assert arm.get(path).status_code == 200
    service_principal_revoke(service_principal=created.service_principal)
    response = arm.get(path)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_secret_never_appears_in_logs_database_or_later_responses(subscription, portal_client, caplog):
    caplog.set_level(logging.DEBUG)
    out = io.StringIO()
    call_command("create_service_principal", "--name", "cli", "--scope", subscription.arm_id, stdout=out)
    cli_secret = json.loads(out.getvalue())["password"]
    cli_id = json.loads(out.getvalue())["appId"]

    page = portal_client.post(
        "/portal/serviceprincipals",
        {"display_name": "portal", "role": Role.ONBOARDING, "scope": subscription.arm_id, "expires_in_days": "30"},
    )
    assert page.status_code == 201
    portal_principal = ServicePrincipal.objects.get(display_name="portal")
    portal_secret = page.context["created"].secret
    assert portal_secret in page.content.decode()  # shown once, right here
    assert "no-store" in page["Cache-Control"]

    later = []
    tenant_id = subscription.tenant.tenant_id
    later.append(token_request(portal_client, tenant_id, cli_id, cli_secret))
    later.append(token_request(portal_client, tenant_id, str(portal_principal.client_id), portal_secret))
    later.append(token_request(portal_client, tenant_id, cli_id, cli_secret + "x"))
    assert [r.status_code for r in later] == [200, 200, 401]
    later.append(portal_client.get("/portal/serviceprincipals"))
    later.append(portal_client.post(f"/portal/serviceprincipals/{portal_principal.client_id}/revoke", follow=True))
    later.append(token_request(portal_client, tenant_id, str(portal_principal.client_id), portal_secret))
    assert later[-1].status_code == 401

    for secret in (cli_secret, portal_secret):
        for response in later:
            assert secret not in response.content.decode()
        assert secret not in caplog.text
        assert all(secret not in str(record.args) for record in caplog.records)
        assert secret not in all_database_text()
    assert "service principal" in caplog.text  # the capture did see our log lines


def test_portal_page_lists_principals_with_their_usage_and_the_ca_fingerprint(subscription, portal_client):
    from identity import pki

    created = service_principal_create(
        display_name="fleet-onboarding", role=Role.ONBOARDING, scope=subscription.arm_id, max_uses=5
    )
    service_principal_authenticate(client_id=str(created.service_principal.client_id), secret=created.secret)
    response = portal_client.get("/portal/serviceprincipals")
    html = response.content.decode()
    assert response.status_code == 200
    assert "fleet-onboarding" in html and str(created.service_principal.client_id) in html
    assert "Azure Connected Machine Onboarding" in html and subscription.arm_id in html
    assert "1 of 5" in html
    assert pki.format_fingerprint(pki.ca_fingerprint_sha256()) in html
    assert 'href="/portal/serviceprincipals"' in html and "Additional setup" in html  # nav link
    assert created.secret not in html


def test_portal_page_requires_login(client, subscription):
    response = client.get("/portal/serviceprincipals")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_portal_form_errors_create_nothing(subscription, portal_client):
    form = {"display_name": "", "role": "God", "scope": subscription.arm_id}
    response = portal_client.post("/portal/serviceprincipals", form)
    assert response.status_code == 400
    assert response.context["form"].errors
    # A scope nobody may create at (not a subscription or group) is refused before the form is looked at.
    assert portal_client.post("/portal/serviceprincipals", {**form, "scope": "/x"}).status_code == 403
    assert not ServicePrincipal.objects.exists()
