"""Resource Graph Explorer (Django client): run, page, charts, CSV, samples, errors at line and column, and the
Machines blade's Open query, whose KQL selects exactly the machines the blade's filters select."""

from __future__ import annotations

import csv
import io
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from machines.graph.from_filters import kql_string, machine_filters_kql
from machines.graph.samples import EXPLORER_SAMPLES, MICROSOFT_SAMPLES
from tests.machines.graph.fleet import seed_fleet

pytestmark = pytest.mark.django_db
URL = "/portal/resourcegraph"
CSV = "/portal/resourcegraph/export.csv"
HUNDRED = "split('" + ",".join(f"v{i:03d}" for i in range(100)) + "', ',')"
MANY_ROWS = f"Resources | where name == 'web-01' | mv-expand v = {HUNDRED} limit 400 | project v = tostring(v)"


@pytest.fixture
def fleet(subscription):
    return seed_fleet(subscription=subscription, now=timezone.now())


def test_login_is_required(client):
    response = client.get(URL)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_empty_page_has_the_query_box_and_every_sample(portal_client, fleet):
    response = portal_client.get(URL)
    body = response.content.decode()
    assert response.status_code == 200 and '<textarea id="graph-query"' in body
    for sample in EXPLORER_SAMPLES + MICROSOFT_SAMPLES:
        assert f'href="?sample={sample.key}"' in body and sample.title in body
    assert "Resource Graph Explorer" in body and 'class="active">Resource Graph Explorer' in body


def test_a_sample_opens_and_runs_in_one_click(portal_client, fleet):
    body = portal_client.get(f"{URL}?sample=by-agent-version").content.decode()
    assert "summarize count() by agentVersion" in body
    assert 'class="chart chart-bar"' in body  # the sample opens on its chart
    body = portal_client.get(f"{URL}?sample=by-status").content.decode()
    assert 'class="chart chart-donut"' in body and "Connected" in body


def test_run_shows_a_table_and_htmx_gets_only_the_results(portal_client, fleet):
    query = "Resources | where type == 'microsoft.hybridcompute/machines' | project name, resourceGroup"
    query += " | order by name asc"
    body = portal_client.post(URL, {"query": query}).content.decode()
    assert "<html" in body and "Showing 1–8 of 8 records" in body
    assert "<td>web-01</td><td>rg-web</td>" in body
    response = portal_client.post(URL, {"query": query}, HTTP_HX_REQUEST="true")
    partial = response.content.decode()
    assert "<html" not in partial and partial.startswith('<div id="graph-results"') and "web-02" in partial
    assert "HX-Request" in response["Vary"]


def test_results_page_through(portal_client, fleet):
    first = portal_client.post(URL, {"query": MANY_ROWS}, HTTP_HX_REQUEST="true").content.decode()
    assert "Showing 1–50 of 100 records" in first and "Page 1 of 2" in first and "<td>v000</td>" in first
    second = portal_client.post(URL, {"query": MANY_ROWS, "page": "2"}, HTTP_HX_REQUEST="true").content.decode()
    assert "Showing 51–100 of 100 records" in second and "<td>v050</td>" in second and "<td>v049</td>" not in second


def test_charts_tab_draws_bar_and_donut(portal_client, fleet):
    query = "Resources | summarize n = count() by type"
    bar = portal_client.post(URL, {"query": query, "switch": "chart-bar"}).content.decode()
    assert '<svg class="chart chart-bar"' in bar and bar.count('<g class="bar">') == 2
    donut = portal_client.post(URL, {"query": query, "view": "chart-donut"}).content.decode()
    assert '<svg class="chart chart-donut"' in donut and donut.count('class="slice"') == 2
    nothing = portal_client.post(URL, {"query": "Resources | project name", "switch": "chart-bar"}).content.decode()
    assert "Nothing to chart" in nothing


def test_chart_labels_are_escaped(portal_client, fleet):
    query = "Resources | take 1 | summarize n = count() by label = '<script>alert(1)</script>'"
    body = portal_client.post(URL, {"query": query, "switch": "chart-bar"}).content.decode()
    assert "<script>alert(1)" not in body and "&lt;script&gt;alert(1)" in body


def test_errors_show_line_and_column(portal_client, fleet):
    query = "Resources\n| where nme == 'x'"
    response = portal_client.post(URL, {"query": query}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 400
    assert "Line 2, column 9" in body and 'data-error-line="2" data-error-column="9"' in body
    assert "| where nme == &#x27;x&#x27;\n        ^" in body and "UnknownColumn" in body
    parse_error = portal_client.post(URL, {"query": "Resources | where name =="}).content.decode()
    assert "Line 1, column 26" in parse_error and "ParserFailure" in parse_error


def test_csv_has_every_row(portal_client, fleet):
    response = portal_client.post(CSV, {"query": MANY_ROWS})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["v"] and len(rows) == 101 and rows[1] == ["v000"]
    formula = portal_client.post(CSV, {"query": "Resources | take 1 | project f = '=1+1'"})
    assert list(csv.reader(io.StringIO(b"".join(formula.streaming_content).decode())))[1] == ["'=1+1"]
    bad = portal_client.post(CSV, {"query": "Resources | nope"})
    assert bad.status_code == 400 and "nope" in bad.content.decode()


def test_kql_strings_are_quoted():
    assert kql_string("it's a \\ test") == "'it\\'s a \\\\ test'"


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"status": "Connected"},
        {"status": "Offline", "os": "linux"},
        {"resource_group": "RG-WEB"},
        {"location": "West Europe", "tag": "env=prod"},
        {"tag": "site"},
        {"q": "EB", "sort": "-name"},
        {"status": "Expired"},
        {"status": "AwaitingConnection"},
    ],
)
def test_open_query_selects_what_the_blade_selects(portal_client, fleet, params):
    from machines import selectors

    blade = selectors.machine_list_filtered(params=params, now=timezone.now())
    assert blade.is_valid()
    expected = sorted(m.name for m in blade.qs)
    page = portal_client.get("/", params).content.decode()
    link = next(line for line in page.splitlines() if "Open query</a>" in line)
    href = link.split('href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    query = parse_qs(urlsplit(href).query)["query"][0]
    assert query == machine_filters_kql(blade.form.cleaned_data)
    body = portal_client.get(href, HTTP_HX_REQUEST="true").content.decode()
    names = sorted(cell.split("<td>")[1].split("</td>")[0] for cell in body.split("<tr>")[2:])
    assert names == expected, query
    if params.get("sort") == "-name":
        in_order = [cell.split("<td>")[1].split("</td>")[0] for cell in body.split("<tr>")[2:]]
        assert in_order == sorted(expected, reverse=True)
