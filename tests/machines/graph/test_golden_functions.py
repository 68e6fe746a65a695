"""Golden tests for every scalar operator, function and aggregation of the supported subset (both databases).

Expected values are written out or computed here from the seed; the engine only runs the query."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

pytestmark = pytest.mark.django_db
MACHINES = "Resources | where type == 'microsoft.hybridcompute/machines'"


@pytest.fixture
def value(fleet, run):
    """``value("expr")``: the expression evaluated on machine web-01 (one row, one column)."""

    def evaluate(expression: str, *, on: str = "web-01"):
        result = run(f"Resources | where name == '{on}' | project v = {expression}")
        assert len(result.rows) == 1, result.rows
        return result.rows[0][0]

    return evaluate


@pytest.fixture
def matching(fleet, run):
    """``matching("predicate")``: sorted names of the machines the predicate keeps."""

    def names(predicate: str) -> list[str]:
        return sorted(row[0] for row in run(f"{MACHINES} | where {predicate} | project name").rows)

    return names


def machine_names(fleet, keep) -> list[str]:
    return sorted(r["name"] for r in fleet.machine_rows() if keep(r))


def iso(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


# --- comparisons ---------------------------------------------------------------------------------------------------


def test_equality_is_case_sensitive_and_tilde_is_not(fleet, matching):
    assert matching("name == 'web-03'") == []
    assert matching("name == 'Web-03'") == ["Web-03"]
    assert matching("name =~ 'WEB-03'") == ["Web-03"]
    assert matching("name !~ 'WEB-03'") == machine_names(fleet, lambda r: r["name"] != "Web-03")
    assert matching("name != 'web-01'") == machine_names(fleet, lambda r: r["name"] != "web-01")


def test_ordering_comparisons_on_strings_numbers_and_times(fleet, matching, now):
    assert matching("name < 'e'") == machine_names(fleet, lambda r: r["name"] < "e")  # ordinal: 'W' < 'd'
    assert matching("name >= 'n'") == machine_names(fleet, lambda r: r["name"] >= "n")
    assert matching("strlen(name) > 5") == machine_names(fleet, lambda r: len(r["name"]) > 5)
    assert matching("strlen(name) <= 5") == machine_names(fleet, lambda r: len(r["name"]) <= 5)
    recent = lambda r: r["heartbeat"] is not None and r["heartbeat"] > now - timedelta(hours=1)  # noqa: E731
    assert matching("todatetime(properties.lastStatusChange) > ago(1h)") == machine_names(
        fleet, lambda r: recent(r) and r["status"] == "Connected"
    )


def test_null_comparisons_follow_kusto(fleet, matching):
    # a missing property is null: == is false, != is true, whatever the other side
    assert matching("properties.nothing == 'x'") == []
    assert matching("properties.nothing != 'x'") == machine_names(fleet, lambda r: True)
    assert matching("not(properties.osName == 'linux')") == machine_names(fleet, lambda r: r["osName"] != "linux")


def test_logical_operators(fleet, matching):
    assert matching("resourceGroup == 'rg-web' and properties.osName == 'linux'") == ["web-01", "web-02"]
    assert matching("name == 'db-01' or name == 'db-02'") == ["db-01", "db-02"]
    assert matching("not(name startswith 'web')") == machine_names(
        fleet, lambda r: not r["name"].lower().startswith("web")
    )


def test_in_operators(fleet, matching):
    assert matching("name in ('web-01', 'db-01', 'WEB-02')") == ["db-01", "web-01"]
    assert matching("name in~ ('web-01', 'WEB-02')") == ["web-01", "web-02"]
    assert matching("name !in ('web-01', 'db-01')") == machine_names(
        fleet, lambda r: r["name"] not in ("web-01", "db-01")
    )
    assert matching("name !in~ ('WEB-01')") == machine_names(fleet, lambda r: r["name"] != "web-01")
    assert matching("name in (dynamic(['edge-01', 'edge-02']))") == ["edge-01", "edge-02"]
    assert matching("strlen(name) in (5, 6)") == machine_names(fleet, lambda r: len(r["name"]) in (5, 6))


@pytest.mark.parametrize(
    ("predicate", "keep"),
    [
        ("name contains 'EB'", lambda n: "eb" in n.lower()),
        ("name !contains 'eb'", lambda n: "eb" not in n.lower()),
        ("name contains_cs 'eb'", lambda n: "eb" in n),
        ("name startswith 'WEB'", lambda n: n.lower().startswith("web")),
        ("name !startswith 'web'", lambda n: not n.lower().startswith("web")),
        ("name endswith '-01'", lambda n: n.endswith("-01")),
        ("name !endswith '01'", lambda n: not n.endswith("01")),
        ("name has 'web'", lambda n: "web" in re.split(r"[^0-9a-z]", n.lower())),
        ("name has '01'", lambda n: "01" in re.split(r"[^0-9a-z]", n.lower())),
        ("name !has 'web'", lambda n: "web" not in re.split(r"[^0-9a-z]", n.lower())),
        ("name has_cs 'Web'", lambda n: "Web" in re.split(r"[^0-9A-Za-z]", n)),
        ("name matches regex '^[a-z]+-0[12]$'", lambda n: re.search(r"^[a-z]+-0[12]$", n) is not None),
        ("name contains '%'", lambda n: "%" in n),
        ("name contains '_'", lambda n: "_" in n),
    ],
)
def test_string_operators(fleet, matching, predicate, keep):
    assert matching(predicate) == machine_names(fleet, lambda r: keep(r["name"]))


def test_string_operators_with_a_computed_right_side(fleet, matching):
    assert matching("name contains tolower('EB-0')") == machine_names(fleet, lambda r: "eb-0" in r["name"].lower())
    assert matching("name startswith substring('webby', 0, 3)") == ["Web-03", "web-01", "web-02"]
    assert matching("name has strcat('ed', 'ge')") == ["edge-01", "edge-02"]


def test_arithmetic(value):
    assert value("7 + 3 * 2 - 1") == 12
    assert value("7 / 2") == 3  # long division truncates
    assert value("-7 / 2") == -3
    assert value("7.0 / 2") == 3.5
    assert value("7 % 3") == 1
    assert value("1 / 0") is None
    assert value("2.5 * 2") == 5.0
    assert value("-(strlen(name))") == -6


def test_dynamic_access_forms(fleet, value):
    assert value("properties.osProfile.computerName") == "web-01.contoso.local"
    assert value("properties['osProfile']['computerName']") == "web-01.contoso.local"
    assert value("properties.detectedProperties.cores") == "2"
    assert value("properties.locationData.name") == "Paris"
    assert value("properties.locationData") == {"name": "Paris", "city": None}
    assert value("tags['env']") == "prod" == value("tags.env")
    assert value("tags.missing") is None
    assert value("properties.errorDetails[0].code", on="db-01") == "Warn"
    assert value("properties.errorDetails[-1].message", on="db-01") == "disk"
    assert value("properties[strcat('os', 'Name')]") == "linux"
    assert value("pack('a', pack('b', 5)).a.b") == 5


# --- conversions ---------------------------------------------------------------------------------------------------


def test_tostring(value, now):
    assert value("tostring(12)") == "12"
    assert value("tostring(1.5)") == "1.5"
    assert value("tostring(true)") == "true"
    assert value("tostring(properties.osName)") == "linux"
    assert value("tostring(properties.nothing)") == ""
    assert json.loads(value("tostring(properties.detectedProperties)")) == {"cloudprovider": "N/A", "cores": "2"}
    assert value("tostring(datetime(2024-01-02T03:04:05Z))") == "2024-01-02T03:04:05.0000000Z"


def test_number_conversions(value):
    assert value("toint('12')") == 12 == value("tolong(' 12 ')")
    assert value("toint('x')") is None
    assert value("tolong(12.7)") == 12
    assert value("todouble('1.5')") == 1.5 == value("toreal(1.5)")
    assert value("todouble(properties.detectedProperties.cores)") == 2.0
    assert value("toint(properties.detectedProperties.cores) + 1") == 3


def test_bool_and_datetime_conversions(value):
    assert value("tobool('true')") is True
    assert value("tobool('FALSE')") is False
    assert value("tobool('maybe')") is None
    assert value("tobool(1)") is True
    assert value("todatetime('2024-01-02T03:04:05Z')") == "2024-01-02T03:04:05.0000000Z"
    assert value("todatetime('not a date')") is None
    assert value("datetime(2024-06-01)") == "2024-06-01T00:00:00.0000000Z"


# --- strings ---------------------------------------------------------------------------------------------------


def test_string_functions(value):
    assert value("toupper(name)") == "WEB-01"
    assert value("tolower('AbC')") == "abc"
    assert value("strlen(name)") == 6
    assert value("substring(name, 4)") == "01"
    assert value("substring(name, 0, 3)") == "web"
    assert value("substring(name, 10, 3)") == ""
    assert value("indexof(name, '-')") == 3
    assert value("indexof(name, 'x')") == -1
    assert value("split(name, '-')") == ["web", "01"]
    assert value("split(name, '-', 1)") == ["01"]
    assert value("split(id, '/')[8]") == "web-01"
    assert value("strcat(name, '/', 7, '/', true)") == "web-01/7/true"
    assert value("replace_string(name, 'web', 'app')") == "app-01"
    assert value("trim('-+', '--x-y--')") == "x-y"
    assert value("trim(@'[^\\w]+', '  hello!  ')") == "hello"


def test_empty_and_null_tests(value):
    assert value("isempty('')") is True and value("isempty(name)") is False
    assert value("isempty(properties.nothing)") is True and value("isnotempty(properties.osName)") is True
    assert value("isnull(properties.nothing)") is True and value("isnotnull(properties.osName)") is True
    assert value("isnull(name)") is False  # strings are never null in KQL
    assert value("isnull(properties.vmId)", on="new-01") is True


def test_choices(value):
    assert value("iff(strlen(name) > 5, 'long', 'short')") == "long"
    assert value("iif(name == 'x', 1, 2)") == 2
    assert value("case(name == 'a', 'A', name startswith 'web', 'W', 'other')") == "W"
    assert value("case(name == 'a', 1, 2)") == 2
    assert value("coalesce(properties.nothing, properties.osName)") == "linux"
    assert value("coalesce('', 'second')") == "second"
    assert value("coalesce(toint('x'), 4)") == 4


def test_numbers_and_bins(value):
    assert value("bin(17, 5)") == 15
    assert value("bin(1.27, 0.1)") == pytest.approx(1.2)
    assert value("floor(17, 5)") == 15
    assert value("floor(2.7)") == 2.0
    assert value("round(2.567, 2)") == pytest.approx(2.57)
    assert value("round(2.5)") == 3.0
    assert value("bin(datetime(2024-01-02T13:45:00Z), 1d)") == "2024-01-02T00:00:00.0000000Z"
    assert value("bin(datetime(2024-01-02T13:45:00Z), 1h)") == "2024-01-02T13:00:00.0000000Z"


def test_time(value, now):
    assert value("now()") == iso(now)
    assert value("now(-1d)") == iso(now - timedelta(days=1))
    assert value("ago(7d)") == iso(now - timedelta(days=7))
    assert value("ago(90m)") == iso(now - timedelta(minutes=90))
    assert value("datetime(2024-01-02) + 1d") == "2024-01-03T00:00:00.0000000Z"
    assert value("datetime(2024-01-02) - 12h") == "2024-01-01T12:00:00.0000000Z"
    assert value("(datetime(2024-01-03) - datetime(2024-01-02)) / 1h") == 24.0


def test_dynamic_functions(value):
    assert value("array_length(split(name, '-'))") == 2
    assert value("array_length(properties.osName)") is None
    # bag_keys lists shorter keys first, then bytewise (jsonb's order: Kusto keeps insertion order)
    assert value("bag_keys(properties.detectedProperties)") == ["cores", "cloudprovider"]
    assert value("bag_keys(tags)") == ["env", "team"]
    assert value("pack('n', name, 'l', strlen(name), 'd', properties.detectedProperties)") == {
        "n": "web-01", "l": 6, "d": {"cloudprovider": "N/A", "cores": "2"},
    }  # fmt: skip
    assert value("bag_pack('t', true)") == {"t": True}


# --- aggregations -------------------------------------------------------------------------------------------------


def test_aggregations(fleet, run):
    rows = fleet.machine_rows()
    result = run(
        f"{MACHINES} | summarize n = count(), c = countif(properties.status == 'Connected'),"
        " d = dcount(properties.osName), s = sum(strlen(name)), lo = min(name), hi = max(name),"
        " a = avg(strlen(name)), l = make_list(resourceGroup), st = make_set(resourceGroup),"
        " somebody = any(name), r = sum(todouble(properties.detectedProperties.cores))"
    )
    (row,) = result.objects()
    lengths = [len(r["name"]) for r in rows]
    assert row["n"] == len(rows)
    assert row["c"] == sum(r["status"] == "Connected" for r in rows)
    assert row["d"] == len({r["osName"] for r in rows if r["osName"]})  # a missing osName is null: not counted
    assert row["s"] == sum(lengths) and row["a"] == pytest.approx(sum(lengths) / len(rows))
    assert (row["lo"], row["hi"]) == (min(r["name"] for r in rows), max(r["name"] for r in rows))
    assert sorted(row["l"]) == sorted(r["resourceGroup"] for r in rows)
    assert sorted(row["st"]) == sorted({r["resourceGroup"] for r in rows})
    assert row["somebody"] in {r["name"] for r in rows}
    cores = [int(m.detected_properties["cores"]) for m in fleet.machines.values() if m.detected_properties]
    assert row["r"] == pytest.approx(sum(cores))


def test_make_list_leaves_out_nulls_and_takes_a_maximum(fleet, run):
    (row,) = run(f"{MACHINES} | summarize l = make_list(properties.vmId), m = make_list(name, 3)").objects()
    assert len(row["l"]) == sum(1 for m in fleet.machines.values() if m.vm_id) and len(row["m"]) == 3


def test_min_max_of_times_and_names_per_group(fleet, run):
    result = run(f"{MACHINES} | summarize first = min(name), newest = max(todatetime(properties.lastStatusChange))"
                 " by resourceGroup")  # fmt: skip
    for row in result.objects():
        group = [r for r in fleet.machine_rows() if r["resourceGroup"] == row["resourceGroup"]]
        assert row["first"] == min(r["name"] for r in group)
        assert row["newest"].endswith("Z")
