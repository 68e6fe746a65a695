"""Column names KQL derives when a query doesn't give one. Pure.

A column keeps its name; a path ``properties.osName`` becomes ``properties_osName``; a conversion or ``bin`` of
a named value keeps that name (``summarize count() by tostring(EachDomain)`` → ``EachDomain``); an aggregation
is named after its function and argument (``count_``, ``sum_x``, ``list_x``, ``set_x``); anything else is
``Column1``, ``Column2`` …, and a name already taken gets a number (``name1``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from machines.graph import ast

NAME_KEEPING = frozenset(
    {"tostring", "toint", "tolong", "todouble", "toreal", "tobool", "toboolean", "todatetime", "bin", "floor"}
)
AGGREGATE_PREFIX = {
    "count": "count_",
    "countif": "countif_",
    "dcount": "dcount_",
    "sum": "sum_",
    "min": "min_",
    "max": "max_",
    "avg": "avg_",
    "make_list": "list_",
    "make_set": "set_",
    "any": "any_",
}


def derived_name(node: ast.Expr) -> str | None:
    if isinstance(node, ast.Column):
        return node.name
    if isinstance(node, ast.Member):
        base = derived_name(node.obj)
        return f"{base}_{node.name}" if base else None
    if isinstance(node, ast.Index) and isinstance(node.index, ast.Literal) and node.index.type == "string":
        base = derived_name(node.obj)
        return f"{base}_{_clean(node.index.value)}" if base else None
    if isinstance(node, ast.Call) and node.name in NAME_KEEPING and node.args:
        return derived_name(node.args[0])
    return None


def aggregate_name(node: ast.Expr) -> str | None:
    if isinstance(node, ast.Call) and node.name in AGGREGATE_PREFIX:
        if node.name in ("count", "countif"):
            return AGGREGATE_PREFIX[node.name]
        inner = derived_name(node.args[0]) if node.args else None
        return AGGREGATE_PREFIX[node.name] + (inner or "")
    return None


def _clean(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]", "_", text)


class NameAllocator:
    """Unique output names for one operator: taken names get a number, unnamed ones are ``ColumnN``."""

    def __init__(self, taken: Iterable[str] = ()) -> None:
        self.taken = set(taken)
        self.anonymous = 0

    def claim(self, name: str | None) -> str:
        if name is None:
            while True:
                self.anonymous += 1
                candidate = f"Column{self.anonymous}"
                if candidate not in self.taken:
                    break
            name = candidate
        if name in self.taken:
            number = 1
            while f"{name}{number}" in self.taken:
                number += 1
            name = f"{name}{number}"
        self.taken.add(name)
        return name
