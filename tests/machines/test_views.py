"""Machines blade pages: list (full page + HTMX rows), CSV, bulk commands, machine Overview, resource groups."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.urls import reverse

from machines import status as rules
from machines.models import Machine, MachineStatusEvent, MachineTag, ResourceGroup
from tests.machines.factories import MachineFactory, MachineTagFactory, ResourceGroupFactory

pytestmark = pytest.mark.django_db

LIST = "/"
ROW = re.compile(r'<tr id="machine-(\d+)" data-status="([A-Za-z]*)">')


@pytest.fixture
def frozen(frozen_clock):
    """Every status of a response is derived at ``now``, and the rows' own timestamps (``created_at``) are taken at
    ``now`` too: the whole clock stands there, not only the views' ``request_now``."""
    return frozen_clock


@pytest.fixture
def group(subscription):
    return ResourceGroupFactory(subscription=subscription, name="rg-web", location="westeurope")


def row_ids(response) -> list[int]:
    return [int(pk) for pk, _ in ROW.findall(response.content.decode())]


def row_statuses(response) -> dict[int, str]:
    return {int(pk): value for pk, value in ROW.findall(response.content.decode())}


def csv_rows(response) -> list[dict]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


# --- Access ----------------------------------------------------------------------------------------------------


def test_every_page_sends_anonymous_users_to_login(client, group):
    machine = MachineFactory(resource_group=group, name="web-1")
    gets = [
        LIST,
        reverse("machines:machine-export"),
        machine.get_absolute_url(),
        machine.get_absolute_url("machine-tags"),
        reverse("machines:resource-group-list"),
        reverse("machines:resource-group-delete", args=[group.subscription.subscription_id, group.name]),
    ]
    posts = [reverse("machines:machine-assign-tags"), reverse("machines:machine-delete"), gets[3], gets[4], gets[5]]
    for url in gets:
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url
    for url in posts:
        response = client.post(url, {"machine": machine.pk, "confirm": "delete", "confirm_name": group.name})
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url
    assert Machine.objects.filter(pk=machine.pk).exists()
    assert ResourceGroup.objects.filter(pk=group.pk).exists()


# --- List: full page and fragment --------------------------------------------------------------------------------


def test_list_renders_full_page_and_htmx_rows_fragment(portal_client, group, frozen):
    machine = MachineFactory(resource_group=group, name="web-1", last_heartbeat_at=frozen)
    MachineTagFactory(machine=machine, key="env", value="prod")

    page = portal_client.get(LIST + "?status=Connected")
    html = page.content.decode()
    assert page.status_code == 200
    assert "<html" in html and "Machines – Azure Arc" in html
    assert 'hx-trigger="every 15s"' in html
    assert 'hx-get="/?status=Connected"' in html
    assert 'id="machine-summary"' in html and "hx-swap-oob" not in html
    assert '<a class="pill-clear" href="?"' in html  # the Status pill's × removes that filter
    assert row_ids(page) == [machine.pk]

    fragment = portal_client.get(LIST + "?status=Connected", HTTP_HX_REQUEST="true")
    text = fragment.content.decode()
    assert fragment.status_code == 200
    assert "HX-Request" in fragment["Vary"]
    assert "<html" not in text and "<thead" not in text and "commandbar" not in text
    assert text.lstrip().startswith("<tr") or text.lstrip().startswith("\n<tr")
    assert row_ids(fragment) == [machine.pk]
    assert "env: prod" in text
    # Counts travel out of band with the rows.
    assert '<div id="machine-summary" class="summary" hx-swap-oob="true">' in text
    assert "Showing 1 to 1 of 1 records." in text


def test_empty_fleet_explains_arc_and_points_at_add(portal_client, subscription):
    html = portal_client.get(LIST).content.decode()
    assert "No Azure Arc machines to display" in html
    assert "outside Azure" in html
    assert 'href="/portal/add"' in html
    assert "<table" not in html


def test_filter_without_matches_is_not_the_empty_fleet_state(portal_client, group):
    MachineFactory(resource_group=group, name="web-1")
    html = portal_client.get(LIST + "?q=nothing-like-this").content.decode()
    assert "No machines match these filters" in html
    assert "No Azure Arc machines to display" not in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("status=Sleeping", "&#x27;Sleeping&#x27; is not a status"),
        ("sort=password", "&#x27;password&#x27; is not a sortable column"),
        ("location=atlantis", "&#x27;atlantis&#x27; is not a supported region"),
        ("tag=a%3Fb%3Dc", "can&#x27;t contain ?"),
    ],
)
def test_bad_filter_is_a_specific_400(portal_client, group, query, message):
    MachineFactory(resource_group=group)
    response = portal_client.get(f"{LIST}?{query}")
    assert response.status_code == 400
    assert message in response.content.decode()
    assert row_ids(response) == []
    export = portal_client.get(f"{reverse('machines:machine-export')}?{query}")
    assert export.status_code == 400


# --- Status at the boundaries ----------------------------------------------------------------------------------

AGES = {
    "hb-0s": (timedelta(0), "Connected"),
    "hb-25m": (timedelta(minutes=25), "Connected"),
    "hb-25m1s": (timedelta(minutes=25, seconds=1), "Offline"),
    "hb-45d1s": (timedelta(days=45, seconds=1), "Expired"),
    "hb-never": (None, ""),
}


@pytest.fixture
def boundary_fleet(group, frozen):
    return {
        name: MachineFactory(resource_group=group, name=name, last_heartbeat_at=None if age is None else frozen - age)
        for name, (age, _) in AGES.items()
    }


def status_cell(html: str, pk: int) -> str:
    row = re.search(rf'<tr id="machine-{pk}".*?</tr>', html, re.S).group(0)
    cell = re.search(r'<td class="status-cell">(.*?)</td>', row, re.S).group(1)
    return re.sub(r"<[^>]+>", "", cell).strip()


def test_status_labels_in_the_list(portal_client, boundary_fleet):
    html = portal_client.get(LIST).content.decode()
    for name, (_, label) in AGES.items():
        assert status_cell(html, boundary_fleet[name].pk) == label, name


def test_status_labels_on_the_detail_page(portal_client, boundary_fleet):
    for name, (_, label) in AGES.items():
        machine = boundary_fleet[name]
        html = portal_client.get(machine.get_absolute_url()).content.decode()
        badge = re.search(r'<span id="machine-status".*?</span></span>', html, re.S).group(0)
        assert re.sub(r"<[^>]+>", "", badge).strip() == label, name
        partial = portal_client.get(machine.get_absolute_url(), HTTP_HX_REQUEST="true").content.decode()
        assert "<html" not in partial and 'hx-trigger="every 15s"' in partial
        assert re.sub(r"<[^>]+>", "", partial).strip() == label, name


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Connected", {"hb-0s", "hb-25m"}),
        ("Disconnected", {"hb-25m1s"}),
        ("Expired", {"hb-45d1s"}),
        ("AwaitingConnection", {"hb-never"}),
    ],
)
def test_status_filter_at_the_boundaries(portal_client, boundary_fleet, value, expected):
    response = portal_client.get(f"{LIST}?status={value}")
    by_pk = {m.pk: name for name, m in boundary_fleet.items()}
    assert {by_pk[pk] for pk in row_ids(response)} == expected


def test_status_counts_strip(portal_client, boundary_fleet):
    html = portal_client.get(LIST).content.decode()
    strip = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.search(r'<ul class="counts".*?</ul>', html, re.S).group(0)))
    assert "5 Total" in strip and "2 Connected" in strip and "1 Offline" in strip
    assert "1 Expired" in strip and "1 Not connected yet" in strip


def test_status_ignores_the_stored_field(portal_client, boundary_fleet):
    Machine.objects.update(status=rules.CONNECTED)
    statuses = row_statuses(portal_client.get(LIST))
    assert statuses[boundary_fleet["hb-45d1s"].pk] == rules.EXPIRED


def test_csv_cells_cannot_become_formulas(portal_client, group):
    machine = MachineFactory(resource_group=group, name="web-1", agent_version="=HYPERLINK(1)")
    MachineTagFactory(machine=machine, key="note", value="x")
    rows = csv_rows(portal_client.get(reverse("machines:machine-export")))
    assert rows[0]["Agent version"] == "'=HYPERLINK(1)"


# --- Bulk commands: Assign tags, Delete ----------------------------------------------------------------------------


@pytest.fixture
def three(group):
    return [MachineFactory(resource_group=group, name=f"web-{i}") for i in range(3)]


def tags_of(machine) -> dict[str, str]:
    return {t.key: t.value for t in MachineTag.objects.filter(machine=machine)}


def test_assign_tags_merges_into_selected_machines_only(portal_client, three):
    MachineTagFactory(machine=three[0], key="ENV", value="dev")
    response = portal_client.post(
        reverse("machines:machine-assign-tags"),
        {"machine": [three[0].pk, three[1].pk], "tag_name": "env", "tag_value": "prod", "next": "/?q=web"},
    )
    assert response.status_code == 302 and response["Location"] == "/?q=web"
    assert tags_of(three[0]) == {"env": "prod"}
    assert tags_of(three[1]) == {"env": "prod"}
    assert tags_of(three[2]) == {}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"tag_name": "a<b", "tag_value": "x"}, "can&#x27;t contain &lt;"),
        ({"tag_name": "", "tag_value": "x"}, "A tag needs a name."),
        ({"tag_name": "env", "tag_value": "v" * 257}, "longer than 256 characters"),
        ({"tag_name": "n" * 513, "tag_value": "x"}, "longer than 512 characters"),
    ],
)
def test_assign_tags_rejects_bad_tags_and_changes_nothing(portal_client, three, data, message):
    response = portal_client.post(reverse("machines:machine-assign-tags"), {"machine": [three[0].pk], **data})
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert 'id="assign-tags-dialog" aria-labelledby="assign-tags-title" open' in html
    assert MachineTag.objects.count() == 0


@pytest.mark.parametrize(
    ("machines", "message"),
    [
        ([], "Select at least one machine."),
        (["x"], "The selection is not a list of machines."),
        ([999999], "None of the selected machines exists"),
    ],
)
def test_assign_tags_needs_a_real_selection(portal_client, three, machines, message):
    response = portal_client.post(
        reverse("machines:machine-assign-tags"), {"machine": machines, "tag_name": "env", "tag_value": "prod"}
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert MachineTag.objects.count() == 0


def test_assign_tags_over_the_50_tag_limit_changes_nothing(portal_client, three):
    MachineTag.objects.bulk_create([MachineTag(machine=three[0], key=f"k{i}", value="v") for i in range(50)])
    response = portal_client.post(
        reverse("machines:machine-assign-tags"),
        {"machine": [three[0].pk, three[1].pk], "tag_name": "one-more", "tag_value": "v"},
    )
    assert response.status_code == 400
    assert "at most 50 tags" in response.content.decode()
    assert MachineTag.objects.filter(machine=three[1]).count() == 0
    assert MachineTag.objects.filter(machine=three[0]).count() == 50


def test_delete_selected_machines_after_confirmation(portal_client, three):
    response = portal_client.post(
        reverse("machines:machine-delete"), {"machine": [three[0].pk, three[2].pk], "confirm": "delete"}
    )
    assert response.status_code == 302
    assert list(Machine.objects.values_list("name", flat=True)) == ["web-1"]
    follow = portal_client.get(response["Location"])
    assert "Deleted 2 machines" in follow.content.decode()


@pytest.mark.parametrize(("confirm", "machines"), [("", "sel"), ("yes", "sel"), ("delete", "none")])
def test_delete_without_confirmation_or_selection_deletes_nothing(portal_client, three, confirm, machines):
    selection = [three[0].pk] if machines == "sel" else []
    response = portal_client.post(reverse("machines:machine-delete"), {"machine": selection, "confirm": confirm})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Type &quot;delete&quot; to confirm" in html or "Select at least one machine." in html
    assert 'id="delete-dialog" aria-labelledby="delete-title" open' in html
    assert Machine.objects.count() == 3


def test_bulk_redirect_never_leaves_the_site(portal_client, three):
    response = portal_client.post(
        reverse("machines:machine-delete"),
        {"machine": [three[0].pk], "confirm": "delete", "next": "https://evil.example/"},
    )
    assert response["Location"] == "/"


def test_bulk_endpoints_refuse_get(portal_client, three):
    assert portal_client.get(reverse("machines:machine-delete")).status_code == 405
    assert portal_client.get(reverse("machines:machine-assign-tags")).status_code == 405


# --- Machine Overview --------------------------------------------------------------------------------------------


def test_detail_page_shows_essentials_status_changes_and_timeline(portal_client, group, frozen):
    machine = MachineFactory(
        resource_group=group,
        name="Web-1",
        computer_name="web-1.contoso",
        machine_fqdn="web-1.contoso.local",
        correlation_id="corr-123",
        detected_properties={"cloudprovider": "N/A", "manufacturer": "QEMU"},
        last_heartbeat_at=frozen - timedelta(hours=1),
        last_status_change=frozen - timedelta(minutes=35),
    )
    # Registered a month before ``now`` (auto_now_add would say "just now"): the 7-day timeline is all history.
    Machine.objects.filter(pk=machine.pk).update(created_at=frozen - timedelta(days=30))
    MachineStatusEvent.objects.create(
        machine=machine, from_status=rules.CONNECTED, to_status=rules.DISCONNECTED, at=frozen - timedelta(minutes=35)
    )
    url = machine.get_absolute_url().replace("rg-web", "RG-WEB").replace("Web-1", "WEB-1")  # names match any casing
    response = portal_client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Web-1 | Overview" in html and "Machine - Azure Arc" in html
    for text in ("rg-web", "West Europe", "web-1.contoso", "web-1.contoso.local", "corr-123", "Ubuntu 22.04", "1.50.0"):
        assert text in html, text
    assert machine.arm_id in html
    assert str(group.subscription.subscription_id) in html
    assert "Connected" in html and "Offline" in html  # status changes
    assert "<svg" in html and 'class="band band-connected"' in html and 'class="band band-disconnected"' in html
    properties = portal_client.get(url + "/properties").content.decode()  # Properties is a page of its own
    assert "Web-1 | Properties" in properties and "manufacturer" in properties and "QEMU" in properties


def test_detail_of_unknown_machine_is_404(portal_client, group):
    base = f"/portal/subscriptions/{group.subscription.subscription_id}/resourceGroups"
    assert portal_client.get(f"{base}/rg-web/providers/Microsoft.HybridCompute/machines/nope").status_code == 404
    assert portal_client.get(f"{base}/nope/providers/Microsoft.HybridCompute/machines/x").status_code == 404
    bad_sub = "/portal/subscriptions/not-a-guid/resourceGroups/rg-web/providers/Microsoft.HybridCompute/machines/x"
    assert portal_client.get(bad_sub).status_code == 404


# --- Tags edited in place -------------------------------------------------------------------------------------


@pytest.fixture
def tagged(group):
    machine = MachineFactory(resource_group=group, name="web-1")
    MachineTagFactory(machine=machine, key="env", value="prod")
    return machine


def tag_post(rows: list[tuple[str, str]]) -> dict:
    data = {"tags-TOTAL_FORMS": str(len(rows)), "tags-INITIAL_FORMS": "0"}
    for i, (name, value) in enumerate(rows):
        data[f"tags-{i}-name"] = name
        data[f"tags-{i}-value"] = value
    return data


def test_tag_editor_fragment_lists_current_tags(portal_client, tagged):
    response = portal_client.get(tagged.get_absolute_url("machine-tags") + "?edit=1", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert 'name="tags-0-name"' in html and 'value="env"' in html and 'value="prod"' in html


def test_tag_edit_in_place_saves_the_whole_set(portal_client, tagged):
    url = tagged.get_absolute_url("machine-tags")
    response = portal_client.post(url, tag_post([("env", "test"), ("owner", "ops"), ("", "")]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html and "env: test" in html and "owner: ops" in html
    assert tags_of(tagged) == {"env": "test", "owner": "ops"}


def test_tag_edit_without_htmx_redirects_to_the_overview(portal_client, tagged):
    response = portal_client.post(tagged.get_absolute_url("machine-tags"), tag_post([("env", "x")]))
    assert response.status_code == 302 and response["Location"] == tagged.get_absolute_url()
    assert tags_of(tagged) == {"env": "x"}


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("a/b", "x")], "can&#x27;t contain /"),
        ([("", "orphan")], "A tag needs a name."),
        ([("env", "v" * 257)], "longer than 256 characters"),
        ([("Env", "1"), ("ENV", "2")], "is given twice"),
        ([(f"k{i}", "v") for i in range(51)], "at most 50 tags; 51 were given"),
    ],
)
def test_tag_edit_errors_are_inline_and_save_nothing(portal_client, tagged, rows, message):
    url = tagged.get_absolute_url("machine-tags")
    response = portal_client.post(url, tag_post(rows), HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html and "<html" not in html and "<form" in html
    assert tags_of(tagged) == {"env": "prod"}
    full = portal_client.post(url, tag_post(rows))
    assert full.status_code == 400 and "<html" in full.content.decode() and message in full.content.decode()
    assert tags_of(tagged) == {"env": "prod"}


def test_tag_edit_with_a_tampered_formset_is_a_400(portal_client, tagged):
    response = portal_client.post(tagged.get_absolute_url("machine-tags"), {"tags-0-name": "x"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert tags_of(tagged) == {"env": "prod"}


# --- Resource groups ---------------------------------------------------------------------------------------------


def rg_post(subscription, name="rg-new", location="northeurope", tags=()) -> dict:
    data = {"subscription": str(subscription.subscription_id), "name": name, "location": location}
    data.update({"tags-TOTAL_FORMS": str(max(len(tags), 5)), "tags-INITIAL_FORMS": "0"})
    for i, (key, value) in enumerate(tags):
        data[f"tags-{i}-name"] = key
        data[f"tags-{i}-value"] = value
    return data


def test_resource_group_list_shows_machine_counts(portal_client, group):
    MachineFactory.create_batch(3, resource_group=group)
    ResourceGroupFactory(subscription=group.subscription, name="rg-empty")
    html = portal_client.get(reverse("machines:resource-group-list")).content.decode()
    assert re.search(r"rg-web</a></td>.*?<td class=\"machine-count\">3</td>", html, re.S)
    assert re.search(r"rg-empty</a></td>.*?<td class=\"machine-count\">0</td>", html, re.S)
    assert "resource_group=rg-web" in html


def test_create_resource_group_with_tags(portal_client, subscription):
    form = portal_client.get(reverse("machines:resource-group-list") + "?create=1").content.decode()
    assert "Create a resource group" in form and 'name="tags-4-name"' in form
    response = portal_client.post(
        reverse("machines:resource-group-list"), rg_post(subscription, tags=[("env", "prod"), ("owner", "")])
    )
    assert response.status_code == 302
    group = ResourceGroup.objects.get(name="rg-new")
    assert group.location == "northeurope" and group.tags == {"env": "prod", "owner": ""}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": ""}, "This field is required."),
        ({"name": "bad name"}, "&#x27; &#x27; is not allowed"),
        ({"name": "ends-with."}, "can&#x27;t end with a period"),
        ({"name": "r" * 91}, "must be 1 to 90 characters long"),
        ({"name": "rg/slash"}, "&#x27;/&#x27; is not allowed"),
        ({"location": "atlantis"}, "&#x27;atlantis&#x27; is not a supported region"),
        ({"tags": [("a%b", "x")]}, "can&#x27;t contain %"),
        ({"tags": [("env", "v" * 257)]}, "longer than 256 characters"),
        ({"tags": [("env", "1"), ("ENV", "2")]}, "is given twice"),
        ({"tags": [("", "value-without-name")]}, "A tag needs a name."),
        ({"tags": [(f"k{i}", "v") for i in range(51)]}, "at most 50 tags; 51 were given"),
    ],
)
def test_create_resource_group_errors_are_specific_and_save_nothing(portal_client, subscription, overrides, message):
    response = portal_client.post(reverse("machines:resource-group-list"), rg_post(subscription, **overrides))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert ResourceGroup.objects.count() == 0


def test_create_duplicate_resource_group_is_a_409_on_the_name(portal_client, group):
    response = portal_client.post(reverse("machines:resource-group-list"), rg_post(group.subscription, name="RG-WEB"))
    assert response.status_code == 409
    assert "A resource group named &#x27;RG-WEB&#x27; already exists." in response.content.decode()
    assert ResourceGroup.objects.count() == 1


def test_create_resource_group_in_unknown_subscription(portal_client, subscription):
    data = rg_post(subscription)
    data["subscription"] = "00000000-0000-0000-0000-000000000000"
    response = portal_client.post(reverse("machines:resource-group-list"), data)
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert ResourceGroup.objects.count() == 0


def test_delete_resource_group_needs_its_name_and_takes_its_machines(portal_client, group):
    MachineFactory.create_batch(2, resource_group=group)
    url = reverse("machines:resource-group-delete", args=[group.subscription.subscription_id, group.name])
    page = portal_client.get(url).content.decode()
    assert "Enter resource group name to confirm deletion" in page and '<dd class="machine-count">2</dd>' in page

    wrong = portal_client.post(url, {"confirm_name": "RG-WEB"})
    assert wrong.status_code == 400
    assert "doesn&#x27;t match &#x27;rg-web&#x27;" in wrong.content.decode()
    assert ResourceGroup.objects.count() == 1 and Machine.objects.count() == 2

    response = portal_client.post(url, {"confirm_name": "rg-web"})
    assert response.status_code == 302
    assert ResourceGroup.objects.count() == 0 and Machine.objects.count() == 0
    assert (
        "Deleted resource group &#x27;rg-web&#x27; and its 2 machines."
        in portal_client.get(response["Location"]).content.decode()
    )


def test_delete_unknown_resource_group_is_404(portal_client, subscription):
    url = reverse("machines:resource-group-delete", args=[subscription.subscription_id, "nope"])
    assert portal_client.post(url, {"confirm_name": "nope"}).status_code == 404


# --- Status badge template filters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "css", "label"),
    [
        (rules.CONNECTED, "status-connected", "Connected"),
        (rules.DISCONNECTED, "status-disconnected", "Offline"),
        (rules.EXPIRED, "status-expired", "Expired"),
        (rules.AWAITING, "status-awaitingconnection", ""),
    ],
)
def test_status_badge_has_colour_class_and_text(value, css, label):
    from django.template import Context, Template

    html = Template("{% load machines %}{{ value|status_badge }}|{{ value|status_label }}").render(
        Context({"value": value})
    )
    badge, text = html.split("|")
    assert f'class="status {css}"' in badge
    assert re.sub(r"<[^>]+>", "", badge) == label and text == label
