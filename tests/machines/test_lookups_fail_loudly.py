"""A database that does not answer is an error, never "not found" (issue 11): lookups by id turn only a malformed id
into ``None``, and let every database failure through."""

from __future__ import annotations

import uuid

import pytest
from django.db import OperationalError

from machines.selectors import machine_by_vm_id, subscription_get
from tests.dbfaults import database_down

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "lookup",
    [lambda value: subscription_get(subscription_id=value), lambda value: machine_by_vm_id(vm_id=value)],
    ids=["subscription_get", "machine_by_vm_id"],
)
def test_a_database_outage_is_raised_and_a_malformed_id_is_not_found(lookup):
    with database_down():
        assert lookup("not-a-guid") is None  # answered without asking the database
        with pytest.raises(OperationalError):
            lookup(str(uuid.uuid4()))


def test_the_arm_plane_does_not_call_an_outage_a_missing_subscription(client, subscription, admin_user):
    """Before: 404 SubscriptionNotFound while the subscriptions could not be read."""
    from identity.tokens import issue_user_token

    client.raise_request_exception = False
    tenant_id = str(subscription.tenant.tenant_id)
    token = issue_user_token(user=admin_user, tenant_id=tenant_id, issuer="https://t").access_token
    with database_down(tables=("machines_subscription",)):
        response = client.get(
            f"/subscriptions/{subscription.subscription_id}/resourcegroups?api-version=2025-04-01",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
    assert response.status_code == 500
