"""Status badges and small display helpers for the Machines blade templates."""

from __future__ import annotations

from django import template
from django.utils.html import format_html

from arcportal import authz
from machines import status as rules
from machines.regions import display_name

register = template.Library()


@register.filter
def status_css(value: str) -> str:
    return rules.status_css(value)


@register.filter
def status_label(value: str) -> str:
    """The badge text of an ARM status: Connected, Offline, Expired; blank before the first heartbeat."""
    return rules.portal_label(value or "")


@register.filter
def status_name(value: str) -> str:
    """The portal's word for an ARM status, never blank ("Not connected yet" before the first heartbeat)."""
    return rules.status_name(value or "")


@register.filter
def status_badge(value: str) -> str:
    """``<span class="status status-connected">Connected</span>``: colour and words from ``machines.status``
    (colour is never the only signal); an awaiting machine has an empty badge, as in Azure."""
    css, label = rules.status_css(value), rules.portal_label(value or "")
    if value == rules.AWAITING:
        return format_html('<span class="status {}" title="Waiting for the agent\'s first heartbeat"></span>', css)
    return format_html('<span class="status {}">{}</span>', css, label)


@register.filter
def region_name(value: str) -> str:
    return display_name(value or "")


@register.simple_tag
def machine_detail_url(machine) -> str:
    """The Overview page of a machine (its resource id under /portal/)."""
    return machine.get_absolute_url()


@register.filter
def os_display(machine) -> str:
    return machine.os_sku or machine.get_os_name_display() or machine.os_type


# Command-bar icons as inline SVG (16×16, currentColor): crisp everywhere, no icon font or emoji needed.
ICONS = {
    "add": "M7.5 2h1v5.5H14v1H8.5V14h-1V8.5H2v-1h5.5z",
    "refresh": "M8 2.5a5.5 5.5 0 0 1 4.7 2.6V2.5h1v4h-4v-1h2.4A4.5 4.5 0 1 0 12.5 8h1A5.5 5.5 0 1 1 8 2.5z",
    "download": "M7.5 2h1v7.8l2.6-2.6.7.7L8 11.7 4.2 7.9l.7-.7 2.6 2.6zM3 13h10v1H3z",
    "tag": "M2 2h6l6 6-6 6-6-6zm1 1v4.6l5 5 4.6-4.6-5-5zm2.5 1.5a1 1 0 1 1 0 2 1 1 0 0 1 0-2z",
    "delete": "M6 1.5h4v1h3.5v1H2.5v-1H6zM3.5 4.5h9l-.7 9.5H4.2zm1.1 1 .5 7.5h5.8l.5-7.5zM6.5 6.5h1v5h-1zm2 0h1v5h-1z",
    "edit": "M11.3 1.8l2.9 2.9-8.4 8.4H2.9v-2.9zm0 1.4L4 10.6v1.5h1.4l7.4-7.4z",
}


@register.simple_tag
def icon(name: str) -> str:
    return format_html(
        '<svg class="icon" viewBox="0 0 16 16" width="16" height="16" aria-hidden="true" focusable="false">'
        '<path fill="currentColor" fill-rule="evenodd" d="{}"/></svg>',
        ICONS[name],
    )


@register.simple_tag(takes_context=True)
def may(context, action: str, scope: str) -> bool:
    """``{% may "write" machine.arm_id as can_write %}``: ``arcportal.authz.can`` for the signed-in user; write
    buttons show only when it is true (the server refuses the write anyway: ``arcportal.scopeguard``)."""
    request = context.get("request")
    return authz.can(getattr(request, "user", None), action, scope)


@register.simple_tag(takes_context=True)
def may_on_machines(context, action: str) -> bool:
    """``{% may_on_machines "write" as can_write %}``: the user may ``action`` some machine somewhere."""
    request = context.get("request")
    return authz.allows_anywhere(getattr(request, "user", None), f"Microsoft.HybridCompute/machines/{action}")


@register.simple_tag(takes_context=True)
def may_anywhere(context, action: str) -> bool:
    """``{% may_anywhere "Microsoft.Resources/subscriptions/resourceGroups/write" as can_create %}``."""
    request = context.get("request")
    return authz.allows_anywhere(getattr(request, "user", None), action)


# Pages whose view refuses (403) whoever its rule says no to: their links show on that same rule.
PAGE_RULES = {"onboarding:add": authz.may_onboard, "identity:user-list": authz.may_manage_users}


@register.simple_tag(takes_context=True)
def may_open(context, page: str) -> bool:
    """``{% may_open "identity:user-list" as can_users %}``: the signed-in user would not get 403 from that page
    (``PAGE_RULES``: the function its view calls), so its link shows."""
    request = context.get("request")
    return PAGE_RULES[page](getattr(request, "user", None))


@register.simple_tag(takes_context=True)
def machine_page_menu(context) -> list:
    """The resource menu of the page's ``machine``: the view's (``menu.render_machine_page``), or built here from the
    URL name of the request, so a machine page rendered with plain ``render()`` still gets its menu."""
    from machines.menu import machine_menu

    if context.get("menu") is not None:
        return context["menu"]
    match = getattr(context.get("request"), "resolver_match", None)
    return machine_menu(context["machine"], active=match.view_name if match else "")


@register.simple_tag(takes_context=True)
def machine_page_title(context) -> str:
    """The page's title after "<machine> | ": the view's, else the label of its menu entry."""
    from machines.menu import menu_label

    if context.get("page_title"):
        return context["page_title"]
    match = getattr(context.get("request"), "resolver_match", None)
    return menu_label(match.view_name) if match else ""
