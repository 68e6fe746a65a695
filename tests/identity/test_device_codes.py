"""Device-code services (RFC 8628): issue, approve/deny, exchange; errors; single use; wrong-code rate limit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache

from identity import codes
from identity.device_codes import (
    WRONG_CODE_LIMIT,
    DeviceCodeError,
    TooManyAttempts,
    device_code_approve,
    device_code_deny,
    device_code_exchange,
    device_code_issue,
    device_code_lookup,
)
from identity.models import DeviceCode, DeviceCodeState

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


def _error(**kwargs) -> str:
    with pytest.raises(DeviceCodeError) as info:
        device_code_exchange(**kwargs)
    return info.value.error


def test_issue_stores_only_the_hash_with_a_fifteen_minute_expiry(now):
    issued = device_code_issue(client_id="agent", machine_name="web-01", requesting_ip="10.0.0.7", now=now)
    record = DeviceCode.objects.get()
    assert record.device_code_hash == codes.hash_device_code(issued.device_code)
    assert issued.device_code not in str(DeviceCode.objects.values().get())
    assert record.expires_at == now + timedelta(minutes=15)
    assert codes.normalize_user_code(record.user_code) == record.user_code
    assert (record.machine_name, record.requesting_ip, record.state) == ("web-01", "10.0.0.7", "pending")


def test_pending_then_approved_then_single_use(now, admin_user):
    issued = device_code_issue(client_id="agent", now=now)
    assert _error(device_code=issued.device_code, now=now) == "authorization_pending"
    device_code_approve(device_code_id=issued.record.pk, user=admin_user, now=now + timedelta(seconds=6))
    record = device_code_exchange(device_code=issued.device_code, now=now + timedelta(seconds=12))
    assert record.decided_by == admin_user and record.state == DeviceCodeState.CONSUMED
    assert _error(device_code=issued.device_code, now=now + timedelta(seconds=20)) == "invalid_grant"


def test_denied_is_access_denied(now, admin_user):
    issued = device_code_issue(now=now)
    device_code_deny(device_code_id=issued.record.pk, user=admin_user, now=now)
    assert _error(device_code=issued.device_code, now=now + timedelta(seconds=6)) == "access_denied"


def test_expired_is_expired_token_and_cannot_be_approved(now, admin_user):
    issued = device_code_issue(now=now)
    later = now + timedelta(minutes=15)
    assert _error(device_code=issued.device_code, now=later) == "expired_token"
    from arcportal.exceptions import ApplicationError

    with pytest.raises(ApplicationError):
        device_code_approve(device_code_id=issued.record.pk, user=admin_user, now=later)


def test_polling_faster_than_the_interval_is_slow_down_and_the_interval_grows(now):
    issued = device_code_issue(now=now)
    assert _error(device_code=issued.device_code, now=now) == "authorization_pending"
    assert _error(device_code=issued.device_code, now=now + timedelta(seconds=1)) == "slow_down"
    issued.record.refresh_from_db()
    assert issued.record.interval_seconds == 10
    # The slow_down poll counts as a poll: waiting the old interval is still too fast.
    assert _error(device_code=issued.device_code, now=now + timedelta(seconds=7)) == "slow_down"
    assert _error(device_code=issued.device_code, now=now + timedelta(seconds=40)) == "authorization_pending"


def test_unknown_device_code_and_wrong_client_are_invalid_grant(now):
    issued = device_code_issue(client_id="agent", now=now)
    assert _error(device_code="nope", now=now) == "invalid_grant"
    assert _error(device_code=issued.device_code, client_id="someone-else", now=now) == "invalid_grant"


def test_a_decided_code_cannot_be_decided_again(now, admin_user):
    from arcportal.exceptions import ApplicationError

    issued = device_code_issue(now=now)
    device_code_deny(device_code_id=issued.record.pk, user=admin_user, now=now)
    with pytest.raises(ApplicationError):
        device_code_approve(device_code_id=issued.record.pk, user=admin_user, now=now)


def test_lookup_accepts_any_case_and_dashes(admin_user):
    issued = device_code_issue()
    typed = issued.record.user_code.replace("-", "").lower()
    assert device_code_lookup(typed_code=typed, user_id=admin_user.pk, ip="10.0.0.1") == issued.record


def test_wrong_codes_are_limited_per_user(admin_user, django_user_model):
    issued = device_code_issue()
    for attempt in range(WRONG_CODE_LIMIT):
        with pytest.raises(Exception) as info:
            device_code_lookup(typed_code="XXXX-XXXX", user_id=admin_user.pk, ip=f"10.0.0.{attempt}")
        assert not isinstance(info.value, TooManyAttempts)
    with pytest.raises(TooManyAttempts):
        device_code_lookup(typed_code=issued.record.user_code, user_id=admin_user.pk, ip="10.9.9.9")
    other = django_user_model.objects.create_user(username="other", password="x")
    assert device_code_lookup(typed_code=issued.record.user_code, user_id=other.pk, ip="10.9.9.9") == issued.record


def test_wrong_codes_are_limited_per_ip(admin_user, django_user_model):
    issued = device_code_issue()
    users = [django_user_model.objects.create_user(username=f"u{i}", password="x") for i in range(WRONG_CODE_LIMIT)]
    for user in users:
        with pytest.raises(Exception):
            device_code_lookup(typed_code="XXXX-XXXX", user_id=user.pk, ip="10.0.0.66")
    with pytest.raises(TooManyAttempts):
        device_code_lookup(typed_code=issued.record.user_code, user_id=admin_user.pk, ip="10.0.0.66")


def test_purge_deletes_only_codes_expired_long_enough(now):
    from identity.device_codes import device_code_purge_expired

    old = device_code_issue(now=now - timedelta(days=2))
    recent = device_code_issue(now=now - timedelta(minutes=20))
    assert device_code_purge_expired(now=now) == 1
    assert list(DeviceCode.objects.values_list("pk", flat=True)) == [recent.record.pk]
    assert not DeviceCode.objects.filter(pk=old.record.pk).exists()
