"""Golden tests, one or more per tabular operator, on the seeded fleet: every expected row is computed here from the
seed (``Fleet.resources()``), never by the engine. They run on SQLite and, with DATABASE_URL, on PostgreSQL."""

from __future__ import annotations

from collections import Counter

import pytest

pytestmark = pytest.mark.django_db

MACHINES = "Resources | where type == 'microsoft.hybridcompute/machines'"
EXTENSIONS = "Resources | where type == 'microsoft.hybridcompute/machines/extensions'"


def names(result) -> list[str]:
    return [row["name"] for row in result.objects()]


def test_where_filters_and_combines(fleet, run):
    result = run(f"{MACHINES} | where resourceGroup == 'rg-web' and properties.osName == 'linux' or name == 'db-02'")
    expected = [
        r["name"]
        for r in fleet.machine_rows()
        if (r["resourceGroup"] == "rg-web" and r["osName"] == "linux") or r["name"] == "db-02"
    ]
    assert sorted(names(result)) == sorted(expected)


def test_filter_is_where(fleet, run):
    assert names(run("Resources | filter name == 'web-01'")) == ["web-01"]


def test_project_renames_computes_and_orders_columns(fleet, run):
    result = run(f"{MACHINES} | project n = name, name, rg = resourceGroup, upper = toupper(name) | where n == 'db-01'")
    assert [c.name for c in result.columns] == ["n", "name", "rg", "upper"]
    assert result.objects() == [{"n": "db-01", "name": "db-01", "rg": "rg-data", "upper": "DB-01"}]


def test_project_of_a_path_is_named_after_it(fleet, run):
    result = run(f"{MACHINES} | project properties.osName, tags['env'], tags.team | where properties_osName == 'linux'")
    assert [c.name for c in result.columns] == ["properties_osName", "tags_env", "tags_team"]
    expected = [(r["osName"], r["tags"].get("env"), r["tags"].get("team")) for r in fleet.machine_rows()]
    got = [(r["properties_osName"], r["tags_env"], r["tags_team"]) for r in result.objects()]
    assert sorted(got, key=str) == sorted((e for e in expected if e[0] == "linux"), key=str)


def test_project_away_drops_columns(fleet, run):
    result = run("Resources | project-away properties, tags, identity, sku, plan, zones, extendedLocation, kind")
    assert [c.name for c in result.columns] == [
        "id", "name", "type", "tenantId", "location", "resourceGroup", "subscriptionId", "managedBy",
    ]  # fmt: skip
    assert len(result.rows) == len(fleet.resources())


def test_extend_adds_and_replaces(fleet, run):
    result = run(f"{MACHINES} | extend name = toupper(name), length = strlen(name) | project name, length")
    expected = sorted((r["name"].upper(), len(r["name"])) for r in fleet.machine_rows())
    assert sorted((r["name"], r["length"]) for r in result.objects()) == expected


def test_extend_sees_the_columns_it_just_made(fleet, run):
    result = run(f"{MACHINES} | extend a = strlen(name), b = a * 2 | where name == 'web-01' | project a, b")
    assert result.objects() == [{"a": 6, "b": 12}]


def test_summarize_count_by(fleet, run):
    result = run(f"{MACHINES} | summarize count() by status = tostring(properties.status)")
    assert [c.name for c in result.columns] == ["status", "count_"]
    assert {r["status"]: r["count_"] for r in result.objects()} == Counter(r["status"] for r in fleet.machine_rows())


def test_summarize_by_several_keys_with_several_aggregates(fleet, run):
    aggregates = "n = count(), groups = dcount(resourceGroup)"
    result = run(f"{MACHINES} | summarize {aggregates} by os = tostring(properties.osName), subscriptionId")
    expected: dict = {}
    for r in fleet.machine_rows():
        n, groups = expected.get((r["osName"], r["subscriptionId"]), (0, set()))
        expected[(r["osName"], r["subscriptionId"])] = (n + 1, groups | {r["resourceGroup"]})
    got = {(r["os"], r["subscriptionId"]): (r["n"], r["groups"]) for r in result.objects()}
    assert got == {key: (n, len(groups)) for key, (n, groups) in expected.items()}


def test_summarize_without_by_gives_one_row_even_when_empty(fleet, run):
    assert run("Resources | where name == 'nothing' | summarize count()").objects() == [{"count_": 0}]


def test_summarize_by_alone_is_distinct_groups(fleet, run):
    result = run(f"{MACHINES} | summarize by resourceGroup")
    assert sorted(r["resourceGroup"] for r in result.objects()) == sorted({r["resourceGroup"] for r in
                                                                           fleet.machine_rows()})  # fmt: skip


def test_aggregate_expressions_combine_aggregates(fleet, run):
    result = run(f"{MACHINES} | summarize share = 100.0 * countif(properties.status == 'Connected') / count()")
    rows = fleet.machine_rows()
    connected = sum(r["status"] == "Connected" for r in rows)
    assert result.objects() == [{"share": pytest.approx(100.0 * connected / len(rows))}]


@pytest.mark.parametrize("word", ["order", "sort"])
def test_order_by_is_descending_unless_asc(fleet, run, word):
    result = run(f"{MACHINES} | {word} by name | project name")
    assert names(result) == sorted((r["name"] for r in fleet.machine_rows()), reverse=True)
    result = run(f"{MACHINES} | {word} by resourceGroup asc, name desc | project name, resourceGroup")
    expected = sorted(fleet.machine_rows(), key=lambda r: r["name"], reverse=True)
    expected = sorted(expected, key=lambda r: r["resourceGroup"])
    assert names(result) == [r["name"] for r in expected]


def test_order_puts_nulls_first_ascending_and_last_descending(fleet, run):
    query = f"{MACHINES} | extend beat = todatetime(iff(name == 'new-01', '', '2026-01-01')) | project name, beat"
    assert names(run(f"{query} | order by beat asc, name asc"))[0] == "new-01"
    assert names(run(f"{query} | order by beat desc, name asc"))[-1] == "new-01"
    assert names(run(f"{query} | order by beat asc nulls last, name asc"))[-1] == "new-01"


def test_top_and_take(fleet, run):
    by_name = sorted(r["name"] for r in fleet.machine_rows())
    assert names(run(f"{MACHINES} | top 3 by name asc")) == by_name[:3]
    assert names(run(f"{MACHINES} | top 2 by name")) == sorted(by_name, reverse=True)[:2]
    assert len(run(f"{MACHINES} | take 4").rows) == 4
    assert len(run(f"{MACHINES} | limit 2").rows) == 2
    assert run(f"{MACHINES} | take 0").rows == []
    # take then where filters the taken rows (it is not pushed below the take)
    result = run(f"{MACHINES} | order by name asc | take 3 | where name startswith 'd'")
    assert names(result) == [n for n in by_name[:3] if n.startswith("d")]


def test_take_is_stable_across_pages(fleet, run):
    first = run("Resources | take 9", top=4)
    second = run("Resources | take 9", top=4, skip_token=first.skip_token)
    third = run("Resources | take 9", top=4, skip_token=second.skip_token)
    ids = [r["id"] for page in (first, second, third) for r in page.objects()]
    assert len(ids) == len(set(ids)) == 9 and first.total == 9 and third.skip_token is None


def test_distinct(fleet, run):
    result = run("Resources | distinct type, resourceGroup")
    expected = {(r["type"], r["resourceGroup"]) for r in fleet.resources()}
    assert sorted((r["type"], r["resourceGroup"]) for r in result.objects()) == sorted(expected)
    assert len(run("Resources | project location | distinct *").rows) == len({r["location"] for r in fleet.resources()})


def test_count(fleet, run):
    assert run("Resources | count").objects() == [{"Count": len(fleet.resources())}]
    assert run("ResourceContainers | where type endswith 'resourcegroups' | count").objects() == [{"Count": 3}]


def test_mv_expand_arrays_and_bags(fleet, run):
    result = run(f"{MACHINES} | where name == 'web-01' | mv-expand tag = tags | project tag")
    assert sorted((list(r["tag"].items()) for r in result.objects()), key=str) == sorted(
        ([item] for item in fleet.tags["web-01"].items()), key=str
    )
    result = run(f"{MACHINES} | where name == 'web-01' | mv-expand kind=array tags | project tags")
    assert sorted(r["tags"] for r in result.objects()) == sorted([k, v] for k, v in fleet.tags["web-01"].items())
    result = run("Resources | where name == 'web-01' | extend parts = split(name, '-') | mvexpand parts"
                 " | project parts")  # fmt: skip
    assert sorted(r["parts"] for r in result.objects()) == ["01", "web"]


def test_mv_expand_keeps_a_null_row_and_drops_empty_arrays(fleet, run):
    result = run("Resources | where name == 'web-01' | extend a = dynamic([]), b = dynamic(null) | mv-expand a")
    assert result.rows == []
    result = run("Resources | where name == 'web-01' | extend b = properties.nothing | mv-expand b | project b")
    assert result.objects() == [{"b": None}]


def test_mv_expand_stops_at_128_rows_per_row_unless_told(fleet, run):
    many = "split('" + ",".join(str(i) for i in range(300)) + "', ',')"
    assert run(f"Resources | where name == 'web-01' | mv-expand a = {many} | count").rows == [[128]]
    assert run(f"Resources | where name == 'web-01' | mvexpand a = {many} | count").rows == [[128]]
    assert run(f"Resources | where name == 'web-01' | mv-expand a = {many} limit 400 | count").rows == [[300]]


def test_a_query_may_start_with_an_operator(fleet, run):
    assert run("where type == 'microsoft.hybridcompute/machines' | count").rows == [[len(fleet.machines)]]


def test_mv_expand_limit(fleet, run):
    result = run("Resources | where name == 'web-01' | extend a = dynamic([1, 2, 3, 4]) | mv-expand a limit 2"
                 " | project a")  # fmt: skip
    assert [r["a"] for r in result.objects()] == [1, 2]


def extensions_by_machine(fleet) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for e in fleet.extensions.values():
        found.setdefault(e.machine.name, []).append(e.name)
    return found


def test_join_inner_on_a_column_of_both_sides(fleet, run):
    query = (
        f"{MACHINES} | project machine = name, os = tostring(properties.osName) | join kind=inner ({EXTENSIONS}"
        " | project machine = tostring(split(id, '/')[8]), extension = name) on machine | project machine, machine1,"
        " os, extension"
    )
    result = run(query)
    expected = sorted((m, e) for m, exts in extensions_by_machine(fleet).items() for e in exts)
    assert sorted((r["machine"], r["extension"]) for r in result.objects()) == expected
    assert all(r["machine"] == r["machine1"] for r in result.objects())


def test_join_leftouter_keeps_unmatched_left_rows(fleet, run):
    query = (
        f"{MACHINES} | project machine = name | join kind=leftouter ({EXTENSIONS} | project owner = tostring(split(id,"
        " '/')[8]), extension = name) on $left.machine == $right.owner"
    )
    result = run(query)
    by_machine = extensions_by_machine(fleet)
    expected = sorted((m["name"], e) for m in fleet.machine_rows() for e in (by_machine.get(m["name"]) or [None]))
    assert sorted((r["machine"], r["extension"]) for r in result.objects()) == sorted(expected, key=str)


def test_join_default_is_innerunique(fleet, run):
    query = f"{EXTENSIONS} | project name | join (Resources | project name, t = type) on name | project name"
    counts = Counter(e.name for e in fleet.extensions.values())
    # the left side is made unique per key, the right side is not: one row per matching right row
    assert Counter(names(run(query))) == counts


def test_union_as_operator_and_as_source(fleet, run):
    everything = sorted(r["id"] for r in fleet.resources() + fleet.containers())
    assert sorted(r["id"] for r in run("Resources | union ResourceContainers | project id").objects()) == everything
    assert sorted(r["id"] for r in run("union Resources, ResourceContainers | project id").objects()) == everything
    result = run("union (Resources | where name == 'web-01' | project name, x = 1), (ResourceContainers | where"
                 " name == 'rg-web' | project name, y = 'b')")  # fmt: skip
    assert sorted(result.objects(), key=lambda r: r["name"]) == [
        {"name": "rg-web", "x": None, "y": "b"}, {"name": "web-01", "x": 1, "y": None},
    ]  # fmt: skip


def test_table_names_ignore_case(fleet, run):
    assert len(run("resources").rows) == len(run("RESOURCES").rows) == len(fleet.resources())
    assert len(run("resourcecontainers").rows) == len(fleet.containers())


def test_arg_max_and_arg_min_pick_whole_rows(fleet, run):
    rows = fleet.machine_rows()
    result = run(f"{MACHINES} | summarize arg_max(strlen(name), name, location) by resourceGroup")
    for row in result.objects():
        group = [r for r in rows if r["resourceGroup"] == row["resourceGroup"]]
        longest = max(len(r["name"]) for r in group)
        assert row["name"] in {r["name"] for r in group if len(r["name"]) == longest}
    result = run(f"{MACHINES} | summarize arg_min(name, *) by resourceGroup | project resourceGroup, name, type")
    expected = {g: min(r["name"] for r in rows if r["resourceGroup"] == g) for g in {r["resourceGroup"] for r in rows}}
    assert {r["resourceGroup"]: r["name"] for r in result.objects()} == expected
    assert {r["type"] for r in result.objects()} == {"microsoft.hybridcompute/machines"}
