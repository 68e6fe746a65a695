"""The machine's left resource menu (Azure's "resource menu"), and the one way a machine page renders.

Every entry is a page of its own at ``f"{MACHINE}/<suffix>"`` (``machines/urls.py``), taking exactly the kwargs
``subscription_id``, ``resource_group``, ``name``. An entry shows only once its URL name resolves, so a branch that
adds a page (Activity log, IAM, Locks) only adds its URL; the menu already lists it.

A machine page is a template that ``{% extends "machines/machine_page.html" %}`` and fills ``{% block blade %}``;
its view returns ``render_machine_page(request, template, machine=..., active=..., context=...)``. Menu links use
``hx-get`` + ``hx-target="#machine-page"`` + ``hx-push-url``: such a request gets the machine page without the
portal chrome (``machines/partials/machine_page_shell.html``), a reload or a direct link gets the full page.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.cache import patch_vary_headers

from arcportal.htmx import is_partial

# The element the menu's in-page navigation swaps (``id`` in machine_page.html).
PAGE_TARGET = "machine-page"
SHELL_TEMPLATE = "machines/partials/machine_page_shell.html"
FULL_TEMPLATE = "base.html"


@dataclass(frozen=True)
class MenuEntry:
    label: str
    url_name: str
    group: str = ""  # "" = top of the menu, else the heading it sits under ("Settings")


# Azure's order for an Arc machine. Pages owned by other branches are listed here once; they appear with their URL.
MENU: tuple[MenuEntry, ...] = (
    MenuEntry("Overview", "machines:machine-detail"),
    MenuEntry("Activity log", "machines:machine-activity"),
    MenuEntry("Access control (IAM)", "machines:machine-iam"),
    MenuEntry("Tags", "machines:machine-tags"),
    MenuEntry("Extensions", "machines:machine-extensions", "Settings"),
    MenuEntry("Run command", "machines:machine-run-command", "Settings"),
    MenuEntry("Properties", "machines:machine-properties", "Settings"),
    MenuEntry("Locks", "machines:machine-locks", "Settings"),
)


@dataclass(frozen=True)
class MenuLink:
    label: str
    url: str
    active: bool


@dataclass(frozen=True)
class MenuGroup:
    heading: str
    links: tuple[MenuLink, ...]


def machine_url_kwargs(machine) -> dict[str, str]:
    group = machine.resource_group
    return {"subscription_id": group.subscription.subscription_id, "resource_group": group.name, "name": machine.name}


def machine_menu(machine, *, active: str, entries: tuple[MenuEntry, ...] = MENU) -> list[MenuGroup]:
    """The menu of ``machine`` in groups, in order: entries whose URL names don't resolve are left out; the entry
    named ``active`` (a URL name) is marked."""
    kwargs = machine_url_kwargs(machine)
    groups: list[MenuGroup] = []
    for entry in entries:
        try:
            url = reverse(entry.url_name, kwargs=kwargs)
        except NoReverseMatch:
            continue
        link = MenuLink(entry.label, url, entry.url_name == active)
        if groups and groups[-1].heading == entry.group:
            groups[-1] = MenuGroup(entry.group, (*groups[-1].links, link))
        else:
            groups.append(MenuGroup(entry.group, (link,)))
    return groups


def menu_label(url_name: str) -> str:
    return next((entry.label for entry in MENU if entry.url_name == url_name), "")


def is_page_navigation(request: HttpRequest) -> bool:
    """True for the menu's in-page navigation (HTMX aimed at the whole machine page), not for a fragment's own
    request (a polled badge, the tag editor) and not for a history restore (which needs the full page)."""
    htmx = getattr(request, "htmx", None)
    return is_partial(request) and htmx.target == PAGE_TARGET and not htmx.history_restore_request


def is_fragment_request(request: HttpRequest) -> bool:
    """True for a fragment's own HTMX request on a machine page (a polled badge, an editor swapping itself): neither
    the menu's navigation nor a history restore, which both want the page."""
    htmx = getattr(request, "htmx", None)
    return is_partial(request) and htmx.target != PAGE_TARGET and not htmx.history_restore_request


def render_machine_page(
    request: HttpRequest,
    template: str,
    *,
    machine,
    active: str,
    context: dict | None = None,
    title: str = "",
    status: int = 200,
) -> HttpResponse:
    """Render ``template`` (which extends machine_page.html) as a full page, or without the portal chrome for the
    menu's in-page navigation. ``active`` is the URL name of the menu entry; ``title`` defaults to its label."""
    partial = is_page_navigation(request)
    page_context = {
        "machine": machine,
        "menu": machine_menu(machine, active=active),
        "page_title": title or menu_label(active),
        "page_layout": SHELL_TEMPLATE if partial else FULL_TEMPLATE,
        "page_partial": partial,
        **(context or {}),
    }
    response = render(request, template, page_context, status=status)
    patch_vary_headers(response, ("HX-Target",))
    return response
