"""The Service principals page decides per scope with ``arcportal.authz``, as Azure would: it lists the principals
whose scope the user may read role assignments at (any other one is 404); its scope dropdown offers the scopes where
the user may create one (write + ``roleAssignments/write``); Revoke shows where the user may revoke one (write +
``roleAssignments/delete``) — so a Contributor cannot cut off a principal an Owner made. A forged POST is refused
(403, or 400 / 404 as told) and writes nothing."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.test import Client

from arcportal import authz
from arcportal.activity.models import ActivityEvent
from identity.models import Role, RoleAssignment, ServicePrincipal
from identity.role_assignments import role_assignment_create
from identity.service_principals import SP_REVOKE, service_principal_create
from identity.tokens import user_object_id
from machines.models import Subscription
from machines.services import resource_group_create

pytestmark = pytest.mark.django_db

SP_PAGE = "/portal/serviceprincipals"
GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture
def world(tenant, subscription):
    """A subscription with rg-a and rg-b, another subscription with rg-other, and one principal at each scope."""
    rg_a = resource_group_create(subscription=subscription, name="rg-a", location="westeurope")
    rg_b = resource_group_create(subscription=subscription, name="rg-b", location="westeurope")
    other = Subscription.objects.create(tenant=tenant, display_name="Other Subscription")
    rg_other = resource_group_create(subscription=other, name="rg-other", location="westeurope")
    scopes = {
        "sub": subscription.arm_id,
        "rg-a": rg_a.arm_id,
        "rg-b": rg_b.arm_id,
        "other": other.arm_id,
        "rg-other": rg_other.arm_id,
    }
    principals = {
        key: service_principal_create(display_name=f"sp-{key}", role=Role.ONBOARDING, scope=scope).service_principal
        for key, scope in scopes.items()
        if key != "other"
    }
    return {"scopes": scopes, "principals": principals}


def signed_in(django_user_model, name: str, *grants: tuple[str, str]) -> Client:
    """A portal client of a new user holding ``(role, scope)`` grants."""
    user = django_user_model.objects.create_user(username=name, password=f"pw-{name}-123")
    for role, scope in grants:
        role_assignment_create(
            scope=scope,
            role_definition_id=authz.ROLES_BY_NAME[role].id,
            principal_id=user_object_id(user),
            principal_kind="user",
        )
    client = Client()
    client.force_login(user)
    return client


def written() -> tuple[int, int, int, int]:
    """What a refused POST must not change: principals, revoked ones, role assignments, activity events."""
    return (
        ServicePrincipal.objects.count(),
        ServicePrincipal.objects.filter(revoked_at__isnull=False).count(),
        RoleAssignment.objects.count(),
        ActivityEvent.objects.count(),
    )


def listed(page: str) -> set[str]:
    """The client ids in the page's table."""
    table = re.search(r'<table class="grid" id="sp-table">.*?</table>', page, re.S)
    assert table, "no table"
    return set(re.findall(rf"<td><code>({GUID})</code></td>", table.group(0)))


def revocable(page: str) -> set[str]:
    """The client ids the page shows a Revoke button for."""
    return set(re.findall(rf'action="/portal/serviceprincipals/({GUID})/revoke"', page))


def scope_options(page: str) -> list[str]:
    select = re.search(r'<select name="scope".*?</select>', page, re.S)
    return [unescape(v) for v in re.findall(r'<option value="([^"]+)"', select.group(0))] if select else []


def ids_of(world, *keys: str) -> set[str]:
    return {str(world["principals"][key].client_id) for key in keys}


def revoke(client: Client, principal: ServicePrincipal):
    return client.post(f"{SP_PAGE}/{principal.client_id}/revoke")


def create_form(scope: str, name: str = "sp-new") -> dict:
    return {"display_name": name, "role": Role.ONBOARDING, "scope": scope, "expires_in_days": "30"}


# --- revoking -------------------------------------------------------------------------------------------------------


def test_a_contributor_on_a_group_cannot_revoke_an_owner_made_principal_there(django_user_model, world):
    scope = world["scopes"]["rg-a"]
    owner = signed_in(django_user_model, "olga", (authz.OWNER, scope))
    contributor = signed_in(django_user_model, "carl", (authz.CONTRIBUTOR, scope))
    assert owner.post(SP_PAGE, create_form(scope, "sp-olga")).status_code == 201
    principal = ServicePrincipal.objects.get(display_name="sp-olga")

    page = contributor.get(SP_PAGE).content.decode()
    assert str(principal.client_id) in listed(page)  # it may see it there...
    assert str(principal.client_id) not in revocable(page)  # ...but is offered no Revoke
    before = written()
    response = revoke(contributor, principal)
    assert response.status_code == 403
    assert written() == before
    principal.refresh_from_db()
    assert principal.revoked_at is None  # still active

    assert revoke(owner, principal).status_code == 302
    principal.refresh_from_db()
    assert principal.revoked_at is not None
    revoked = ActivityEvent.objects.get(resource_id__iendswith=str(principal.client_id), operation_name=SP_REVOKE)
    assert (revoked.caller, revoked.status) == ("olga", "Succeeded")  # who cut it off is in the activity log


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (authz.OWNER, True),
        (authz.CONTRIBUTOR, False),  # writes, but may not remove role assignments
        (authz.USER_ACCESS_ADMINISTRATOR, False),  # removes role assignments, but may not write (as for creating)
        (authz.READER, False),
        (authz.ONBOARDING, False),
        (None, False),
    ],
)
def test_revoking_needs_write_and_role_assignments_delete(subscription, role, allowed):
    grants = (authz.Grant(authz.ROLES_BY_NAME[role].id, subscription.arm_id),) if role else ()
    principal = authz.Principal(kind=authz.USER, object_id="u", name="u", grants=grants)
    for scope in (subscription.arm_id, f"{subscription.arm_id}/resourceGroups/rg-a"):
        assert authz.may_revoke_service_principal(principal, scope) is allowed
        # The same rule as creating, with the action that takes a role away instead of giving one.
        assert authz.may_create_service_principal(principal, scope) is allowed


@pytest.mark.parametrize(
    ("actions", "not_actions", "may"),
    [
        (("*",), ("Microsoft.Authorization/*/Delete",), {"read": True, "create": True, "revoke": False}),
        (("*",), ("Microsoft.Authorization/*/Write",), {"read": True, "create": False, "revoke": True}),
        (("Microsoft.Resources/*",), (), {"read": False, "create": False, "revoke": False}),
    ],
)
def test_each_decision_asks_its_own_role_assignment_action(monkeypatch, subscription, actions, not_actions, may):
    """Custom roles tell the actions apart (no built-in role holds roleAssignments/write without …/delete)."""
    custom = authz.RoleDefinition("00000000-0000-0000-0000-0000000000c1", "Custom", "test", actions, not_actions)
    monkeypatch.setitem(authz.ROLES_BY_ID, custom.id, custom)
    principal = authz.Principal(
        kind=authz.USER, object_id="u", name="u", grants=(authz.Grant(custom.id, subscription.arm_id),)
    )
    assert authz.may_read_service_principal(principal, subscription.arm_id) is may["read"]
    assert authz.may_create_service_principal(principal, subscription.arm_id) is may["create"]
    assert authz.may_revoke_service_principal(principal, subscription.arm_id) is may["revoke"]


@pytest.mark.parametrize("role", [authz.OWNER, authz.CONTRIBUTOR, authz.READER, authz.USER_ACCESS_ADMINISTRATOR])
def test_revoke_shows_exactly_where_revoking_is_allowed(django_user_model, world, role):
    """Owner (or another role) on rg-a and Reader on the subscription: every principal of the subscription is
    listed; Revoke shows on those the POST would revoke, and every other POST is refused."""
    user = signed_in(django_user_model, "rita", (role, world["scopes"]["rg-a"]), (authz.READER, world["scopes"]["sub"]))
    page = user.get(SP_PAGE).content.decode()
    assert listed(page) == ids_of(world, "sub", "rg-a", "rg-b")
    shown = revocable(page)
    assert shown == (ids_of(world, "rg-a") if role == authz.OWNER else set())
    for key in ("sub", "rg-a", "rg-b"):
        principal = world["principals"][key]
        before = written()
        response = revoke(user, principal)
        principal.refresh_from_db()
        if str(principal.client_id) in shown:
            assert response.status_code == 302 and principal.revoked_at is not None, key
        else:
            assert response.status_code == 403 and principal.revoked_at is None, key
            assert written() == before, key


def test_a_revoked_principal_has_no_revoke_button(django_user_model, world):
    owner = signed_in(django_user_model, "olga", (authz.OWNER, world["scopes"]["sub"]))
    assert revoke(owner, world["principals"]["rg-a"]).status_code == 302
    page = owner.get(SP_PAGE).content.decode()
    assert revocable(page) == ids_of(world, "sub", "rg-b")


def test_a_principal_the_user_may_not_see_is_not_found_and_not_revoked(django_user_model, world):
    """Owner of rg-a only: a principal at rg-b answers like one that does not exist."""
    owner = signed_in(django_user_model, "olga", (authz.OWNER, world["scopes"]["rg-a"]))
    before = written()
    for key in ("rg-b", "sub", "rg-other"):
        assert revoke(owner, world["principals"][key]).status_code == 404, key
    assert owner.post(f"{SP_PAGE}/00000000-0000-0000-0000-000000000000/revoke").status_code == 404
    assert written() == before


# --- creating -------------------------------------------------------------------------------------------------------


def test_the_dropdown_offers_only_the_scopes_where_the_user_may_create(django_user_model, world):
    scopes = world["scopes"]
    owner_of_sub = signed_in(django_user_model, "olga", (authz.OWNER, scopes["sub"]))
    assert scope_options(owner_of_sub.get(SP_PAGE).content.decode()) == [scopes["sub"], scopes["rg-a"], scopes["rg-b"]]

    owner_of_rg_a = signed_in(
        django_user_model, "rita", (authz.OWNER, scopes["rg-a"]), (authz.CONTRIBUTOR, scopes["other"])
    )
    assert scope_options(owner_of_rg_a.get(SP_PAGE).content.decode()) == [scopes["rg-a"]]

    contributor = signed_in(django_user_model, "carl", (authz.CONTRIBUTOR, scopes["sub"]))
    page = contributor.get(SP_PAGE).content.decode()
    assert scope_options(page) == [] and 'id="sp-create"' not in page  # no form at all, and it says why
    assert 'id="sp-create-not-allowed"' in page


@pytest.mark.parametrize("target", ["sub", "rg-b", "other", "rg-other"])
def test_a_forged_create_post_is_refused_and_writes_nothing(django_user_model, world, target):
    owner_of_rg_a = signed_in(
        django_user_model, "rita", (authz.OWNER, world["scopes"]["rg-a"]), (authz.CONTRIBUTOR, world["scopes"]["sub"])
    )
    before = written()
    response = owner_of_rg_a.post(SP_PAGE, create_form(world["scopes"][target]))
    assert response.status_code == 403
    assert written() == before and not ServicePrincipal.objects.filter(display_name="sp-new").exists()


def test_a_create_post_for_a_group_that_does_not_exist_is_a_400_and_writes_nothing(django_user_model, world):
    """Owner of the subscription may create at any of its groups, but only at one that exists."""
    owner = signed_in(django_user_model, "olga", (authz.OWNER, world["scopes"]["sub"]))
    before = written()
    response = owner.post(SP_PAGE, create_form(f"{world['scopes']['sub']}/resourceGroups/rg-ghost"))
    assert response.status_code == 400 and response.context["form"].errors["scope"]
    assert written() == before


def test_an_owner_of_a_group_creates_a_principal_there(django_user_model, world):
    owner = signed_in(django_user_model, "rita", (authz.OWNER, world["scopes"]["rg-a"]))
    assert owner.post(SP_PAGE, create_form(world["scopes"]["rg-a"])).status_code == 201
    principal = ServicePrincipal.objects.get(display_name="sp-new")
    assert principal.scope == world["scopes"]["rg-a"]
    assert RoleAssignment.objects.filter(principal_id=principal.object_id, scope=principal.scope).exists()


# --- the list -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grants", "visible"),
    [
        ([(authz.OWNER, "rg-a")], ("rg-a",)),
        ([(authz.CONTRIBUTOR, "rg-b")], ("rg-b",)),
        ([(authz.READER, "sub")], ("sub", "rg-a", "rg-b")),
        ([(authz.READER, "other")], ("rg-other",)),
        ([(authz.ONBOARDING, "sub")], ()),  # a machine-only role reads no role assignments
        ([], ()),
    ],
)
def test_the_list_shows_only_principals_whose_scope_the_user_may_read(django_user_model, world, grants, visible):
    user = signed_in(django_user_model, "rita", *[(role, world["scopes"][key]) for role, key in grants])
    response = user.get(SP_PAGE)
    assert response.status_code == 200
    page = response.content.decode()
    assert listed(page) == ids_of(world, *visible)
    hidden = set(world["principals"]) - set(visible)
    for key in hidden:  # not in the table, nor anywhere else on the page
        assert f"sp-{key}<" not in page and str(world["principals"][key].client_id) not in page
