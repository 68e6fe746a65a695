"""Fuzz (hypothesis): random token sequences and mutated sample queries never crash the engine — the parser and
compiler raise only ``GraphQueryError``, and the ARM endpoint answers 200 or a 4xx ARM error, never a 5xx.

A query that compiles must also run: the only run-time failures accepted are the ones a user's data or pattern
can cause (a bad regular expression, a value out of range), never SQL the compiler got wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from machines.graph.compiler import compile_query
from machines.graph.dialects import POSTGRESQL, SQLITE
from machines.graph.errors import GraphQueryError
from machines.graph.samples import SAMPLES
from machines.graph.schema import Env
from machines.graph.visibility import EVERYTHING
from tests.armclient import ArmClient

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
TOKENS = [
    token
    for line in (
        "Resources ResourceContainers AdvisorResources | where project project-away extend summarize by order sort",
        "top take limit distinct count mv-expand mvexpand join kind=inner kind=leftouter on $left.name $right.name",
        "union asc desc nulls first last and or not ( ) [ ] , . = == != =~ !~ < <= > >= + - * / % in !in in~",
        "contains has !contains startswith endswith matches regex name id type location resourceGroup properties",
        "subscriptionId tags identity kind status osName properties.status tags['env'] tostring toint todouble",
        "tobool todatetime toupper tolower strlen substring indexof split strcat replace_string trim isempty",
        "isnotempty isnull iff case coalesce bin round floor ago now array_length bag_keys pack count() countif",
        "dcount sum min max avg make_list make_set arg_max arg_min any 0 1 -1 2.5 1e3 7d 1h 'web-01' 'x' ''",
        "\"Connected\" @'\\d+' true false datetime(2024-01-01) dynamic([1,'a']) dynamic({'k':1}) dynamic(null) * ; //",
        "let",
    )
    for token in line.split(" ")
]

DIALECTS = [POSTGRESQL, SQLITE]
ACCEPTED_RUNTIME = (
    "regular expression", "out of range", "invalid regular", "error in regex", "bad escape", "nothing to repeat",
    "unterminated", "unbalanced", "look-behind",
)  # fmt: skip


def env(dialect) -> Env:
    return Env(dialect=dialect, now=NOW, offline_after=timedelta(minutes=25), expired_after=timedelta(days=45))


token_soup = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=25).map(" ".join)
tabular_soup = st.lists(st.sampled_from(TOKENS), min_size=0, max_size=12).map(lambda t: "Resources | " + " ".join(t))


@st.composite
def mutated_samples(draw) -> str:
    text = draw(st.sampled_from([s.query for s in SAMPLES]))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["delete", "insert", "duplicate", "truncate"]))
        if action == "delete":
            text = text[:where] + text[where + draw(st.integers(1, 8)) :]
        elif action == "insert":
            text = text[:where] + " " + draw(st.sampled_from(TOKENS)) + " " + text[where:]
        elif action == "duplicate":
            text = text[:where] + text[where : where + 20] + text[where:]
        else:
            text = text[:where]
    return text


ATOMS = (
    "name", "type", "location", "resourceGroup", "id", "kind", "properties", "tags", "properties.status",
    "properties.osName", "tags.env", "tags['team']", "properties.detectedProperties.cores",
    "properties.errorDetails[0]",
    "'web-01'", "'x'", "''", "1", "0", "2.5", "true", "7d", "datetime(2024-01-01)", "dynamic([1, 'a'])", "now()",
)  # fmt: skip
UNARY = ("tostring", "toint", "todouble", "tobool", "toupper", "tolower", "strlen", "isempty", "isnull", "isnotempty",
         "array_length", "bag_keys", "todatetime", "not", "tolong", "floor")  # fmt: skip
BINARY = ("==", "!=", "=~", "!~", "<", ">=", "+", "-", "*", "/", "%", "contains", "!has", "startswith", "endswith",
          "and", "or", "matches regex")  # fmt: skip
CALLS = ("substring({}, 1, 3)", "indexof({}, '-')", "split({}, '-')", "strcat({}, {})", "replace_string({}, 'a', 'b')",
         "iff({}, {}, {})", "coalesce({}, {})", "bin({}, 2)", "round({}, 1)", "pack('k', {})", "case({}, {}, {})",
         "trim(' ', {})", "{} in ('a', 1)", "{} in~ ('WEB-01', 'x')", "ago({})", "{}[0]", "{}.status")  # fmt: skip


def expressions(depth: int = 3):
    atom = st.sampled_from(ATOMS)
    if depth == 0:
        return atom
    inner = expressions(depth - 1)
    return st.one_of(
        atom,
        st.tuples(st.sampled_from(UNARY), inner).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(inner, st.sampled_from(BINARY), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(CALLS), st.lists(inner, min_size=3, max_size=3)).map(
            lambda t: t[0].format(*t[1][: t[0].count("{}")])
        ),
    )


OPERATORS = (
    "where {}", "extend x = {}", "project name, type, v = {}", "summarize count() by k = {}", "order by {} asc",
    "top 3 by {}", "summarize c = countif(tobool({})), m = max(strlen(name)), l = make_list({}) by type",
    "summarize arg_max(strlen(name), *) by t = tostring({})", "take 5", "distinct type", "count",
    "mv-expand m = split(name, '-')", "join kind=leftouter (Resources | project name, t = type) on name",
    "union ResourceContainers", "extend y = {} | where isnotnull(y)", "mv-expand e = {}",
)  # fmt: skip
structured = st.lists(st.tuples(st.sampled_from(OPERATORS), expressions()), min_size=1, max_size=4).map(
    lambda ops: "Resources | " + " | ".join(template.format(e, e) for template, e in ops)
)
queries = st.one_of(token_soup, tabular_soup, mutated_samples(), st.text(max_size=60), structured, structured)


@settings(max_examples=600, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(text=queries)
def test_parser_and_compiler_raise_only_query_errors(text):
    for dialect in DIALECTS:
        try:
            compiled = compile_query(text, env=env(dialect), scopes=EVERYTHING)
            compiled.page(offset=0, limit=10)
            compiled.count()
        except GraphQueryError as exc:
            assert exc.details and exc.message


@pytest.fixture
def arm_client(db, subscription, admin_user, now):
    from identity.tokens import issue_user_token
    from tests.machines.graph.fleet import seed_fleet

    seed_fleet(subscription=subscription, now=now)
    token = issue_user_token(user=admin_user, tenant_id=str(subscription.tenant.tenant_id),
                             issuer="https://testserver/x/v2.0").access_token  # fmt: skip
    return ArmClient(token)


@pytest.mark.django_db
def test_the_endpoint_never_answers_5xx(arm_client):
    failures: list[str] = []

    @settings(max_examples=250, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip
    @given(text=queries, top=st.sampled_from([None, 1, 5, 1000, 1001]))
    def check(text, top):
        body = {"query": text} | ({"options": {"$top": top}} if top else {})
        response = arm_client.request("POST", "/providers/Microsoft.ResourceGraph/resources?api-version=2021-03-01",
                                      body)  # fmt: skip
        assert response.status_code in (200, 400), (text, response.status_code, response.content[:300])
        if response.status_code == 400:
            error = response.json()["error"]
            codes = {d["code"] for d in error.get("details", [])}
            if "QueryExecutionFailed" in codes and not any(w in error["message"] for w in ACCEPTED_RUNTIME):
                failures.append(f"{text!r}: {error['message']}")

    check()
    assert not failures, "\n".join(failures[:10])
