"""Issue 10 items 11 (identity part) and 12: sign-in attempts are limited, and failures don't reveal client ids.

Failed sign-ins are counted per client IP and per account (the client id on the token endpoint, the user name on the
portal's sign-in page) by django-ratelimit in the Django cache; once a limit is reached every attempt is refused
before any password hash runs, with 429 and ``Retry-After`` (the OAuth error shape on the token endpoint, a clear
message on the sign-in page). ``/devicecode`` counts every request per IP. When the cache (Redis) does not answer,
attempts are refused with 503, never checked blind and never a 500. The limits are settings; the tests shrink them.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import hashers

from identity import service_principals
from identity.models import DeviceCode, Role
from identity.service_principals import service_principal_create

pytestmark = pytest.mark.django_db

UNKNOWN_CLIENT = "0b7c3a9e-2f4d-4e6a-8b1c-9d0e1f2a3b4c"


@pytest.fixture(autouse=True)
def small_limits(settings):
    settings.ARC_RATE_LIMIT_SIGNIN_PER_ACCOUNT = "3/10m"
    settings.ARC_RATE_LIMIT_SIGNIN_PER_IP = "5/10m"
    settings.ARC_RATE_LIMIT_DEVICECODE_PER_IP = "3/10m"


@pytest.fixture
def principal(subscription):
    return service_principal_create(display_name="sp", role=Role.ONBOARDING, scope=subscription.arm_id)


def token(client, tenant, client_id, secret, ip="192.0.2.1"):
    return client.post(
        f"/{tenant.tenant_id}/oauth2/v2.0/token",
        {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        REMOTE_ADDR=ip,
    )


def sign_in(client, username, password, ip="192.0.2.1"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def assert_oauth_429(response):
    assert response.status_code == 429, response.content
    assert int(response["Retry-After"]) > 0
    body = response.json()
    assert set(body) == {"error", "error_description"} and body["error"] == "temporarily_unavailable"
    assert "Too many" in body["error_description"]


@pytest.fixture
def count_hashing(monkeypatch):
    """How often the password hasher ran (check or make), the 0.27 s a limit exists to protect."""
    calls = []
    for name in ("check_password", "make_password"):
        real = getattr(hashers, name)
        monkeypatch.setattr(
            service_principals, name, lambda *a, _real=real, _n=name, **k: calls.append(_n) or _real(*a, **k)
        )
    return calls


# --- token endpoint ---------------------------------------------------------------------------------------------


def test_a_client_id_is_refused_after_too_many_wrong_secrets_even_with_the_right_one(
    client, tenant, principal, count_hashing
):
    client_id = str(principal.service_principal.client_id)
    for _ in range(3):
        assert token(client, tenant, client_id, "wrong").status_code == 401
    hashed = len(count_hashing)
    assert_oauth_429(token(client, tenant, client_id, principal.secret))
    assert len(count_hashing) == hashed  # refused before any hash ran
    # The limit is per client id: another IP is refused too, another client id from this IP is not (yet).
    assert_oauth_429(token(client, tenant, client_id, principal.secret, ip="198.51.100.7"))
    assert token(client, tenant, UNKNOWN_CLIENT, "wrong").status_code == 401


def test_an_ip_is_refused_after_too_many_failures_across_client_ids(client, tenant, principal):
    for i in range(5):
        other = f"0b7c3a9e-2f4d-4e6a-8b1c-9d0e1f2a3b{i:02d}"
        assert token(client, tenant, other, "wrong").status_code == 401
    assert_oauth_429(token(client, tenant, str(principal.service_principal.client_id), principal.secret))
    ok = token(client, tenant, str(principal.service_principal.client_id), principal.secret, ip="198.51.100.7")
    assert ok.status_code == 200, ok.content


def test_successful_sign_ins_are_not_limited(client, tenant, principal):
    """At-scale onboarding signs in once per server with one principal, often from one NAT address."""
    for _ in range(12):
        response = token(client, tenant, str(principal.service_principal.client_id), principal.secret)
        assert response.status_code == 200, response.content


def test_the_token_endpoint_fails_closed_with_503_when_the_cache_is_down(client, tenant, principal, redis_down):
    response = token(client, tenant, str(principal.service_principal.client_id), principal.secret)
    assert response.status_code == 503, response.content
    assert int(response["Retry-After"]) > 0
    assert response.json()["error"] == "temporarily_unavailable"


def test_the_limit_counts_in_the_production_cache_of_this_mode(client, tenant, principal, settings, tmp_path):
    """django-ratelimit on the cache ``make run`` uses: Redis (SET NX + INCR) with REDIS_URL, else the file cache."""
    import uuid

    import redis

    prefix = f"arc:test:ratelimit:{uuid.uuid4().hex}"
    if settings.REDIS_URL:
        backend = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": settings.REDIS_URL}
        settings.CACHES = {"default": {**backend, "KEY_PREFIX": prefix}}
    else:
        backend = {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(tmp_path)}
        settings.CACHES = {"default": backend}
    try:
        client_id = str(principal.service_principal.client_id)
        for _ in range(3):
            assert token(client, tenant, client_id, "wrong").status_code == 401
        assert_oauth_429(token(client, tenant, client_id, principal.secret))
    finally:
        if settings.REDIS_URL:
            connection = redis.Redis.from_url(settings.REDIS_URL)
            for key in connection.scan_iter(match=f"{prefix}:*"):
                connection.delete(key)
            connection.close()


# --- item 12: one answer for an unknown client id and a wrong secret ----------------------------------------------


def test_an_unknown_client_and_a_wrong_secret_get_the_same_answer_and_the_same_hashing(
    client, tenant, principal, count_hashing
):
    wrong = token(client, tenant, str(principal.service_principal.client_id), "wrong")
    after_wrong = list(count_hashing)
    unknown = token(client, tenant, UNKNOWN_CLIENT, "wrong")
    after_unknown = count_hashing[len(after_wrong) :]
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert str(principal.service_principal.client_id) not in wrong.content.decode()
    assert after_wrong == after_unknown == ["check_password"]  # a dummy hash is checked for an unknown client


# --- portal sign-in ---------------------------------------------------------------------------------------------


def test_the_sign_in_page_refuses_a_user_name_after_too_many_wrong_passwords(client, admin_user):
    for _ in range(3):
        response = sign_in(client, "admin", "wrong")
        assert response.status_code == 200 and "_auth_user_id" not in client.session
    refused = sign_in(client, "admin", "correct horse battery")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    page = refused.content.decode()
    assert "Too many sign-in attempts" in page and "try again in" in page.lower()
    assert "_auth_user_id" not in client.session
    # Per user name, whatever the IP; another user name from a fresh IP is not limited.
    assert sign_in(client, "ADMIN", "correct horse battery", ip="198.51.100.7").status_code == 429
    assert sign_in(client, "someone", "x", ip="198.51.100.7").status_code == 200


def test_the_sign_in_page_refuses_an_ip_after_too_many_failures(client, admin_user):
    for i in range(5):
        assert sign_in(client, f"user{i}", "wrong").status_code == 200
    assert sign_in(client, "admin", "correct horse battery").status_code == 429
    response = sign_in(client, "admin", "correct horse battery", ip="198.51.100.7")
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(admin_user.pk)


def test_the_sign_in_page_says_sign_in_is_unavailable_when_the_cache_is_down(client, admin_user, redis_down):
    response = sign_in(client, "admin", "correct horse battery")
    assert response.status_code == 503
    assert "Sign-in is unavailable for a moment" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get("/accounts/login/").status_code == 200


# --- /devicecode ------------------------------------------------------------------------------------------------


def devicecode(client, tenant, ip="192.0.2.1"):
    return client.post(f"/{tenant.tenant_id}/oauth2/v2.0/devicecode", {"client_id": "agent"}, REMOTE_ADDR=ip)


def test_devicecode_is_limited_per_ip(client, tenant):
    for _ in range(3):
        assert devicecode(client, tenant).status_code == 200
    assert_oauth_429(devicecode(client, tenant))
    assert DeviceCode.objects.count() == 3
    assert devicecode(client, tenant, ip="198.51.100.7").status_code == 200


def test_devicecode_fails_closed_with_503_when_the_cache_is_down(client, tenant, redis_down):
    response = devicecode(client, tenant)
    assert response.status_code == 503, response.content
    assert response.json()["error"] == "temporarily_unavailable"
    assert not DeviceCode.objects.exists()
