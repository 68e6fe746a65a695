"""Aggregation functions of ``summarize``. Pure.

``aggregate(compiler, call, input) → Value`` is the SQL aggregate over the rows of ``input`` (a relation whose
WHERE clause is already part of the grouped SELECT). ``arg_max``/``arg_min`` are not here: they pick whole rows,
which ``summarize`` does with a window over the input first (``compiler.summarize``). Nulls are ignored, as Kusto
does: ``make_list``/``make_set`` leave them out and ``count()`` counts rows.
"""

from __future__ import annotations

from machines.graph import ast
from machines.graph.errors import invalid_query
from machines.graph.values import DYNAMIC, JSON, LONG, REAL, Value, sql

ARITY = {
    "count": (0, 0),
    "countif": (1, 1),
    "dcount": (1, 2),
    "sum": (1, 1),
    "min": (1, 1),
    "max": (1, 1),
    "avg": (1, 1),
    "make_list": (1, 2),
    "make_set": (1, 2),
    "any": (1, 1),
    "arg_max": (2, 64),
    "arg_min": (2, 64),
}


def check_arity(node: ast.Call) -> None:
    low, high = ARITY[node.name]
    if not low <= len(node.args) <= high:
        expected = str(low) if low == high else f"{low} to {high}"
        raise invalid_query(
            f"Aggregation '{node.name}' takes {expected} arguments; {len(node.args)} given.",
            code="InvalidArgument",
            name=node.name,
            pos=node.pos,
        )


def aggregate(c, node: ast.Call, rel) -> Value:
    check_arity(node)
    d = c.dialect
    name = node.name
    if name in ("arg_max", "arg_min"):
        raise invalid_query(
            f"'{name}' must be a whole summarize item (name = {name}(…)), not part of an expression.",
            code="InvalidAggregation",
            name=name,
            pos=node.pos,
        )
    if name == "count":
        return Value(sql("count(*)"), LONG, nullable=False)
    if len(node.args) == 2 and name in ("make_list", "make_set", "dcount"):
        limit = node.args[1]
        if not (isinstance(limit, ast.Literal) and limit.type == LONG):
            raise invalid_query(f"The second argument of {name} must be a constant.", code="InvalidArgument",
                                pos=limit.pos)  # fmt: skip
    arg = c.expr(node.args[0], rel)
    if name == "countif":
        predicate = c.as_bool(arg, node).frag
        return Value(sql("count(CASE WHEN § THEN 1 END)", predicate), LONG, nullable=False)
    if name == "dcount":
        frag = c.json_of(arg) if arg.rep == JSON else c.render(arg)
        if arg.rep == JSON and d.name == "sqlite":
            frag = sql("json(§)", frag)
        return Value(sql("count(DISTINCT §)", frag), LONG, nullable=False)
    if name == "sum":
        if arg.type == LONG:
            return Value(d.sum(c.render(arg), LONG), LONG)
        return Value(d.sum(c.as_real(arg, node).frag, REAL), REAL)
    if name == "avg":
        return Value(d.avg(c.as_real(arg, node).frag), REAL)
    if name in ("min", "max"):
        if arg.type == DYNAMIC:
            if arg.rep == JSON:
                return Value(d.minmax(name, c.as_real(arg, node).frag, REAL), REAL)
            return Value(d.minmax(name, c.render(arg), arg.rep), DYNAMIC, arg.rep)
        return Value(d.minmax(name, c.render(arg), arg.rep), arg.type, arg.rep)
    if name in ("make_list", "make_set"):
        limit = int(node.args[1].value) if len(node.args) == 2 else None
        built = d.list_agg(c.render(arg) if arg.lazy is None else c.json_of(arg), arg.rep if arg.lazy is None else JSON,
                           distinct=name == "make_set")  # fmt: skip
        value = Value(built, DYNAMIC, JSON, nullable=False, shape="array")
        if limit is not None:
            value = Value(d.json_head(built, limit), DYNAMIC, JSON, nullable=False, shape="array")
        return value
    if name == "any":
        if arg.lazy is not None:
            return Value(d.pick(c.json_of(arg), JSON), DYNAMIC, JSON)
        return Value(d.pick(c.render(arg), arg.rep), arg.type, arg.rep)
    raise invalid_query(f"Unknown aggregation '{name}'.", code="UnknownFunction", name=name, pos=node.pos)
