"""The engine's rows are the ARM API's resources: for every machine, extension, resource group and subscription,
``id``, ``properties``, ``tags`` and ``identity`` equal what the ARM GET of that resource answers.

The ARM views derive the status at the real clock's time, so this fleet is seeded relative to the real clock and
the engine runs at the same instant (the seed's ages are minutes away from every status threshold)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from machines.models import Machine
from tests.armclient import API, RG_API
from tests.machines.graph.fleet import seed_fleet

pytestmark = pytest.mark.django_db
SUBSCRIPTIONS_API = "api-version=2022-12-01"


@pytest.fixture
def live_fleet(subscription):
    now = timezone.now()
    fleet = seed_fleet(subscription=subscription, now=now)
    # Every member the ARM serializer can print, including empty ones it must leave out.
    Machine.objects.filter(name="web-01").update(
        vm_uuid="4C4C4544-0042", client_public_key="MIIBIjAN", display_name="Web one", machine_fqdn="web-01.corp",
        dns_fqdn="web-01.dns", ad_fqdn="", os_version="10.0.2", os_edition="Server", mssql_discovered="true",
        status="Connected", last_status_change=now - timezone.timedelta(hours=3),
        extra_properties={
            "locationData": {"name": "Paris", "city": None, "countryOrRegion": "FR"},
            "osProfile": {"linuxConfiguration": {"patchSettings": {"assessmentMode": "ImageDefault"}}},
            "cloudMetadata": {"provider": "N/A"}, "agentUpgrade": {"enableAutomaticUpgrade": False},
            "parentClusterResourceId": "", "privateLinkScopeResourceId": None, "identityKeyStore": "Default",
            "tpmEkCertificate": "AAAA", "licenseProfile": {"esuProfile": {}}, "serviceStatuses": {},
            "agentConfiguration": {"proxyUrl": "http://proxy:3128"},
        },
    )  # fmt: skip
    return fleet, now


def engine(now, query: str) -> dict[str, dict]:
    from machines.graph.executor import resource_graph_query
    from machines.graph.visibility import EVERYTHING

    result = resource_graph_query(query=query, scopes=EVERYTHING, now=now, top=1000)
    return {row["id"]: row for row in result.objects()}


def test_machines_match_the_arm_get(live_fleet, arm):
    fleet, now = live_fleet
    rows = engine(now, "Resources | where type == 'microsoft.hybridcompute/machines' | project id, name, type,"
                       " location, kind, properties, tags, identity")  # fmt: skip
    assert len(rows) == len(fleet.machines)
    for machine in Machine.objects.all():
        response = arm.get(f"{fleet.machine_id(machine)}?{API}")
        assert response.status_code == 200
        body = response.json()
        row = rows[body["id"]]  # the engine's id is the ARM API's id
        assert row["properties"] == body["properties"], machine.name
        assert row["tags"] == body["tags"]
        assert row["identity"] == body.get("identity")
        assert (row["name"], row["location"], row["type"]) == (body["name"], body["location"], body["type"].lower())
        assert row["kind"] == body.get("kind", "")
    web = rows[fleet.machine_id(Machine.objects.get(name="web-01"))]["properties"]
    assert "adFqdn" not in web and "parentClusterResourceId" not in web and web["locationData"]["city"] is None


def test_extensions_match_the_arm_get(live_fleet, arm):
    fleet, now = live_fleet
    rows = engine(now, "Resources | where type == 'microsoft.hybridcompute/machines/extensions' | project id, name,"
                       " location, properties, tags")  # fmt: skip
    assert len(rows) == len(fleet.extensions)
    for extension in fleet.extensions.values():
        body = arm.get(f"{fleet.extension_id(extension)}?{API}").json()
        row = rows[body["id"]]
        assert row["properties"] == body["properties"], extension.name
        assert (row["name"], row["location"], row["tags"]) == (body["name"], body["location"], body["tags"])


def test_groups_and_subscriptions_match_the_arm_get(live_fleet, arm):
    fleet, now = live_fleet
    rows = engine(now, "ResourceContainers | project id, name, properties, tags, location")
    for group in fleet.groups.values():
        path = f"/subscriptions/{group.subscription.subscription_id}/resourceGroups/{group.name}"
        body = arm.get(f"{path}?{RG_API}").json()
        row = rows[body["id"]]
        assert (row["properties"], row["tags"], row["name"], row["location"]) == (
            body["properties"], body["tags"], body["name"], body["location"],
        )  # fmt: skip
    for subscription in fleet.subscriptions:
        body = arm.get(f"/subscriptions/{subscription.subscription_id}?{SUBSCRIPTIONS_API}").json()
        row = rows[body["id"]]
        assert row["name"] == body["displayName"]
        assert row["properties"] == {"state": body["state"], "subscriptionPolicies": body["subscriptionPolicies"]}


def test_status_and_its_change_time_match_the_machine_list(live_fleet, arm):
    fleet, now = live_fleet
    rows = engine(now, "Resources | where type =~ 'Microsoft.HybridCompute/machines' | project id,"
                       " s = tostring(properties.status), t = todatetime(properties.lastStatusChange)")  # fmt: skip
    sub = fleet.subscriptions[0].subscription_id
    listed = arm.get(f"/subscriptions/{sub}/providers/Microsoft.HybridCompute/machines?{API}").json()["value"]
    for body in listed:
        assert rows[body["id"]]["s"] == body["properties"]["status"]
        assert rows[body["id"]]["t"][:23] == body["properties"]["lastStatusChange"][:23]
