"""At most one run per period, across the installation, of a task that beat schedules.

Exactly one beat should run (docs/deployment.md), but a second one started by mistake — a second host with the same
units, ``make run`` next to the systemd units — would double every schedule. For the status sweep that is a second
sweep per interval: harmless for the data (the sweep claims rows with ``FOR UPDATE SKIP LOCKED`` and is idempotent)
but twice the work. ``once_per_period`` makes the task take a slot of ``0.9 × period`` before it runs and skip (with
a warning) when another run holds it: however many beats send it, the task runs about once per period, and the one
beat's own next run — a period later, give or take its jitter — always finds the slot free.

The slot is ``SET arc:lock:{<database>}:<name> NX PX`` in Redis when ``REDIS_URL`` is set (shared by every host), and
a timestamp under an exclusive ``flock`` in ``$ARC_VAR_DIR/locks/`` on the embedded defaults (one host by
definition). It is never released early: the period is the point. If Redis does not answer, the task runs (fails
open): a missed sweep would leave statuses stale, a doubled one costs only time. Only runs by a worker take the
slot: calling the task directly (a shell, a test) or eagerly is a deliberate run and always runs.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable

from django.conf import settings

from arcportal.files import private_dir

logger = logging.getLogger(__name__)

SLOT_SHARE = 0.9
_clients: dict[tuple[int, str], object] = {}


def _redis(url: str):
    """One client per process and URL (a forked worker makes its own)."""
    import redis

    key = (os.getpid(), url)
    if key not in _clients:
        _clients[key] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return _clients[key]


def _namespace() -> str:
    return str(settings.DATABASES["default"]["NAME"])


def take_slot(name: str, seconds: float) -> bool:
    """True when this caller got the slot ``name`` for ``seconds`` (nobody else took it within the last
    ``seconds``); False when another run holds it."""
    if settings.REDIS_URL:
        try:
            return bool(
                _redis(settings.REDIS_URL).set(
                    f"arc:lock:{{{_namespace()}}}:{name}", str(os.getpid()), nx=True, px=max(1, int(seconds * 1000))
                )
            )
        except Exception:
            logger.warning("%s: the lock in Redis did not answer; running anyway", name, exc_info=True)
            return True
    import fcntl  # the embedded defaults run on one Unix host

    path = private_dir(settings.VAR_DIR / "locks") / f"{name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        raw = os.read(fd, 64)
        try:
            held_until = float(raw.decode() or 0)
        except ValueError:
            held_until = 0.0
        now = time.time()
        if now < held_until and held_until - now <= seconds:  # a stamp further ahead: a clock that moved back
            return False
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, repr(now + seconds).encode())
        return True
    finally:
        os.close(fd)  # releases the flock


def once_per_period(name: str, period: Callable[[], float]):
    """Decorator for a task: run it only when ``take_slot(name, 0.9 × period())`` succeeds, else return None."""

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            if not _run_by_a_worker():
                return function(*args, **kwargs)
            seconds = period()
            if not take_slot(name, SLOT_SHARE * seconds):
                logger.warning(
                    "%s skipped: it already ran less than %.0f s ago (is a second beat running?)", name, seconds
                )
                return None
            return function(*args, **kwargs)

        return wrapper

    return decorate


def _run_by_a_worker() -> bool:
    """The current task was sent to a worker (by beat or ``.delay()``), not called directly nor run eagerly."""
    from celery import current_task

    request = getattr(current_task, "request", None)
    return request is not None and not request.called_directly and not request.is_eager


def sweep_period() -> float:
    return float(settings.ARC_STATUS_SWEEP_SECONDS)
