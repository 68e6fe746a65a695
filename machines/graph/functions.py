"""Scalar functions of the supported KQL subset. Pure.

``FUNCTIONS[name](compiler, call, relation) → Value``. Any other name is ``UnknownFunction``; an aggregation
function outside ``summarize`` is ``InvalidQuery`` saying so.
"""

from __future__ import annotations

from collections.abc import Callable

from machines.graph import ast, keys
from machines.graph.errors import invalid_query
from machines.graph.values import BOOL, DATETIME, DYNAMIC, JSON, LONG, REAL, STRING, TIMESPAN, Frag, Value, sql

Handler = Callable[..., Value]
FUNCTIONS: dict[str, Handler] = {}


def function(*names: str, args: tuple[int, int]):
    low, high = args

    def register(handler: Handler) -> Handler:
        def checked(c, node: ast.Call, rel):
            if not low <= len(node.args) <= high:
                expected = str(low) if low == high else f"{low} to {high}"
                raise invalid_query(
                    f"Function '{node.name}' takes {expected} argument{'s' if high != 1 else ''}; "
                    f"{len(node.args)} given.",
                    code="InvalidArgument",
                    name=node.name,
                    pos=node.pos,
                )
            return handler(c, node, rel)

        for name in names:
            FUNCTIONS[name] = checked
        return handler

    return register


def _args(c, node: ast.Call, rel) -> list[Value]:
    return [c.expr(arg, rel) for arg in node.args]


def _const_int(c, node: ast.Expr, what: str) -> int:
    if isinstance(node, ast.Literal) and node.type == LONG:
        return int(node.value)
    raise invalid_query(f"{what} must be a constant integer.", code="InvalidArgument", pos=node.pos)


# --- conversions -----------------------------------------------------------------------------------------------


@function("tostring", args=(1, 1))
def _tostring(c, node, rel):
    return c.as_string(c.expr(node.args[0], rel))


@function("toint", "tolong", args=(1, 1))
def _tolong(c, node, rel):
    return c.as_long(c.expr(node.args[0], rel), node)


@function("todouble", "toreal", args=(1, 1))
def _toreal(c, node, rel):
    value = c.expr(node.args[0], rel)
    if value.type == TIMESPAN:
        return Value(c.render(value), REAL)
    return c.as_real(value, node)


@function("tobool", "toboolean", args=(1, 1))
def _tobool(c, node, rel):
    return c.as_bool(c.expr(node.args[0], rel), node)


@function("todatetime", args=(1, 1))
def _todatetime(c, node, rel):
    return c.as_datetime(c.expr(node.args[0], rel), node)


@function("datetime", args=(1, 1))
def _datetime(c, node, rel):
    return c.as_datetime(c.as_string(c.expr(node.args[0], rel)), node)


# --- strings ---------------------------------------------------------------------------------------------------


@function("toupper", args=(1, 1))
def _toupper(c, node, rel):
    value = c.as_string(c.expr(node.args[0], rel))
    return Value(c.dialect.upper(value.frag), STRING, nullable=False, facts=keys.folded(value, "upper"))


@function("tolower", args=(1, 1))
def _tolower(c, node, rel):
    value = c.as_string(c.expr(node.args[0], rel))
    return Value(value.frag if value.lower else c.dialect.lower(value.frag), STRING, nullable=False, lower=True,
                 facts=keys.folded(value, "lower"))  # fmt: skip


@function("strlen", args=(1, 1))
def _strlen(c, node, rel):
    return Value(sql("CAST(length(§) AS bigint)" if c.dialect.name == "postgresql" else "length(§)",
                     c.as_string(c.expr(node.args[0], rel)).frag), LONG)  # fmt: skip


@function("substring", args=(2, 3))
def _substring(c, node, rel):
    values = _args(c, node, rel)
    text = c.as_string(values[0]).frag
    start = sql("(§ + 1)", c.as_long(values[1], node).frag)
    start = sql("(CASE WHEN § < 1 THEN 1 ELSE § END)", start, start)
    length = c.as_long(values[2], node).frag if len(values) == 3 else None
    return Value(sql("coalesce(§, '')", c.dialect.substr(text, start, length)), STRING, nullable=False,
                 facts=keys.parent_facts(c, node, values, rel))  # fmt: skip


@function("indexof", args=(2, 2))
def _indexof(c, node, rel):
    text, lookup = (c.as_string(v).frag for v in _args(c, node, rel))
    return Value(sql("(§ - 1)", c.dialect.strpos(text, lookup)), LONG)


@function("split", args=(2, 3))
def _split(c, node, rel):
    values = _args(c, node, rel)
    array = Value(c.dialect.split(c.as_string(values[0]).frag, c.as_string(values[1]).frag), DYNAMIC, JSON,
                  shape="array")  # fmt: skip
    if len(values) == 2:
        return array
    element = c.dialect.json_get(array.frag, c.as_long(values[2], node).frag, True)
    return Value(c.dialect.json_array([element]) if c.dialect.name == "postgresql" else sql("json_array(§)", element),
                 DYNAMIC, JSON)  # fmt: skip


@function("strcat", args=(1, 64))
def _strcat(c, node, rel):
    parts = [c.as_string(v).frag for v in _args(c, node, rel)]
    return Value(sql("(" + " || ".join("§" for _ in parts) + ")", *parts), STRING, nullable=False)


@function("replace_string", args=(3, 3))
def _replace_string(c, node, rel):
    text, lookup, rewrite = (c.as_string(v).frag for v in _args(c, node, rel))
    return Value(sql("replace(§, §, §)", text, lookup, rewrite), STRING, nullable=False)


@function("trim", args=(2, 2))
def _trim(c, node, rel):
    pattern, text = (c.as_string(v).frag for v in _args(c, node, rel))
    return Value(sql("coalesce(§, '')", c.dialect.trim(pattern, text)), STRING, nullable=False)


# --- nulls and empties -------------------------------------------------------------------------------------------


def _is_empty(c, value: Value) -> Frag:
    if value.rep == STRING:
        return sql("(§ IS NULL OR § = '')", c.render(value), c.render(value))
    if value.rep == JSON:
        text = c.dialect.json_text(c.json_of(value))
        return sql("(§ IS NULL OR § = '')", text, text)
    return sql("(§ IS NULL)", c.render(value))


def _is_null(c, value: Value) -> Frag:
    if value.type == STRING:
        return c.dialect.literal_bool(False)
    if value.rep == JSON:
        return sql("(§ IS NULL OR § = 'null')", c.json_of(value), c.dialect.json_typeof(c.json_of(value)))
    return sql("(§ IS NULL)", c.render(value))


@function("isempty", args=(1, 1))
def _isempty(c, node, rel):
    return Value(_is_empty(c, c.expr(node.args[0], rel)), BOOL, nullable=False)


@function("isnotempty", args=(1, 1))
def _isnotempty(c, node, rel):
    return Value(sql("(NOT §)", _is_empty(c, c.expr(node.args[0], rel))), BOOL, nullable=False)


@function("isnull", args=(1, 1))
def _isnull(c, node, rel):
    return Value(_is_null(c, c.expr(node.args[0], rel)), BOOL, nullable=False)


@function("isnotnull", args=(1, 1))
def _isnotnull(c, node, rel):
    return Value(sql("(NOT §)", _is_null(c, c.expr(node.args[0], rel))), BOOL, nullable=False)


@function("not", args=(1, 1))
def _not(c, node, rel):
    return Value(sql("(NOT §)", c.as_bool(c.expr(node.args[0], rel), node).frag), BOOL)


# --- choices -------------------------------------------------------------------------------------------------------


def unify(c, values: list[Value], node) -> tuple[str, list[Frag]]:
    """A common type for the branches of iff/case/coalesce, and each branch's SQL in it."""
    types = {v.type for v in values if not (v.is_literal and v.literal is None)}
    if not types:
        return DYNAMIC, [c.json_of(v) for v in values]
    if len(types) == 1:
        (type_,) = types
        if type_ == DYNAMIC:
            return DYNAMIC, [c.json_of(v) for v in values]
        reps = {v.rep for v in values if not (v.is_literal and v.literal is None)}
        return type_, [c.render(v) if v.rep in reps else c.dialect.null(type_) for v in values]
    if types <= {LONG, REAL}:
        return REAL, [c.as_real(v, node).frag for v in values]
    if DYNAMIC in types:
        return DYNAMIC, [c.json_of(v) for v in values]
    return STRING, [c.as_string(v).frag for v in values]


@function("iff", "iif", args=(3, 3))
def _iff(c, node, rel):
    condition = c.as_bool(c.expr(node.args[0], rel), node).frag
    type_, (then, otherwise) = unify(c, [c.expr(node.args[1], rel), c.expr(node.args[2], rel)], node)
    return Value(sql("(CASE WHEN § THEN § ELSE § END)", condition, then, otherwise), type_,
                 nullable=type_ != STRING)  # fmt: skip


@function("case", args=(3, 63))
def _case(c, node, rel):
    if len(node.args) % 2 == 0:
        raise invalid_query("case() takes pairs of predicate and value, then an else value.", code="InvalidArgument",
                            name="case", pos=node.pos)  # fmt: skip
    predicates = [c.as_bool(c.expr(a, rel), a).frag for a in node.args[0:-1:2]]
    type_, values = unify(c, [c.expr(a, rel) for a in node.args[1::2]] + [c.expr(node.args[-1], rel)], node)
    parts = [sql("WHEN § THEN §", p, v) for p, v in zip(predicates, values[:-1], strict=True)]
    return Value(sql("(CASE " + " ".join("§" for _ in parts) + " ELSE § END)", *parts, values[-1]), type_)


@function("coalesce", args=(2, 64))
def _coalesce(c, node, rel):
    values = _args(c, node, rel)
    type_, frags = unify(c, values, node)
    if type_ == STRING:
        frags = [sql("NULLIF(§, '')", f) for f in frags] + [Frag("''")]
    return Value(sql("coalesce(" + ", ".join("§" for _ in frags) + ")", *frags), type_, nullable=type_ != STRING)


# --- numbers and time ----------------------------------------------------------------------------------------------


def _bin(c, node, rel) -> Value:
    value, size = _args(c, node, rel)
    d = c.dialect
    if value.type == DATETIME:
        if size.type != TIMESPAN:
            raise c.mismatch("bin() of a datetime takes a timespan.", node)
        return Value(d.bin_datetime(c.render(value), c.render(size)), DATETIME)
    if value.type == TIMESPAN:
        seconds = c.render(size)
        return Value(sql("(§ * §)", d.floor(sql("(§ / NULLIF(§, 0))", c.render(value), seconds)), seconds), TIMESPAN)
    if value.type == LONG and size.type == LONG:
        a, b = c.render(value), c.render(size)
        return Value(sql("CAST(§ * § AS bigint)" if d.name == "postgresql" else "CAST(§ * § AS INTEGER)",
                         d.floor(sql("(§ / NULLIF(§, 0))", d.to_real(a), d.to_real(b))), b), LONG)  # fmt: skip
    a, b = c.as_real(value, node).frag, c.as_real(size, node).frag
    return Value(sql("(§ * §)", d.floor(sql("(§ / NULLIF(§, 0))", a, b)), b), REAL)


@function("bin", args=(2, 2))
def _bin_function(c, node, rel):
    return _bin(c, node, rel)


@function("floor", args=(1, 2))
def _floor(c, node, rel):
    if len(node.args) == 2:
        return _bin(c, node, rel)
    value = c.expr(node.args[0], rel)
    if value.type == LONG:
        return value
    return Value(c.dialect.floor(c.as_real(value, node).frag), REAL)


@function("round", args=(1, 2))
def _round(c, node, rel):
    value = c.expr(node.args[0], rel)
    digits = c.as_long(c.expr(node.args[1], rel), node).frag if len(node.args) == 2 else Frag("0")
    return Value(c.dialect.round(c.as_real(value, node).frag, digits), REAL)


@function("now", args=(0, 1))
def _now(c, node, rel):
    now = c.env.datetime(c.env.now)
    if not node.args:
        return Value(now, DATETIME, nullable=False, literal=c.env.now)
    offset = c.expr(node.args[0], rel)
    if offset.type != TIMESPAN:
        raise c.mismatch("now() takes a timespan.", node)
    return Value(c.dialect.datetime_plus(now, c.render(offset)), DATETIME)


@function("ago", args=(1, 1))
def _ago(c, node, rel):
    arg = node.args[0]
    if isinstance(arg, ast.Literal) and arg.type == TIMESPAN:
        from datetime import timedelta

        moment = c.env.now - timedelta(seconds=arg.value)
        return Value(c.env.datetime(moment), DATETIME, nullable=False, literal=moment)
    offset = c.expr(arg, rel)
    if offset.type != TIMESPAN:
        raise c.mismatch("ago() takes a timespan.", node)
    return Value(c.dialect.datetime_plus(c.env.datetime(c.env.now), sql("(-§)", c.render(offset))), DATETIME)


# --- dynamic -------------------------------------------------------------------------------------------------------


@function("array_length", args=(1, 1))
def _array_length(c, node, rel):
    return Value(c.dialect.json_array_length(c.json_of(c.expr(node.args[0], rel))), LONG)


@function("bag_keys", args=(1, 1))
def _bag_keys(c, node, rel):
    value = c.expr(node.args[0], rel)
    return keys.bag_keys_of_pair(c, value) or Value(c.dialect.json_keys(c.json_of(value)), DYNAMIC, JSON, shape="array")


@function("pack", "bag_pack", args=(0, 64))
def _pack(c, node, rel):
    if len(node.args) % 2:
        raise invalid_query(f"{node.name}() takes key/value pairs.", code="InvalidArgument", name=node.name,
                            pos=node.pos)  # fmt: skip
    values = _args(c, node, rel)
    pairs = [(c.as_string(k).frag, c.json_of(v)) for k, v in zip(values[0::2], values[1::2], strict=True)]
    return Value(c.dialect.json_object(pairs), DYNAMIC, JSON, nullable=False, shape="object")


AGGREGATE_NAMES = frozenset(
    {"count", "countif", "dcount", "sum", "min", "max", "avg", "make_list", "make_set", "arg_max", "arg_min", "any"}
)


def call(c, node: ast.Call, rel, *, predicate: bool = False) -> Value:
    handler = FUNCTIONS.get(node.name)
    if handler is not None:
        return handler(c, node, rel)
    if node.name in AGGREGATE_NAMES:
        raise invalid_query(
            f"'{node.name}' is an aggregation function: use it in summarize.",
            code="InvalidAggregation",
            name=node.name,
            pos=node.pos,
        )
    raise invalid_query(f"Unknown function: '{node.name}'.", code="UnknownFunction", name=node.name, pos=node.pos)


__all__ = ["AGGREGATE_NAMES", "FUNCTIONS", "call"]
