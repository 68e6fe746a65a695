"""Rows are exactly those ``arcportal.authz.can(principal, "read", row id)`` allows, for every role and scope shape,
whatever the query joins or unions."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from arcportal import authz
from machines.graph.visibility import MACHINE_TYPES, ReadableScope, readable_scopes

ROLES = [authz.OWNER, authz.CONTRIBUTOR, authz.READER, authz.ONBOARDING]
EVERY_ROW = "Resources | union ResourceContainers | project id"


def principal(role: str, scope: str):
    return SimpleNamespace(role=role, scope=scope, is_active=True)


def test_readable_scopes_of_each_kind_of_principal(django_user_model):
    user = django_user_model(username="u", is_active=True)
    assert readable_scopes(user) == []  # a portal user without role assignments reads nothing
    user.arc_grants = (authz.Grant(authz.ROLES_BY_NAME[authz.OWNER].id, "/"),)
    assert readable_scopes(user) == [ReadableScope("/")]
    assert readable_scopes(principal(authz.READER, "/subscriptions/s/resourcegroups/RG")) == [
        ReadableScope("/subscriptions/s/resourceGroups/RG")
    ]
    assert readable_scopes(principal(authz.ONBOARDING, "/subscriptions/s")) == [
        ReadableScope("/subscriptions/s", MACHINE_TYPES)
    ]
    assert readable_scopes(principal("Unknown role", "/")) == []
    assert readable_scopes(SimpleNamespace(role=authz.OWNER, scope="/", is_active=False)) == []
    assert readable_scopes(None) == []
    assert readable_scopes(principal(authz.OWNER, "not a scope")) == []


def scope_shapes(fleet) -> list[str]:
    sub = fleet.subscriptions[0].subscription_id
    web = fleet.machines["web-01"]
    extension = fleet.extensions["web-01/CustomScript"]
    return [
        "/",
        f"/subscriptions/{sub}",
        f"/SUBSCRIPTIONS/{str(sub).upper()}",
        f"/subscriptions/{fleet.subscriptions[1].subscription_id}",
        f"/subscriptions/{sub}/resourceGroups/rg-web",
        f"/subscriptions/{sub}/resourcegroups/RG-WEB",
        f"/subscriptions/{sub}/resourceGroups/rg-missing",
        f"/subscriptions/{sub}/resourceGroups/rg-web/providers/Microsoft.HybridCompute/machines",
        f"/subscriptions/{sub}/providers/Microsoft.HybridCompute/machines",
        fleet.machine_id(web),
        fleet.machine_id(web).upper().replace("/SUBSCRIPTIONS/", "/subscriptions/"),
        f"{fleet.machine_id(web)}/extensions",
        fleet.extension_id(extension),
        f"/subscriptions/{sub}/resourceGroups/rg-web/providers/Microsoft.Compute/virtualMachines/web-01",
        "/subscriptions/not-a-guid",
        "/subscriptions/00000000-0000-0000-0000-000000000000",
    ]


@pytest.mark.django_db
def test_visible_rows_are_exactly_what_can_allows(fleet, run):
    every_id = [r["id"] for r in fleet.resources() + fleet.containers()]
    assert sorted(r[0] for r in run(EVERY_ROW).rows) == sorted(every_id)
    checked = 0
    for scope in scope_shapes(fleet):
        for role in ROLES:
            who = principal(role, scope)
            expected = sorted(i for i in every_id if authz.can(who, authz.READ, i))
            got = sorted(r[0] for r in run(EVERY_ROW, scopes=readable_scopes(who), top=1000).rows)
            assert got == expected, (role, scope)
            checked += bool(expected)
    assert checked > 20  # most combinations see something: the comparison is not vacuous


@pytest.mark.django_db
def test_no_query_shape_reaches_hidden_rows(fleet, run):
    group = fleet.groups["rg-edge"]
    scopes = readable_scopes(principal(authz.READER, f"/subscriptions/{group.subscription.subscription_id}"
                                                     "/resourceGroups/rg-edge"))  # fmt: skip
    queries = [
        "Resources | project id",
        "Resources | join kind=leftouter (ResourceContainers | project id2 = id) on $left.id == $right.id2"
        " | project id",
        "union Resources, ResourceContainers | project id",
        "Resources | summarize make_list(id) by type | mv-expand id = list_id | project id",
        "Resources | where id !contains 'rg-edge' or 1 == 1 | project id",
    ]
    visible = {r["id"] for r in fleet.resources() + fleet.containers() if "/resourceGroups/rg-edge" in r["id"]}
    for query in queries:
        got = {r[0] for r in run(query, scopes=scopes, top=1000).rows}
        assert got and got <= visible, query


@pytest.mark.django_db
def test_several_scopes_add_up(fleet, run):
    """Ready for several role assignments: the union of what each grant allows."""
    sub = fleet.subscriptions[0].subscription_id
    scopes = [
        ReadableScope(f"/subscriptions/{sub}/resourceGroups/rg-web"),
        ReadableScope(f"/subscriptions/{sub}/resourceGroups/RG-Data", MACHINE_TYPES),
    ]
    got = sorted(r[0] for r in run("Resources | union ResourceContainers | project name", scopes=scopes).rows)
    web = [m.name for m in fleet.machines.values() if m.resource_group.name == "rg-web"]
    data = [m.name for m in fleet.machines.values() if m.resource_group.name == "RG-Data"]
    web_extensions = [e.name for e in fleet.extensions.values() if e.machine.name in web]
    assert got == sorted([*web, *web_extensions, "rg-web", *data])


@pytest.mark.django_db
def test_no_scope_sees_nothing(fleet, run):
    assert run("Resources | union ResourceContainers | count", scopes=[]).rows == [[0]]
