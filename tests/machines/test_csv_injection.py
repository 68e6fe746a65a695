"""Issue 10 item 16: the machine list's CSV export follows OWASP's CSV-injection guidance in full.

Every cell is quoted (embedded quotes doubled), and a cell gets a leading single quote when a spreadsheet could
start a formula anywhere in it: at its start (``= + - @``, tab, carriage return, and their full-width forms), or
right after a field separator (``,`` ``;``) or a quote, where a spreadsheet splitting on another separator would
start a new cell. Machine names, OS facts and tags come from agents and users, so all of them are guarded.
"""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.urls import reverse

from tests.machines.factories import MachineFactory, MachineTagFactory, ResourceGroupFactory


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("web-01", "web-01"),
        ("", ""),
        ("Ubuntu 24.04", "Ubuntu 24.04"),
        ("env=prod; owner=ops", "env=prod; owner=ops"),
        ("=1+2", "'=1+2"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("＝1+2", "'＝1+2"),
        ('=1+2";=1+2', "'=1+2\";=1+2"),
        ("x;=1+2", "'x;=1+2"),
        ("x,=1+2", "'x,=1+2"),
        ("x; =1+2", "'x; =1+2"),
        ('x"=1+2', "'x\"=1+2"),
        ("x'@cmd", "'x'@cmd"),
        ("a;-b", "'a;-b"),
        ("a\t;+b", "'a\t;+b"),
        ("1.50.0", "1.50.0"),
    ],
)
def test_csv_cell_prefixes_anything_a_spreadsheet_could_run(value, expected):
    from machines.csv_export import csv_cell

    assert csv_cell(value) == expected


@pytest.mark.django_db
def test_the_export_quotes_every_cell_and_guards_formulas_after_separators(portal_client, subscription):
    group = ResourceGroupFactory(subscription=subscription, name="rg")
    machine = MachineFactory(
        resource_group=group, name="web-1", os_sku='Ubuntu";=HYPERLINK("http://x")', agent_version="1.50.0"
    )
    MachineTagFactory(machine=machine, key="note", value="ok;=cmd|' /C calc'!A0")
    response = portal_client.get(reverse("machines:machine-export"))
    text = b"".join(response.streaming_content).decode()
    lines = text.splitlines()
    assert lines[0].startswith('"Name","Status",')
    row = lines[1]
    assert row.startswith('"web-1","')
    quoted_cell = r'"(?:[^"]|"")*"'
    assert all(re.fullmatch(rf"{quoted_cell}(?:,{quoted_cell})*", line) for line in lines), lines
    cells = next(csv.DictReader(io.StringIO(text)))
    assert cells["Operating system"] == '\'Ubuntu";=HYPERLINK("http://x")'
    assert cells["Tags"] == "'note=ok;=cmd|' /C calc'!A0"
    assert cells["Agent version"] == "1.50.0" and cells["Name"] == "web-1"
