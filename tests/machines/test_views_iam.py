"""Access control (IAM) pages (issue 13): direct and inherited assignments with where they come from, + Add role
assignment (Role → Members → Review + assign), Remove, Check access; only Owners / User Access Administrators
change anything, at every scope shape."""

from __future__ import annotations

import pytest
from django.test import Client

from arcportal import authz
from identity.models import RoleAssignment
from identity.role_assignments import role_assignment_create
from identity.tokens import user_object_id
from tests.machines.factories import MachineFactory, ResourceGroupFactory

READER = authz.ROLES_BY_NAME[authz.READER].id


@pytest.fixture
def machine(subscription):
    return MachineFactory(resource_group=ResourceGroupFactory(subscription=subscription, name="rg-a"), name="srv-a")


@pytest.fixture
def rita(django_user_model):
    return django_user_model.objects.create_user(username="rita", password="pw-rita-123")


def iam_urls(machine):
    sub = machine.resource_group.subscription.subscription_id
    return {
        "subscription": f"/portal/subscriptions/{sub}/iam",
        "group": f"/portal/subscriptions/{sub}/resourceGroups/rg-a/iam",
        "machine": machine.get_absolute_url("machine-iam"),
    }


@pytest.mark.django_db
def test_owner_assigns_through_the_wizard_and_the_reader_sees_it_inherited(portal_client, machine, rita):
    urls = iam_urls(machine)
    oid = user_object_id(rita)
    step1 = portal_client.get(urls["group"], {"add": "1"}).content.decode()
    assert "Azure Connected Machine Resource Administrator" in step1 and "User Access Administrator" in step1
    step2 = portal_client.get(urls["group"], {"add": "1", "role": READER}).content.decode()
    assert oid in step2 and "rita" in step2
    review = portal_client.get(urls["group"], {"add": "1", "role": READER, "member": oid}).content.decode()
    assert "Review + assign" in review
    done = portal_client.post(urls["group"], {"action": "add", "role": READER, "member": oid})
    assert done.status_code == 302
    row = RoleAssignment.objects.get(principal_id=oid)
    assert (row.scope, row.role_definition_id) == (machine.resource_group.arm_id, READER)

    client = Client()  # portal_client stays signed in as the admin
    client.force_login(rita)
    page = client.get(urls["machine"])
    body = page.content.decode()
    assert page.status_code == 200 and "Access control (IAM)" in body
    assert "Resource group (Inherited)" in body and "Reader" in body
    assert "+ Add role assignment" not in body and ">Remove<" not in body
    refused = client.post(urls["machine"], {"action": "add", "role": READER, "member": oid})
    assert refused.status_code == 403
    removal = client.post(urls["group"], {"action": "remove", "assignment": str(row.name)})
    assert removal.status_code == 403
    assert client.get(urls["subscription"]).status_code == 403  # nothing granted at the subscription
    assert RoleAssignment.objects.filter(principal_id=oid).count() == 1

    checked = portal_client.get(urls["machine"], {"check": oid}).content.decode()
    assert "rita</strong>: Reader (Resource group (Inherited))" in checked
    assert portal_client.post(urls["group"], {"action": "remove", "assignment": str(row.name)}).status_code == 302
    assert not RoleAssignment.objects.filter(principal_id=oid).exists()


@pytest.mark.django_db
def test_bad_additions_write_nothing(portal_client, machine, rita):
    urls = iam_urls(machine)
    before = RoleAssignment.objects.count()
    for data in (
        {"action": "add", "role": "not-a-role", "member": user_object_id(rita)},
        {"action": "add", "role": READER, "member": "00000000-0000-0000-0000-000000000000"},
        {"action": "add", "role": READER},
        {"action": "remove", "assignment": "nope"},
    ):
        assert portal_client.post(urls["machine"], data, follow=True).status_code == 200
    role_assignment_create(
        scope=machine.arm_id, role_definition_id=READER, principal_id=user_object_id(rita), principal_kind="user"
    )
    duplicate = portal_client.post(
        urls["machine"], {"action": "add", "role": READER, "member": user_object_id(rita)}, follow=True
    )
    assert "already exists" in duplicate.content.decode()
    assert RoleAssignment.objects.count() == before + 1


@pytest.mark.django_db
def test_a_user_access_administrator_may_assign_but_not_write_machines(client, machine, rita, django_user_model):
    role_assignment_create(
        scope=machine.resource_group.subscription.arm_id,
        role_definition_id=authz.ROLES_BY_NAME[authz.USER_ACCESS_ADMINISTRATOR].id,
        principal_id=user_object_id(rita),
        principal_kind="user",
    )
    other = django_user_model.objects.create_user(username="otto", password="pw-otto-123")
    client.force_login(rita)
    urls = iam_urls(machine)
    assert "+ Add role assignment" in client.get(urls["machine"]).content.decode()
    assert (
        client.post(urls["machine"], {"action": "add", "role": READER, "member": user_object_id(other)}).status_code
        == 302
    )
    assert RoleAssignment.objects.filter(principal_id=user_object_id(other)).exists()
    tags = client.post(machine.get_absolute_url("machine-tags"), {"form-TOTAL_FORMS": "0", "form-INITIAL_FORMS": "0"})
    assert tags.status_code == 403


@pytest.mark.django_db
def test_assigning_and_removing_in_the_portal_are_activity_events_with_the_user(
    portal_client, admin_user, machine, rita
):
    from arcportal.activity.models import ActivityEvent

    group = iam_urls(machine)["group"]
    oid = user_object_id(rita)
    assert portal_client.post(group, {"action": "add", "role": READER, "member": oid}).status_code == 302
    row = RoleAssignment.objects.get(principal_id=oid)
    refused = Client()
    refused.force_login(rita)
    assert refused.post(group, {"action": "remove", "assignment": str(row.name)}).status_code == 403
    assert portal_client.post(group, {"action": "remove", "assignment": str(row.name)}).status_code == 302
    events = ActivityEvent.objects.filter(operation_name__startswith="Microsoft.Authorization/roleAssignments/")
    resource_id = f"{machine.resource_group.arm_id}/providers/Microsoft.Authorization/roleAssignments/{row.name}"
    assert [(e.operation_name.rsplit("/", 1)[1], e.status, e.caller, e.resource_id) for e in events.order_by("id")] == [
        ("write", "Succeeded", admin_user.get_username(), resource_id),
        ("delete", "Succeeded", admin_user.get_username(), resource_id),
    ]
    assert (
        events.first().properties["principalId"] == oid and events.first().properties["roleDefinitionName"] == "Reader"
    )
