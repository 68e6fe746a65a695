"""manage.py onboarding_script: the wizard's script, for automation."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from machines.models import ResourceGroup
from machines.services import resource_group_create
from onboarding.models import ScriptGeneration
from tests.onboarding.test_wizard import post, script_of

pytestmark = pytest.mark.django_db
CORRELATION = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("onboarding_script", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def without_correlation_id(script: str, correlation_id) -> str:
    assert str(correlation_id) in script
    return script.replace(str(correlation_id), "<correlation-id>")


@pytest.mark.parametrize(("os_name", "mode"), [("linux", "single"), ("windows", "single"), ("linux", "scale")])
def test_command_prints_the_wizards_script(portal_client, subscription, os_name, mode):
    resource_group_create(subscription=subscription, name="arc-rg", location="westeurope")
    tags = {"Datacenter": "CH01", "Owner": "Shared Infrastructure Services", "Note": "'; rm -rf ~; '"}
    sp = ["--service-principal-id", "5c1e4c2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b", "--service-principal-secret", "s3'cret"]
    args = [
        "--os", os_name, "--subscription", str(subscription.subscription_id), "--resource-group", "arc-rg",
        "--location", "westeurope", "--proxy", "http://proxy.local:3128",
        *[f"--tag={k}={v}" for k, v in tags.items()],
        *(sp if mode == "scale" else []),
    ]  # fmt: skip
    printed, err = run(*args)
    from_command = ScriptGeneration.objects.get()
    assert str(from_command.correlation_id) in err
    assert from_command.created_by_name == "manage.py onboarding_script"

    data = {
        "subscription": str(subscription.subscription_id),
        "resource_group_mode": "existing",
        "resource_group": "arc-rg",
        "location": "westeurope",
        "os": os_name,
        "connectivity": "proxy",
        "proxy_url": "http://proxy.local:3128",
        "tag_datacenter": "CH01",
        "tag_name": ["Owner", "Note"],
        "tag_value": ["Shared Infrastructure Services", "'; rm -rf ~; '"],
        "step": "tags",
        "action": "next",
    }
    if mode == "scale":
        data.update(sp_mode="manual", service_principal_id=sp[1], service_principal_secret=sp[3])
    shown = script_of(post(portal_client, data, mode=mode))
    from_wizard = ScriptGeneration.objects.exclude(pk=from_command.pk).get()
    assert without_correlation_id(printed, from_command.correlation_id) == without_correlation_id(
        shown, from_wizard.correlation_id
    )
    assert from_command.correlation_id != from_wizard.correlation_id


def test_command_can_create_the_resource_group(subscription):
    printed, _ = run(
        "--os", "linux", "--subscription", str(subscription.subscription_id), "--resource-group", "new-rg",
        "--location", "eastus", "--create-resource-group",
    )  # fmt: skip
    assert ResourceGroup.objects.filter(name="new-rg", location="eastus").exists()
    assert "export resourceGroup='new-rg';" in printed


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--resource-group", "bad name!"], "can only contain"),
        (["--resource-group", "missing-rg"], "could not be found"),
        (["--location", "mars"], "not a supported region"),
        (["--proxy", "http://user@proxy:1"], "proxy server URL"),
        (["--tag", "novalue"], "NAME=VALUE"),
        (["--tag", "a/b=c"], "can't contain"),
        (["--service-principal-id", "nope"], "GUID"),
        (["--service-principal-secret", "x"], "needs --service-principal-id"),
    ],
)
def test_bad_input_is_a_clear_command_error_and_nothing_is_recorded(subscription, extra, message):
    base = {"--os": "linux", "--subscription": str(subscription.subscription_id), "--resource-group": "arc-rg"}
    base["--location"] = "westeurope"
    resource_group_create(subscription=subscription, name="arc-rg", location="westeurope")
    args = [item for pair in base.items() for item in pair] + extra
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert ScriptGeneration.objects.count() == 0


def test_unknown_subscription_is_a_command_error(db):
    with pytest.raises(CommandError, match="could not be found"):
        run(
            "--os", "linux", "--subscription", "00000000-0000-0000-0000-000000000001", "--resource-group", "rg",
            "--location", "westeurope",
        )  # fmt: skip
