"""Device-code sign-in in Chromium: the agent prints a code, a person approves it on /devicelogin, the agent ends."""

from __future__ import annotations

import pytest

from machines.models import Machine
from tests.agent import conftest as agent_conftest
from tests.agent.conftest import SIGN_IN, OutputReader, connect_args
from tests.browser.conftest import SCREENSHOTS

# The agent tests' fixtures, used here too.
make_agent = agent_conftest.make_agent
resource_group = agent_conftest.resource_group
db_lock = agent_conftest.db_lock

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


@pytest.fixture
def portal_page(browser, tls_live_server):
    """A page on the TLS live server (the portal's own CA is not in Chromium's store, so HTTPS errors are ignored)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, ignore_https_errors=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def _sign_in_and_enter(page, url: str, code: str) -> None:
    page.goto(url)
    assert "/accounts/login/" in page.url  # /devicelogin needs a session
    page.fill("#id_username", "admin")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url(url)
    page.fill("#id_code", code.lower())
    page.click("#device-code-next")
    page.wait_for_url(f"{url}/confirm")


def test_approving_the_printed_code_in_the_browser_lets_the_agent_finish(
    portal_page, settings, make_agent, subscription, tenant, resource_group, admin_user
):
    settings.ARC_DEVICE_CODE_INTERVAL_SECONDS = 1
    agent = make_agent(AZCMAGENT_NO_SERVICE="1")
    reader = OutputReader(agent.popen(*connect_args(subscription, tenant)))
    match = reader.wait_for(SIGN_IN)
    page = portal_page
    _sign_in_and_enter(page, match["url"], match["code"])
    assert page.locator("#device-machine").inner_text() == "web-01"
    assert page.locator("#device-resource-group").inner_text() == "arc-servers"
    assert page.locator("#device-ip").inner_text() == "127.0.0.1"
    assert page.locator("#device-user-code").inner_text() == match["code"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "device-login-confirm.png"), full_page=True)
    page.click("#device-approve")
    page.locator("#device-result").wait_for()
    assert "You have signed in" in page.locator("#device-result").inner_text()
    assert reader.finish(timeout=30) == 0, reader.text
    assert "Successfully Onboarded Resource to Azure" in reader.text
    assert Machine.objects.get(name="web-01").onboarded_by == "admin"


def test_denying_in_the_browser_makes_connect_exit_41(
    portal_page, settings, make_agent, subscription, tenant, resource_group, admin_user
):
    settings.ARC_DEVICE_CODE_INTERVAL_SECONDS = 1
    agent = make_agent(AZCMAGENT_NO_SERVICE="1")
    reader = OutputReader(agent.popen(*connect_args(subscription, tenant)))
    match = reader.wait_for(SIGN_IN)
    _sign_in_and_enter(portal_page, match["url"], match["code"])
    portal_page.click("#device-deny")
    portal_page.locator("#device-result").wait_for()
    assert reader.finish(timeout=30) == 41, reader.text
    assert not Machine.objects.exists()
