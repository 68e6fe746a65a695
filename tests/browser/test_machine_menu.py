"""The machine's resource menu in Chromium: each entry swaps the page in place (no reload) and pushes its URL; a reload
of that URL gives the same page in full; Back returns to the previous entry. Screenshots: var/screenshots/menu-*.png."""

import re

import pytest
from playwright.sync_api import expect

from tests.machines.factories import MachineFactory, MachineTagFactory, ResourceGroupFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_resource_menu_navigates_in_page_and_survives_a_reload(signed_in_page, live_server, subscription, screenshot):
    page = signed_in_page
    group = ResourceGroupFactory(subscription=subscription, name="rg-menu")
    machine = MachineFactory(resource_group=group, name="web-1", detected_properties={"manufacturer": "QEMU"})
    MachineTagFactory(machine=machine, key="env", value="prod")

    page.goto(live_server.url + machine.get_absolute_url())
    menu = page.get_by_role("navigation", name="web-1 resource menu")
    expect(page.get_by_role("heading", name="web-1 | Overview")).to_be_visible()
    expect(menu.locator("a.active")).to_have_text("Overview")
    expect(menu).to_contain_text("Settings")
    labels = menu.locator("a").all_inner_texts()
    assert labels[0] == "Overview" and "Tags" in labels and "Properties" in labels
    assert "Activity log" in labels and "Access control (IAM)" in labels and "Locks" in labels
    screenshot("menu-overview")

    # In-page navigation: the document stays (a marker set on window survives), the URL and title follow.
    page.evaluate("window.__stayed = true")
    menu.get_by_role("link", name="Tags").click()
    expect(page.get_by_role("heading", name="web-1 | Tags")).to_be_visible()
    page.wait_for_url(re.compile(r"/machines/web-1/tags$"))
    expect(page).to_have_title("web-1 | Tags · ArcPortal")
    assert page.evaluate("window.__stayed === true")
    expect(menu.locator("a.active")).to_have_text("Tags")
    expect(page.locator("#machine-tags .tag-list")).to_contain_text("env: prod")
    expect(page.locator(".sidenav")).to_have_count(1)  # the portal chrome is not duplicated
    screenshot("menu-tags")

    menu.get_by_role("link", name="Properties").click()
    expect(page.get_by_role("heading", name="web-1 | Properties")).to_be_visible()
    assert page.evaluate("window.__stayed === true")
    expect(page.locator(".resource-blade")).to_contain_text("QEMU")

    # Reload: the same page, in full, from its own URL.
    page.reload()
    expect(page.get_by_role("heading", name="web-1 | Properties")).to_be_visible()
    assert page.evaluate("window.__stayed === undefined")
    expect(page.locator(".sidenav")).to_have_count(1)
    expect(page.get_by_role("navigation", name="web-1 resource menu").locator("a.active")).to_have_text("Properties")
    screenshot("menu-properties-reloaded")

    # Back: the previous entry again.
    page.go_back()
    expect(page.get_by_role("heading", name="web-1 | Tags")).to_be_visible()
    page.wait_for_url(re.compile(r"/machines/web-1/tags$"))

    # Tags edited on the Tags page stay on it.
    tags = page.locator("#machine-tags")
    tags.get_by_role("link", name="Edit").click()
    tags.locator("#id_tags-1-name").fill("owner")
    tags.locator("#id_tags-1-value").fill("ops")
    tags.get_by_role("button", name="Save").click()
    expect(tags.locator(".tag-list")).to_contain_text("owner: ops")
    assert page.url.endswith("/machines/web-1/tags")
