"""The wizard's form flow (``onboarding.wizard``): where each action leads, errors routed by type (never by their
text), and the subscription and resource group read once per request."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from arcportal.exceptions import Conflict, NotFound
from machines.services import resource_group_create
from onboarding import services
from onboarding.wizard import BASICS, SCRIPT, TAGS, Action
from tests.onboarding.test_wizard import URL, basics, post, script_of

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("action", "step", "expected"),
    [
        ("next", BASICS, Action("move", TAGS)),
        ("next", TAGS, Action("move", SCRIPT)),
        ("next", SCRIPT, Action("move", SCRIPT)),
        ("previous", TAGS, Action("move", BASICS)),
        ("previous", BASICS, Action("move", BASICS)),
        ("goto:script", BASICS, Action("move", SCRIPT)),
        ("goto:nowhere", TAGS, Action("move", SCRIPT)),
        ("add_tag", BASICS, Action("add_tag", TAGS)),
        ("remove_tag:2", TAGS, Action("remove_tag", TAGS, 2)),
        ("remove_tag:x", TAGS, Action("move", SCRIPT)),
        ("next", "bogus", Action("move", TAGS)),
    ],
)
def test_each_action_leads_where_the_tabs_say(action, step, expected):
    assert Action.parse(action=action, step=step) == expected


def test_going_back_never_validates():
    assert Action("move", BASICS).backwards_from(TAGS) and Action("move", TAGS).backwards_from(SCRIPT)
    assert not Action("move", SCRIPT).backwards_from(TAGS)


EXISTING = {"resource_group_mode": "existing", "resource_group": "existing-rg"}
NEW_SP = {"sp_mode": "new", "new_service_principal_name": "sp"}


@pytest.fixture
def group(subscription):
    return resource_group_create(subscription=subscription, name="existing-rg", location="westeurope")


@pytest.mark.parametrize(
    ("option", "mode", "overrides", "field"),
    [
        ("subscription", "single", {}, "subscription"),
        ("resource_group", "single", {}, "new_resource_group"),
        (
            "resource_group",
            "single",
            {"resource_group_mode": "existing", "resource_group": "existing-rg"},
            "resource_group",
        ),
        (
            "service_principal",
            "scale",
            {"sp_mode": "new", "new_service_principal_name": "sp"},
            "new_service_principal_name",
        ),
        ("service_principal", "single", {}, "__all__"),  # no such field on this page: a form error
        (None, "single", {}, "__all__"),
    ],
)
def test_a_refused_generation_marks_the_field_its_option_names(
    portal_client, subscription, group, monkeypatch, option, mode, overrides, field
):
    # The text says "resource group" whatever the option: the field comes from the type, not from the words.
    cause = Conflict("A resource group of that name can't be used.")

    def refuse(**kwargs):
        raise services.ScriptOptionError(cause, option=option)

    monkeypatch.setattr(services, "script_generation_create", refuse)
    data = {**basics(subscription, **overrides), "step": TAGS, "action": "next"}
    response = post(portal_client, data, mode=mode)
    errors = response.context["basics"].errors
    assert errors == {field: ["A resource group of that name can't be used."]}
    assert response.context["step"] == BASICS and "basics" in response.context["show_errors"]


def test_the_services_name_the_option_at_fault(subscription):
    from onboarding.scripts import ScriptOptions

    options = ScriptOptions(
        os="linux", subscription_id=str(subscription.subscription_id), resource_group="missing", location="westeurope"
    )
    with pytest.raises(services.ScriptOptionError) as info:
        services.script_generation_create(options=options)
    assert info.value.option == "resource_group" and info.value.code == "ResourceGroupNotFound"
    assert info.value.status == NotFound.status


def test_generating_reads_the_subscription_and_the_resource_group_once(portal_client, subscription, group):
    data = {**basics(subscription, resource_group_mode="existing", resource_group="existing-rg")}
    with CaptureQueriesContext(connection) as queries:
        response = post(portal_client, {**data, "step": TAGS, "action": "next"})
    assert "export correlationId=" in script_of(response)
    sql = [query["sql"] for query in queries.captured_queries]
    from_subscription = [q for q in sql if re.search(r'FROM "machines_subscription"', q)]
    from_group = [q for q in sql if re.search(r'FROM "machines_resourcegroup"', q)]
    assert len(from_subscription) == 1, from_subscription
    assert len(from_group) == 1, from_group
    assert URL  # the one wizard URL
