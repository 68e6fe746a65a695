"""Microsoft's published Resource Graph samples for Arc-enabled servers, run verbatim, and the Explorer's samples;
expected rows computed here from the seed."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from machines.graph.errors import GraphQueryError
from machines.graph.samples import ADVISOR_SAMPLE, BY_KEY, DOMAINS_SAMPLE, EXTENSIONS_SAMPLE

pytestmark = pytest.mark.django_db


def test_samples_are_microsofts_text():
    assert DOMAINS_SAMPLE.startswith("Resources\n| where type == 'microsoft.hybridcompute/machines'\n")
    assert "| mvexpand EachDomain = Domains\n" in DOMAINS_SAMPLE
    assert ") on $left.JoinID == $right.MachineId\n" in EXTENSIONS_SAMPLE and "\tJoinID = toupper(id),\n" in (
        EXTENSIONS_SAMPLE
    )


def test_count_and_percentage_of_servers_by_domain(fleet, run):
    result = run(DOMAINS_SAMPLE)
    assert [c.name for c in result.columns] == ["EachDomain", "TotalMachineCount", "PerDomainMachineCount", "Pct"]
    domains = Counter(m.domain_name for m in fleet.machines.values())
    total = len(fleet.machines)
    expected = {
        domain: (total, count, 100 * math.floor((count / total) / 0.001) * 0.001) for domain, count in domains.items()
    }
    got = {r["EachDomain"]: (r["TotalMachineCount"], r["PerDomainMachineCount"], r["Pct"]) for r in result.objects()}
    assert got.keys() == expected.keys()
    for domain, (tot, count, pct) in expected.items():
        assert got[domain][:2] == (tot, count) and got[domain][2] == pytest.approx(pct)


def test_all_extensions_installed_on_each_server(fleet, run):
    result = run(EXTENSIONS_SAMPLE)
    assert [c.name for c in result.columns] == ["id", "ComputerName", "OSName", "Extensions"]
    rows = result.objects()
    expected = {}
    for machine in fleet.machines.values():
        names = sorted(e.name for e in fleet.extensions.values() if e.machine_id == machine.pk)
        expected[fleet.machine_id(machine)] = (machine.computer_name, machine.os_name, names)
    assert {r["id"]: (r["ComputerName"], r["OSName"], sorted(r["Extensions"])) for r in rows} == expected
    os_names = [r["OSName"].lower() for r in rows]
    assert os_names == sorted(os_names)  # order by tolower(OSName) asc


def test_the_advisor_sample_is_refused_by_name(fleet, run):
    with pytest.raises(GraphQueryError) as info:
        run(ADVISOR_SAMPLE)
    detail = info.value.details[-1]
    assert (detail["code"], detail["name"], detail["line"], detail["column"]) == (
        "UnknownTable", "AdvisorResources", 1, 1,
    )  # fmt: skip


def test_explorer_sample_machines_by_status(fleet, run):
    result = run(BY_KEY["by-status"].query)
    assert {r["status"]: r["count_"] for r in result.objects()} == Counter(r["status"] for r in fleet.machine_rows())
    counts = [r["count_"] for r in result.objects()]
    assert counts == sorted(counts, reverse=True)


def test_explorer_sample_machines_by_os(fleet, run):
    expected = Counter(m.os_sku or "(unknown)" for m in fleet.machines.values())
    assert {r["os"]: r["count_"] for r in run(BY_KEY["by-os"].query).objects()} == expected


def test_explorer_sample_machines_by_agent_version(fleet, run):
    result = run(BY_KEY["by-agent-version"].query).objects()
    assert {r["agentVersion"]: r["count_"] for r in result} == Counter(m.agent_version for m in fleet.machines.values())
    assert [r["agentVersion"] for r in result] == sorted((r["agentVersion"] for r in result), reverse=True)


def test_explorer_sample_extensions_per_machine(fleet, run):
    result = run(BY_KEY["extensions-per-machine"].query).objects()
    expected = Counter(e.machine.name for e in fleet.extensions.values())
    assert {r["machine"]: r["extensions"] for r in result} == expected


def test_explorer_sample_machines_not_heard_from_in_7_days(fleet, run, now):
    result = run(BY_KEY["not-heard-from"].query).objects()
    from datetime import timedelta

    from machines.status import StatusThresholds

    offline = StatusThresholds().offline_after
    expected = sorted(
        r["name"]
        for r in fleet.machine_rows()
        if r["status"] == "Expired"
        or (r["status"] == "Disconnected" and r["heartbeat"] + offline < now - timedelta(days=7))
    )
    assert sorted(r["name"] for r in result) == expected == ["db-01", "db-02"]


def test_every_example_in_the_docs_runs(fleet, run):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[3] / "docs" / "resource-graph.md").read_text(encoding="utf-8")
    blocks = text.split("```kusto\n")[1:]
    assert blocks
    for block in blocks:
        for query in block.split("```", 1)[0].strip().split("\n\n"):
            result = run(query)
            assert result.columns, query
