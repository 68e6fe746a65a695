"""The Machines blade in Chromium: empty state, resource group creation, list + filters + live refresh, Overview,
tags edited in place, bulk Assign tags and Delete. Screenshots land in var/screenshots/machines-*.png."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from machines.models import Machine, MachineStatusEvent, MachineTag, ResourceGroup
from tests.machines.factories import MachineFactory, MachineTagFactory

pytestmark = pytest.mark.django_db(transaction=True)


def seed(group):
    now = timezone.now()
    fleet = {
        "web-01": now,
        "web-02": now - timedelta(minutes=2),
        "db-01": now - timedelta(hours=3),
        "legacy-01": now - timedelta(days=60),
        "new-01": None,
    }
    machines = {
        name: MachineFactory(
            resource_group=group,
            name=name,
            last_heartbeat_at=beat,
            os_name="windows" if name.startswith("db") else "linux",
            os_sku="Windows Server 2022 Datacenter" if name.startswith("db") else "Ubuntu 22.04",
            computer_name=f"{name}.contoso.local",
        )
        for name, beat in fleet.items()
    }
    MachineTagFactory(machine=machines["web-01"], key="env", value="prod")
    MachineTagFactory(machine=machines["db-01"], key="env", value="prod")
    # db-01 has a week of history: registered 6 days ago, an outage 4–3 days ago, silent for the last 3 hours.
    db = machines["db-01"]
    Machine.objects.filter(pk=db.pk).update(created_at=now - timedelta(days=6))
    history = [
        (6, "AwaitingConnection", "Connected", "Heartbeat"),
        (4, "Connected", "Disconnected", "Status sweep"),
        (3, "Disconnected", "Connected", "Heartbeat"),
    ]
    for days_ago, before, after, reason in history:
        MachineStatusEvent.objects.create(
            machine=db, from_status=before, to_status=after, at=now - timedelta(days=days_ago), reason=reason
        )
    return machines


def test_machines_blade_end_to_end(signed_in_page, live_server, subscription, screenshot, settings):
    page = signed_in_page
    base = live_server.url

    # Empty state on the landing page.
    expect(page.get_by_role("heading", name="No Azure Arc machines to display")).to_be_visible()
    expect(page.locator(".empty a[href='/portal/add']")).to_be_visible()
    screenshot("machines-empty")

    # Create a resource group: a bad name first (specific inline error, nothing saved), then a good one.
    page.get_by_role("link", name="Resource groups").click()
    page.locator(".commandbar").get_by_role("link", name="Create").click()
    page.fill("#id_name", "bad name.")
    page.select_option("#id_location", "westeurope")
    page.fill("#id_tags-0-name", "env")
    page.fill("#id_tags-0-value", "demo")
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".field-error").first).to_contain_text("' ' is not allowed")
    assert not ResourceGroup.objects.exists()
    screenshot("machines-rg-create-error")
    page.fill("#id_name", "rg-browser")
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".message")).to_contain_text("Created resource group 'rg-browser' in West Europe")
    expect(page.locator("table.rg-grid")).to_contain_text("rg-browser")
    group = ResourceGroup.objects.get(name="rg-browser")
    assert group.tags == {"env": "demo"}
    screenshot("machines-rg-list")

    # Machines appear (seeded as the agent would have registered them), with derived statuses and counts.
    machines = seed(group)
    page.get_by_role("link", name="Machines", exact=True).click()
    rows = page.locator("#machine-rows tr")
    expect(rows).to_have_count(5)
    expect(page.locator(f"#machine-{machines['web-01'].pk} .status-cell")).to_have_text("Connected")
    expect(page.locator(f"#machine-{machines['db-01'].pk} .status-cell")).to_have_text("Offline")
    expect(page.locator(f"#machine-{machines['legacy-01'].pk} .status-cell")).to_have_text("Expired")
    expect(page.locator(f"#machine-{machines['new-01'].pk} .status-cell")).to_have_text("")
    expect(page.locator(".counts")).to_contain_text("2 Connected")
    screenshot("machines-list")

    # Filter by status through the pill: the list and the counts narrow to Offline machines.
    page.locator("select[name=status]").select_option("Disconnected")
    page.wait_for_url(re.compile(r"status=Disconnected"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("db-01")
    expect(page.locator(".pill-set")).to_contain_text("Status equals")
    screenshot("machines-filter-offline")

    # Live refresh: the heartbeat comes back and the badge flips without a reload.
    Machine.objects.filter(pk=machines["db-01"].pk).update(last_heartbeat_at=timezone.now())
    settings.ARC_LIST_REFRESH_SECONDS = 1
    page.goto(f"{base}/")
    Machine.objects.filter(pk=machines["web-02"].pk).update(last_heartbeat_at=timezone.now() - timedelta(hours=1))
    expect(page.locator(f"#machine-{machines['web-02'].pk} .status-cell")).to_have_text("Offline", timeout=8000)
    expect(page.locator(".counts")).to_contain_text("1 Offline", timeout=8000)
    # A row the user selected stays selected across refreshes (hx-preserve), and so do the bulk buttons.
    box = page.locator(f"#select-{machines['web-01'].pk}")
    box.check()
    stamp = page.locator(".showing .muted").inner_text()
    expect(page.locator(".showing .muted")).not_to_have_text(stamp, timeout=8000)
    expect(box).to_be_checked()
    expect(page.get_by_role("button", name="Assign tags")).to_be_enabled()
    box.uncheck()
    settings.ARC_LIST_REFRESH_SECONDS = 15

    # Overview of a machine.
    page.get_by_role("link", name="db-01").click()
    expect(page.get_by_role("heading", name="db-01 | Overview")).to_be_visible()
    expect(page.locator(".subtitle")).to_have_text("Machine - Azure Arc")
    expect(page.locator("#machine-status")).to_have_text("Connected")
    expect(page.locator(".essentials")).to_contain_text("db-01.contoso.local")
    expect(page.locator(".timeline svg")).to_be_visible()
    expect(page.locator(".timeline svg rect.band")).to_have_count(3)  # Connected, Offline, Connected
    expect(page.locator(".legend")).to_contain_text("Offline")
    screenshot("machines-detail")

    # Tags edited in place: an invalid name shows an inline error and saves nothing; then a valid edit.
    tags = page.locator("#machine-tags")
    tags.get_by_role("link", name="Edit").click()
    expect(tags.locator("form")).to_be_visible()
    tags.locator("#id_tags-1-name").fill("owner/team")
    tags.locator("#id_tags-1-value").fill("ops")
    tags.get_by_role("button", name="Save").click()
    expect(tags.locator(".field-error")).to_contain_text("can't contain /")
    assert dict(MachineTag.objects.filter(machine=machines["db-01"]).values_list("key", "value")) == {"env": "prod"}
    screenshot("machines-tags-error")
    tags.locator("#id_tags-1-name").fill("owner")
    tags.get_by_role("button", name="Save").click()
    expect(tags.locator(".tag-list")).to_contain_text("owner: ops")
    assert dict(MachineTag.objects.filter(machine=machines["db-01"]).values_list("key", "value")) == {
        "env": "prod",
        "owner": "ops",
    }
    assert page.url.endswith("/machines/db-01")  # edited in place, no navigation
    screenshot("machines-tags-saved")

    # Bulk commands on the list: Assign tags to two machines, then Delete one after typing "delete".
    page.goto(f"{base}/")
    page.locator(f"#select-{machines['web-01'].pk}").check()
    page.locator(f"#select-{machines['web-02'].pk}").check()
    expect(page.locator(".selection-count")).to_have_text("2 selected")
    page.get_by_role("button", name="Assign tags").click()
    dialog = page.locator("#assign-tags-dialog")
    dialog.locator("#id_tag_name").fill("patch-window")
    dialog.locator("#id_tag_value").fill("sunday")
    screenshot("machines-assign-tags")
    dialog.get_by_role("button", name="Assign").click()
    expect(page.locator(".message")).to_contain_text("Assigned tag patch-window=sunday to 2 machines.")
    assert MachineTag.objects.filter(key="patch-window").count() == 2

    page.locator(f"#select-{machines['legacy-01'].pk}").check()
    page.get_by_role("button", name="Delete").click()
    delete = page.locator("#delete-dialog")
    delete.locator("#id_confirm").fill("delete")
    screenshot("machines-delete-dialog")
    delete.get_by_role("button", name="Delete").click()
    expect(page.locator(".message")).to_contain_text("Deleted 1 machine: legacy-01.")
    assert not Machine.objects.filter(name="legacy-01").exists()
    expect(rows).to_have_count(4)

    # Narrow screens: the grid scrolls inside its frame, the command bar and pills wrap.
    page.set_viewport_size({"width": 420, "height": 900})
    page.goto(f"{base}/")
    expect(page.locator(".commandbar")).to_be_visible()
    grid_box = page.locator(".grid-wrap").bounding_box()
    assert grid_box["x"] + grid_box["width"] <= 420
    screenshot("machines-list-narrow")
