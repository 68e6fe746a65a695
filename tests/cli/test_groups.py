"""``az group create/list/show/delete`` against the portal: each command's output checked, and the portal's state."""

from __future__ import annotations

from machines.models import ResourceGroup


def test_group_create_list_show_delete(az, subscription):
    created = az.json("group", "create", "--name", "rg-cli", "--location", "eastus", "--tags", "env=dev", "team=ops")
    assert created["id"] == f"/subscriptions/{subscription.subscription_id}/resourceGroups/rg-cli"
    assert created["location"] == "eastus" and created["tags"] == {"env": "dev", "team": "ops"}
    assert created["properties"]["provisioningState"] == "Succeeded"
    assert ResourceGroup.objects.get(subscription=subscription, name="rg-cli").tags == {"env": "dev", "team": "ops"}

    az.json("group", "create", "--name", "rg-other", "--location", "westeurope")
    listed = az.json("group", "list")
    assert sorted((g["name"], g["location"]) for g in listed) == [("rg-cli", "eastus"), ("rg-other", "westeurope")]
    assert [g["name"] for g in az.json("group", "list", "--tag", "env=dev")] == ["rg-cli"]

    shown = az.json("group", "show", "--name", "RG-CLI")  # names are case-insensitive, as in Azure
    assert shown["name"] == "rg-cli" and shown["type"] == "Microsoft.Resources/resourceGroups"
    assert az.run("group", "exists", "--name", "rg-cli").stdout.strip() == "true"

    assert az.run("group", "delete", "--name", "rg-cli", "--yes").stdout.strip() == ""
    assert not ResourceGroup.objects.filter(name="rg-cli").exists()
    assert az.run("group", "exists", "--name", "rg-cli").stdout.strip() == "false"
    assert "ResourceGroupNotFound" in az.fails("group", "show", "--name", "rg-cli")
    assert [g["name"] for g in az.json("group", "list")] == ["rg-other"]
