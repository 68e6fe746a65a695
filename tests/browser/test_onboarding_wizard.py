"""+ Add → Generate script in Chromium: the whole wizard for Linux with a proxy and tags, Copy and Download."""

from __future__ import annotations

from pathlib import Path

import pytest

from onboarding.models import ScriptGeneration
from onboarding.scripts import ScriptOptions, render_onboarding_script

pytestmark = pytest.mark.django_db(transaction=True)

HOSTILE_VALUE = '\'; rm -rf ~; $(touch /tmp/pwned) `whoami` "q"'


def test_generate_a_linux_script_with_proxy_and_tags(signed_in_page, live_server, screenshot, subscription, tmp_path):
    page = signed_in_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)

    page.click("nav.sidenav >> text=+ Add")
    page.wait_for_url(f"{live_server.url}/portal/add")
    assert page.locator("h2", has_text="Add a single server").is_visible()
    assert page.locator("h2", has_text="Add multiple servers").is_visible()
    screenshot("onboarding-add")
    page.locator(".add-option", has_text="Add a single server").get_by_role("link", name="Generate script").click()
    page.wait_for_url("**/portal/add/generate?mode=single")
    page.evaluate("window.__sameDocument = true")  # HTMX swaps the form; a full page load would drop this

    # Basics, first with a bad proxy URL: the error shows inline on Basics.
    page.check("input[name=resource_group_mode][value=new]")
    assert not page.locator("#id_resource_group").is_visible()
    page.fill("#id_new_resource_group", "arc-browser-rg")
    page.select_option("#id_location", "westeurope")
    page.check("input[name=os][value=linux]")
    page.check("input[name=connectivity][value=proxy]")
    page.fill("#id_proxy_url", "http://user:secret@proxy.local:3128")
    page.get_by_role("button", name="Next").click()
    error = page.locator(".field-error", has_text="proxy server URL must look like")
    error.wait_for()
    assert page.locator(".tab.active", has_text="Basics").is_visible()
    assert page.locator(".tab.has-error", has_text="Basics").is_visible()
    screenshot("onboarding-wizard-basics-error")
    page.fill("#id_proxy_url", "http://proxy.local:3128")
    screenshot("onboarding-wizard-basics")
    page.get_by_role("button", name="Next").click()

    # Tags: physical location tags and a custom row added with HTMX.
    page.locator(".tab.active", has_text="Tags").wait_for()
    page.fill("#id_tag_datacenter", "CH01")
    page.fill("#id_tag_city", "Baar")
    page.fill("input[name=tag_name] >> nth=0", "Owner")
    page.fill("input[name=tag_value] >> nth=0", "Shared Infrastructure Services")
    page.get_by_role("button", name="Add tag").click()
    page.locator("input[name=tag_name]").nth(1).wait_for()
    page.fill("input[name=tag_name] >> nth=1", "Note")
    page.fill("input[name=tag_value] >> nth=1", HOSTILE_VALUE)
    assert page.input_value("input[name=tag_value] >> nth=0") == "Shared Infrastructure Services"
    screenshot("onboarding-wizard-tags")

    # Previous keeps Basics, Next keeps Tags.
    page.get_by_role("button", name="Previous").click()
    page.locator(".tab.active", has_text="Basics").wait_for()
    assert page.input_value("#id_new_resource_group") == "arc-browser-rg"
    assert page.input_value("#id_proxy_url") == "http://proxy.local:3128"
    page.get_by_role("button", name="Next").click()
    page.locator(".tab.active", has_text="Tags").wait_for()
    assert page.input_value("#id_tag_city") == "Baar"
    assert page.input_value("input[name=tag_value] >> nth=1") == HOSTILE_VALUE
    page.get_by_role("button", name="Next").click()

    # Download and run script.
    script_block = page.locator("#onboarding-script")
    script_block.wait_for()
    assert page.evaluate("window.__sameDocument === true"), "the wizard reloaded the page instead of swapping"
    shown = script_block.text_content()
    assert shown.startswith("#!/usr/bin/env bash")
    assert "proxyUrl='http://proxy.local:3128';" in shown
    assert page.locator(".run-instruction", has_text="root shell").is_visible()
    assert page.locator("dl.summary", has_text="arc-browser-rg (new)").is_visible()
    screenshot("onboarding-wizard-script")

    page.get_by_role("button", name="Copy").click()
    page.locator("#copy-status", has_text="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == shown

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download").click()
    download = download_info.value
    assert download.suggested_filename == "OnboardingScript.sh"
    saved = tmp_path / "OnboardingScript.sh"
    download.save_as(saved)
    assert Path(saved).read_bytes() == shown.encode("utf-8")

    # It is the script of the recorded generation, rendered by the one rendering function.
    generation = ScriptGeneration.objects.get()
    # In the order the form had them (PostgreSQL's jsonb does not keep the recorded key order).
    tags = {"Datacenter": "CH01", "City": "Baar", "Owner": "Shared Infrastructure Services", "Note": HOSTILE_VALUE}
    assert generation.options["tags"] == tags
    options = ScriptOptions(
        os="linux",
        subscription_id=str(subscription.subscription_id),
        resource_group="arc-browser-rg",
        location="westeurope",
        proxy_url="http://proxy.local:3128",
        tags=tags,
    )
    expected = render_onboarding_script(
        options, correlation_id=str(generation.correlation_id), tenant_id=str(subscription.tenant.tenant_id)
    )
    assert shown == expected


def test_multiple_servers_windows_script_with_a_new_service_principal(
    signed_in_page, live_server, screenshot, subscription
):
    from identity.models import ServicePrincipal
    from machines.services import resource_group_create

    resource_group_create(subscription=subscription, name="existing-rg", location="eastus")
    page = signed_in_page
    page.goto(f"{live_server.url}/portal/add/generate?mode=scale")
    page.check("input[name=resource_group_mode][value=existing]")
    page.select_option("#id_resource_group", "existing-rg")
    page.check("input[name=os][value=windows]")
    page.check("input[name=sp_mode][value=new]")
    assert page.locator("#id_new_service_principal_name").is_visible()
    assert not page.locator("#id_service_principal_id").is_visible()
    assert not page.locator("#id_proxy_url").is_visible()  # public endpoint
    page.fill("#id_new_service_principal_name", "Arc onboarding (browser)")
    screenshot("onboarding-wizard-scale-basics")
    page.get_by_role("button", name="Next").click()
    page.locator(".tab.active", has_text="Tags").wait_for()
    page.get_by_role("button", name="Next").click()
    shown = page.locator("#onboarding-script")
    shown.wait_for()
    principal = ServicePrincipal.objects.get(display_name="Arc onboarding (browser)")
    text = shown.text_content()
    assert f"$ServicePrincipalId = '{principal.client_id}';" in text
    assert "$env:AUTH_TYPE = 'principal';" in text
    assert page.locator(".run-instruction", has_text="elevated").is_visible()
    assert page.get_attribute("#download-script", "download") == "OnboardingScript.ps1"
    screenshot("onboarding-wizard-scale-script")


def test_the_wizard_works_without_javascript(browser, live_server, admin_user, subscription, screenshot, tmp_path):
    context = browser.new_context(
        java_script_enabled=False, accept_downloads=True, viewport={"width": 1400, "height": 900}
    )
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", "admin")
        page.fill("#id_password", "correct horse battery")
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        page.goto(f"{live_server.url}/portal/add/generate?mode=single")
        page.check("input[name=resource_group_mode][value=new]")
        page.fill("#id_new_resource_group", "no-js-rg")
        page.get_by_role("button", name="Next").click()
        page.locator(".tab.active", has_text="Tags").wait_for()
        page.get_by_role("button", name="Add tag").click()  # a plain POST answered with the full page
        assert page.locator("input[name=tag_name]").count() == 2
        page.fill("input[name=tag_name] >> nth=0", "Owner")
        page.fill("input[name=tag_value] >> nth=0", "Shared Infrastructure Services")
        page.get_by_role("button", name="Next").click()
        script = page.locator("#onboarding-script")
        script.wait_for()
        shown = script.text_content()
        assert "export resourceGroup='no-js-rg';" in shown
        with page.expect_download() as download_info:
            page.get_by_role("link", name="Download").click()
        saved = tmp_path / "no-js.sh"
        download_info.value.save_as(saved)
        assert saved.read_bytes() == shown.encode("utf-8")
    finally:
        context.close()


def test_a_pasted_secret_is_not_sent_back_and_is_used_once(signed_in_page, live_server, screenshot, subscription):
    """Issue 10 item 14: the pasted secret leaves the page after Basics (kept on the server, encrypted), the wizard's
    responses are never cached, and the script generated first is the only one that holds it."""
    from machines.services import resource_group_create

    resource_group_create(subscription=subscription, name="existing-rg", location="eastus")
    pasted = "pasted-Secret-from-browser-0123"
    page = signed_in_page
    page.goto(f"{live_server.url}/portal/add/generate?mode=scale")
    page.check("input[name=resource_group_mode][value=existing]")
    page.select_option("#id_resource_group", "existing-rg")
    page.check("input[name=sp_mode][value=manual]")
    page.fill("#id_service_principal_id", "5c1e4c2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b")
    page.fill("#id_service_principal_secret", pasted)
    with page.expect_response(lambda r: "/portal/add/generate" in r.url and r.request.method == "POST") as answer:
        page.get_by_role("button", name="Next").click()
    assert "no-store" in answer.value.headers["cache-control"]
    page.locator(".tab.active", has_text="Tags").wait_for()
    assert pasted not in page.content()
    page.get_by_role("button", name="Previous").click()
    page.locator("#secret-kept").wait_for()
    assert page.input_value("#id_service_principal_secret") == "" and pasted not in page.content()
    screenshot("onboarding-wizard-secret-kept")
    page.get_by_role("button", name="Next").click()
    page.locator(".tab.active", has_text="Tags").wait_for()
    page.get_by_role("button", name="Next").click()
    page.locator("#onboarding-script").wait_for()
    assert f"servicePrincipalClientSecret='{pasted}';" in page.locator("#onboarding-script").text_content()
    page.get_by_role("button", name="Previous").click()
    page.locator(".tab.active", has_text="Tags").wait_for()
    page.get_by_role("button", name="Next").click()
    page.locator("#onboarding-script").wait_for()
    assert pasted not in page.content()
    assert "servicePrincipalClientSecret='<ENTER SECRET HERE>';" in page.locator("#onboarding-script").text_content()
