"""Property-based run of schemathesis against every endpoint of our own OpenAPI schema (``/api/schema/``: the ARM
plane and the agent plane's certificate endpoint) and of a second, hand-written schema for the planes drf-spectacular
does not describe (``tests/arcportal/planes_schema.py``: identity, heartbeats, failure reports, downloads, health),
in-process over WSGI, on whichever database the run uses (CI: PostgreSQL + Redis, then SQLite).

Bounded (a few examples per operation, no shrinking, no deadline) so it stays well under a minute. Every request
carries a real bearer token and the real subscription id (and, below resource groups, an existing group and
machine; heartbeats a token signed by the machine's key over the generated body), so the generated bodies reach
validation and the services rather than stopping at 401/404. The run must find no 5xx and, on the ARM schema, no
response that contradicts it.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
import schemathesis
from azcmagent import identity
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.arcportal.planes_schema import FORM, PLANES_SCHEMA
from tests.armclient import API, RG_API, machine_path, rg_path
from tests.machines.test_heartbeats import agent_machine  # noqa: F401


@pytest.fixture
def keep_db_connection():
    """Raw WSGI calls fire request_started/finished, whose handler closes the DB connection: on PostgreSQL that
    would end the test's transaction. Django's test client detaches the handler the same way."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def arm_schema(fuzz_world, keep_db_connection):
    # After fuzz_world: Django's test client (used there) reconnects the handler keep_db_connection detaches.
    from arcportal.wsgi import application

    return schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def fuzz_world(arm, subscription, user_token, agent_machine):  # noqa: F811
    assert arm.put(f"{rg_path(subscription, 'rg-fuzz')}?{RG_API}", {"location": "eastus"}).status_code in (200, 201)
    assert (
        arm.put(f"{machine_path(subscription, 'rg-fuzz', 'vm-fuzz')}?{API}", {"location": "eastus"}).status_code == 200
    )
    machine, key, thumbprint = agent_machine
    return {
        "subscriptionId": str(subscription.subscription_id),
        "tenantId": str(subscription.tenant.tenant_id),
        "token": user_token,
        "machine": machine,
        "key": key,
        "thumbprint": thumbprint,
    }


def _aim(case, world) -> None:
    """Point the generated request at real resources, with a valid api-version."""
    case.path_parameters = dict(case.path_parameters or {})
    if "vm_id" in case.path_parameters:
        case.path_parameters["vm_id"] = str(world["machine"].vm_id)
    if "subscriptionId" not in case.path_parameters:
        return
    case.path_parameters["subscriptionId"] = world["subscriptionId"]
    if "/machines" in case.path and "resourceGroupName" in case.path_parameters:
        case.path_parameters["resourceGroupName"] = "rg-fuzz"
    if "/extensions" in case.path:
        case.path_parameters["machineName"] = "vm-fuzz"
    case.query = dict(case.query or {})
    case.query["api-version"] = "2026-07-15"


def test_arm_api_matches_its_schema_and_never_errors(arm_schema, fuzz_world):
    # Driven by hand (not ``schemathesis.pytest.from_fixture``, whose lazy loader does not run on pytest 9).
    headers = {"Authorization": f"Bearer {fuzz_world['token']}"}
    failures: list[str] = []
    operations = [result.ok() for result in arm_schema.get_all_operations()]
    assert len(operations) >= 19  # every operation of the schema: the ARM plane and /his/…/certificate

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=5,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case):
            _aim(case, fuzz_world)
            response = case.call(headers=headers)
            try:
                case.validate_response(
                    response,
                    checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
                    headers=headers,
                )
            except AssertionError as exc:  # schemathesis raises a FailureGroup (an AssertionError)
                failures.append(f"{case.method} {case.formatted_path}: {exc}")

        run()
    assert not failures, "\n\n".join(failures[:5])


def _aim_planes(case, world) -> None:
    """Mostly the real tenant and machine (sometimes the generated value), so requests reach the views' logic."""
    params = dict(case.path_parameters or {})
    if "tenant" in params and not params["tenant"].startswith("x"):
        params["tenant"] = world["tenantId"]
    if "vmId" in params and len(params["vmId"]) % 4:
        params["vmId"] = str(world["machine"].vm_id)
    case.path_parameters = params


def _call_planes(client, case, world):
    """One generated request through Django's test client; a heartbeat is signed by the machine over its body."""
    url = case.formatted_path
    if case.query:
        url += "?" + urlencode(case.query, doseq=True, encoding="utf-8", errors="surrogatepass")
    extra: dict = {}
    body = None if case.body is NOT_SET else case.body
    if case.media_type == FORM:
        data = urlencode(body or {}, doseq=True, encoding="utf-8", errors="surrogatepass")
        content_type = FORM
    else:
        data = json.dumps(body).encode() if body is not None else b""
        content_type = "application/json"
    if case.path == "/his/machines/{vmId}/heartbeat":
        token = identity.heartbeat_token(
            world["key"], thumbprint=world["thumbprint"], vm_id=case.path_parameters["vmId"], body=data
        )
        extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    method = case.method.lower()
    if method == "get":
        return client.get(url, **extra)
    return getattr(client, method)(url, data=data, content_type=content_type, **extra)


def test_identity_agent_plane_and_downloads_never_error(fuzz_world, keep_db_connection):
    from django.test import Client

    schema = schemathesis.openapi.from_dict(PLANES_SCHEMA)
    client = Client(raise_request_exception=False)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 12
    failures: list[str] = []
    seen: dict[str, set[int]] = {}

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case):
            _aim_planes(case, fuzz_world)
            response = _call_planes(client, case, fuzz_world)
            seen.setdefault(f"{case.method} {case.path}", set()).add(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.content[:200]}")

        run()
    assert not failures, "\n\n".join(failures[:5])
    # The generated requests got past authentication into the views: accepted heartbeats and reports, and refusals.
    assert 200 in seen["POST /his/machines/{vmId}/heartbeat"] and 400 in seen["POST /his/machines/{vmId}/heartbeat"]
    assert 201 in seen["PUT /his/log"] and 200 in seen["POST /{tenant}/oauth2/v2.0/devicecode"], seen
