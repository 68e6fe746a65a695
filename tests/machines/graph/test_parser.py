"""The parser and the compiler are pure: no database here. Literals, positions, names, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from machines.graph import ast
from machines.graph.compiler import collect_paths, compile_query
from machines.graph.dialects import POSTGRESQL, SQLITE
from machines.graph.errors import GraphQueryError
from machines.graph.parser import MAX_QUERY_LENGTH, parse
from machines.graph.schema import Env
from machines.graph.visibility import EVERYTHING

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def where(text: str) -> ast.Expr:
    (operator,) = parse(f"Resources | where {text}").operators
    return operator.predicate


def error(text: str) -> dict:
    with pytest.raises(GraphQueryError) as info:
        parse(text)
    return info.value.details[-1]


def test_literals():
    assert where(r"x == 'a\'b\n'").right.value == "a'b\n"
    assert where(r"x == @'c:\temp'").right.value == r"c:\temp"
    assert where('x == "double"').right.value == "double"
    assert where("x == 7d").right == ast.Literal(value=7 * 86400.0, type="timespan")
    assert where("x == 90m").right.value == 5400.0 and where("x == 250ms").right.value == 0.25
    assert where("x == datetime(2024-01-02)").right.value == datetime(2024, 1, 2, tzinfo=UTC)
    assert where("x == datetime('2024-01-02T03:04:05+02:00')").right.value == datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC)
    assert where("x == dynamic(['a', 1, 2.5, true, null, {'k': -1}])").right.value == ["a", 1, 2.5, True, None,
                                                                                      {"k": -1}]  # fmt: skip
    assert where("x == -5").right.value == -5 and where("x == 1.5e3").right.value == 1500.0


def test_operator_precedence():
    expr = where("a == 1 or b == 2 and c == 3")
    assert expr.op == "or" and expr.right.op == "and"
    expr = where("a + b * c > 1")
    assert expr.op == ">" and expr.left.op == "+" and expr.left.right.op == "*"


def test_positions_are_line_and_column():
    pipeline = parse("Resources\n| where\n    nme == 1")
    assert pipeline.operators[0].predicate.left.pos == (3, 5)


def test_every_operator_parses():
    pipeline = parse(
        "Resources | where a == 1 | filter b | project a, c = 1 | project-away a | extend d = 2 | summarize count()"
        " by c | order by c asc nulls last, count_ | sort by c | top 3 by c desc | take 2 | limit 1 | distinct c"
        " | count | mv-expand kind=array x = y limit 4 | mvexpand z | join kind=inner (T) on $left.a == $right.b"
        " | join T on c | union U, (V | take 1) | union kind=outer W"
    )
    kinds = [type(op).__name__ for op in pipeline.operators]
    assert kinds == ["Where", "Where", "Project", "ProjectAway", "Extend", "Summarize", "Order", "Order", "Top",
                     "Take", "Take", "Distinct", "Count", "MvExpand", "MvExpand", "Join", "Join", "UnionOp",
                     "UnionOp"]  # fmt: skip
    assert pipeline.operators[14].limit == 128  # the legacy mvexpand stops at 128 rows per input row
    assert pipeline.operators[13].limit == 4 and pipeline.operators[13].kind == "array"


def test_keywords_stay_usable_as_names():
    assert parse("Resources | where kind == 'x' | project count = 1, type").operators[1].items[0].name == "count"
    assert where("properties.kind == 1").left.name == "kind"


@pytest.mark.parametrize(
    ("text", "code", "line", "column"),
    [
        ("Resources | where", "ParserFailure", 1, 18),
        ("Resources\n| where name = 'x'", "ParserFailure", 2, 14),
        ("Resources | where x == datetime(2024-02-30)", "ParserFailure", 1, 24),
        ("Resources | render barchart", "UnsupportedOperator", 1, 13),
        ("Resources | join kind=rightanti (T) on x", "UnsupportedOperator", 1, 23),
        ("Resources | join (T) on $left.a != $right.b", "InvalidJoinCondition", 1, 33),
        ("let a = 1; Resources", "UnsupportedStatement", 1, 1),
        ("Resources | where 'x' == '\x00'", "ParserFailure", 1, 27),
        ("Resources | where x == " + "(" * 100 + "1" + ")" * 100, "QueryTooComplex", 1, 1),
    ],
)
def test_errors_point_at_the_text(text, code, line, column):
    detail = error(text)
    assert detail["code"] == code
    assert (detail["line"], detail["column"]) >= (line, 1) and detail["line"] == line
    if code != "QueryTooComplex":
        assert detail["column"] == column


def test_length_limit():
    assert parse("Resources" + " " * (MAX_QUERY_LENGTH - 9))
    assert error("Resources" + " " * (MAX_QUERY_LENGTH - 8))["code"] == "QueryTooLong"
    assert error("   ")["code"] == "ParserFailure"


def test_collect_paths_knows_the_root_column():
    tree = parse("Resources | where properties.osProfile.computerName == 'x' and tags['env'] == 1 | extend p ="
                 " properties | project p.status, properties[tostring(1)]")  # fmt: skip
    assert collect_paths(tree) == {("properties", ("osProfile", "computerName")), ("properties", ("osProfile",)),
                                   ("tags", ("env",)), ("p", ("status",))}  # fmt: skip


@pytest.mark.parametrize("dialect", [POSTGRESQL, SQLITE], ids=["postgresql", "sqlite"])
def test_visibility_is_in_every_branch_of_every_table_reference(dialect):
    env = Env(dialect=dialect, now=NOW, offline_after=timedelta(minutes=25), expired_after=timedelta(days=45))
    from machines.graph.visibility import ReadableScope

    scope = ReadableScope("/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg-x")
    compiled = compile_query("Resources | join (ResourceContainers) on name | union Resources", env=env,
                             scopes=[scope])  # fmt: skip
    statement = compiled.page(offset=0, limit=10)
    assert statement.sql.count("UNION ALL SELECT") >= 3
    assert statement.sql.count("lower(g.name) = lower(") == 5  # 2 + 2 + 2 branches, the subscription branch has none
    assert statement.params.count("rg-x") == 5
    unlimited = compile_query("Resources", env=env, scopes=EVERYTHING).page(offset=0, limit=10)
    assert "lower(g.name) = lower(" not in unlimited.sql and "rg-x" not in unlimited.params


@pytest.mark.parametrize("dialect", [POSTGRESQL, SQLITE], ids=["postgresql", "sqlite"])
def test_status_filter_is_a_heartbeat_range_and_builds_no_json(dialect):
    env = Env(dialect=dialect, now=NOW, offline_after=timedelta(minutes=25), expired_after=timedelta(days=45))
    compiled = compile_query("Resources | where properties.status == 'Connected' | project name", env=env,
                             scopes=EVERYTHING)  # fmt: skip
    count = compiled.count()
    assert "hb >= " in count.sql and "json" not in count.sql.lower()
    cutoff = NOW - timedelta(minutes=25)
    assert cutoff in count.params or SQLITE.datetime_value(cutoff) in count.params
