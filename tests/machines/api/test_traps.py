"""Every Django/DRF trap of API-CONTRACT.md §8, and the ARM rules of §3 the SDK depends on.

Requests go through Django's test client with ``enforce_csrf_checks=True`` (so the CSRF trap is live).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from django.test import override_settings

from machines.models import Extension, Machine, MachineTag, ResourceGroup
from tests.armclient import API, RG_API, ArmClient, machine_path, rg_path, sub_path

pytestmark = pytest.mark.django_db

ARM_CONTENT_TYPE = "application/json; charset=utf-8"


def arm_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body["error"]


@pytest.fixture
def group(arm, subscription):
    response = arm.put(f"{rg_path(subscription, 'rg')}?{RG_API}", {"location": "eastus"})
    assert response.status_code == 201
    return ResourceGroup.objects.get(name="rg")


@pytest.fixture
def machine(arm, subscription, group):
    response = arm.put(f"{machine_path(subscription, 'rg', 'vm')}?{API}", {"location": "eastus", "tags": {"a": "1"}})
    assert response.status_code == 200
    return Machine.objects.get(name="vm")


# --- §8.1 HEAD ---------------------------------------------------------------------------------------------


def test_head_on_a_resource_group_is_204_or_404_never_200(arm, subscription, group):
    exists = arm.head(f"{rg_path(subscription, 'rg')}?{RG_API}")
    assert exists.status_code == 204 and exists.content == b""
    assert arm.head(f"{rg_path(subscription, 'RG')}?{RG_API}").status_code == 204
    missing = arm.head(f"{rg_path(subscription, 'nope')}?{RG_API}")
    assert missing.status_code == 404 and missing.content == b""
    assert arm.head(f"/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/x?{RG_API}").status_code == 404


def test_head_without_a_token_is_401(subscription, group):
    assert ArmClient(None).head(f"{rg_path(subscription, 'rg')}?{RG_API}").status_code == 401


# --- §8.2 CSRF ---------------------------------------------------------------------------------------------


def test_writes_need_no_csrf_token(arm, subscription, group, machine):
    # The test client enforces CSRF checks; a cookie-less bearer client must still get through.
    assert arm.patch(f"{rg_path(subscription, 'rg')}?{RG_API}", {"tags": {"x": "y"}}).status_code == 200
    assert arm.patch(f"{machine_path(subscription, 'rg', 'vm')}?{API}", {"tags": {}}).status_code == 200
    assert arm.delete(f"{machine_path(subscription, 'rg', 'vm')}?{API}").status_code == 204


# --- §8.3 no redirects, no trailing slash ------------------------------------------------------------------


def test_no_redirect_and_no_trailing_slash_needed(arm, subscription, group):
    for method, path, body in [
        ("GET", f"{rg_path(subscription, 'rg')}?{RG_API}", None),
        ("PUT", f"{machine_path(subscription, 'rg', 'vm2')}?{API}", {"location": "eastus"}),
        ("PATCH", f"{machine_path(subscription, 'rg', 'vm2')}?{API}", {"tags": {}}),
        ("DELETE", f"{machine_path(subscription, 'rg', 'vm2')}?{API}", None),
    ]:
        response = arm.request(method, path, body)
        assert response.status_code in (200, 201, 204), (method, response.status_code)
        assert "Location" not in response
    with_slash = arm.get(f"{rg_path(subscription, 'rg')}/?{RG_API}")
    assert with_slash.status_code == 200 and "Location" not in with_slash


# --- §8.4 case-insensitive paths ---------------------------------------------------------------------------


def test_paths_match_in_any_case(arm, subscription, group, machine):
    sub = subscription.subscription_id
    for path in [
        f"/subscriptions/{sub}/resourcegroups/rg/providers/Microsoft.HybridCompute/machines/vm",
        f"/SUBSCRIPTIONS/{sub}/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.HYBRIDCOMPUTE/MACHINES/VM",
        f"/subscriptions/{sub}/resourceGroups/rg/providers/microsoft.hybridcompute/Machines/Vm",
    ]:
        response = arm.get(f"{path}?{API}")
        assert response.status_code == 200, path
        assert (
            response.json()["id"]
            == f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.HybridCompute/machines/vm"
        )


def test_percent_encoded_names_are_decoded(arm, subscription):
    response = arm.put(f"{rg_path(subscription, 'my%28rg%29')}?{RG_API}", {"location": "eastus"})
    assert response.status_code == 201
    assert response.json()["name"] == "my(rg)"


def test_portal_pages_still_reverse_with_arm_routes_installed(portal_client):
    from django.urls import reverse

    assert reverse("machines-arm:resource-group-detail", kwargs={"subscriptionId": "s", "resourceGroupName": "r"})
    assert portal_client.get(reverse("onboarding:service-principal-list")).status_code == 200


# --- §8.5/§8.6 ARM JSON on every error ---------------------------------------------------------------------


def test_unknown_route_under_subscriptions_is_arm_json(arm, subscription):
    arm_error(arm.get(f"{sub_path(subscription)}/providers/Microsoft.Nope/things?{API}"), 404, "NotFound")
    arm_error(arm.get(f"{sub_path(subscription)}/resourceGroups/rg/extra/segments/here/x?{API}"), 404, "NotFound")


def test_wrong_method_is_405_arm_json(arm, subscription, group, machine):
    response = arm.request("POST", f"{machine_path(subscription, 'rg', 'vm')}?{API}", {})
    arm_error(response, 405, "MethodNotAllowed")
    assert "PUT" in response["Allow"]
    arm_error(arm.request("PUT", f"{sub_path(subscription)}?{API}", {}), 405, "MethodNotAllowed")
    arm_error(arm.request("DELETE", f"/subscriptions?{API}"), 405, "MethodNotAllowed")


def test_missing_token_is_401_with_arm_body_and_challenge(subscription, group):
    response = ArmClient(None).get(f"{rg_path(subscription, 'rg')}?{RG_API}")
    arm_error(response, 401, "AuthenticationFailed")
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith('Bearer authorization_uri="')
    assert str(subscription.tenant.tenant_id) in challenge and 'error="invalid_token"' in challenge
    assert "insufficient_claims" not in challenge


@pytest.mark.parametrize("token", ["garbage", "a.b.c", ""])
def test_bad_tokens_are_401_never_403(subscription, group, token):
    client = ArmClient(None)
    response = client.get(f"{rg_path(subscription, 'rg')}?{RG_API}", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401
    assert json.loads(response.content)["error"]["code"] in ("InvalidAuthenticationToken", "AuthenticationFailed")


def test_expired_token_is_401(subscription, group, admin_user):
    import datetime as dt

    from django.utils import timezone

    from identity.tokens import issue_user_token

    old = issue_user_token(
        user=admin_user,
        tenant_id=str(subscription.tenant.tenant_id),
        issuer="x",
        now=timezone.now() - dt.timedelta(hours=3),
    ).access_token
    arm_error(ArmClient(old).get(f"{rg_path(subscription, 'rg')}?{RG_API}"), 401, "ExpiredAuthenticationToken")


def test_portal_session_cookie_is_not_an_arm_credential(portal_client, subscription, group):
    response = portal_client.get(f"{rg_path(subscription, 'rg')}?{RG_API}")
    arm_error(response, 401, "AuthenticationFailed")


# --- api-version ---------------------------------------------------------------------------------------------


def test_api_version_is_required_and_must_be_well_formed(arm, subscription, group):
    path = rg_path(subscription, "rg")
    arm_error(arm.get(path), 400, "MissingApiVersionParameter")
    arm_error(arm.get(f"{path}?api-version="), 400, "MissingApiVersionParameter")
    for bad in ("2025", "latest", "2025-13-01", "2025-04-01-beta", "2025-04-01%20"):
        arm_error(arm.get(f"{path}?api-version={bad}"), 400, "InvalidApiVersionParameter")
    for good in ("2025-04-01", "2099-01-31", "2024-07-31-preview"):
        assert arm.get(f"{path}?api-version={good}").status_code == 200, good


def test_missing_api_version_on_a_write_writes_nothing(arm, subscription):
    arm_error(arm.put(rg_path(subscription, "rg-new"), {"location": "eastus"}), 400, "MissingApiVersionParameter")
    assert not ResourceGroup.objects.filter(name="rg-new").exists()


# --- Response format -----------------------------------------------------------------------------------------


def test_responses_are_json_utf8_with_rfc3339_times_whatever_accept_says(arm, subscription, group, machine):
    response = arm.get(f"{machine_path(subscription, 'rg', 'vm')}?{API}", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"] == ARM_CONTENT_TYPE
    body = response.json()
    for value in (body["systemData"]["createdAt"], body["properties"]["lastStatusChange"]):
        assert "T" in value and value.endswith("Z") and " " not in value
    assert body["properties"]["status"] == "AwaitingConnection"
    assert body["tags"] == {"a": "1"}
    assert body["properties"]["mssqlDiscovered"] == "false"  # a string, as the SDK model declares


def test_next_link_honours_forwarded_headers_only_behind_a_trusted_proxy(arm, subscription):
    for name in ("a", "b", "c"):
        arm.put(f"{rg_path(subscription, name)}?{RG_API}", {"location": "eastus"})
    path = f"{sub_path(subscription)}/resourcegroups?{RG_API}"
    forwarded = {"HTTP_X_FORWARDED_HOST": "arc.example.com", "HTTP_X_FORWARDED_PROTO": "https"}
    with override_settings(ARM_PAGE_SIZE=2, ALLOWED_HOSTS=["testserver", "arc.example.com"]):
        untrusted = arm.get(path, **forwarded).json()["nextLink"]
        with override_settings(USE_X_FORWARDED_HOST=True, SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")):
            trusted = arm.get(path, **forwarded).json()["nextLink"]
            second = arm.get(trusted.replace("https://arc.example.com", ""), **forwarded).json()
    assert untrusted.startswith("http://testserver/subscriptions/")
    assert trusted.startswith("https://arc.example.com/subscriptions/") and "$skiptoken=2" in trusted
    assert [g["name"] for g in second["value"]] == ["c"] and "nextLink" not in second


def test_bad_skiptoken_is_400(arm, subscription):
    arm_error(arm.get(f"{sub_path(subscription)}/resourcegroups?{RG_API}&$skiptoken=abc"), 400, "InvalidSkipToken")


# --- Bad input: specific 4xx codes, nothing written ------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        ("", "application/json"),
        ("{not json", "application/json"),
        ("[1, 2]", "application/json"),
        ('"x"', "text/plain"),
    ],
)
def test_bad_or_empty_json_body_is_invalid_request_content(arm, subscription, group, raw, content_type):
    response = arm.request("PUT", f"{machine_path(subscription, 'rg', 'vm')}?{API}", raw=raw, content_type=content_type)
    arm_error(response, 400, "InvalidRequestContent")
    response = arm.request("PUT", f"{rg_path(subscription, 'rg2')}?{RG_API}", raw=raw, content_type=content_type)
    arm_error(response, 400, "InvalidRequestContent")
    assert not Machine.objects.exists()
    assert not ResourceGroup.objects.filter(name="rg2").exists()


@pytest.mark.parametrize(
    ("path_name", "body", "code"),
    [
        ("vm", {}, "LocationRequired"),
        ("vm", {"location": ""}, "LocationRequired"),
        ("vm", {"location": "atlantis"}, "LocationNotAvailableForResourceType"),
        ("bad name!", {"location": "eastus"}, "InvalidResourceName"),
        ("x" * 55, {"location": "eastus"}, "InvalidResourceName"),
        ("vm", {"location": "eastus", "tags": {"a/b": "x"}}, "InvalidTagNameCharacters"),
        ("vm", {"location": "eastus", "tags": {"k": "v" * 257}}, "InvalidTagValueLength"),
        ("vm", {"location": "eastus", "tags": {"k": 1}}, "InvalidTagValue"),
        ("vm", {"location": "eastus", "tags": {f"t{i}": "v" for i in range(51)}}, "TooManyTags"),
        ("vm", {"location": "eastus", "tags": {"Env": "a", "env": "b"}}, "DuplicateTagName"),
        ("vm", {"location": "eastus", "tags": ["a"]}, "InvalidTag"),
        ("vm", {"location": "eastus", "kind": "Mainframe"}, "InvalidRequestContent"),
        ("vm", {"location": "eastus", "properties": {"vmId": "not-a-guid"}}, "InvalidRequestContent"),
        ("vm", {"location": "eastus", "properties": {"osName": "plan9"}}, "InvalidOsName"),
        ("vm", {"location": "eastus", "properties": "x"}, "InvalidRequestContent"),
    ],
)
def test_invalid_machine_puts_get_specific_codes_and_write_nothing(arm, subscription, group, path_name, body, code):
    response = arm.put(f"{machine_path(subscription, 'rg', path_name)}?{API}", body)
    arm_error(response, 400, code)
    assert not Machine.objects.exists()
    assert not MachineTag.objects.exists()


@pytest.mark.parametrize(
    ("name", "body", "code"),
    [
        ("rg-x", {}, "LocationRequired"),
        ("rg-x", {"location": "mars"}, "LocationNotAvailableForResourceGroup"),
        ("ends-with-dot.", {"location": "eastus"}, "InvalidResourceGroup"),
        ("has space", {"location": "eastus"}, "InvalidResourceGroup"),
        ("rg-x", {"location": "eastus", "tags": {"a%b": "1"}}, "InvalidTagNameCharacters"),
    ],
)
def test_invalid_resource_group_puts_get_specific_codes_and_write_nothing(arm, subscription, name, body, code):
    arm_error(arm.put(f"{rg_path(subscription, name)}?{RG_API}", body), 400, code)
    assert not ResourceGroup.objects.exists()


def test_bad_patch_changes_nothing(arm, subscription, group, machine):
    response = arm.patch(f"{machine_path(subscription, 'rg', 'vm')}?{API}", {"tags": {"a?": "1"}})
    arm_error(response, 400, "InvalidTagNameCharacters")
    assert {t.key: t.value for t in MachineTag.objects.all()} == {"a": "1"}
    arm_error(arm.patch(f"{machine_path(subscription, 'rg', 'vm')}?{API}", raw=""), 400, "InvalidRequestContent")


def test_existing_group_in_another_location_is_409(arm, subscription, group):
    arm_error(
        arm.put(f"{rg_path(subscription, 'rg')}?{RG_API}", {"location": "westus"}), 409, "InvalidResourceGroupLocation"
    )
    assert ResourceGroup.objects.get(name="rg").location == "eastus"


def test_put_resource_group_is_201_then_200(arm, subscription):
    assert arm.put(f"{rg_path(subscription, 'g')}?{RG_API}", {"location": "eastus"}).status_code == 201
    assert arm.put(f"{rg_path(subscription, 'G')}?{RG_API}", {"location": "East US"}).status_code == 200
    assert ResourceGroup.objects.count() == 1


def test_machine_put_is_200_even_when_it_creates(arm, subscription, group):
    assert arm.put(f"{machine_path(subscription, 'rg', 'new')}?{API}", {"location": "eastus"}).status_code == 200


def test_read_only_members_sent_by_clients_are_ignored(arm, subscription, group):
    body = {
        "location": "eastus",
        "id": "/somewhere/else",
        "name": "other",
        "type": "x",
        "properties": {"provisioningState": "Failed", "status": "Connected", "lastStatusChange": "yesterday"},
    }
    response = arm.put(f"{machine_path(subscription, 'rg', 'vm')}?{API}", body)
    assert response.status_code == 200
    assert response.json()["name"] == "vm"
    assert response.json()["properties"]["provisioningState"] == "Succeeded"
    assert response.json()["properties"]["status"] == "AwaitingConnection"


def test_resources_under_a_missing_group_are_resource_group_not_found(arm, subscription):
    arm_error(arm.get(f"{machine_path(subscription, 'ghost', 'vm')}?{API}"), 404, "ResourceGroupNotFound")
    arm_error(
        arm.put(f"{machine_path(subscription, 'ghost', 'vm')}?{API}", {"location": "eastus"}),
        404,
        "ResourceGroupNotFound",
    )
    arm_error(arm.delete(f"{machine_path(subscription, 'ghost', 'vm')}?{API}"), 404, "ResourceGroupNotFound")
    arm_error(arm.delete(f"{rg_path(subscription, 'ghost')}?{RG_API}"), 404, "ResourceGroupNotFound")
    arm_error(arm.get(f"/subscriptions/nope/resourcegroups?{RG_API}"), 404, "SubscriptionNotFound")


def test_extension_rules(arm, subscription, group, machine):
    ext = f"{machine_path(subscription, 'rg', 'vm')}/extensions/custom"
    arm_error(
        arm.get(f"{machine_path(subscription, 'rg', 'ghost')}/extensions/custom?{API}"), 404, "ParentResourceNotFound"
    )
    arm_error(
        arm.put(f"{machine_path(subscription, 'rg', 'ghost')}/extensions/custom?{API}", {}),
        404,
        "ParentResourceNotFound",
    )
    arm_error(arm.get(f"{ext}?{API}"), 404, "ResourceNotFound")
    created = arm.put(
        f"{ext}?{API}",
        {"location": "eastus", "properties": {"publisher": "p", "type": "t", "protectedSettings": {"pw": "hunter2"}}},
    )
    # The machine has no agent (not Connected): the operation is Failed at once, with the reason, asynchronously.
    assert created.status_code == 202
    assert created.json()["properties"]["provisioningState"] == "Failed"
    assert created["Retry-After"] == "1" and "/operationResults/" in created["Location"]
    url = urlsplit(created["Azure-AsyncOperation"])
    status = arm.get(f"{url.path}?{url.query}")
    assert status.json()["status"] == "Failed" and status.json()["error"]["code"] == "MachineNotConnected"
    assert b"hunter2" not in created.content and b"protectedSettings" not in created.content
    assert "hunter2" not in Extension.objects.get().protected_settings_encrypted
    assert arm.delete(f"{ext}?{API}").status_code == 200
    assert arm.delete(f"{ext}?{API}").status_code == 204
    assert arm.delete(f"{machine_path(subscription, 'rg', 'ghost')}/extensions/custom?{API}").status_code == 204


def test_deleting_a_machine_deletes_its_extensions(arm, subscription, group, machine):
    arm.put(f"{machine_path(subscription, 'rg', 'vm')}/extensions/e?{API}", {"properties": {"type": "t"}})
    assert Extension.objects.count() == 1
    assert arm.delete(f"{machine_path(subscription, 'rg', 'vm')}?{API}").status_code == 204
    assert not Extension.objects.exists()


def test_nul_characters_are_refused_up_front(arm, subscription, group):
    path = f"{machine_path(subscription, 'rg', 'vm')}?{API}"
    arm_error(arm.put(path, {"location": "eastus", "tags": {"k": "a\x00b"}}), 400, "InvalidRequestContent")
    arm_error(
        arm.put(path, {"location": "eastus", "properties": {"detectedProperties": {"\x00": "x"}}}),
        400,
        "InvalidRequestContent",
    )
    arm_error(arm.get(f"{machine_path(subscription, 'rg', 'v%00m')}?{API}"), 400, "InvalidRequestUri")
    assert not Machine.objects.exists()


def test_client_request_id_is_echoed(arm, subscription, group):
    response = arm.get(f"{rg_path(subscription, 'rg')}?{RG_API}", HTTP_X_MS_CLIENT_REQUEST_ID="abc-123")
    assert response["x-ms-client-request-id"] == "abc-123"
    assert response["x-ms-request-id"]


@pytest.mark.parametrize(("flag", "trusted"), [("true", True), ("", False)])
def test_proxy_headers_are_trusted_only_with_django_behind_tls_proxy(flag, trusted):
    """The settings that make nextLink honour X-Forwarded-* are switched on by DJANGO_BEHIND_TLS_PROXY alone."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "DJANGO_BEHIND_TLS_PROXY": flag, "DJANGO_SETTINGS_MODULE": "arcportal.settings_test"}
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.USE_X_FORWARDED_HOST, getattr(settings, 'SECURE_PROXY_SSL_HEADER', None))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == ("True ('HTTP_X_FORWARDED_PROTO', 'https')" if trusted else "False None")
