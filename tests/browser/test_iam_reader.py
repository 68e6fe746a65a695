"""A Reader in Chromium (issue 13): signed in through the real login form, it sees its resource group's machine
without any write command, and the machine's Access control (IAM) page shows its Reader assignment as inherited
from the resource group, without + Add or Remove. Screenshots: var/screenshots/iam-reader-*.png."""

import pytest
from playwright.sync_api import expect

from arcportal import authz
from identity.role_assignments import role_assignment_create
from identity.tokens import user_object_id
from tests.machines.factories import MachineFactory, ResourceGroupFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_reader_has_no_write_buttons_and_sees_its_inherited_assignment(
    page, live_server, subscription, django_user_model, screenshot
):
    group = ResourceGroupFactory(subscription=subscription, name="rg-read")
    machine = MachineFactory(resource_group=group, name="web-r")
    MachineFactory(resource_group=ResourceGroupFactory(subscription=subscription, name="rg-hidden"), name="web-h")
    rita = django_user_model.objects.create_user(username="rita", password="pw-rita-123")
    role_assignment_create(
        scope=group.arm_id,
        role_definition_id=authz.ROLES_BY_NAME[authz.READER].id,
        principal_id=user_object_id(rita),
        principal_kind="user",
    )

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "rita")
    page.fill("#id_password", "pw-rita-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    commands = page.get_by_role("toolbar", name="Machines commands")
    expect(page.get_by_role("link", name="web-r")).to_be_visible()
    expect(page.get_by_role("link", name="web-h")).to_have_count(0)
    for name in ("Add", "Assign tags", "Delete"):
        expect(commands.get_by_text(name, exact=True)).to_have_count(0)
    expect(commands.get_by_text("Export to CSV")).to_be_visible()
    screenshot("iam-reader-list")

    page.goto(live_server.url + machine.get_absolute_url())
    expect(page.get_by_role("heading", name="web-r | Overview")).to_be_visible()
    expect(page.get_by_role("toolbar", name="Machine commands").get_by_text("Delete")).to_have_count(0)
    page.get_by_role("navigation", name="web-r resource menu").get_by_role("link", name="Access control (IAM)").click()
    expect(page.get_by_role("heading", name="web-r | Access control (IAM)")).to_be_visible()
    row = page.locator("#role-assignments tbody tr").filter(has_text="rita")
    expect(row).to_contain_text("Reader")
    expect(row).to_contain_text("Resource group (Inherited)")
    expect(row.get_by_role("button", name="Remove")).to_have_count(0)
    expect(page.get_by_text("+ Add role assignment")).to_have_count(0)
    expect(page.locator("#check option", has_text="web-h")).to_have_count(0)  # a hidden machine's identity
    page.select_option("#check", label="rita (User)")
    page.get_by_role("button", name="Check access").click()
    expect(page.locator("#check-result")).to_contain_text("rita: Reader (Resource group (Inherited))")
    screenshot("iam-reader-inherited")
