"""Extensions and Run command through the portal in Chromium, carried out by a real agent process (``azcmagent
service run``) against the live TLS portal (the e2e fixtures of tests/agentplane/test_agent_e2e.py).

Custom Script for Linux: + Add → settings → Review + create → the grid's status turns Succeeded by itself (polling)
→ details with the script's stdout → Uninstall (confirmed) → gone. Run command: script + parameter → Run → the output
appears when the agent reports. Screenshots: var/screenshots/extensions-*.png and run-command-*.png (the output)."""

import re

import pytest
from playwright.sync_api import expect

from machines.models import Extension, Machine, RunCommand
from tests.agentplane.test_agent_e2e import host, portal  # noqa: F401 (fixtures: the live TLS portal, a real agent)
from tests.browser.conftest import SCREENSHOTS

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "acct-browser-secret"


@pytest.fixture
def tls_page(browser, portal, admin_user):  # noqa: F811
    """A Chromium page signed in to the TLS live server (its portal CA is not in the browser's store)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, ignore_https_errors=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{portal.url}/accounts/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url(f"{portal.url}/")
    yield page
    context.close()


def shot(page, name: str):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_custom_script_through_the_portal_with_a_real_agent(tls_page, portal, host):  # noqa: F811
    page = tls_page
    machine = Machine.objects.get(name="e2e-01")
    page.goto(portal.url + machine.get_absolute_url())
    menu = page.get_by_role("navigation", name="e2e-01 resource menu")
    menu.get_by_role("link", name="Extensions").click()
    expect(page.get_by_role("heading", name="e2e-01 | Extensions")).to_be_visible()
    expect(page.locator("#extension-grid")).to_contain_text("No extensions.")

    page.locator(".commandbar").get_by_role("link", name="Add").click()
    expect(page.locator(".ext-catalogue")).to_contain_text("Custom Script Extension for Windows")
    page.get_by_role("link", name="Next: Custom Script for Linux").click()
    page.fill("#id_command_to_execute", "echo hello-from-the-portal; echo $((6*7))")
    page.fill("#id_protected_settings", f'{{"storageAccountName": "{SECRET}"}}')
    page.get_by_role("button", name="Review + create").click()
    review = page.locator("#review-summary")
    expect(review).to_contain_text("storageAccountName (hidden)")
    expect(review).not_to_contain_text(SECRET)
    shot(page, "extensions-review")
    review.get_by_role("button", name="Create").click()

    expect(page.locator(".message")).to_contain_text("Deployment of Custom Script for Linux 'CustomScript'")
    row = page.locator("#extension-customscript")
    expect(row.locator(".ext-status")).to_have_text("Succeeded", timeout=60_000)  # the grid polls until the report
    for text in ("Microsoft.Azure.Extensions", "2.1"):
        expect(row).to_contain_text(text)
    shot(page, "extensions-succeeded")

    row.get_by_role("link", name="Succeeded").click()
    details = page.locator("#extension-details")
    expect(details.locator(".ext-stdout")).to_contain_text("hello-from-the-portal\n42")
    expect(details.locator(".ext-display-status")).to_contain_text("Provisioning succeeded")
    expect(details).not_to_contain_text(SECRET)
    shot(page, "extensions-details")

    page.get_by_role("link", name="‹ Extensions").click()
    page.locator("#extension-customscript input[type=checkbox]").check()
    page.get_by_role("button", name="Uninstall").click()
    page.locator("#uninstall-dialog").get_by_role("button", name="Yes").click()
    expect(page.locator(".message")).to_contain_text("Uninstalling CustomScript from e2e-01.")
    expect(page.locator("#extension-grid")).to_contain_text("No extensions.", timeout=60_000)
    assert not Extension.objects.exists()
    assert not (host.home / "extensions" / "Microsoft.Azure.Extensions.CustomScript").exists()


def test_run_command_through_the_portal_with_a_real_agent(tls_page, portal, host):  # noqa: F811
    page = tls_page
    machine = Machine.objects.get(name="e2e-01")
    page.goto(portal.url + machine.get_absolute_url())
    page.get_by_role("navigation", name="e2e-01 resource menu").get_by_role("link", name="Run command").click()
    expect(page.get_by_role("heading", name="e2e-01 | Run command")).to_be_visible()
    expect(page.locator("label[for=id_script]")).to_contain_text("Shell script (bash)")
    page.fill("#id_script", 'echo "Hello $WHO from the agent"\necho "secret has ${#TOKEN} chars"\necho warn >&2')
    page.fill("#id_parameters", "WHO=portal")
    page.fill("#id_protected_parameters", "TOKEN=pp-browser-secret")
    page.get_by_role("button", name="Run").click()

    output = page.locator("#run-output")
    page.wait_for_url(re.compile(r"/runcommand/portal-"))
    expect(output).to_have_attribute("data-state", "Succeeded", timeout=60_000)  # polled until the agent reports
    expect(output.locator(".run-stdout")).to_have_text("Hello portal from the agent\nsecret has 17 chars\n")
    expect(output.locator(".run-stderr")).to_have_text("warn\n")
    expect(output.locator(".run-exit-code")).to_have_text("0")
    history = page.locator(".run-history")
    expect(history).to_contain_text(RunCommand.objects.get().name)
    expect(history.locator("tbody tr").first).to_contain_text("Succeeded")  # updated with the output
    expect(page.locator("#run-command-body")).not_to_contain_text("pp-browser-secret")
    shot(page, "run-command-output")  # the test artifact: the output as a person sees it

    page.reload()  # the run has its own URL
    expect(page.locator("#run-output .run-stdout")).to_contain_text("Hello portal from the agent")
