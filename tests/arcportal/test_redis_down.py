"""Production with Redis stopped: ``REDIS_URL`` and the Django cache point at a Redis that does not answer.

The portal keeps working without Redis (heartbeats are written directly, see tests/machines/test_heartbeats.py);
every other place that uses the cache answers something specific instead of a 500. "Down" is the ``redis_down``
fixture (tests/conftest.py): a closed port on 127.0.0.1, the machine's Redis is never stopped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from identity.device_codes import device_code_issue
from onboarding.models import OnboardingFailure

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_healthz_reports_the_cache_and_stays_up(client, redis_down):
    response = client.get("/healthz")
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert checks["database"] == "ok" and checks["cache"] == "error: ConnectionError"
    assert checks["beat_last_seen"] is None


def test_a_failure_report_is_accepted_and_still_rate_limited(client, redis_down, settings):
    """Issue 10, item 11: the limit does not fail open; each process counts in its own bounded memory."""
    from agentplane import views_log as his

    his._local.clear()  # this process's fallback counters start empty
    settings.ARC_HIS_LOG_RATE_LIMIT = 3
    body = {"correlationId": "8d6f4a5e-1c2b-4e3f-9a8b-7c6d5e4f3a2b", "messageType": "X", "message": "curl failed"}

    def put(ip: str):
        return client.put("/his/log", data=json.dumps(body), content_type="application/json", REMOTE_ADDR=ip)

    for _ in range(3):
        response = put("198.51.100.7")
        assert response.status_code == 201, response.content
    refused = put("198.51.100.7")
    assert refused.status_code == 429 and refused["Retry-After"]
    assert put("198.51.100.8").status_code == 201  # per address
    for n in range(30):  # and for all addresses together: at most 10 × the limit per window in this process
        put(f"203.0.113.{n}")
    assert OnboardingFailure.objects.filter(message_type="X").count() == 3 * his.FALLBACK_TOTAL_FACTOR


def test_device_sign_in_says_it_is_unavailable_and_approves_nothing(portal_client, redis_down):
    issued = device_code_issue(
        client_id="agent",
        machine_name="web-01",
        resource_group="arc-servers",
        subscription_id="3f1c8b9e-0000-4000-8000-000000000001",
        requesting_ip="192.0.2.10",
    )
    response = portal_client.post("/devicelogin", {"code": issued.record.user_code})
    assert response.status_code == 503
    assert "Device sign-in is unavailable for a moment" in response.content.decode()
    assert "devicelogin_code_id" not in portal_client.session


def test_the_machine_list_renders(portal_client, redis_down):
    assert portal_client.get("/").status_code == 200


def test_the_redis_cache_keys_carry_the_database_name():
    """Installations sharing one Redis keep apart: the settings module itself, with REDIS_URL and DATABASE_URL set."""
    env = {
        **os.environ,
        "REDIS_URL": "redis://127.0.0.1:6379/9",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/arc_one",
        "DJANGO_SECRET_KEY": "x" * 50,
    }
    code = "from arcportal import settings as s; print(s.CACHES['default']['KEY_PREFIX'])"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "arc:cache:{arc_one}"
