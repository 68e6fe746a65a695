"""The Generate script wizard decides per scope, as Azure would (``onboarding.wizard_scopes``, ``arcportal.authz``):
a user with the Onboarding role (or Contributor) on rg-a only generates for rg-a and nothing else — not rg-b, not a
new group, not a new service principal (that assigns a role) — is offered only rg-a and its subscription, and a
forged POST for anything else is a form error (400) that writes nothing. An Owner of the subscription does it all.
The Service principals page asks the same of a new principal as the wizard does."""

from __future__ import annotations

import re
from html import unescape

import pytest

from arcportal import authz
from identity.models import Role, RoleAssignment, ServicePrincipal
from identity.role_assignments import role_assignment_create
from identity.service_principals import service_principal_create
from identity.tokens import user_object_id
from machines.models import ResourceGroup, Subscription
from machines.services import resource_group_create
from onboarding.models import ScriptGeneration
from tests.onboarding.test_wizard import URL, basics, post, script_of

pytestmark = pytest.mark.django_db

SP_PAGE = "/portal/serviceprincipals"


@pytest.fixture
def rg_a(subscription):
    return resource_group_create(subscription=subscription, name="rg-a", location="westeurope")


@pytest.fixture
def rg_b(subscription):
    return resource_group_create(subscription=subscription, name="rg-b", location="westeurope")


@pytest.fixture
def other_subscription(tenant, subscription):
    other = Subscription.objects.create(tenant=tenant, display_name="Other Subscription")
    resource_group_create(subscription=other, name="rg-other", location="westeurope")
    return other


def signed_in(client, django_user_model, role: str, scope: str):
    user = django_user_model.objects.create_user(username="rita", password="pw-rita-123")
    role_assignment_create(
        scope=scope,
        role_definition_id=authz.ROLES_BY_NAME[role].id,
        principal_id=user_object_id(user),
        principal_kind="user",
    )
    client.force_login(user)
    return client


@pytest.fixture(params=[authz.ONBOARDING, authz.CONTRIBUTOR])
def rg_a_user(request, client, django_user_model, rg_a, rg_b, other_subscription):
    """Onboarding (or Contributor) on rg-a only; rg-b and another subscription exist beside it."""
    return signed_in(client, django_user_model, request.param, rg_a.arm_id)


@pytest.fixture
def owner(client, django_user_model, rg_a, rg_b, other_subscription, subscription):
    """Owner of the first subscription only."""
    return signed_in(client, django_user_model, authz.OWNER, subscription.arm_id)


def generate(client, subscription, *, mode="single", **overrides):
    return post(client, {**basics(subscription, **overrides), "step": "tags", "action": "next"}, mode=mode)


def at_scale_for_rg_a(client, subscription, **principal):
    """The at-scale wizard for rg-a with ``principal``'s choice (``sp_mode`` and its fields)."""
    existing = {"resource_group_mode": "existing", "resource_group": "rg-a"}
    return generate(client, subscription, mode="scale", **existing, **principal)


def written() -> tuple[int, int, int, int]:
    """What a refused POST must not have added: groups, service principals, role assignments, generations."""
    return (
        ResourceGroup.objects.count(),
        ServicePrincipal.objects.count(),
        RoleAssignment.objects.count(),
        ScriptGeneration.objects.count(),
    )


def refused(response, text: str) -> None:
    page = unescape(response.content.decode())
    assert response.status_code == 400, response.status_code
    assert text in page and 'class="field-error"' in page
    assert 'name="step" value="basics"' in page and "onboarding-script" not in page


def choices(page: str, name: str) -> list[str]:
    select = re.search(rf'<select name="{name}".*?</select>', page, re.S)
    assert select, f"no select {name}"
    return [unescape(v) for v in re.findall(r'<option value="([^"]+)"', select.group(0))]


def radios(page: str, name: str) -> list[str]:
    return re.findall(rf'<input type="radio" name="{name}" value="([^"]+)"', page)


# --- a user on rg-a only ------------------------------------------------------------------------------------------


def test_the_rg_a_user_generates_a_script_for_rg_a(rg_a_user, subscription):
    response = generate(rg_a_user, subscription, resource_group_mode="existing", resource_group="rg-a")
    assert response.status_code == 200
    assert "resourceGroup='rg-a';" in script_of(response)
    assert ScriptGeneration.objects.get().options["resource_group"] == "rg-a"


def test_the_rg_a_user_is_offered_only_rg_a_and_its_subscription(rg_a_user, subscription):
    for mode in ("single", "scale"):
        page = rg_a_user.get(f"{URL}?mode={mode}").content.decode()
        assert choices(page, "subscription") == [str(subscription.subscription_id)]
        assert choices(page, "resource_group") == ["rg-a"]
        assert radios(page, "resource_group_mode") == ["existing"]  # may not create groups: not offered
    assert "new" not in radios(page, "sp_mode") and "existing" in radios(page, "sp_mode")


@pytest.mark.parametrize("name", ["rg-b", "rg-ghost"])  # the same answer whether the group exists or not
def test_the_rg_a_user_is_refused_another_group_and_nothing_is_written(rg_a_user, subscription, name):
    before = written()
    for step in ("basics", "tags"):  # Next on Basics, and the generating POST sent by hand
        data = {**basics(subscription, resource_group_mode="existing", resource_group=name), "step": step}
        refused(
            post(rg_a_user, {**data, "action": "next"}), f"You may not onboard servers into the resource group '{name}'"
        )
    assert written() == before


def test_the_rg_a_user_is_refused_a_new_group_and_nothing_is_written(rg_a_user, subscription):
    before = written()
    response = generate(rg_a_user, subscription, resource_group_mode="new", new_resource_group="rg-new")
    refused(response, "You may not create resource groups in the subscription")
    assert written() == before and not ResourceGroup.objects.filter(name="rg-new").exists()
    # A new group named like one it may not see gets the same answer (it learns nothing of which exist).
    refused(generate(rg_a_user, subscription, new_resource_group="RG-B"), "You may not create resource groups")


def test_the_rg_a_user_is_refused_a_new_service_principal_and_nothing_is_written(rg_a_user, subscription):
    before = written()
    response = at_scale_for_rg_a(rg_a_user, subscription, sp_mode="new", new_service_principal_name="sp-escalate")
    refused(response, "You may not create a service principal with a role on the resource group 'rg-a'")
    assert written() == before and not ServicePrincipal.objects.filter(display_name="sp-escalate").exists()


def test_the_rg_a_user_is_refused_another_subscription(rg_a_user, other_subscription):
    before = written()
    response = generate(rg_a_user, other_subscription, resource_group_mode="existing", resource_group="rg-other")
    refused(response, f"You may not onboard servers in the subscription '{other_subscription.subscription_id}'")
    assert written() == before


def test_the_rg_a_user_is_offered_only_the_service_principals_it_may_read(request, rg_a_user, rg_a, rg_b, subscription):
    """The existing principals are those the Service principals page shows the user (roleAssignments/read at their
    scope): a Contributor on rg-a sees rg-a's, never rg-b's or the subscription's; the Onboarding role reads no role
    assignment and is offered none. A forged POST naming one it may not see is refused and writes nothing."""
    ours = service_principal_create(display_name="sp-rg-a", role=Role.ONBOARDING, scope=rg_a.arm_id)
    theirs = service_principal_create(display_name="sp-rg-b", role=Role.ONBOARDING, scope=rg_b.arm_id)
    wide = service_principal_create(display_name="sp-sub", role=Role.ONBOARDING, scope=subscription.arm_id)
    readable = request.node.callspec.params["rg_a_user"] == authz.CONTRIBUTOR
    page = rg_a_user.get(f"{URL}?mode=scale").content.decode()
    offered = choices(page, "service_principal")
    assert offered == ([str(ours.service_principal.client_id)] if readable else [])
    for hidden in (theirs, wide):
        before = written()
        response = at_scale_for_rg_a(
            rg_a_user, subscription, sp_mode="existing", service_principal=str(hidden.service_principal.client_id)
        )
        refused(response, "Select a service principal.")
        assert written() == before


# --- an Owner of the subscription ---------------------------------------------------------------------------------


def test_an_owner_of_the_subscription_is_offered_its_groups_and_may_create(owner, subscription, other_subscription):
    page = owner.get(f"{URL}?mode=scale").content.decode()
    assert choices(page, "subscription") == [str(subscription.subscription_id)]  # not the other subscription
    assert choices(page, "resource_group") == ["rg-a", "rg-b"]
    assert radios(page, "resource_group_mode") == ["existing", "new"]
    assert "new" in radios(page, "sp_mode")


def test_an_owner_of_the_subscription_generates_for_any_group_a_new_group_and_a_new_principal(owner, subscription):
    assert "resourceGroup='rg-b';" in script_of(
        generate(owner, subscription, resource_group_mode="existing", resource_group="rg-b")
    )
    response = generate(
        owner, subscription, mode="scale", new_resource_group="rg-new", sp_mode="new", new_service_principal_name="sp"
    )
    assert response.status_code == 200 and "onboarding-script" in response.content.decode()
    group = ResourceGroup.objects.get(subscription=subscription, name="rg-new")
    principal = ServicePrincipal.objects.get(display_name="sp")
    assert principal.scope == group.arm_id
    assert RoleAssignment.objects.filter(principal_id=principal.object_id, scope=group.arm_id).exists()
    assert ScriptGeneration.objects.count() == 2


# --- one rule for a new service principal, on the wizard and the Service principals page ---------------------------


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (authz.OWNER, True),
        (authz.CONTRIBUTOR, False),  # writes, but may not assign roles
        (authz.USER_ACCESS_ADMINISTRATOR, False),  # assigns roles, but may not write
        (authz.ONBOARDING, False),
        (None, False),
    ],
)
def test_creating_a_service_principal_needs_write_and_role_assignments_write(subscription, role, allowed):
    grants = (authz.Grant(authz.ROLES_BY_NAME[role].id, subscription.arm_id),) if role else ()
    principal = authz.Principal(kind=authz.USER, object_id="u", name="u", grants=grants)
    for scope in (subscription.arm_id, f"{subscription.arm_id}/resourceGroups/rg-a"):
        assert authz.may_create_service_principal(principal, scope) is allowed


def test_a_contributor_cannot_create_a_service_principal_on_the_service_principals_page(
    client, django_user_model, subscription
):
    contributor = signed_in(client, django_user_model, authz.CONTRIBUTOR, subscription.arm_id)
    before = written()
    form = {"display_name": "sp-owner", "role": authz.OWNER, "scope": subscription.arm_id, "expires_in_days": "30"}
    assert contributor.post(SP_PAGE, form).status_code == 403
    assert written() == before


def test_an_owner_creates_a_service_principal_on_the_service_principals_page(client, django_user_model, subscription):
    owner = signed_in(client, django_user_model, authz.OWNER, subscription.arm_id)
    form = {"display_name": "sp-ok", "role": authz.ONBOARDING, "scope": subscription.arm_id, "expires_in_days": "30"}
    assert owner.post(SP_PAGE, form).status_code == 201
    assert ServicePrincipal.objects.filter(display_name="sp-ok").exists()
