"""Issue 10 item 6: names fold case the same way in Python and in both databases, and scope follows the rows.

ARM names are case-insensitive with ASCII-only folding everywhere (docs/decisions.md): ``Arc-RG`` and ``arc-rg``
are one resource group, ``übersee`` and ``Übersee`` are two, on SQLite and on PostgreSQL alike, and a principal
scoped to one of them never reaches the other.
"""

from __future__ import annotations

import pytest

from arcportal import authz
from arcportal.arm import ids
from machines.models import ResourceGroup
from machines.selectors import resource_group_get
from machines.services import resource_group_create
from tests.armclient import API, RG_API, ArmClient, machine_path, rg_path, sub_path

ONBOARDING = "Azure Connected Machine Onboarding"


def test_scope_comparison_folds_ascii_letters_only():
    scope = "/subscriptions/S/resourceGroups/übersee"
    assert ids.is_within(scope, "/SUBSCRIPTIONS/s/RESOURCEGROUPS/übersee/providers/Microsoft.HybridCompute/machines/a")
    assert not ids.is_within(scope, "/subscriptions/s/resourceGroups/Übersee")
    assert not ids.is_within("/subscriptions/s/resourceGroups/Straße", "/subscriptions/s/resourceGroups/STRASSE")
    assert ids.fold_name("Arc-RG-Übersee") == "arc-rg-Übersee"
    principal = type("P", (), {"role": "Reader", "scope": scope})()
    assert not authz.can(principal, authz.READ, "/subscriptions/s/resourceGroups/Übersee")


@pytest.mark.django_db
def test_groups_differing_in_a_non_ascii_letter_are_two_groups_on_every_database(subscription):
    lower = resource_group_create(subscription=subscription, name="übersee", location="westeurope")
    upper = resource_group_create(subscription=subscription, name="Übersee", location="westeurope")
    assert lower.pk != upper.pk and ResourceGroup.objects.count() == 2
    assert resource_group_get(subscription=subscription, name="übersee").pk == lower.pk
    assert resource_group_get(subscription=subscription, name="Übersee").pk == upper.pk
    # ASCII letters still fold: one group whatever their case.
    assert resource_group_get(subscription=subscription, name="ÜBERSEE").pk == upper.pk
    assert resource_group_get(subscription=subscription, name="üBERSEE").pk == lower.pk
    # Unicode letters that lower-case to ASCII ones (the Kelvin sign K → k, İ → i̇) stay themselves too.
    kelvin = resource_group_create(subscription=subscription, name="\u212aiel", location="westeurope")
    kiel = resource_group_create(subscription=subscription, name="kiel", location="westeurope")
    assert kelvin.pk != kiel.pk and resource_group_get(subscription=subscription, name="KIEL").pk == kiel.pk


@pytest.mark.django_db
def test_a_principal_scoped_to_one_group_never_reaches_its_non_ascii_case_twin(arm, subscription, sp_token):
    for group in ("übersee", "Übersee"):
        assert arm.put(f"{rg_path(subscription, group)}?{RG_API}", {"location": "westeurope"}).status_code == 201
        path = machine_path(subscription, group, "vm")
        assert arm.put(f"{path}?{API}", {"location": "westeurope", "tags": {"group": group}}).status_code == 200
        ext = f"{path}/extensions/e?{API}"
        assert arm.put(ext, {"properties": {"type": "t", "settings": {"g": group}}}).status_code == 202
    token, _ = sp_token("Reader", scope=f"{sub_path(subscription)}/resourceGroups/übersee")
    reader = ArmClient(token)

    own = reader.get(f"{machine_path(subscription, 'übersee', 'vm')}?{API}")
    assert own.status_code == 200 and own.json()["tags"] == {"group": "übersee"}
    assert reader.get(f"{machine_path(subscription, 'ÜBERSEE', 'vm')}?{API}").status_code == 403
    for path in (
        f"{rg_path(subscription, 'Übersee')}?{RG_API}",
        f"{machine_path(subscription, 'Übersee', 'vm')}?{API}",
        f"{machine_path(subscription, 'Übersee', 'vm')}/extensions/e?{API}",
        f"{machine_path(subscription, 'Übersee', 'vm')}/extensions?{API}",
        f"{rg_path(subscription, 'Übersee')}/providers/Microsoft.HybridCompute/machines?{API}",
    ):
        response = reader.get(path)
        assert response.status_code == 403, (path, response.content)
    listed = reader.get(f"{sub_path(subscription)}/providers/Microsoft.HybridCompute/machines?{API}")
    assert listed.status_code == 200
    assert [m["tags"] for m in listed.json()["value"]] == [{"group": "übersee"}]
    groups = reader.get(f"{sub_path(subscription)}/resourcegroups?{RG_API}")
    assert [g["name"] for g in groups.json()["value"]] == ["übersee"]


@pytest.mark.django_db
def test_an_onboarding_principal_cannot_register_into_the_twin_group(arm, subscription, sp_token):
    from azcmagent import identity

    for group in ("übersee", "Übersee"):
        assert arm.put(f"{rg_path(subscription, group)}?{RG_API}", {"location": "westeurope"}).status_code == 201
    token, _ = sp_token(ONBOARDING, scope=f"{sub_path(subscription)}/resourceGroups/übersee")
    body = {
        "location": "westeurope",
        "properties": {"vmId": "5c1e4c2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b", "vmUuid": "HW", "clientPublicKey": ""},
    }
    body["properties"]["clientPublicKey"] = identity.public_key_b64(identity.new_key())
    response = ArmClient(token).put(f"{machine_path(subscription, 'Übersee', 'vm')}?{API}", body)
    assert response.status_code == 403, response.content
    assert not ResourceGroup.objects.get(name="Übersee").machines.exists()
