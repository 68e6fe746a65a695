"""Shared fixtures: a frozen ``now``, the bootstrap tenant/subscription, a signed-in portal client."""

from datetime import UTC, datetime

import pytest

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def tenant(db):
    from machines.services import tenant_ensure

    return tenant_ensure()


@pytest.fixture
def subscription(tenant):
    from machines.services import subscription_ensure_default

    return subscription_ensure_default(tenant=tenant)


@pytest.fixture
def admin_user(db, django_user_model):
    return django_user_model.objects.create_superuser(username="admin", password="correct horse battery")


@pytest.fixture
def portal_client(client, admin_user):
    client.force_login(admin_user)
    return client


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
