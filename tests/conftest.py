"""Shared fixtures: a frozen ``now``, the bootstrap tenant/subscription, a signed-in portal client; and the
``--clock-shift-days`` option that moves the clock of the whole run (tests/clockshift/sitecustomize.py)."""

import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.armclient import arm, arm_as, sp_token, user_token  # noqa: F401  (fixtures of the ARM plane)
from tests.clockshift import sitecustomize as clockshift

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)


def pytest_addoption(parser):
    parser.addoption(
        "--clock-shift-days",
        type=float,
        default=0,
        help="Run with the clock of this process and of every Python process it starts moved N days ahead.",
    )


@pytest.fixture(scope="session", autouse=True)
def clock_shift(request):
    """``--clock-shift-days=N``: the whole session runs N days ahead (ticking), as on a machine whose clock moved."""
    days = request.config.getoption("clock_shift_days")
    if not days:
        yield 0
        return
    from identity import pki

    pki.ensure_pki()  # the test PKI is made on the real clock, which curl checks it against (see clockshift)
    seconds = days * 86400
    previous = {name: os.environ.get(name) for name in (clockshift.ENV, "PYTHONPATH")}
    os.environ[clockshift.ENV] = str(seconds)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(Path(clockshift.__file__).parent), previous["PYTHONPATH"]])
    )
    traveller = clockshift.shift_clock(seconds)
    try:
        yield seconds
    finally:
        traveller.stop()
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def frozen_clock(now):
    """The whole process clock stands at ``now``: the views' ``timezone.now()``, ``auto_now_add`` columns, tokens and
    sessions all agree with the data a test builds from ``now`` (never a fixed date mixed with the real clock)."""
    import time_machine

    with time_machine.travel(now, tick=False):
        yield now


@pytest.fixture
def tenant(db):
    from identity.services import tenant_ensure

    return tenant_ensure()


@pytest.fixture
def subscription(tenant):
    from machines.services import subscription_ensure_default

    return subscription_ensure_default(tenant=tenant)


@pytest.fixture
def admin_user(db, django_user_model):
    """The portal's administrator: Owner at the tenant root, so every subscription a test creates is its own."""
    user = django_user_model.objects.create_superuser(username="admin", password="correct horse battery")
    grant_owner_everywhere(user)
    return user


def grant_owner_everywhere(user) -> None:
    """Owner at ``/`` for ``user`` (tests only: real installations assign Owner at subscription scope)."""
    from arcportal import authz
    from identity.models import PrincipalKind, RoleAssignment
    from identity.tokens import user_object_id

    RoleAssignment.objects.get_or_create(
        principal_id=user_object_id(user),
        role_definition_id=authz.ROLES_BY_NAME[authz.OWNER].id,
        scope_key="/",
        defaults={"scope": "/", "principal_kind": PrincipalKind.USER, "created_by": "tests"},
    )


@pytest.fixture
def portal_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture(scope="session")
def live_server(live_server):
    """pytest-django's live server (the browser tests'); on shared in-memory SQLite it answers one request at a time,
    as ``tls_live_server`` does (tests/tls.py): a page's HTMX poll and a click would otherwise share one transaction."""
    from tests.tls import serialize

    live_server.lock = threading.RLock()
    if live_server.thread.connections_override:
        serialize(live_server.thread, live_server.lock)
    return live_server


@pytest.fixture
def tls_live_server(transactional_db):
    """``https://127.0.0.1:<port>`` served by this test process; ``.ca_file`` is the portal CA to trust."""
    from tests.tls import start_tls_live_server

    server, cleanups = start_tls_live_server()
    try:
        yield server
    finally:
        for cleanup in reversed(cleanups):
            cleanup.disable()


@pytest.fixture
def redis_down(settings, monkeypatch):
    """Production with Redis stopped: ``REDIS_URL`` and the Django cache both point at a closed port on 127.0.0.1
    (the machine's Redis is never stopped), and no process remembers an earlier Redis failure."""
    from machines import heartbeat_replay, heartbeats

    closed = "redis://127.0.0.1:1/0"
    settings.REDIS_URL = closed
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": closed}}
    monkeypatch.setattr(heartbeats, "_down_until", {})
    monkeypatch.setattr(heartbeat_replay, "_outage_began", {})
    monkeypatch.setattr(heartbeat_replay, "_published_end", {})
    return closed


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Every test starts with an empty test cache (locmem): rate-limit counters never carry over between tests."""
    from django.core.cache import cache

    cache.clear()
