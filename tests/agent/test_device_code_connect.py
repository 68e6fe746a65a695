"""``azcmagent connect`` without a service principal: device-code sign-in, approved or denied on the portal."""

from __future__ import annotations

import pytest

from identity.device_codes import device_code_approve, device_code_deny
from identity.models import DeviceCode
from machines.models import Machine
from tests.agent.conftest import SIGN_IN, OutputReader, connect_args

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _fast_polling(settings):
    settings.ARC_DEVICE_CODE_INTERVAL_SECONDS = 1


def test_connect_waits_for_approval_then_onboards_as_the_approving_user(
    tls_live_server, make_agent, subscription, tenant, resource_group, admin_user
):
    agent = make_agent(AZCMAGENT_NO_SERVICE="1")
    reader = OutputReader(agent.popen(*connect_args(subscription, tenant)))
    match = reader.wait_for(SIGN_IN)
    assert match["url"] == f"{tls_live_server.url}/devicelogin"
    record = DeviceCode.objects.get(user_code=match["code"])
    assert (record.machine_name, record.resource_group) == ("web-01", "arc-servers")
    assert record.subscription_id == str(subscription.subscription_id) and record.requesting_ip == "127.0.0.1"
    assert reader.process.poll() is None, "the agent waits for the approval"
    device_code_approve(device_code_id=record.pk, user=admin_user)
    assert reader.finish() == 0, reader.text
    assert "Successfully Onboarded Resource to Azure" in reader.text
    machine = Machine.objects.get(name="web-01")
    assert machine.status == "Connected"
    assert (machine.onboarding_method, machine.onboarded_by) == ("DeviceCode", "admin")


def test_a_denied_sign_in_exits_41_and_creates_nothing(make_agent, subscription, tenant, resource_group, admin_user):
    agent = make_agent(AZCMAGENT_NO_SERVICE="1")
    reader = OutputReader(agent.popen(*connect_args(subscription, tenant)))
    match = reader.wait_for(SIGN_IN)
    device_code_deny(device_code_id=DeviceCode.objects.get(user_code=match["code"]).pk, user=admin_user)
    assert reader.finish() == 41, reader.text
    assert "AZCM0041" in reader.text
    assert not Machine.objects.exists()
    assert not (agent.home / "agentconfig.json").exists()
