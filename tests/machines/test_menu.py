"""The machine's resource menu (machines/menu.py) and the layout every machine page shares (machine_page.html):
entries in Azure's order, only those whose pages exist, HTMX in-page navigation vs full page on reload."""

import re

import pytest
from django.urls import include, path

from machines import urls as machine_urls
from machines.menu import MENU, MenuEntry, machine_menu
from tests.machines.factories import MachineFactory, MachineTagFactory, ResourceGroupFactory

pytestmark = pytest.mark.django_db

NAV = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "machine-page", "HTTP_HX_CURRENT_URL": "http://testserver/"}


@pytest.fixture
def machine(subscription):
    group = ResourceGroupFactory(subscription=subscription, name="rg-menu", location="westeurope")
    machine = MachineFactory(resource_group=group, name="web-1", detected_properties={"manufacturer": "QEMU"})
    MachineTagFactory(machine=machine, key="env", value="prod")
    return machine


def menu_labels(html: str) -> list[str]:
    nav = re.search(r'<nav class="resource-menu".*?</nav>', html, re.S).group(0)
    return [re.sub(r"<[^>]+>", "", link).strip() for link in re.findall(r"<a [^>]*>.*?</a>", nav, re.S)]


def active_label(html: str) -> str:
    return re.search(r'class="active" aria-current="page">([^<]+)</a>', html).group(1)


def test_menu_lists_azures_entries_in_order():
    assert [entry.label for entry in MENU] == [
        "Overview",
        "Activity log",
        "Access control (IAM)",
        "Tags",
        "Extensions",
        "Run command",
        "Properties",
        "Locks",
    ]
    assert {entry.group for entry in MENU if entry.label in ("Extensions", "Run command", "Properties", "Locks")} == {
        "Settings"
    }


def test_menu_shows_only_entries_whose_url_names_resolve(machine):
    entries = (*MENU, MenuEntry("Nowhere", "machines:machine-does-not-exist", "Settings"))
    groups = machine_menu(machine, active="machines:machine-tags", entries=entries)
    labels = [link.label for group in groups for link in group.links]
    assert "Nowhere" not in labels
    assert labels[:1] == ["Overview"] and "Tags" in labels and "Properties" in labels
    assert [link.label for group in groups for link in group.links if link.active] == ["Tags"]
    assert groups[-1].heading == "Settings"
    tags = next(link for group in groups for link in group.links if link.label == "Tags")
    assert tags.url == machine.get_absolute_url("machine-tags")


def test_a_page_added_later_appears_in_the_menu(machine, settings):
    """A branch that adds e.g. Locks only adds its URL name; the menu picks it up."""

    locks = path(f"{machine_urls.MACHINE}/locks", lambda request, **kwargs: None, name="machine-locks")

    class Urls:  # the project's URLs with one more machine page under the machines namespace
        urlpatterns = [path("", include(([*machine_urls.urlpatterns, locks], "machines")))]

    settings.ROOT_URLCONF = Urls
    groups = machine_menu(machine, active="machines:machine-detail")
    locks = [link for group in groups for link in group.links if link.label == "Locks"]
    assert len(locks) == 1 and locks[0].url.endswith("/machines/web-1/locks")


def test_a_page_rendered_with_plain_render_gets_its_menu_and_title(portal_client, machine, settings):
    """Another branch's page may skip ``render_machine_page``: the layout finds its menu entry from the URL name."""
    from django.http import HttpResponse
    from django.template import engines

    from machines.views_machine import _machine_or_404

    template = engines["django"].from_string(
        '{% extends "machines/machine_page.html" %}{% block blade %}<p>LOCKS BODY</p>{% endblock %}'
    )

    def locks_view(request, subscription_id, resource_group, name):
        found = _machine_or_404(subscription_id, resource_group, name)
        return HttpResponse(template.render({"machine": found}, request))

    locks = path(f"{machine_urls.MACHINE}/locks", locks_view, name="machine-locks")
    from arcportal import urls as project_urls

    class Urls:  # the project's URLs, the machines namespace with this page in front of the real Locks page
        urlpatterns = [
            path("", include(([locks, *machine_urls.urlpatterns], "machines"))),
            *[p for p in project_urls.urlpatterns if getattr(p, "namespace", None) != "machines"],
        ]

    settings.ROOT_URLCONF = Urls
    url = machine.get_absolute_url("machine-tags").removesuffix("/tags") + "/locks"
    html = portal_client.get(url).content.decode()
    assert "web-1 | Locks</h1>" in html and "<title>web-1 | Locks · ArcPortal</title>" in html
    assert active_label(html) == "Locks" and "LOCKS BODY" in html and menu_labels(html)[-1] == "Locks"
    link = re.search(rf'<a href="{re.escape(url)}"[^>]*>', html).group(0)
    assert 'hx-select="#machine-page"' in link  # a full page answering the menu's request is cut to the machine page


@pytest.mark.parametrize(
    ("page", "title", "text"),
    [
        ("machine-detail", "Overview", "Essentials"),
        ("machine-tags", "Tags", "env: prod"),
        ("machine-properties", "Properties", "QEMU"),
    ],
)
def test_each_entry_is_a_full_page_and_an_in_page_navigation(portal_client, machine, page, title, text):
    url = machine.get_absolute_url(page)
    full = portal_client.get(url)
    html = full.content.decode()
    assert full.status_code == 200 and "<html" in html and 'class="sidenav"' in html
    assert f"web-1 | {title}</h1>" in html and text in html
    assert active_label(html) == title
    labels = menu_labels(html)
    assert labels[0] == "Overview" and "Tags" in labels  # other branches' pages appear once they exist

    partial = portal_client.get(url, **NAV)
    fragment = partial.content.decode()
    assert partial.status_code == 200 and "<html" not in fragment and 'class="sidenav"' not in fragment
    assert f"<title>web-1 | {title} · ArcPortal</title>" in fragment
    assert '<div id="machine-page"' in fragment and text in fragment and active_label(fragment) == title
    assert "HX-Request" in partial["Vary"] and "HX-Target" in partial["Vary"]


def test_menu_links_navigate_in_page_and_push_the_url(portal_client, machine):
    html = portal_client.get(machine.get_absolute_url()).content.decode()
    tags = machine.get_absolute_url("machine-tags")
    link = re.search(rf'<a href="{re.escape(tags)}"[^>]*>', html).group(0)
    assert f'hx-get="{tags}"' in link and 'hx-target="#machine-page"' in link and 'hx-push-url="true"' in link


def test_history_restore_gets_the_full_page(portal_client, machine):
    restore = {"HTTP_HX_REQUEST": "true", "HTTP_HX_HISTORY_RESTORE_REQUEST": "true"}
    for page in ("machine-detail", "machine-tags"):
        html = portal_client.get(machine.get_absolute_url(page), **restore).content.decode()
        assert "<html" in html and 'class="sidenav"' in html, page


def test_overview_badge_poll_still_gets_only_the_badge(portal_client, machine):
    html = portal_client.get(machine.get_absolute_url(), HTTP_HX_REQUEST="true").content.decode()
    assert html.startswith('<span id="machine-status"') and "resource-menu" not in html


def test_tags_page_edits_and_stays_on_the_tags_page(portal_client, machine):
    url = machine.get_absolute_url("machine-tags")
    editor = portal_client.get(url + "?edit=1").content.decode()
    assert "web-1 | Tags</h1>" in editor and 'name="tags-0-name"' in editor and 'name="page" value="tags"' in editor
    data = {"tags-TOTAL_FORMS": "1", "tags-INITIAL_FORMS": "0", "tags-0-name": "env", "tags-0-value": "test"}
    response = portal_client.post(url, {**data, "page": "tags"})
    assert response.status_code == 302 and response["Location"] == url
    bad = portal_client.post(url, {**data, "tags-0-name": "a/b", "page": "tags"})
    html = bad.content.decode()
    assert bad.status_code == 400 and "web-1 | Tags</h1>" in html and "can&#x27;t contain /" in html
    fragment = portal_client.get(url + "?page=tags", HTTP_HX_REQUEST="true").content.decode()
    assert fragment.startswith("<section") and f'href="{url}?edit=1"' in fragment


def test_machine_pages_need_sign_in(client, machine):
    for page in ("machine-detail", "machine-tags", "machine-properties"):
        response = client.get(machine.get_absolute_url(page))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
        hx = client.get(machine.get_absolute_url(page), **NAV)
        assert hx.status_code == 401 and "/accounts/login/" in hx["HX-Redirect"]


def test_properties_of_an_unknown_machine_is_404(portal_client, machine):
    url = machine.get_absolute_url("machine-properties").replace("/web-1/", "/nope/")
    assert portal_client.get(url).status_code == 404
