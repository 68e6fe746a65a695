"""Tags survive the agent → portal leg exactly: the wizard's ``format_tags`` → the ``--tags`` argument as the agent's
command line reads it → the agent's ``parse_tags`` → the registering ARM PUT → the machine's tags.

(The wizard → script leg is tested with the scripts; the whole trip through a real script in test_installer.py.)
"""

from __future__ import annotations

import uuid

import pytest
from azcmagent import identity
from azcmagent.cli import build_parser, normalize_argv
from azcmagent.tags import parse_tags
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from identity.tokens import issue_user_token
from machines.models import Machine
from machines.services import resource_group_create
from onboarding.quoting import format_tags

pytestmark = pytest.mark.django_db

FORBIDDEN = set("<>%&\\?/\x00")
# Everything the format has to get right: separators, quotes of both kinds, spaces, unicode, shell metacharacters.
CHARACTERS = st.characters(
    blacklist_categories=("Cs", "Cc"), blacklist_characters="".join(FORBIDDEN)
) | st.sampled_from(list(",='\" $`;|-"))
names = st.text(CHARACTERS, min_size=1, max_size=30).filter(lambda s: s.strip() == s and s.strip())
values = st.text(CHARACTERS | st.just("/") | st.just("&"), max_size=40)
tag_sets = st.dictionaries(names, values, max_size=8).filter(lambda d: len({k.casefold() for k in d}) == len(d))

KEY = identity.new_key()


@pytest.fixture
def arm(client, subscription, tenant, admin_user):
    group = resource_group_create(subscription=subscription, name="rg-tags", location="westeurope")
    token = issue_user_token(user=admin_user, tenant_id=str(tenant.tenant_id), issuer="https://testserver").access_token
    return client, group, token


def _agent_reads(argument: str) -> dict[str, str]:
    parser = build_parser()
    argv = ["connect", "--tags", argument, "--resource-group", "rg-tags"]
    return parse_tags(parser.parse_args(normalize_argv(parser, argv)).tags)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tags=tag_sets)
def test_any_tag_set_arrives_on_the_machine_exactly(arm, tags):
    client, group, token = arm
    parsed = _agent_reads(format_tags(tags))
    assert parsed == tags
    name = f"m{uuid.uuid4().hex[:20]}"
    body = {
        "location": "westeurope",
        "tags": parsed,
        "properties": {"vmId": str(uuid.uuid4()), "vmUuid": name, "clientPublicKey": identity.public_key_b64(KEY)},
    }
    response = client.put(
        f"/subscriptions/{group.subscription.subscription_id}/resourceGroups/{group.name}"
        f"/providers/Microsoft.HybridCompute/machines/{name}?api-version=2024-07-10",
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 200, response.content
    assert response.json()["tags"] == tags
    assert response.json()["properties"]["provisioningState"] == "Creating"  # until the certificate is issued
    machine = Machine.objects.get(resource_group=group, name=name)
    assert {t.key: t.value for t in machine.tag_set.all()} == tags
    machine.delete()


def test_the_documented_example_parses():
    assert _agent_reads("Datacenter=CH01,City=Baar,Owner='Shared Infrastructure Services'") == {
        "Datacenter": "CH01",
        "City": "Baar",
        "Owner": "Shared Infrastructure Services",
    }
