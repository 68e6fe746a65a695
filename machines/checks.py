"""System checks: refuse status thresholds that would flap (DESIGN.md §3)."""

from django.conf import settings
from django.core.checks import Error, register


@register()
def status_thresholds_check(app_configs, **kwargs):
    errors = []
    interval = settings.ARC_HEARTBEAT_INTERVAL_SECONDS
    offline = settings.ARC_OFFLINE_AFTER_SECONDS
    if offline < 2 * interval:
        errors.append(
            Error(
                f"ARC_OFFLINE_AFTER_SECONDS ({offline}) is shorter than two heartbeat intervals "
                f"(ARC_HEARTBEAT_INTERVAL_SECONDS={interval}): healthy machines would flap to Offline.",
                hint="Raise ARC_OFFLINE_AFTER_SECONDS or lower ARC_HEARTBEAT_INTERVAL_SECONDS.",
                id="machines.E001",
            )
        )
    if offline >= settings.ARC_EXPIRED_AFTER_DAYS * 86400:
        errors.append(
            Error("ARC_EXPIRED_AFTER_DAYS must be longer than ARC_OFFLINE_AFTER_SECONDS.", id="machines.E002")
        )
    return errors
