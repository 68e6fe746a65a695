"""Status badges and small display helpers for the Machines blade templates."""

from __future__ import annotations

from django import template
from django.utils.html import format_html

from machines import status as rules
from machines.regions import display_name

register = template.Library()

# Status → (CSS class, the words next to the icon). Colour is never the only signal: each badge has its text.
BADGES = {
    rules.CONNECTED: ("status-connected", "Connected"),
    rules.DISCONNECTED: ("status-disconnected", "Offline"),
    rules.EXPIRED: ("status-expired", "Expired"),
    rules.AWAITING: ("status-awaitingconnection", ""),
}


@register.filter
def status_css(value: str) -> str:
    return BADGES.get(value, ("status-unknown", ""))[0]


@register.filter
def status_label(value: str) -> str:
    """The portal's word for an ARM status: Connected, Offline, Expired; blank before the first heartbeat."""
    return BADGES[value][1] if value in BADGES else rules.portal_label(value)


@register.filter
def status_badge(value: str) -> str:
    """``<span class="status status-connected">Connected</span>``; an awaiting machine has an empty badge."""
    css, label = BADGES.get(value, ("status-unknown", rules.portal_label(value or "")))
    if value == rules.AWAITING:
        return format_html('<span class="status {}" title="Waiting for the agent\'s first heartbeat"></span>', css)
    return format_html('<span class="status {}">{}</span>', css, label)


@register.filter
def region_name(value: str) -> str:
    return display_name(value or "")


@register.simple_tag
def machine_detail_url(machine) -> str:
    """The Overview page of a machine (its resource id under /portal/)."""
    from machines.views import machine_url

    return machine_url(machine)


@register.filter
def os_display(machine) -> str:
    return machine.os_sku or machine.get_os_name_display() or machine.os_type
