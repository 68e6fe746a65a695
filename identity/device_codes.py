"""Device-code sign-in (RFC 8628): issue, approve/deny on ``/devicelogin``, exchange for a token.

Services: keyword-only, typed, atomic. The secret device code is only ever stored as its SHA-256; the user code is
single use (a decided code can't be decided again; an approved one is exchanged once). Pure rules live in
``identity.codes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from redis import RedisError

from arcportal.exceptions import ApplicationError, Invalid, NotFound
from identity import codes
from identity.models import DeviceCode, DeviceCodeState

# Wrong-code attempts on /devicelogin: at most this many per user and per IP within the window.
WRONG_CODE_LIMIT = 5
WRONG_CODE_WINDOW_SECONDS = 15 * 60


class DeviceCodeError(ApplicationError):
    """An RFC 8628 §3.5 token-endpoint error: ``error`` is the OAuth error code."""

    status = 400

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description, code=error)
        self.error = error
        self.description = description


class TooManyAttempts(ApplicationError):
    code = "TooManyAttempts"
    status = 429


class RateLimiterUnavailable(ApplicationError):
    """The cache that counts wrong codes (Redis in production) does not answer: codes are not checked blind."""

    code = "ServiceUnavailable"
    status = 503


@dataclass(frozen=True)
class IssuedDeviceCode:
    device_code: str  # the secret, returned to the device once and never stored
    record: DeviceCode


def device_code_ttl() -> timedelta:
    return timedelta(seconds=settings.ARC_DEVICE_CODE_TTL_SECONDS)


def device_code_interval() -> timedelta:
    return timedelta(seconds=getattr(settings, "ARC_DEVICE_CODE_INTERVAL_SECONDS", 5))


@transaction.atomic
def device_code_issue(
    *,
    client_id: str = "",
    scope: str = "",
    requesting_ip: str | None = None,
    machine_name: str = "",
    resource_group: str = "",
    subscription_id: str = "",
    now: datetime | None = None,
) -> IssuedDeviceCode:
    """A new pending authorization, valid ``ARC_DEVICE_CODE_TTL_SECONDS`` (15 minutes by default)."""
    now = now or timezone.now()
    live = DeviceCode.objects.filter(expires_at__gt=now).exclude(state=DeviceCodeState.CONSUMED)
    for _ in range(10):
        user_code = codes.new_user_code()
        if live.filter(user_code=user_code).exists():
            continue
        device_code = codes.new_device_code()
        try:
            with transaction.atomic():
                record = DeviceCode.objects.create(
                    device_code_hash=codes.hash_device_code(device_code),
                    user_code=user_code,
                    client_id=client_id[:100],
                    scope=scope[:500],
                    expires_at=codes.expires_at(now=now, ttl=device_code_ttl()),
                    interval_seconds=int(device_code_interval().total_seconds()),
                    requesting_ip=requesting_ip or None,
                    machine_name=machine_name[:255],
                    resource_group=resource_group[:90],
                    subscription_id=subscription_id[:64],
                )
        except IntegrityError:
            continue
        return IssuedDeviceCode(device_code=device_code, record=record)
    raise ApplicationError("Could not allocate a unique user code; try again.", code="temporarily_unavailable")


# --- /devicelogin ------------------------------------------------------------------------------------------------


def _attempt_keys(*, user_id: int, ip: str | None) -> list[str]:
    keys = [f"devicelogin:wrong:user:{user_id}"]
    if ip:
        keys.append(f"devicelogin:wrong:ip:{ip}")
    return keys


_UNAVAILABLE = (
    "Device sign-in is unavailable for a moment: the service that limits wrong codes does not answer. "
    "Try again in a minute."
)


def device_code_attempts_left(*, user_id: int, ip: str | None) -> int:
    """Raises ``RateLimiterUnavailable`` when the cache does not answer (the limit is not skipped)."""
    try:
        used = max((cache.get(key, 0) for key in _attempt_keys(user_id=user_id, ip=ip)), default=0)
    except (RedisError, OSError) as exc:
        raise RateLimiterUnavailable(_UNAVAILABLE) from exc
    return max(0, WRONG_CODE_LIMIT - used)


def _record_wrong_attempt(*, user_id: int, ip: str | None) -> None:
    try:
        for key in _attempt_keys(user_id=user_id, ip=ip):
            if cache.add(key, 1, timeout=WRONG_CODE_WINDOW_SECONDS):
                continue
            try:
                cache.incr(key)
            except ValueError:
                cache.set(key, 1, timeout=WRONG_CODE_WINDOW_SECONDS)
    except (RedisError, OSError) as exc:
        raise RateLimiterUnavailable(_UNAVAILABLE) from exc


def device_code_lookup(*, typed_code: str, user_id: int, ip: str | None, now: datetime | None = None) -> DeviceCode:
    """The pending, unexpired code a signed-in user typed. Wrong codes count against the user and the IP; once
    either has ``WRONG_CODE_LIMIT`` misses in the window, every lookup is refused until it passes."""
    now = now or timezone.now()
    if device_code_attempts_left(user_id=user_id, ip=ip) <= 0:
        raise TooManyAttempts("Too many wrong codes. Wait a few minutes before trying again.")
    user_code = codes.normalize_user_code(typed_code)
    record = None
    if user_code:
        record = (
            DeviceCode.objects.filter(user_code=user_code, state=DeviceCodeState.PENDING, expires_at__gt=now)
            .order_by("-created_at")
            .first()
        )
    if record is None:
        _record_wrong_attempt(user_id=user_id, ip=ip)
        raise NotFound("That code is wrong, expired or already used. Check the code and try again.", code="InvalidCode")
    return record


@transaction.atomic
def _device_code_decide(*, device_code_id: int, user, approve: bool, now: datetime | None) -> DeviceCode:
    now = now or timezone.now()
    record = DeviceCode.objects.select_for_update().filter(pk=device_code_id).first()
    if record is None:
        raise NotFound("That code no longer exists.", code="InvalidCode")
    if record.state != DeviceCodeState.PENDING:
        raise Invalid("That code was already used.", code="CodeAlreadyUsed")
    if codes.is_expired(now=now, expires=record.expires_at):
        raise Invalid("That code has expired. Start the sign-in again on the machine.", code="CodeExpired")
    record.state = DeviceCodeState.APPROVED if approve else DeviceCodeState.DENIED
    record.decided_by = user
    record.decided_at = now
    record.save(update_fields=["state", "decided_by", "decided_at"])
    return record


def device_code_approve(*, device_code_id: int, user, now: datetime | None = None) -> DeviceCode:
    return _device_code_decide(device_code_id=device_code_id, user=user, approve=True, now=now)


def device_code_deny(*, device_code_id: int, user, now: datetime | None = None) -> DeviceCode:
    return _device_code_decide(device_code_id=device_code_id, user=user, approve=False, now=now)


# --- token endpoint ----------------------------------------------------------------------------------------------


def device_code_exchange(*, device_code: str, client_id: str = "", now: datetime | None = None) -> DeviceCode:
    """One poll of the token endpoint. Returns the approved record (now consumed) whose ``decided_by`` the token
    represents, or raises ``DeviceCodeError`` with the RFC 8628 error: ``authorization_pending``, ``slow_down``,
    ``access_denied``, ``expired_token`` or ``invalid_grant`` (unknown, or already exchanged).

    The poll time is committed before an error is raised, so ``slow_down`` sees every poll."""
    record, error = _device_code_poll(device_code=device_code, client_id=client_id, now=now or timezone.now())
    if error is not None:
        raise error
    return record


@transaction.atomic
def _device_code_poll(*, device_code: str, client_id: str, now: datetime) -> tuple[DeviceCode | None, Exception | None]:
    record = (
        DeviceCode.objects.select_for_update(of=("self",))
        .select_related("decided_by")
        .filter(device_code_hash=codes.hash_device_code(device_code or ""))
        .first()
    )
    if record is None:
        return None, DeviceCodeError("invalid_grant", "The device code is not valid.")
    if record.client_id and client_id and record.client_id != client_id:
        return None, DeviceCodeError("invalid_grant", "The device code was issued to another client.")
    if record.state == DeviceCodeState.CONSUMED:
        return None, DeviceCodeError("invalid_grant", "The device code was already used.")
    if record.state == DeviceCodeState.DENIED:
        return None, DeviceCodeError("access_denied", "The sign-in request was denied.")
    if codes.is_expired(now=now, expires=record.expires_at):
        return None, DeviceCodeError("expired_token", "The device code has expired. Start the sign-in again.")
    verdict = codes.check_poll(
        now=now, last_polled_at=record.last_polled_at, interval=timedelta(seconds=record.interval_seconds)
    )
    record.last_polled_at = now
    if verdict.too_fast:
        record.interval_seconds = int(verdict.interval.total_seconds())
        record.save(update_fields=["last_polled_at", "interval_seconds"])
        message = f"Polling too fast: wait {record.interval_seconds} seconds between polls."
        return None, DeviceCodeError("slow_down", message)
    if record.state == DeviceCodeState.PENDING:
        record.save(update_fields=["last_polled_at"])
        return None, DeviceCodeError("authorization_pending", "The user has not yet approved the sign-in request.")
    record.state = DeviceCodeState.CONSUMED
    record.save(update_fields=["last_polled_at", "state"])
    return record, None


def device_code_get_pending(*, device_code_id: int | None, now: datetime | None = None) -> DeviceCode | None:
    """A pending, unexpired code by id (the one the current user looked up), or ``None``."""
    if not device_code_id:
        return None
    now = now or timezone.now()
    return DeviceCode.objects.filter(pk=device_code_id, state=DeviceCodeState.PENDING, expires_at__gt=now).first()


@transaction.atomic
def device_code_purge_expired(*, now: datetime | None = None, keep: timedelta = timedelta(days=1)) -> int:
    """Delete device codes that expired more than ``keep`` ago (decided or not); returns how many."""
    now = now or timezone.now()
    deleted, _ = DeviceCode.objects.filter(expires_at__lt=now - keep).delete()
    return deleted
