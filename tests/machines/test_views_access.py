"""The portal obeys role assignments (issue 13): a Reader at one resource group sees only that group's machines,
without write buttons, and gets 403 on any write made by hand; a new user sees nothing until assigned."""

from __future__ import annotations

import pytest

from arcportal import authz
from identity.models import RoleAssignment
from identity.role_assignments import role_assignment_create
from identity.tokens import user_object_id
from machines.models import Machine, MachineTag, ResourceGroup
from tests.machines.factories import MachineFactory, ResourceGroupFactory


@pytest.fixture
def fleet(subscription):
    group_a = ResourceGroupFactory(subscription=subscription, name="rg-a")
    group_b = ResourceGroupFactory(subscription=subscription, name="rg-b")
    return MachineFactory(resource_group=group_a, name="srv-a"), MachineFactory(resource_group=group_b, name="srv-b")


def signed_in(client, django_user_model, *, role: str | None, scope: str = ""):
    user = django_user_model.objects.create_user(username="rita", password="pw-rita-123")
    if role:
        role_assignment_create(
            scope=scope,
            role_definition_id=authz.ROLES_BY_NAME[role].id,
            principal_id=user_object_id(user),
            principal_kind="user",
        )
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_a_reader_sees_its_group_without_write_buttons_and_is_refused_every_write(client, django_user_model, fleet):
    mine, other = fleet
    reader = signed_in(client, django_user_model, role=authz.READER, scope=mine.resource_group.arm_id)

    listing = reader.get("/").content.decode()
    assert "srv-a" in listing and "srv-b" not in listing
    for command in (
        'data-open-dialog="delete-dialog"',
        'data-open-dialog="assign-tags-dialog"',
        'class="cmd" href="/portal/add"',
    ):
        assert command not in listing
    page = reader.get(mine.get_absolute_url())
    assert page.status_code == 200
    assert 'data-open-dialog="delete-machine-dialog"' not in page.content.decode()
    assert "?edit=1" not in reader.get(mine.get_absolute_url("machine-tags")).content.decode()
    assert reader.get(other.get_absolute_url()).status_code == 403
    groups = reader.get("/portal/resourcegroups").content.decode()
    assert "rg-a" in groups and "rg-b" not in groups
    assert "?create=1" not in groups and "/delete" not in groups and "/resourceGroups/rg-a/iam" in groups

    # Writes made by hand: refused, nothing changed.
    tags = reader.post(
        mine.get_absolute_url("machine-tags"),
        {"form-TOTAL_FORMS": "1", "form-INITIAL_FORMS": "0", "form-0-name": "env", "form-0-value": "x"},
    )
    assert tags.status_code == 403
    assert reader.post("/portal/machines/delete", {"machine": [mine.pk], "confirm": "delete"}).status_code == 403
    assert (
        reader.post(
            "/portal/machines/assign-tags", {"machine": [mine.pk], "tag_name": "a", "tag_value": "b"}
        ).status_code
        == 403
    )
    delete_group = (
        f"/portal/subscriptions/{mine.resource_group.subscription.subscription_id}/resourceGroups/rg-a/delete"
    )
    assert reader.post(delete_group, {"confirm_name": "rg-a"}).status_code == 403
    created = reader.post(
        "/portal/resourcegroups",
        {"subscription": mine.resource_group.subscription.pk, "name": "rg-new", "location": "eastus"},
    )
    assert created.status_code in (400, 403)
    assert Machine.objects.count() == 2 and not MachineTag.objects.exists()
    assert set(ResourceGroup.objects.values_list("name", flat=True)) == {"rg-a", "rg-b"}


@pytest.mark.django_db
def test_a_new_user_sees_nothing_until_assigned(client, django_user_model, fleet):
    mine, _ = fleet
    newcomer = signed_in(client, django_user_model, role=None)
    listing = newcomer.get("/").content.decode()
    assert "srv-a" not in listing and "srv-b" not in listing
    assert newcomer.get(mine.get_absolute_url()).status_code == 403


@pytest.mark.django_db
def test_a_contributor_at_the_group_may_write_there(client, django_user_model, fleet):
    mine, other = fleet
    contributor = signed_in(client, django_user_model, role=authz.CONTRIBUTOR, scope=mine.resource_group.arm_id)
    page = contributor.get(mine.get_absolute_url()).content.decode()
    assert 'data-open-dialog="delete-machine-dialog"' in page
    assert contributor.post("/portal/machines/delete", {"machine": [other.pk], "confirm": "delete"}).status_code == 403
    assert Machine.objects.filter(pk=other.pk).exists()


@pytest.mark.django_db
def test_deleting_a_resource_removes_the_assignments_at_and_below_it(client, django_user_model, fleet):
    from machines.services import machine_delete, resource_group_delete

    mine, other = fleet
    rita = signed_in(client, django_user_model, role=authz.READER, scope=mine.arm_id)
    reader_id = authz.ROLES_BY_NAME[authz.READER].id
    for scope in (other.arm_id, other.resource_group.arm_id):
        role_assignment_create(
            scope=scope,
            role_definition_id=reader_id,
            principal_id=user_object_id(_user(rita)),
            principal_kind="user",
        )
    role_assignment_create(
        scope=mine.resource_group.subscription.arm_id,
        role_definition_id=reader_id,
        principal_id=str(other.identity_principal_id),
        principal_kind="machine",
    )
    machine_delete(machine=mine)
    resource_group_delete(resource_group=other.resource_group)
    assert not RoleAssignment.objects.exists()
    again = MachineFactory(
        resource_group=ResourceGroupFactory(subscription=mine.resource_group.subscription, name="rg-b"), name="srv-b"
    )
    assert client.get(again.get_absolute_url()).status_code == 403  # no grant survives under the old name


def _user(client):
    from django.contrib.auth import get_user

    return get_user(client)
