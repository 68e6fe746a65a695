"""Portal users and role assignments (issue 13): the bootstrap admin is Owner at subscription scope; a new user —
from ``manage.py createuser`` or the Users page (Owners / User Access Administrators only) — has no access until a
role is assigned."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from arcportal import authz
from identity.models import RoleAssignment
from identity.role_assignments import role_assignment_create, role_grants_for
from identity.tokens import user_object_id
from machines.models import Subscription


@pytest.mark.django_db
def test_bootstrap_makes_the_admin_owner_of_the_subscription(monkeypatch, tmp_path, settings):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "correct horse battery")
    from identity import pki

    monkeypatch.setattr(pki, "ensure_pki", lambda: [])
    call_command("bootstrap", stdout=io.StringIO())
    call_command("bootstrap", stdout=io.StringIO())  # again: nothing doubles
    admin = get_user_model().objects.get(username="admin")
    subscription = Subscription.objects.get()
    assert role_grants_for(principal_id=user_object_id(admin)) == (
        authz.Grant(authz.ROLES_BY_NAME[authz.OWNER].id, subscription.arm_id),
    )


@pytest.mark.django_db
def test_createuser_makes_a_user_without_access():
    out = io.StringIO()
    call_command("createuser", "nina", stdout=out)
    user = get_user_model().objects.get(username="nina")
    assert "no access until a role is assigned" in out.getvalue() and "Password: " in out.getvalue()
    assert role_grants_for(principal_id=user_object_id(user)) == ()
    with pytest.raises(CommandError, match="already exists"):
        call_command("createuser", "NINA", stdout=io.StringIO())


@pytest.mark.django_db
def test_users_page_is_for_owners_and_user_access_administrators(
    portal_client, client, django_user_model, subscription
):
    page = portal_client.get("/portal/users")
    assert page.status_code == 200 and "admin" in page.content.decode()
    created = portal_client.post("/portal/users", {"username": "otto", "password": ""})
    assert created.status_code == 201 and "shown once" in created.content.decode()
    otto = django_user_model.objects.get(username="otto")
    assert not RoleAssignment.objects.filter(principal_id=user_object_id(otto)).exists()
    assert portal_client.post("/portal/users", {"username": "otto"}).status_code == 400
    assert portal_client.post("/portal/users", {"username": "bad name"}).status_code == 400

    reader = django_user_model.objects.create_user(username="rita", password="pw-rita-123")
    role_assignment_create(
        scope=subscription.arm_id,
        role_definition_id=authz.ROLES_BY_NAME[authz.READER].id,
        principal_id=user_object_id(reader),
        principal_kind="user",
    )
    from django.test import Client

    other = Client()
    other.force_login(reader)
    assert other.get("/portal/users").status_code == 403
    assert other.post("/portal/users", {"username": "eve"}).status_code == 403
    assert not django_user_model.objects.filter(username="eve").exists()
