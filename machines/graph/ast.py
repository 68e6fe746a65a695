"""The syntax tree of a Resource Graph query: tabular nodes (a pipeline of operators) and scalar expressions.

Plain frozen dataclasses, no behaviour. Every node carries ``pos`` = (line, column), 1-based, where its text starts,
so that errors found while compiling can point at the query text as parser errors do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Pos = tuple[int, int]
NOWHERE: Pos = (1, 1)


# --- Scalar expressions ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expr:
    pos: Pos = field(default=NOWHERE, kw_only=True, compare=False)


@dataclass(frozen=True)
class Literal(Expr):
    """A constant. ``type`` is a KQL type name: string, long, real, bool, datetime, timespan or dynamic.

    ``value`` is a Python value: str, int, float, bool, ``datetime`` (aware, UTC), seconds (float) for a timespan,
    and any JSON value for dynamic.
    """

    value: Any
    type: str


@dataclass(frozen=True)
class Column(Expr):
    name: str


@dataclass(frozen=True)
class Member(Expr):
    """``obj.name`` — a property of a dynamic value (or a column of a joined side)."""

    obj: Expr
    name: str


@dataclass(frozen=True)
class Index(Expr):
    """``obj[index]`` — an array element or a property by name."""

    obj: Expr
    index: Expr


@dataclass(frozen=True)
class Star(Expr):
    """``*`` as a function argument (``arg_max(x, *)``)."""


@dataclass(frozen=True)
class Call(Expr):
    name: str
    args: tuple[Expr, ...] = ()


@dataclass(frozen=True)
class Binary(Expr):
    """``left op right``: arithmetic (``+ - * / %``), comparison (``== != < <= > >= =~ !~``), string operators
    (``contains``, ``has``, ``startswith`` … and their negations), ``and``/``or``, ``matches regex``."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Negate(Expr):
    operand: Expr


@dataclass(frozen=True)
class InList(Expr):
    """``left in (a, b, …)``; ``op`` is ``in``, ``!in``, ``in~`` or ``!in~``."""

    op: str
    left: Expr
    items: tuple[Expr, ...]


# --- Tabular operators -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """``name = expr`` or a bare ``expr`` in project/extend/summarize/mv-expand."""

    expr: Expr
    name: str | None = None
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class OrderKey:
    expr: Expr
    descending: bool = True  # KQL sorts descending unless told otherwise
    nulls_first: bool | None = None  # None: KQL's default (first when ascending, last when descending)


@dataclass(frozen=True)
class Operator:
    pos: Pos = field(default=NOWHERE, kw_only=True, compare=False)


@dataclass(frozen=True)
class Where(Operator):
    predicate: Expr


@dataclass(frozen=True)
class Project(Operator):
    items: tuple[Item, ...]


@dataclass(frozen=True)
class ProjectAway(Operator):
    names: tuple[str, ...]


@dataclass(frozen=True)
class Extend(Operator):
    items: tuple[Item, ...]


@dataclass(frozen=True)
class Summarize(Operator):
    aggregates: tuple[Item, ...]
    by: tuple[Item, ...]


@dataclass(frozen=True)
class Order(Operator):
    keys: tuple[OrderKey, ...]


@dataclass(frozen=True)
class Top(Operator):
    count: Expr
    key: OrderKey


@dataclass(frozen=True)
class Take(Operator):
    count: Expr


@dataclass(frozen=True)
class Distinct(Operator):
    names: tuple[str, ...]  # empty: ``distinct *``


@dataclass(frozen=True)
class Count(Operator):
    pass


@dataclass(frozen=True)
class MvExpand(Operator):
    items: tuple[Item, ...]
    limit: int | None = None  # rows per input row; the legacy ``mvexpand`` defaults to 128
    kind: str = "bag"


@dataclass(frozen=True)
class JoinKey:
    left: str
    right: str


@dataclass(frozen=True)
class Join(Operator):
    right: Tabular
    keys: tuple[JoinKey, ...]
    kind: str = "innerunique"


@dataclass(frozen=True)
class UnionOp(Operator):
    others: tuple[Tabular, ...]


# --- Tabular expressions -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tabular:
    pos: Pos = field(default=NOWHERE, kw_only=True, compare=False)


@dataclass(frozen=True)
class Table(Tabular):
    name: str


@dataclass(frozen=True)
class Union(Tabular):
    sources: tuple[Tabular, ...]


@dataclass(frozen=True)
class Pipeline(Tabular):
    source: Tabular
    operators: tuple[Operator, ...] = ()
