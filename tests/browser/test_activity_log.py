"""The Activity log and Locks in Chromium (issue 13): a lock added on a machine's Locks page is one event on its
Activity log page (menu navigation), with its details as JSON, filters, and a CSV download."""

import pytest

from machines.locks.models import ManagementLock
from tests.machines.factories import MachineFactory, ResourceGroupFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_lock_a_machine_then_read_its_activity_log(signed_in_page, live_server, subscription, screenshot):
    machine = MachineFactory(
        resource_group=ResourceGroupFactory(subscription=subscription, name="rg-web"), name="web01"
    )
    page = signed_in_page
    page.goto(f"{live_server.url}/portal{machine.arm_id}")
    page.get_by_role("link", name="Locks", exact=True).click()
    page.wait_for_url("**/web01/locks")
    page.get_by_role("link", name="Add", exact=True).click()
    page.fill("#id_name", "keep-web01")
    page.select_option("#id_level", "CanNotDelete")
    page.fill("#id_notes", "production server")
    page.get_by_role("button", name="OK").click()
    page.locator(".lock-row", has_text="keep-web01").wait_for()
    screenshot("locks-machine")
    assert ManagementLock.objects.get().level == "CanNotDelete"

    page.get_by_role("link", name="Activity log", exact=True).click()
    page.wait_for_url("**/web01/activitylog")
    row = page.locator(".activity-row", has_text="Microsoft.Authorization/locks/write")
    assert row.locator(".event-caller").inner_text() == "admin"
    assert row.locator(".event-status").inner_text() == "Succeeded"
    row.locator("summary").click()
    detail = row.locator(".event-json")
    detail.wait_for()
    assert '"caller": "admin"' in detail.inner_text() and "keep-web01" in detail.inner_text()
    screenshot("activity-log-machine")

    page.select_option("#id_status", "Failed")
    page.get_by_role("button", name="Apply").click()
    page.get_by_text("No events in this time span.").wait_for()
    page.select_option("#id_status", "")
    page.select_option("#id_timespan", "7d")
    page.get_by_role("button", name="Apply").click()
    page.locator(".activity-row").first.wait_for()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download as CSV").click()
    text = open(download.value.path(), encoding="utf-8").read()  # noqa: SIM115
    assert text.startswith('"Time (UTC)","Operation name","Status"') and "Microsoft.Authorization/locks/write" in text
