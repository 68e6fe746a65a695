"""A database that does not answer is an error, never "not found" (issue 11): the identity lookups turn only a
malformed id into "not found", and the identity endpoints answer an outage as a server error, not ``invalid_tenant``."""

from __future__ import annotations

import uuid

import pytest
from django.db import OperationalError

from identity.selectors import service_principal_get, tenant_get_by_id, tenant_is_known
from tests.dbfaults import database_down

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "lookup",
    [
        lambda value: tenant_get_by_id(tenant_id=value),
        lambda value: service_principal_get(client_id=value),
        lambda value: tenant_is_known(value),
    ],
    ids=["tenant_get_by_id", "service_principal_get", "tenant_is_known"],
)
def test_a_database_outage_is_raised_and_a_malformed_id_is_not_found(lookup):
    with database_down():
        assert lookup("not-a-guid") in (None, False)  # answered without asking the database
        with pytest.raises(OperationalError):
            lookup(str(uuid.uuid4()))


@pytest.mark.parametrize("path", ["v2.0/.well-known/openid-configuration", "discovery/v2.0/keys"])
def test_the_identity_endpoints_do_not_call_an_outage_an_unknown_tenant(client, tenant, path):
    client.raise_request_exception = False
    with database_down():
        response = client.get(f"/{tenant.tenant_id}/{path}")
    assert response.status_code == 500  # before: 400 invalid_tenant
