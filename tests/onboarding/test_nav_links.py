"""The links to + Add and Users show exactly when their page would not refuse the user (403): a Reader sees neither
(sidebar, Machines command bar, empty fleet's button) and is refused both pages; an Owner sees and opens both."""

from __future__ import annotations

import re

import pytest

from arcportal import authz
from identity.role_assignments import role_assignment_create
from identity.tokens import user_object_id
from machines.models import ResourceGroup
from onboarding.models import ScriptGeneration

pytestmark = pytest.mark.django_db

ADD_PAGES = ("/portal/add", "/portal/add/generate", "/portal/add/generate?mode=scale")
GENERATE_AT_SCALE = "/portal/add/generate?mode=scale"
USERS_PAGE = "/portal/users"
SIDEBAR_ADD = 'href="/portal/add"'
SIDEBAR_USERS = f'href="{USERS_PAGE}"'
MACHINES_ADD = ('class="cmd" href="/portal/add"', 'class="btn btn-primary" href="/portal/add"')
# Role (at the subscription) → (may open + Add, may open Users).
EXPECTED = {
    authz.OWNER: (True, True),
    authz.CONTRIBUTOR: (True, False),
    authz.READER: (False, False),
    authz.ONBOARDING: (True, False),
    authz.RESOURCE_ADMINISTRATOR: (True, False),
    authz.USER_ACCESS_ADMINISTRATOR: (False, True),
    None: (False, False),
}


def signed_in(client, django_user_model, subscription, role: str | None):
    user = django_user_model.objects.create_user(username="rita", password="pw-rita-123")
    if role:
        role_assignment_create(
            scope=subscription.arm_id,
            role_definition_id=authz.ROLES_BY_NAME[role].id,
            principal_id=user_object_id(user),
            principal_kind="user",
        )
    client.force_login(user)
    return client


def generate_form(subscription) -> dict:
    """The wizard's last POST: a new resource group and a new service principal (an Owner's creates both)."""
    return {
        "step": "tags",
        "action": "generate",
        "subscription": str(subscription.subscription_id),
        "resource_group_mode": "new",
        "new_resource_group": "rg-new",
        "location": "westeurope",
        "os": "linux",
        "connectivity": "public",
        "sp_mode": "new",
        "new_service_principal_name": "sp-new",
    }


def sidebar(html: str) -> str:
    match = re.search(r'<nav class="sidenav".*?</nav>', html, re.S)
    assert match, "no sidebar on the page"
    return match.group(0)


def test_a_reader_sees_neither_link_and_is_refused_both_pages(client, django_user_model, subscription):
    reader = signed_in(client, django_user_model, subscription, authz.READER)
    listing = reader.get("/").content.decode()
    assert SIDEBAR_ADD not in sidebar(listing) and SIDEBAR_USERS not in sidebar(listing)
    assert "Machines</a>" in sidebar(listing)  # the sidebar itself is there
    for command in MACHINES_ADD:
        assert command not in listing
    for page in ADD_PAGES:
        refused = reader.get(page)
        assert refused.status_code == 403, page
        assert SIDEBAR_ADD not in sidebar(refused.content.decode())  # not even on the 403 page
    assert reader.get(USERS_PAGE).status_code == 403


def test_a_reader_cannot_generate_a_script_by_hand(client, django_user_model, subscription):
    reader = signed_in(client, django_user_model, subscription, authz.READER)
    assert reader.post(GENERATE_AT_SCALE, generate_form(subscription)).status_code == 403
    assert not ResourceGroup.objects.filter(name="rg-new").exists()
    assert not ScriptGeneration.objects.exists()


def test_an_owner_sees_both_links_and_opens_both_pages(portal_client, subscription):
    listing = portal_client.get("/").content.decode()
    assert SIDEBAR_ADD in sidebar(listing) and SIDEBAR_USERS in sidebar(listing)
    assert any(command in listing for command in MACHINES_ADD)
    for page in (*ADD_PAGES, USERS_PAGE):
        opened = portal_client.get(page)
        assert opened.status_code == 200, page
        assert SIDEBAR_ADD in sidebar(opened.content.decode()) and SIDEBAR_USERS in sidebar(opened.content.decode())
    assert portal_client.post(GENERATE_AT_SCALE, generate_form(subscription)).status_code == 200
    assert ResourceGroup.objects.filter(name="rg-new").exists() and ScriptGeneration.objects.count() == 1


@pytest.mark.parametrize("role", list(EXPECTED), ids=lambda role: role or "no-role")
def test_each_link_shows_exactly_when_its_page_answers(client, django_user_model, subscription, role):
    user = signed_in(client, django_user_model, subscription, role)
    may_add, may_users = EXPECTED[role]
    listing = user.get("/").content.decode()
    nav = sidebar(listing)
    assert (SIDEBAR_ADD in nav, SIDEBAR_USERS in nav) == (may_add, may_users)
    assert any(command in listing for command in MACHINES_ADD) == may_add
    for page in ADD_PAGES:
        assert user.get(page).status_code == (200 if may_add else 403), page
    assert user.get(USERS_PAGE).status_code == (200 if may_users else 403)
