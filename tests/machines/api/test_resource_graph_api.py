"""``POST /providers/Microsoft.ResourceGraph/resources`` through Django's client: the response shape, paging,
visibility by role and scope, and every error Resource Graph answers with a specific 400 (never a 500)."""

from __future__ import annotations

import json

import pytest

from machines.models import Machine
from tests.armclient import ArmClient
from tests.machines.graph.fleet import EXTENSIONS, MACHINES, seed_fleet

pytestmark = pytest.mark.django_db
URL = "/providers/Microsoft.ResourceGraph/resources?api-version=2021-03-01"
MACHINE_NAMES = sorted(name for name, *_ in MACHINES)


@pytest.fixture
def fleet(subscription, now):
    return seed_fleet(subscription=subscription, now=now)


def post(client: ArmClient, body, *, url: str = URL):
    return client.request("POST", url, body)


def query(client: ArmClient, text: str, **options):
    body = {"query": text}
    if options:
        body["options"] = options
    return post(client, body)


def details(response) -> dict:
    body = response.json()["error"]
    assert body["code"] == "BadRequest"
    return {d["code"]: d for d in body["details"]}


def test_objects_and_totals(arm, fleet):
    response = query(arm, "Resources | where type == 'microsoft.hybridcompute/machines' | project name, resourceGroup")
    assert response.status_code == 200
    body = response.json()
    assert body["totalRecords"] == len(MACHINES) == body["count"]
    assert body["resultTruncated"] == "false" and body["facets"] == [] and "$skipToken" not in body
    assert sorted(row["name"] for row in body["data"]) == MACHINE_NAMES
    assert {row["resourceGroup"] for row in body["data"]} == {"rg-web", "rg-data", "rg-edge"}


def test_table_format_has_typed_columns(arm, fleet):
    response = query(
        arm,
        "Resources | where type =~ 'microsoft.hybridcompute/machines' | summarize n = count(), s = make_set(location)"
        " by os = tostring(properties.osName) | extend ok = true, avg = todouble(n) / 2, t = now()",
        resultFormat="table",
    )
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert [(c["name"], c["type"]) for c in data["columns"]] == [
        ("os", "string"), ("n", "integer"), ("s", "object"), ("ok", "boolean"), ("avg", "number"), ("t", "datetime"),
    ]  # fmt: skip
    counts = {row[0]: row[1] for row in data["rows"]}
    assert counts == {"linux": 4, "windows": 3, "": 1}


def test_paging_with_skip_token_returns_every_row_once(arm, fleet):
    text = "Resources | project name, type | order by name asc"
    seen, token, pages = [], None, 0
    while True:
        options = {"$top": 3} | ({"$skipToken": token} if token else {})
        body = query(arm, text, **options).json()
        assert body["totalRecords"] == len(MACHINES) + len(EXTENSIONS)
        seen += [row["name"] for row in body["data"]]
        pages += 1
        token = body.get("$skipToken")
        if not token:
            break
    assert pages == 5
    names = [name for name, *_ in MACHINES] + [e[1] for e in EXTENSIONS]
    assert seen == sorted(names)  # ordinal (case-sensitive) order, as Kusto sorts strings
    other = query(arm, "Resources | project name", **{"$top": 3, "$skipToken": token or "eyJvIjozfQ"})
    assert other.status_code == 400 and "InvalidSkipToken" in details(other)


def test_skip_starts_later(arm, fleet):
    body = query(arm, "Resources | project name | order by name asc", **{"$skip": 11}).json()
    assert body["totalRecords"] == 13 and [r["name"] for r in body["data"]] == ["web-01", "web-02"]


def test_parser_failure_has_line_and_column(arm, fleet):
    response = query(arm, "Resources\n| where name == 'web-01'\n| project name,, type")
    assert response.status_code == 400
    failure = details(response)["ParserFailure"]
    assert (failure["line"], failure["column"], failure["characterPositionInLine"]) == (3, 16, 15)  # the second comma
    assert failure["token"] == ","


@pytest.mark.parametrize(
    ("text", "code", "name"),
    [
        ("AdvisorResources | where type == 'microsoft.advisor/recommendations'", "UnknownTable", "AdvisorResources"),
        ("Resources | project nmae", "UnknownColumn", "nmae"),
        ("Resources | extend x = percentile(name, 5)", "UnknownFunction", "percentile"),
        ("Resources | render piechart", "UnsupportedOperator", "render"),
        ("Resources | project-rename a = name", "UnsupportedOperator", "project-rename"),
        ("let x = 1; Resources", "UnsupportedStatement", "let"),
        ("Resources | where count() > 1", "InvalidAggregation", "count"),
        ("Resources | join kind=fullouter (Resources) on name", "UnsupportedOperator", "join kind=fullouter"),
    ],
)
def test_invalid_query_names_the_unknown_thing(arm, fleet, text, code, name):
    response = query(arm, text)
    assert response.status_code == 400
    found = details(response)
    assert "InvalidQuery" in found and found[code]["name"] == name
    assert name in found[code]["message"]


def test_type_mismatch_is_a_clear_error(arm, fleet):
    found = details(query(arm, "Resources | where name > 5"))
    assert "Cannot compare a string with a long" in found["TypeMismatch"]["message"]


def test_query_length_limit(arm, fleet):
    base = "Resources | project name"
    exactly = base + " " * (10_000 - len(base))
    assert query(arm, exactly).status_code == 200
    response = query(arm, exactly + " ")
    assert response.status_code == 400 and "10,000" in details(response)["QueryTooLong"]["message"]


@pytest.mark.parametrize(("top", "code"), [(1001, "InvalidTop"), (0, "InvalidTop"), (-1, "InvalidTop")])
def test_more_than_1000_rows_per_page_is_refused(arm, fleet, top, code):
    response = query(arm, "Resources", **{"$top": top})
    assert response.status_code == 400 and code in details(response)


def test_a_query_running_too_long_is_stopped(arm, fleet, settings):
    settings.ARC_GRAPH_TIMEOUT_SECONDS = 0.2
    many = "split('" + ",".join("x" * 400) + "', ',')"  # 400 elements: 13 rows become 5,200, then 5,200² in the join
    side = f"Resources | extend k = 1, a = {many} | mv-expand a limit 400"
    response = query(arm, f"{side} | join kind=inner ({side}) on k | summarize count()")
    assert response.status_code == 400
    assert "ARC_GRAPH_TIMEOUT_SECONDS" in details(response)["QueryTimeout"]["message"]
    assert query(arm, "Resources | count").json()["data"] == [{"Count": 13}]  # the connection still works


def test_resource_graph_limits_on_operators(arm, fleet):
    joins = " ".join("| join kind=inner (Resources) on name" for _ in range(4))
    found = details(query(arm, f"Resources {joins}"))
    assert found["TooManyOperators"]["name"] == "join" and "allows 3" in found["TooManyOperators"]["message"]
    found = details(query(arm, "Resources | mv-expand tags limit 401"))
    assert "at most 400" in found["InvalidArgument"]["message"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"query": 5},
        {"query": "Resources", "options": []},
        {"query": "Resources", "options": {"$top": "5"}},
        {"query": "Resources", "options": {"$top": True}},
        {"query": "Resources", "options": {"resultFormat": "csv"}},
        {"query": "Resources", "subscriptions": ["not-a-guid"]},
        {"query": "Resources", "subscriptions": "00000000-0000-0000-0000-000000000000"},
        {"query": "Resources", "options": {"$skipToken": "%%%"}},
        {"query": "Resources | where name == '\ud800'"},
        {"query": "Resources | where name == 'a\u0000'"},
        {"query": "Resources | where " + "(" * 300 + "1" + ")" * 300 + " == 1"},
    ],
)
def test_bad_requests_are_specific_400s(arm, fleet, body):
    response = post(arm, None) if body == {} else arm.request("POST", URL, raw=json.dumps(body))
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] in ("BadRequest", "InvalidRequestContent", "InvalidSubscriptionId")


def test_deeply_nested_json_is_a_400(arm, fleet):
    body = '{"query": "Resources", "options": ' + "[" * 50_000 + "]" * 50_000 + "}"
    response = arm.request("POST", URL, raw=body)
    assert response.status_code == 400 and response.json()["error"]["code"] == "InvalidRequestContent"


def test_api_version_and_token_are_required(arm, fleet, arm_as):
    assert query(arm_as(None), "Resources").status_code == 401
    response = post(arm, {"query": "Resources"}, url="/providers/Microsoft.ResourceGraph/resources")
    assert response.json()["error"]["code"] == "MissingApiVersionParameter"
    assert post(arm, {"query": "Resources"}, url=URL.replace("2021-03-01", "2022-10-01")).status_code == 200


def test_subscriptions_narrow_the_rows(arm, fleet):
    edge = str(fleet.subscriptions[1].subscription_id)
    body = post(arm, {"query": "Resources | union ResourceContainers | project name", "subscriptions": [edge]}).json()
    assert sorted(r["name"] for r in body["data"]) == ["AzureMonitorWindowsAgent", "Edge subscription", "edge-01",
                                                      "edge-02", "rg-edge"]  # fmt: skip


def test_a_principal_scoped_to_one_group_sees_only_its_rows(fleet, sp_token, arm_as):
    group = fleet.groups["rg-web"]
    token, _ = sp_token("Reader", f"{group.subscription.arm_id}/resourceGroups/RG-WEB")
    client = arm_as(token)
    text = (
        "Resources | union ResourceContainers | join kind=leftouter (Resources | project name, t = type) on name"
        " | project name, type"
    )
    rows = query(client, text).json()["data"]
    web = [m.name for m in Machine.objects.filter(resource_group=group)]
    extensions = [e[1] for e in EXTENSIONS if e[0] in web]
    assert {r["name"] for r in rows} == {*web, *extensions, "rg-web"}
    assert query(client, "Resources | where resourceGroup != 'rg-web' | count").json()["data"] == [{"Count": 0}]


def test_onboarding_role_sees_machines_only(fleet, sp_token, arm_as):
    token, _ = sp_token("Azure Connected Machine Onboarding")
    rows = query(arm_as(token), "Resources | union ResourceContainers | summarize count() by type").json()["data"]
    in_subscription = Machine.objects.filter(resource_group__subscription=fleet.subscriptions[0]).count()
    assert rows == [{"type": "microsoft.hybridcompute/machines", "count_": in_subscription}]
