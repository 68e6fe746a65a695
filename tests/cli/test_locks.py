"""``az lock create/list/show/delete`` against the portal's management locks (branch activity), at subscription,
resource-group and machine scope; a lock then refuses ``az group delete`` with ARM's 409 ``ScopeLocked``."""

from __future__ import annotations

from machines.models import ResourceGroup
from tests.machines.factories import MachineFactory, ResourceGroupFactory

MACHINES = "Microsoft.HybridCompute/machines"


def test_lock_create_list_and_a_locked_delete(az, subscription):
    web = ResourceGroupFactory(subscription=subscription, name="rg-web")
    MachineFactory(resource_group=web, name="web-01")
    group_lock = az.json(
        "lock", "create", "--name", "no-delete", "--lock-type", "CanNotDelete",
        "--resource-group", "rg-web", "--notes", "production",
    )  # fmt: skip
    assert group_lock["id"] == f"{web.arm_id}/providers/Microsoft.Authorization/locks/no-delete"
    assert (group_lock["level"], group_lock["notes"]) == ("CanNotDelete", "production")
    machine_lock = az.json(
        "lock", "create", "--name", "read-only", "--lock-type", "ReadOnly",
        "--resource-group", "rg-web", "--resource", "web-01", "--resource-type", MACHINES,
    )  # fmt: skip
    assert (
        machine_lock["id"]
        == f"{web.arm_id}/providers/{MACHINES}/web-01/providers/Microsoft.Authorization/locks/read-only"
    )

    listed = az.json("lock", "list")
    assert sorted((lock["name"], lock["level"]) for lock in listed) == [
        ("no-delete", "CanNotDelete"),
        ("read-only", "ReadOnly"),
    ]
    shown = az.json("lock", "show", "--name", "no-delete", "--resource-group", "rg-web")
    assert shown["id"] == group_lock["id"]

    error = az.fails("group", "delete", "--name", "rg-web", "--yes")
    assert "ScopeLocked" in error and "no-delete" in error
    assert ResourceGroup.objects.filter(pk=web.pk).exists()

    az.run("lock", "delete", "--name", "no-delete", "--resource-group", "rg-web")
    az.run("lock", "delete", "--name", "read-only", "--resource-group", "rg-web", "--resource", "web-01",
           "--resource-type", MACHINES)  # fmt: skip
    assert az.json("lock", "list") == []
    az.run("group", "delete", "--name", "rg-web", "--yes")
    assert not ResourceGroup.objects.filter(pk=web.pk).exists()
