"""Property-based run of schemathesis against our own OpenAPI schema (``/api/schema/``), in-process over WSGI.

Bounded (a few examples per ARM operation, no shrinking) so it stays well under a minute. Every request carries a
real bearer token and the real subscription id (and, below resource groups, an existing group and machine), so the
generated bodies reach validation and the services rather than stopping at 404. The run must find no 5xx and no
response that contradicts the schema.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.arm.conftest import API, RG_API, machine_path, rg_path


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

    return schemathesis.openapi.from_wsgi("/api/schema/", application).include(path_regex="^/subscriptions")


@pytest.fixture
def fuzz_world(arm, subscription, user_token):
    assert arm.put(f"{rg_path(subscription, 'rg-fuzz')}?{RG_API}", {"location": "eastus"}).status_code in (200, 201)
    assert (
        arm.put(f"{machine_path(subscription, 'rg-fuzz', 'vm-fuzz')}?{API}", {"location": "eastus"}).status_code == 200
    )
    return {"subscriptionId": str(subscription.subscription_id), "token": user_token}


def _aim(case, world) -> None:
    """Point the generated request at real resources, with a valid api-version."""
    case.path_parameters = dict(case.path_parameters or {})
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
    assert len(operations) >= 18

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
