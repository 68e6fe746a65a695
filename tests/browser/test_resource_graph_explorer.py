"""Resource Graph Explorer in Chromium: Open query from the Machines blade, run, page, Download CSV, Charts (bar and
donut), a sample in one click, an error shown (and the cursor put) at its line and column.
Screenshots: var/screenshots/graph-*.png."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.machines.graph.fleet import seed_fleet

pytestmark = pytest.mark.django_db(transaction=True)
HUNDRED = "split('" + ",".join(f"v{i:03d}" for i in range(100)) + "', ',')"


def test_resource_graph_explorer_end_to_end(signed_in_page, live_server, subscription, screenshot):
    fleet = seed_fleet(subscription=subscription, now=timezone.now())
    connected = sorted(m.name for m in fleet.machines.values() if fleet.status(m) == "Connected")
    page = signed_in_page
    base = live_server.url

    # The Machines blade's filters become KQL in the Explorer, and the same machines come back.
    page.goto(f"{base}/?status=Connected")
    expect(page.locator(".commandbar").get_by_role("link", name="Open query")).to_be_visible()
    screenshot("graph-blade-open-query")
    page.locator(".commandbar").get_by_role("link", name="Open query").click()
    expect(page.get_by_role("heading", name="Resource Graph Explorer")).to_be_visible()
    box = page.locator("#graph-query")
    expect(box).to_have_value(re.compile(r"\| where properties\.status == 'Connected'"))
    expect(page.locator(".graph-summary")).to_contain_text(f"of {len(connected)} record")
    names = sorted(page.locator(".graph-grid tbody tr td:first-child").all_inner_texts())
    assert names == connected
    screenshot("graph-open-query")

    # An error is shown at its line and column, and the cursor goes there.
    box.fill("Resources\n| where type == 'microsoft.hybridcompute/machines'\n| project nmae")
    page.get_by_role("button", name="Run query").click()
    error = page.locator(".graph-error")
    expect(error).to_contain_text("Line 3, column 11")
    expect(error).to_contain_text("Failed to resolve column or scalar expression named 'nmae'")
    expect(page.locator(".graph-error-excerpt")).to_contain_text("| project nmae")
    before = "Resources\n| where type == 'microsoft.hybridcompute/machines'\n| project "
    # The cursor moves once htmx has settled the swapped fragment (a moment after the error text appears).
    page.wait_for_function(
        "n => document.getElementById('graph-query').selectionStart === n", arg=len(before), timeout=5000
    )
    screenshot("graph-error")

    # Results page through (Ctrl+Enter runs the query too).
    box.fill(f"Resources | where name == 'web-01' | mv-expand v = {HUNDRED} limit 400 | project v = tostring(v)")
    box.press("Control+Enter")
    expect(page.locator(".graph-summary")).to_have_text("Showing 1–50 of 100 records")
    page.get_by_role("button", name="Next ›").click()
    expect(page.locator(".graph-summary")).to_have_text("Showing 51–100 of 100 records")
    expect(page.locator(".graph-grid tbody tr").first).to_contain_text("v050")
    screenshot("graph-paged")

    # Download CSV: every row, not just the page.
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    lines = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert lines[0] == "v" and len(lines) == 101 and lines[1] == "v000"

    # Charts: a summarize … by result as a bar chart, then as a donut.
    box.fill("Resources | where type == 'microsoft.hybridcompute/machines' | summarize machines = count() by os ="
             " tostring(properties.osName)")  # fmt: skip
    page.get_by_role("button", name="Run query").click()
    # Wait for THIS result (the previous one's grid is still on the page until htmx swaps the new one in).
    expect(page.locator(".graph-grid thead")).to_contain_text("machines")
    page.get_by_role("tab", name="Charts").click()
    expect(page.locator("svg.chart-bar")).to_be_visible()
    assert page.locator("svg.chart-bar g.bar").count() == len({m.os_name for m in fleet.machines.values()})
    screenshot("graph-chart-bar")
    page.get_by_role("button", name="Donut chart").click()
    expect(page.locator("svg.chart-donut")).to_be_visible()
    screenshot("graph-chart-donut")

    # A sample query, one click away: machines by status, drawn as a donut.
    page.get_by_role("link", name="Machines by status").click()
    expect(box).to_have_value(re.compile(r"summarize count\(\) by status"))
    statuses = {fleet.status(m) for m in fleet.machines.values()}
    expect(page.locator("svg.chart-donut .legend")).to_have_count(len(statuses))
    page.get_by_role("tab", name="Results").click()
    expect(page.locator(".graph-grid")).to_contain_text("Connected")
    screenshot("graph-sample")
