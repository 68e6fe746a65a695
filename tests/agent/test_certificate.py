"""``POST /his/machines/{vmId}/certificate``: proof of possession of the registered key + the registering token."""

from __future__ import annotations

import uuid

import pytest
from azcmagent import identity
from cryptography import x509

from identity.models import Role
from identity.service_principals import service_principal_create
from identity.tokens import issue_app_token
from machines.models import Machine
from machines.services import machine_register, resource_group_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def registered(subscription, tenant):
    group = resource_group_create(subscription=subscription, name="rg", location="westeurope")
    created = service_principal_create(display_name="onboarder", role=Role.ONBOARDING, scope=subscription.arm_id)
    sp = created.service_principal
    key = identity.new_key()
    vm_id = str(uuid.uuid4())
    machine_register(
        resource_group=group,
        name="web-01",
        location="westeurope",
        properties={"vmId": vm_id, "vmUuid": "HW-1", "clientPublicKey": identity.public_key_b64(key)},
        onboarding_method="ServicePrincipal",
        onboarded_by=str(sp.client_id),
    )
    token = issue_app_token(
        service_principal=sp, tenant_id=str(tenant.tenant_id), issuer="https://testserver"
    ).access_token
    return vm_id, key, token, subscription


def _post(client, vm_id, csr, token):
    return client.post(
        f"/his/machines/{vm_id}/certificate",
        data={"csr": csr},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def test_the_registered_key_gets_a_90_day_certificate_and_provisioning_succeeds(client, registered):
    vm_id, key, token, _ = registered
    assert Machine.objects.get(vm_id=vm_id).provisioning_state == "Creating"
    response = _post(client, vm_id, identity.csr_pem(key, vm_id=vm_id), token)
    assert response.status_code == 200, response.content
    cert = x509.load_pem_x509_certificate(response.json()["certificate"].encode())
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days >= 90
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    machine = Machine.objects.get(vm_id=vm_id)
    assert (
        machine.certificate_thumbprint
        == response.json()["thumbprint"]
        == identity.certificate_thumbprint(response.json()["certificate"].encode())
    )
    assert machine.certificate_expires_at == cert.not_valid_after_utc
    assert machine.provisioning_state == "Succeeded"


def test_a_csr_for_another_key_is_refused(client, registered):
    vm_id, _, token, _ = registered
    response = _post(client, vm_id, identity.csr_pem(identity.new_key(), vm_id=vm_id), token)
    assert response.status_code == 400 and response.json()["error"]["code"] == "KeyMismatch"
    assert Machine.objects.get(vm_id=vm_id).certificate_thumbprint == ""


def test_no_token_is_401_and_another_principal_is_403(client, registered, tenant):
    vm_id, key, _, subscription = registered
    csr = identity.csr_pem(key, vm_id=vm_id)
    assert (
        client.post(
            f"/his/machines/{vm_id}/certificate", data={"csr": csr}, content_type="application/json"
        ).status_code
        == 401
    )
    other = service_principal_create(display_name="other", role=Role.ONBOARDING, scope=subscription.arm_id)
    other_token = issue_app_token(
        service_principal=other.service_principal, tenant_id=str(tenant.tenant_id), issuer="https://testserver"
    ).access_token
    response = _post(client, vm_id, csr, other_token)
    assert response.status_code == 403
    assert Machine.objects.get(vm_id=vm_id).certificate_thumbprint == ""


def test_garbage_instead_of_a_csr_is_400(client, registered):
    vm_id, _, token, _ = registered
    response = _post(client, vm_id, "not a csr", token)
    assert response.status_code == 400 and response.json()["error"]["code"] == "InvalidCsr"
