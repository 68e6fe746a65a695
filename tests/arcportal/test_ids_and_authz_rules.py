"""Pure rules: ARM ids (arcportal/arm/ids.py) and authorization (arcportal/authz.py). No database."""

from __future__ import annotations

import ast
import pathlib
import uuid
from dataclasses import dataclass

import pytest

from arcportal import authz
from arcportal.arm import ids

SUB = "3f2c1d4e-0000-4000-8000-000000000001"
RG = f"/subscriptions/{SUB}/resourceGroups/rg"
MACHINE = f"{RG}/providers/Microsoft.HybridCompute/machines/vm"


def test_ids_module_imports_no_django():
    tree = ast.parse(pathlib.Path(ids.__file__).read_text())
    modules = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    modules += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in modules if m.startswith(("django", "rest_framework"))]


def test_build_canonical_ids():
    assert ids.subscription_id(SUB) == f"/subscriptions/{SUB}"
    assert ids.resource_group_id(SUB, "rg") == RG
    assert ids.machine_id(SUB, "rg", "vm") == MACHINE
    assert ids.extension_id(SUB, "rg", "vm", "e") == f"{MACHINE}/extensions/e"
    assert ids.machines_scope(SUB) == f"/subscriptions/{SUB}/providers/Microsoft.HybridCompute/machines"
    assert ids.machines_scope(SUB, "rg") == f"{RG}/providers/Microsoft.HybridCompute/machines"


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        ("/", "root", ids.ResourceId()),
        (f"/subscriptions/{SUB}", "subscription", ids.ResourceId(subscription=SUB)),
        (
            f"/SUBSCRIPTIONS/{SUB}/resourcegroups/RG",
            "resourceGroup",
            ids.ResourceId(subscription=SUB, resource_group="RG"),
        ),
        (MACHINE.upper(), "machine", ids.ResourceId(SUB.upper(), "RG", "VM")),
        (f"{MACHINE}/Extensions/e", "extension", ids.ResourceId(SUB, "rg", "vm", "e")),
        (f"{MACHINE}/extensions", "extensions", ids.ResourceId(SUB, "rg", "vm", extensions_collection=True)),
        (
            f"{RG}/providers/microsoft.hybridcompute/machines",
            "machines",
            ids.ResourceId(SUB, "rg", machines_collection=True),
        ),
    ],
)
def test_parse_any_case(value, kind, expected):
    parsed = ids.parse(value)
    assert parsed == expected and parsed.kind == kind


def test_normalize_round_trips_to_canonical_spelling():
    assert (
        ids.normalize(f"/subscriptions/{SUB}/resourcegroups/rg/providers/MICROSOFT.HYBRIDCOMPUTE/MACHINES/vm")
        == MACHINE
    )
    assert ids.normalize(f"{MACHINE}/EXTENSIONS/e/") == f"{MACHINE}/extensions/e"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "subscriptions/x",
        "/tenants/x",
        "/subscriptions",
        "/subscriptions//resourceGroups/rg",
        f"/subscriptions/{SUB}/resourceGroups",
        f"{RG}/providers/Microsoft.Compute/virtualMachines/vm",
        f"/subscriptions/{SUB}/providers/Microsoft.HybridCompute/machines/vm",
        f"{MACHINE}/runCommands/x",
        f"{MACHINE}/extensions/e/more",
    ],
)
def test_parse_rejects_what_is_not_an_id(bad):
    with pytest.raises(ValueError):
        ids.parse(bad)


def test_is_within_compares_whole_segments_case_insensitively():
    assert ids.is_within("/", MACHINE)
    assert ids.is_within(RG, MACHINE)
    assert ids.is_within(RG.upper(), MACHINE)
    assert ids.is_within(RG, RG)
    assert not ids.is_within(RG, f"/subscriptions/{SUB}/resourceGroups/rg2")
    assert not ids.is_within(MACHINE, RG)


@dataclass
class P:
    role: str
    scope: str


@dataclass
class User:
    is_authenticated: bool = True
    is_active: bool = True
    arc_grants: tuple = ()


SUB_SCOPE = f"/subscriptions/{SUB}"
OTHER_RG = f"/subscriptions/{SUB}/resourceGroups/other"
RG_MACHINES = f"{RG}/providers/Microsoft.HybridCompute/machines"
EXTENSION = f"{MACHINE}/extensions/e"


@pytest.mark.parametrize(
    ("role", "scope", "action", "target", "allowed"),
    [
        ("Owner", SUB_SCOPE, "delete", EXTENSION, True),
        ("Owner", RG, "write", OTHER_RG, False),
        ("Contributor", RG, "write", MACHINE, True),
        ("Contributor", RG, "delete", RG, True),
        ("Contributor", RG, "write", SUB_SCOPE, False),
        ("Reader", SUB_SCOPE, "read", EXTENSION, True),
        ("Reader", SUB_SCOPE, "write", MACHINE, False),
        ("Reader", SUB_SCOPE, "delete", RG, False),
        ("Reader", SUB_SCOPE, "onboard", MACHINE, False),
        ("Azure Connected Machine Onboarding", RG, "write", MACHINE, True),
        ("Azure Connected Machine Onboarding", RG, "read", MACHINE, True),
        ("Azure Connected Machine Onboarding", RG, "onboard", MACHINE, True),
        ("Azure Connected Machine Onboarding", RG, "read", RG_MACHINES, True),
        ("Azure Connected Machine Onboarding", RG, "delete", MACHINE, False),
        ("Azure Connected Machine Onboarding", RG, "write", RG, False),
        ("Azure Connected Machine Onboarding", RG, "read", RG, False),
        ("Azure Connected Machine Onboarding", RG, "write", EXTENSION, False),
        ("Azure Connected Machine Onboarding", RG, "read", EXTENSION, False),
        (
            "Azure Connected Machine Onboarding",
            RG,
            "write",
            f"{OTHER_RG}/providers/Microsoft.HybridCompute/machines/x",
            False,
        ),
        ("Azure Connected Machine Onboarding", SUB_SCOPE, "write", MACHINE, True),
        ("Unknown role", SUB_SCOPE, "read", MACHINE, False),
        ("Owner", "not a scope", "read", MACHINE, False),
        ("Owner", SUB_SCOPE, "read", "not a scope", False),
    ],
)
def test_role_table(role, scope, action, target, allowed):
    assert authz.can(P(role, scope), action, target) is allowed


def test_portal_users_have_exactly_the_grants_loaded_onto_them():
    owner = (authz.Grant(authz.ROLES_BY_NAME["Owner"].id, SUB_SCOPE),)
    assert authz.can(User(arc_grants=owner), "delete", MACHINE)
    assert not authz.can(User(arc_grants=owner), "write", f"/subscriptions/{uuid.uuid4()}")
    assert not authz.can(User(), "read", MACHINE)  # a new user: no access until assigned
    assert not authz.can(User(is_active=False, arc_grants=owner), "read", MACHINE)
    assert not authz.can(User(is_authenticated=False, arc_grants=owner), "read", MACHINE)
    assert not authz.can(None, "read", MACHINE)


def test_unknown_actions_are_a_programming_error():
    with pytest.raises(ValueError):
        authz.can(User(), "fly", MACHINE)
