"""Scalar expressions → typed SQL (``Value``). Pure.

Kusto semantics kept: strings are never null (``tostring(null) == ""``); ``==`` between a null and a value is false
and ``!=`` true; ``=~``/``in~``/``contains``/``has``/``startswith`` are case-insensitive; dynamic values compare
as the type on the other side. Inside a WHERE clause (``predicate=True``, not under ``not()``) comparisons stay
plain ``a = b`` so the database can use its indexes; elsewhere they are exact about nulls.
"""

from __future__ import annotations

import difflib

from machines.graph import ast
from machines.graph.comparisons import Comparisons
from machines.graph.errors import invalid_query
from machines.graph.relation import Relation
from machines.graph.sources import object_lookup
from machines.graph.values import (
    BOOL,
    DATETIME,
    DYNAMIC,
    JSON,
    LONG,
    REAL,
    STRING,
    TIMESPAN,
    Frag,
    Value,
    sql,
)

STRING_OPS = ("contains", "has", "startswith", "endswith")


class Expressions(Comparisons):
    """Mixed into the compiler: needs ``self.env``, ``self.dialect``."""

    # --- values and conversions ------------------------------------------------------------------------------

    def render(self, value: Value) -> Frag:
        if value.lazy is not None:
            lazy = value.lazy
            return object_lookup(self.object_cte(lazy.field), self.render(lazy.kind), self.render(lazy.pk))
        return value.frag

    def const(self, value, type_: str) -> Value:
        return Value(self.dialect.param(value, type_), type_, nullable=value is None, literal=value)

    def json_null(self) -> Value:
        return Value(self.dialect.null(JSON), DYNAMIC, JSON, literal=None)

    def json_of(self, value: Value) -> Frag:
        return self.dialect.to_json(self.render(value), value.rep)

    def text_of(self, value: Value, *, empty_for_null: bool = False) -> Frag:
        """The text of a value (Kusto ``tostring`` without the empty string for null unless asked)."""
        d = self.dialect
        frag, rep = self.render(value), value.rep
        if rep == STRING:
            text = frag
        elif rep == LONG:
            text = d.long_text(frag)
        elif rep == REAL:
            text = d.real_text(frag)
        elif rep == BOOL:
            text = d.bool_text(frag)
        elif rep == DATETIME:
            # a datetime inside a dynamic object (lastStatusChange) prints as the ARM API prints it
            text = d.rfc3339(frag) if value.type == DYNAMIC else d.datetime_text(frag)
        elif rep == TIMESPAN:
            text = d.real_text(frag)
        else:
            text = d.json_text(frag)
        if empty_for_null and (value.nullable or rep != STRING):
            return sql("coalesce(§, '')", text)
        return text

    def as_string(self, value: Value) -> Value:
        if value.type == STRING and not value.nullable:
            return value
        return Value(self.text_of(value, empty_for_null=True), STRING, nullable=False, lower=value.lower)

    def as_real(self, value: Value, node=None) -> Value:
        d, frag, rep = self.dialect, self.render(value), value.rep
        if rep in (REAL, TIMESPAN):
            return Value(frag, REAL)
        if rep == LONG:
            return Value(d.to_real(frag), REAL)
        if rep == JSON:
            return Value(d.json_number(frag), REAL)
        if rep == STRING:
            return Value(d.text_to_real(frag), REAL)
        if rep == BOOL:
            return Value(sql("(CASE WHEN § THEN 1.0 WHEN NOT § THEN 0.0 END)", frag, frag), REAL)
        raise self.mismatch(f"A {value.type} can't be used as a number.", node)

    def as_long(self, value: Value, node=None) -> Value:
        d = self.dialect
        if value.rep == LONG:
            return value.with_(type=LONG) if value.type != LONG else value
        if value.rep == STRING:
            return Value(d.text_to_long(self.render(value)), LONG)
        real = self.as_real(value, node)
        return Value(d.to_long(real.frag), LONG)

    def as_bool(self, value: Value, node=None) -> Value:
        d, frag, rep = self.dialect, self.render(value), value.rep
        if rep == BOOL:
            return Value(frag, BOOL, nullable=value.nullable)
        if rep == JSON:
            return Value(d.json_bool(frag), BOOL)
        if rep == STRING:
            return Value(d.text_to_bool(frag), BOOL)
        if rep in (LONG, REAL):
            return Value(sql("(§ <> 0)", frag), BOOL)
        raise self.mismatch(f"A {value.type} can't be used as a bool.", node)

    def as_datetime(self, value: Value, node=None) -> Value:
        d, rep = self.dialect, value.rep
        if rep == DATETIME:
            return value
        if rep in (STRING, JSON):
            return Value(d.text_to_datetime(self.text_of(value)), DATETIME)
        raise self.mismatch(f"A {value.type} can't be used as a datetime.", node)

    def mismatch(self, message: str, node=None):
        return invalid_query(message, code="TypeMismatch", pos=getattr(node, "pos", None))

    # --- expressions -----------------------------------------------------------------------------------------

    def expr(self, node: ast.Expr, rel: Relation, *, predicate: bool = False) -> Value:
        if isinstance(node, ast.Literal):
            return self.const(node.value, node.type)
        if isinstance(node, ast.Column):
            return self.column(node, rel)
        if isinstance(node, ast.Member | ast.Index):
            return self.access(node, rel)
        if isinstance(node, ast.Call):
            return self.call(node, rel, predicate=predicate)
        if isinstance(node, ast.Negate):
            return self.negate(node, rel)
        if isinstance(node, ast.InList):
            return self.in_list(node, rel, predicate=predicate)
        if isinstance(node, ast.Binary):
            return self.binary(node, rel, predicate=predicate)
        if isinstance(node, ast.Star):
            raise invalid_query("'*' can only be an argument of arg_max/arg_min.", pos=node.pos)
        raise invalid_query(f"Unsupported expression {type(node).__name__}.", pos=getattr(node, "pos", None))

    def column(self, node: ast.Column, rel: Relation) -> Value:
        value = rel.get(node.name)
        if value is None:
            close = difflib.get_close_matches(node.name, rel.names(), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise invalid_query(
                f"Failed to resolve column or scalar expression named '{node.name}'.{hint}",
                code="UnknownColumn",
                name=node.name,
                pos=node.pos,
            )
        return value

    def access(self, node: ast.Expr, rel: Relation) -> Value:
        """``obj.a.b`` / ``obj['a'][0]``: a path column when the object is a base object, JSON access otherwise."""
        steps: list = []
        root = node
        while isinstance(root, ast.Member | ast.Index):
            if isinstance(root, ast.Member):
                steps.append(root.name)
            elif isinstance(root.index, ast.Literal) and root.index.type in (STRING, LONG):
                steps.append(root.index.value)
            else:
                break
            root = root.obj
        steps.reverse()
        if isinstance(root, ast.Index):  # a computed key: everything below it is plain JSON access
            base = self.expr(root.obj, rel)
            key = self.expr(root.index, rel)
            frag = self.get_json(base, key, root)
            return self.follow(Value(frag, DYNAMIC, JSON), steps)
        base = self.expr(root, rel)
        if base.type != DYNAMIC:
            raise self.mismatch(f"'{_describe(root)}' is a {base.type}, not a dynamic object.", node)
        if base.paths is not None:
            path = tuple(steps)
            if path in base.paths:
                return base.paths[path]
            for cut in range(len(path) - 1, 0, -1):
                prefix = base.paths.get(path[:cut])
                if prefix is not None:
                    return self.follow(prefix, list(path[cut:]))
            if base.lazy is not None:
                return self.json_null()  # no member of a base object has this path
        return self.follow(base, steps)

    def get_json(self, base: Value, key: Value, node) -> Frag:
        by_index = key.type == LONG
        key_frag = self.render(key) if key.type in (LONG, STRING) else self.text_of(key)
        return self.dialect.json_get(self.json_of(base), key_frag, by_index)

    def follow(self, value: Value, steps: list) -> Value:
        if not steps:
            return value
        if value.rep != JSON:
            return self.json_null()
        frag = self.json_of(value)
        for step in steps:
            key = self.dialect.param(step, LONG if isinstance(step, int) else STRING)
            frag = self.dialect.json_get(frag, key, isinstance(step, int))
        return Value(frag, DYNAMIC, JSON)

    def negate(self, node: ast.Negate, rel: Relation) -> Value:
        value = self.expr(node.operand, rel)
        if value.type in (LONG, REAL, TIMESPAN):
            return Value(sql("(-§)", self.render(value)), value.type)
        if value.type == DYNAMIC:
            return Value(sql("(-§)", self.as_real(value).frag), REAL)
        raise self.mismatch(f"A {value.type} can't be negated.", node)

    # --- binary operators ------------------------------------------------------------------------------------

    def binary(self, node: ast.Binary, rel: Relation, *, predicate: bool) -> Value:
        op = node.op
        if op in ("and", "or"):
            left = self.as_bool(self.expr(node.left, rel, predicate=predicate), node.left)
            right = self.as_bool(self.expr(node.right, rel, predicate=predicate), node.right)
            return Value(sql(f"(§ {op.upper()} §)", left.frag, right.frag), BOOL)
        left = self.expr(node.left, rel)
        right = self.expr(node.right, rel)
        if op in ("+", "-", "*", "/", "%"):
            return self.arithmetic(op, left, right, node)
        if op == "matches regex":
            return Value(self.dialect.regex(self.text_of(left, empty_for_null=True), self.text_of(right)), BOOL)
        if op.lstrip("!").split("_")[0] in STRING_OPS:
            return self.string_op(op, left, right, node)
        return self.compare(op, left, right, node, predicate=predicate)

    def arithmetic(self, op: str, left: Value, right: Value, node) -> Value:
        d = self.dialect
        a_type = REAL if left.type == DYNAMIC else left.type
        b_type = REAL if right.type == DYNAMIC else right.type
        types = (a_type, b_type)
        if DATETIME in types or TIMESPAN in types:
            return self.time_arithmetic(op, left, right, types, node)
        if not set(types) <= {LONG, REAL}:
            raise self.mismatch(f"Operator '{op}' can't be applied to a {left.type} and a {right.type}.", node)
        result_type = LONG if types == (LONG, LONG) else REAL
        a = self.render(left) if a_type == left.type else self.as_real(left, node).frag
        b = self.render(right) if b_type == right.type else self.as_real(right, node).frag
        if op == "/":
            if result_type == REAL:
                return Value(sql("(§ / NULLIF(§, 0))", d.to_real(a), d.to_real(b)), REAL)
            return Value(sql("(§ / NULLIF(§, 0))", a, b), LONG)
        if op == "%":
            if result_type != LONG:
                raise self.mismatch("Operator '%' takes two longs.", node)
            return Value(d.modulo(a, b), LONG)
        return Value(sql(f"(§ {op} §)", a, b), result_type)

    def time_arithmetic(self, op: str, left: Value, right: Value, types, node) -> Value:
        d = self.dialect
        a, b = self.render(left), self.render(right)
        if types == (DATETIME, TIMESPAN) and op in "+-":
            return Value(d.datetime_plus(a, b if op == "+" else sql("(-§)", b)), DATETIME)
        if types == (TIMESPAN, DATETIME) and op == "+":
            return Value(d.datetime_plus(b, a), DATETIME)
        if types == (DATETIME, DATETIME) and op == "-":
            return Value(d.datetime_diff(a, b), TIMESPAN)
        if types == (TIMESPAN, TIMESPAN) and op in "+-":
            return Value(sql(f"(§ {op} §)", a, b), TIMESPAN)
        if types == (TIMESPAN, TIMESPAN) and op == "/":
            return Value(sql("(§ / NULLIF(§, 0))", a, b), REAL)
        if TIMESPAN in types and op in "*/" and set(types) <= {TIMESPAN, LONG, REAL}:
            if op == "/" and types[0] != TIMESPAN:
                raise self.mismatch("A number can't be divided by a timespan.", node)
            if op == "*":
                return Value(sql("(§ * §)", a, b), TIMESPAN)
            return Value(sql("(§ / NULLIF(§, 0))", a, d.to_real(b)), TIMESPAN)
        raise self.mismatch(f"Operator '{op}' can't be applied to a {left.type} and a {right.type}.", node)


def _describe(node: ast.Expr) -> str:
    if isinstance(node, ast.Column):
        return node.name
    if isinstance(node, ast.Member):
        return f"{_describe(node.obj)}.{node.name}"
    return "expression"
