"""Comparisons, string operators and ``in``: the predicates of ``where``. Pure.

Kusto semantics: ``==`` between a null and a value is false, ``!=`` true; strings compare ordinally (``COLLATE "C"``
on PostgreSQL, as SQLite does); ``=~``, ``in~``, ``contains``, ``has``, ``startswith``, ``endswith`` ignore case
unless ``_cs``. ``properties.status == 'Connected'`` becomes a range on the indexed heartbeat, as the portal's
status filter does (``machines.querysets.status_q``), so it never derives the status of rows it can skip.
"""

from __future__ import annotations

import re

from machines.graph import ast
from machines.graph.relation import Relation
from machines.graph.values import BOOL, DATETIME, DYNAMIC, JSON, LONG, REAL, STRING, TIMESPAN, Frag, Value, sql
from machines.status import AWAITING, CONNECTED, DISCONNECTED, EXPIRED


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def has_pattern(term: str) -> str:
    return f"(^|[^0-9A-Za-z]){re.escape(term)}($|[^0-9A-Za-z])"


def _literal_type(value) -> str:
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return LONG
    if isinstance(value, float):
        return REAL
    if value is None:
        return DYNAMIC
    return STRING


class Comparisons:
    """Mixed into the expression compiler."""

    def kind_of(self, left: Value, right: Value, node) -> str:
        """The type both sides are compared as."""
        a, b = left.type, right.type
        reps = {left.rep, right.rep}
        if a == DYNAMIC and b == DYNAMIC:
            if reps <= {STRING}:
                return STRING
            if reps <= {LONG, REAL}:
                return REAL
            return JSON
        if DYNAMIC in (a, b):
            other = b if a == DYNAMIC else a
            return {LONG: REAL, TIMESPAN: REAL}.get(other, other)
        if a == b:
            return a
        if {a, b} <= {LONG, REAL}:
            return REAL
        if {a, b} == {DATETIME, STRING}:
            return DATETIME
        raise self.mismatch(f"Cannot compare a {a} with a {b}.", node)

    def coerce(self, value: Value, kind: str, node=None) -> Frag:
        if kind == STRING:
            return self.text_of(value)
        if kind == REAL:
            return self.render(value) if value.rep in (LONG, REAL, TIMESPAN) else self.as_real(value, node).frag
        if kind == LONG:
            return self.as_long(value, node).frag
        if kind == BOOL:
            return self.as_bool(value, node).frag
        if kind == DATETIME:
            return self.as_datetime(value, node).frag
        if kind == TIMESPAN:
            return self.render(value)
        return self.json_of(value)

    def compare(self, op: str, left: Value, right: Value, node, *, predicate: bool) -> Value:
        if predicate and op in ("==", "=~") and left.status is not None and isinstance(right.literal, str):
            return self.status_condition(left, right.literal, case_insensitive=op == "=~")
        kind = self.kind_of(left, right, node)
        a, b = self.coerce(left, kind, node), self.coerce(right, kind, node)
        d = self.dialect
        if op in ("=~", "!~"):
            if kind != STRING:
                op = "==" if op == "=~" else "!="
            else:
                a = a if left.lower else sql("lower(§)", a)
                b = b if right.lower else sql("lower(§)", b)
                op = "==" if op == "=~" else "!="
        if kind == JSON and d.name == "sqlite":
            a, b = sql("json(§)", a), sql("json(§)", b)
        nullable = left.nullable or right.nullable
        if op == "==":
            if predicate or not nullable:
                return Value(sql("(§ = §)", a, b), BOOL, nullable=nullable)
            return Value(sql("(CASE WHEN § IS NULL AND § IS NULL THEN NULL ELSE coalesce(§ = §, §) END)",
                             a, b, a, b, d.literal_bool(False)), BOOL)  # fmt: skip
        if op == "!=":
            if not nullable:
                return Value(sql("(§ <> §)", a, b), BOOL, nullable=False)
            return Value(sql("(CASE WHEN § IS NULL AND § IS NULL THEN NULL ELSE coalesce(§ <> §, §) END)",
                             a, b, a, b, d.literal_bool(True)), BOOL)  # fmt: skip
        if kind == STRING:
            a, b = d.collate(a), d.collate(b)
        return Value(sql(f"(§ {op} §)", a, b), BOOL)

    def status_condition(self, status: Value, literal: str, *, case_insensitive: bool) -> Value:
        """``properties.status == 'Connected'`` as a range on the indexed heartbeat (``querysets.status_q``)."""
        kind, hb = (self.render(v) for v in status.status)
        wanted = {s.lower() if case_insensitive else s: s for s in (AWAITING, CONNECTED, DISCONNECTED, EXPIRED)}
        value = wanted.get(literal.lower() if case_insensitive else literal)
        env = self.env
        if value == CONNECTED:
            return Value(sql("(§ >= §)", hb, env.connected_since), BOOL)
        if value == DISCONNECTED:
            return Value(sql("(§ < § AND § >= §)", hb, env.connected_since, hb, env.expired_before), BOOL)
        if value == EXPIRED:
            return Value(sql("(§ < §)", hb, env.expired_before), BOOL)
        if value == AWAITING:
            return Value(sql("(§ = 'm' AND § IS NULL)", kind, hb), BOOL)
        return Value(self.dialect.literal_bool(False), BOOL)

    def string_op(self, op: str, left: Value, right: Value, node) -> Value:
        d = self.dialect
        negated = op.startswith("!")
        name = op.lstrip("!")
        case_sensitive = name.endswith("_cs")
        name = name.removesuffix("_cs")
        text = self.text_of(left, empty_for_null=True)
        literal = right.literal if isinstance(right.literal, str) else None
        term = self.text_of(right, empty_for_null=True)
        if name == "has":
            pattern = (
                self.const(has_pattern(literal), STRING).frag
                if literal is not None
                else sql("'(^|[^0-9A-Za-z])' || § || '($|[^0-9A-Za-z])'", d.regexp_escape(term))
            )
            result = d.regex(text, pattern, case_insensitive=not case_sensitive)
        elif case_sensitive:
            if name == "contains":
                result = sql("(§ > 0)", d.strpos(text, term))
            elif name == "startswith":
                result = sql("(substr(§, 1, length(§)) = §)", text, term, term)
            else:
                result = sql("(length(§) >= length(§) AND substr(§, length(§) - length(§) + 1) = §)",
                             text, term, text, text, term, term)  # fmt: skip
        elif literal is not None:
            escaped = _escape_like(literal)
            like = {"contains": f"%{escaped}%", "startswith": f"{escaped}%", "endswith": f"%{escaped}"}[name]
            result = d.ilike(text, self.const(like, STRING).frag)
        elif name == "contains":
            result = sql("(§ > 0)", d.strpos(sql("upper(§)", text), sql("upper(§)", term)))
        elif name == "startswith":
            result = sql("(upper(substr(§, 1, length(§))) = upper(§))", text, term, term)
        else:
            result = sql("(length(§) >= length(§) AND upper(substr(§, length(§) - length(§) + 1)) = upper(§))",
                         text, term, text, text, term, term)  # fmt: skip
        if negated:
            result = sql("(NOT coalesce(§, §))", result, d.literal_bool(False))
        return Value(result, BOOL)

    def in_list(self, node: ast.InList, rel: Relation, *, predicate: bool) -> Value:
        left = self.expr(node.left, rel)
        items: list[Value] = []
        for item in node.items:
            if isinstance(item, ast.Literal) and item.type == DYNAMIC and isinstance(item.value, list):
                for element in item.value:
                    if isinstance(element, dict | list):
                        raise self.mismatch("The in operator takes scalar values.", item)
                    items.append(self.const(element, _literal_type(element)))
            else:
                items.append(self.expr(item, rel))
        negated = node.op.startswith("!")
        insensitive = node.op.endswith("~")
        if not items:
            result = self.dialect.literal_bool(False)
        else:
            kinds = {self.kind_of(left, item, node) for item in items}
            kind = kinds.pop() if len(kinds) == 1 else STRING
            a = self.coerce(left, kind, node)
            bs = [self.coerce(item, kind, node) for item in items]
            if insensitive and kind == STRING:
                a = a if left.lower else sql("lower(§)", a)
                bs = [sql("lower(§)", b) for b in bs]
            result = sql("(§ IN (" + ", ".join("§" for _ in bs) + "))", a, *bs)
        if negated:
            return Value(sql("(NOT coalesce(§, §))", result, self.dialect.literal_bool(False)), BOOL)
        if not predicate and (left.nullable or left.rep != STRING):
            return Value(sql("coalesce(§, §)", result, self.dialect.literal_bool(False)), BOOL)
        return Value(result, BOOL)
