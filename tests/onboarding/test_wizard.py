"""+ Add and the Generate script wizard: tabs, HTMX partials, inline errors, state kept across Next/Previous."""

from __future__ import annotations

import re
from html import unescape

import pytest

from identity.models import ServicePrincipal
from machines.models import ResourceGroup
from machines.services import resource_group_create
from onboarding.models import ScriptGeneration
from onboarding.scripts import ScriptOptions, render_onboarding_script

pytestmark = pytest.mark.django_db
URL = "/portal/add/generate"


@pytest.fixture
def existing_rg(subscription):
    return resource_group_create(subscription=subscription, name="existing-rg", location="westeurope")


def basics(subscription, **overrides) -> dict:
    data = {
        "subscription": str(subscription.subscription_id),
        "resource_group_mode": "new",
        "new_resource_group": "arc-new-rg",
        "resource_group": "",
        "location": "westeurope",
        "os": "linux",
        "connectivity": "public",
        "proxy_url": "",
    }
    data.update(overrides)
    return data


def post(client, data, *, mode="single", htmx=False, **extra):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.post(f"{URL}?mode={mode}", data, **headers, **extra)


def script_of(response) -> str:
    match = re.search(r'<pre class="script" id="onboarding-script">(.*?)</pre>', response.content.decode(), re.S)
    assert match, "no script on the page"
    return unescape(match.group(1))


def hidden(response, name) -> list[str]:
    return [
        unescape(v)
        for v in re.findall(rf'<input type="hidden" name="{name}" value="([^"]*)"', response.content.decode())
    ]


def test_add_page_offers_single_and_multiple_servers(portal_client):
    page = portal_client.get("/portal/add").content.decode()
    assert "Add a single server" in page and "Add multiple servers" in page
    assert page.count("Generate script") == 2
    assert f'href="{URL}?mode=single"' in page and f'href="{URL}?mode=scale"' in page
    assert "Learn more" in page


def test_add_page_needs_a_signed_in_user(client, db):
    assert client.get("/portal/add").status_code == 302
    assert client.get(URL).status_code == 302


def test_wizard_get_shows_basics_as_a_page_and_the_form_alone_for_htmx(portal_client, subscription):
    page = portal_client.get(URL)
    assert b"<html" in page.content and b'id="wizard"' in page.content
    for tab in (b"Basics", b"Tags", b"Download and run script"):
        assert tab in page.content
    partial = portal_client.get(URL, HTTP_HX_REQUEST="true")
    assert b"<html" not in partial.content and b'id="wizard"' in partial.content
    assert "HX-Request" in partial["Vary"]


def test_full_walk_generates_a_script_creates_the_new_rg_and_records_it(portal_client, subscription, admin_user):
    data = basics(subscription, connectivity="proxy", proxy_url="http://proxy.local:3128")
    response = post(portal_client, {**data, "step": "basics", "action": "next"}, htmx=True)
    assert b'name="tag_name"' in response.content and b"<html" not in response.content
    assert not ResourceGroup.objects.filter(name="arc-new-rg").exists()  # created only with the script
    tags = {"tag_datacenter": "CH01", "tag_city": "", "tag_name": ["Owner", "Empty"], "tag_value": ["It's me", ""]}
    response = post(portal_client, {**data, **tags, "step": "tags", "action": "next"}, htmx=True)
    script = script_of(response)
    generation = ScriptGeneration.objects.get()
    assert generation.created_by == admin_user and generation.created_by_name == "admin"
    assert generation.os == "linux" and generation.auth_type == "token"
    assert generation.options["tags"] == {"Datacenter": "CH01", "Owner": "It's me"}
    assert generation.options["resource_group"] == "arc-new-rg" and generation.options["resource_group_created"]
    assert generation.options["proxy_url"] == "http://proxy.local:3128"
    assert ResourceGroup.objects.filter(subscription=subscription, name="arc-new-rg").exists()
    assert f"export correlationId='{generation.correlation_id}';" in script
    assert "proxyUrl='http://proxy.local:3128';" in script
    # The script is exactly what the one rendering function makes from the recorded options.
    options = ScriptOptions(
        os="linux",
        subscription_id=str(subscription.subscription_id),
        resource_group="arc-new-rg",
        location="westeurope",
        proxy_url="http://proxy.local:3128",
        # The form's order (physical tags first); the recorded JSON may not keep key order (PostgreSQL jsonb).
        tags={"Datacenter": "CH01", "Owner": "It's me"},
    )
    assert script == render_onboarding_script(
        options, correlation_id=str(generation.correlation_id), tenant_id=str(subscription.tenant.tenant_id)
    )
    page = response.content.decode()
    assert 'download="OnboardingScript.sh"' in page and "data:application/octet-stream;base64," in page
    assert "root shell" in page and "Copy" in page


def test_download_link_holds_exactly_the_shown_script(portal_client, subscription, existing_rg):
    data = basics(subscription, resource_group_mode="existing", resource_group="existing-rg", os="windows")
    response = post(portal_client, {**data, "step": "tags", "action": "next", "tag_name": "a", "tag_value": "b"})
    import base64

    encoded = re.search(
        r'href="data:application/octet-stream;base64,([^"]+)" download="OnboardingScript.ps1"',
        response.content.decode(),
    )
    assert base64.b64decode(encoded.group(1)).decode() == script_of(response)
    assert "elevated" in response.content.decode()


@pytest.mark.parametrize(
    ("overrides", "field_error"),
    [
        ({"new_resource_group": "bad name!"}, "can only contain letters"),
        ({"new_resource_group": "ends-with-period."}, "can't end with a period"),
        ({"new_resource_group": ""}, "resource group name is required"),
        ({"connectivity": "proxy", "proxy_url": "ftp://proxy:21"}, "proxy server URL must look like"),
        ({"connectivity": "proxy", "proxy_url": "http://user:pw@proxy:3128"}, "proxy server URL must look like"),
        ({"connectivity": "proxy", "proxy_url": "http://proxy:3128/'; rm -rf ~"}, "proxy server URL must look like"),
        ({"connectivity": "proxy", "proxy_url": 'http://"proxy":3128'}, "proxy server URL must look like"),
        ({"connectivity": "proxy", "proxy_url": "http://pro xy:3128"}, "proxy server URL must look like"),
        ({"connectivity": "proxy", "proxy_url": "http://proxy"}, "proxy server URL must look like"),
        ({"connectivity": "proxy", "proxy_url": "http://proxy:99999"}, "between 1 and 65535"),
        ({"connectivity": "proxy", "proxy_url": ""}, "Enter the proxy server URL"),
        ({"resource_group_mode": "existing", "resource_group": ""}, "Select a resource group"),
        ({"resource_group_mode": "existing", "resource_group": "nope"}, "not in this subscription"),
    ],
)
def test_basics_errors_show_inline_on_basics_and_nothing_is_saved(portal_client, subscription, overrides, field_error):
    data = {**basics(subscription, **overrides), "step": "basics", "action": "next"}
    partial, full = post(portal_client, data, htmx=True), post(portal_client, {**data, "step": "tags"})
    assert "<html" not in partial.content.decode() and "<html" in full.content.decode()  # no-JS fallback: full page
    for response in (partial, full):
        page = response.content.decode()
        assert 'name="step" value="basics"' in page
        assert field_error in unescape(page)
        assert 'class="tab active has-error' in page or "tab active has-error" in page
        assert "onboarding-script" not in page
    assert ScriptGeneration.objects.count() == 0
    assert not ResourceGroup.objects.filter(name__in=["bad name!", "arc-new-rg"]).exists()


def test_an_existing_name_for_a_new_rg_is_refused(portal_client, subscription, existing_rg):
    response = post(portal_client, {**basics(subscription, new_resource_group="EXISTING-rg"), "step": "basics"})
    assert "already exists" in response.content.decode()


@pytest.mark.parametrize(
    ("tags", "error"),
    [
        ({"tag_name": ["bad/name"], "tag_value": ["x"]}, "can&#x27;t contain"),
        ({"tag_name": [""], "tag_value": ["orphan value"]}, "Enter a tag name"),
        ({"tag_name": ["City"], "tag_value": ["twice"], "tag_city": "Baar"}, "given twice"),
        ({"tag_name": ["long"], "tag_value": ["x" * 257]}, "longer than 256"),
    ],
)
def test_tag_errors_show_inline_on_tags_and_nothing_is_generated(portal_client, subscription, tags, error):
    data = {**basics(subscription), **tags, "step": "tags", "action": "next"}
    response = post(portal_client, data, htmx=True)
    page = response.content.decode()
    assert 'name="step" value="tags"' in page
    assert error in page
    assert "onboarding-script" not in page
    assert ScriptGeneration.objects.count() == 0
    assert not ResourceGroup.objects.filter(name="arc-new-rg").exists()


def test_a_nul_in_a_tag_is_refused_at_the_edge_and_nothing_is_generated(portal_client, subscription):
    data = {**basics(subscription), "tag_name": ["n"], "tag_value": ["nul\x00"], "step": "tags", "action": "next"}
    response = post(portal_client, data, htmx=True)
    assert response.status_code == 400 and "NUL" in response.content.decode()  # arcportal.textguard (issue 10)
    assert ScriptGeneration.objects.count() == 0


def test_too_many_tags_are_refused(portal_client, subscription):
    names = [f"n{i}" for i in range(51)]
    data = {**basics(subscription), "tag_name": names, "tag_value": ["v"] * 51, "step": "tags", "action": "next"}
    assert "at most 50 tags" in post(portal_client, data).content.decode()
    assert ScriptGeneration.objects.count() == 0


def test_previous_and_next_keep_what_was_entered(portal_client, subscription):
    data = basics(subscription, connectivity="proxy", proxy_url="http://proxy.local:3128", new_resource_group="keep-rg")
    tags_page = post(portal_client, {**data, "step": "basics", "action": "next"}, htmx=True)
    # Basics travel along as hidden fields on the Tags tab.
    assert hidden(tags_page, "new_resource_group") == ["keep-rg"]
    assert hidden(tags_page, "proxy_url") == ["http://proxy.local:3128"]
    carried = {name: hidden(tags_page, name)[0] for name in data if hidden(tags_page, name)}
    tags = {"tag_city": "Zug", "tag_name": ["Owner", "Team"], "tag_value": ["me", "ops"]}
    back = post(portal_client, {**carried, **tags, "step": "tags", "action": "previous"}, htmx=True)
    page = back.content.decode()
    assert 'name="step" value="basics"' in page
    assert 'value="keep-rg"' in page and 'value="http://proxy.local:3128"' in page
    assert hidden(back, "tag_city") == ["Zug"] and hidden(back, "tag_name") == ["Owner", "Team"]
    forward = post(
        portal_client,
        {
            **data,
            "tag_city": "Zug",
            "tag_name": ["Owner", "Team"],
            "tag_value": ["me", "ops"],
            "step": "basics",
            "action": "next",
        },
    )
    page = forward.content.decode()
    assert 'value="Zug"' in page and 'value="Owner"' in page and 'value="ops"' in page


def test_previous_keeps_invalid_input_without_showing_errors(portal_client, subscription):
    data = {**basics(subscription, new_resource_group="bad name!"), "step": "tags", "action": "previous"}
    page = post(portal_client, data).content.decode()
    assert 'value="bad name!"' in page and "can only contain letters" not in page


def test_tag_rows_can_be_added_and_removed(portal_client, subscription):
    data = {**basics(subscription), "tag_name": ["a", "b"], "tag_value": ["1", "2"], "step": "tags"}
    added = post(portal_client, {**data, "action": "add_tag"}, htmx=True).content.decode()
    assert added.count('name="tag_name"') == 3
    removed = post(portal_client, {**data, "action": "remove_tag:0"}, htmx=True).content.decode()
    assert removed.count('name="tag_name"') == 1 and 'value="b"' in removed and 'value="a"' not in removed


def test_going_back_from_the_script_does_not_create_the_rg_twice(portal_client, subscription):
    data = {**basics(subscription), "step": "tags", "action": "next"}
    first = post(portal_client, data)
    assert hidden(first, "resource_group_mode") == ["existing"] and hidden(first, "resource_group") == ["arc-new-rg"]
    carried = {name: hidden(first, name)[0] for name in data if hidden(first, name)}
    again = post(portal_client, {**carried, "step": "tags", "action": "next"})
    assert "onboarding-script" in again.content.decode()
    assert ScriptGeneration.objects.count() == 2
    ids = set(ScriptGeneration.objects.values_list("correlation_id", flat=True))
    assert len(ids) == 2  # every script gets its own correlation id


def test_scale_mode_with_a_manual_app_id_and_pasted_secret(portal_client, subscription):
    data = {
        **basics(subscription),
        "sp_mode": "manual",
        "service_principal_id": "5C1E4C2A-3B4D-4E5F-8A9B-0C1D2E3F4A5B",
        "service_principal_secret": "s3cr3t'; $(touch /tmp/x)",
        "step": "tags",
        "action": "next",
    }
    response = post(portal_client, data, mode="scale")
    script = script_of(response)
    assert "servicePrincipalId='5c1e4c2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b';" in script
    assert "servicePrincipalClientSecret='s3cr3t'\\''; $(touch /tmp/x)';" in script
    generation = ScriptGeneration.objects.get()
    assert generation.auth_type == "principal"
    assert "s3cr3t" not in str(generation.options)
    assert generation.options["service_principal_secret_included"] is True


def test_scale_mode_without_secret_leaves_a_placeholder(portal_client, subscription):
    data = {
        **basics(subscription, os="windows"),
        "sp_mode": "manual",
        "service_principal_id": "5c1e4c2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b",
    }
    script = script_of(post(portal_client, {**data, "step": "tags", "action": "next"}, mode="scale"))
    assert "$ServicePrincipalClientSecret = '<ENTER SECRET HERE>';" in script


def test_scale_mode_creates_a_service_principal_and_puts_its_secret_in_the_script_only(portal_client, subscription):
    data = {**basics(subscription), "sp_mode": "new", "new_service_principal_name": "Arc onboarding", "step": "tags"}
    response = post(portal_client, {**data, "action": "next"}, mode="scale")
    script = script_of(response)
    principal = ServicePrincipal.objects.get(display_name="Arc onboarding")
    assert f"servicePrincipalId='{principal.client_id}';" in script
    secret = re.search(r"servicePrincipalClientSecret='([^']+)';", script).group(1)
    assert secret != "<ENTER SECRET HERE>" and secret not in principal.secret_hash
    generation = ScriptGeneration.objects.get()
    assert secret not in str(generation.options) and generation.options["service_principal_created"] is True
    # Previous then Next uses the same principal instead of creating another one.
    assert hidden(response, "sp_mode") == ["existing"] and hidden(response, "service_principal") == [
        str(principal.client_id)
    ]


def test_scale_mode_needs_a_service_principal(portal_client, subscription):
    data = {**basics(subscription), "sp_mode": "manual", "service_principal_id": "not-a-guid", "step": "basics"}
    page = post(portal_client, {**data, "action": "next"}, mode="scale").content.decode()
    assert "must be a GUID" in page
    data = {**basics(subscription), "sp_mode": "existing", "service_principal": "", "step": "basics"}
    assert (
        "Select a service principal" in post(portal_client, {**data, "action": "next"}, mode="scale").content.decode()
    )


def test_hostile_tag_values_are_quoted_in_the_generated_script(portal_client, subscription):
    data = {
        **basics(subscription),
        "tag_name": ["x"],
        "tag_value": ["'; rm -rf ~; '"],
        "step": "tags",
        "action": "next",
    }
    script = script_of(post(portal_client, data))
    assert "tags='x='\\'''\\'''\\''; rm -rf ~; '\\'''\\'''\\''';" in script


# --- Issue 10 items 5 and 14: the at-scale principal's scope, and its secret never travelling in a form -----------


def all_hidden(response) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', response.content.decode()):
        found.setdefault(name, []).append(unescape(value))
    return found


def test_the_new_service_principal_is_scoped_to_the_chosen_resource_group(portal_client, subscription, existing_rg):
    data = {
        **basics(subscription, resource_group_mode="existing", resource_group="existing-rg"),
        "sp_mode": "new",
        "new_service_principal_name": "Arc onboarding",
        "step": "tags",
        "action": "next",
    }
    assert "onboarding-script" in post(portal_client, data, mode="scale").content.decode()
    principal = ServicePrincipal.objects.get(display_name="Arc onboarding")
    assert principal.scope == existing_rg.arm_id
    assert principal.role == "Azure Connected Machine Onboarding"


def test_a_new_principal_s_secret_is_shown_once_in_an_uncacheable_page_and_never_in_a_form(portal_client, subscription):
    data = {**basics(subscription), "sp_mode": "new", "new_service_principal_name": "Arc onboarding", "step": "tags"}
    response = post(portal_client, {**data, "action": "next"}, mode="scale")
    secret = re.search(r"servicePrincipalClientSecret='([^']+)';", script_of(response)).group(1)
    assert "no-store" in response["Cache-Control"]
    assert all(secret not in value for values in all_hidden(response).values() for value in values)
    assert secret not in str(dict(portal_client.session))

    # Previous and Next again: the same principal, and its secret is not sent back by the browser or kept anywhere.
    carried = {name: values for name, values in all_hidden(response).items() if name not in ("step", "action")}
    back = post(portal_client, {**carried, "step": "script", "action": "previous"}, mode="scale")
    assert "no-store" in back["Cache-Control"] and secret not in back.content.decode()
    again = post(portal_client, {**all_hidden(back), "action": "next"}, mode="scale")
    assert secret not in again.content.decode()
    assert ServicePrincipal.objects.count() == 1
    assert "servicePrincipalClientSecret='<ENTER SECRET HERE>';" in script_of(again)


def test_a_pasted_secret_is_kept_server_side_until_the_script_is_rendered_once(portal_client, subscription):
    pasted = "pasted-Secret-value-0123456789"
    data = {
        **basics(subscription),
        "sp_mode": "manual",
        "service_principal_id": "5c1e4c2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b",
        "service_principal_secret": pasted,
        "step": "basics",
        "action": "next",
    }
    tags_tab = post(portal_client, data, mode="scale")
    assert "no-store" in tags_tab["Cache-Control"]
    assert pasted not in tags_tab.content.decode()  # not in a hidden field, not anywhere in the page
    assert pasted not in str(dict(portal_client.session))  # kept encrypted
    script_tab = post(portal_client, {**all_hidden(tags_tab), "action": "next"}, mode="scale")
    assert f"servicePrincipalClientSecret='{pasted}';" in script_of(script_tab)
    assert "no-store" in script_tab["Cache-Control"]
    # One time: regenerating without pasting it again gives the placeholder.
    back = post(portal_client, {**all_hidden(script_tab), "action": "previous"}, mode="scale")
    again = post(portal_client, {**all_hidden(back), "action": "next"}, mode="scale")
    assert pasted not in again.content.decode()
    assert "servicePrincipalClientSecret='<ENTER SECRET HERE>';" in script_of(again)


def test_the_shown_script_is_html_escaped(portal_client, subscription):
    """The rendered script is a SafeString (shell templates run with autoescape off): the page must escape it, or a
    tag value like this one would run in the portal's origin."""
    data = {**basics(subscription), "tag_name": ["x"], "tag_value": ["</pre><script>window.pwned=1</script>"]}
    response = post(portal_client, {**data, "step": "tags", "action": "next"})
    page = response.content.decode()
    assert "<script>window.pwned=1</script>" not in page
    assert "&lt;/pre&gt;&lt;script&gt;window.pwned=1&lt;/script&gt;" in page
    assert "window.pwned=1" in script_of(response)
