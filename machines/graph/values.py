"""Typed SQL fragments: what the compiler builds a query from. Pure: no Django import.

``Frag`` is SQL text with its parameters in order (``%s`` placeholders; literal ``%`` written ``%%``). ``sql()``
composes fragments: each ``§`` in the template takes the next part. ``Value`` is a KQL-typed scalar expression over
the current FROM clause, with its SQL representation (``rep``): a dynamic value is either JSON (``rep="json"``,
jsonb on PostgreSQL, JSON text on SQLite) or a plain SQL scalar that stands for a JSON scalar (``properties.status``
is text in the database, dynamic in KQL). A base object (``properties``, ``tags``, ``identity`` of a row) is a
``LazyObject``: its JSON is built only where the query needs the whole object, and its well-known paths are values
of their own (``paths``), so ``properties.status`` never builds JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

STRING = "string"
LONG = "long"
REAL = "real"
BOOL = "bool"
DATETIME = "datetime"
TIMESPAN = "timespan"
DYNAMIC = "dynamic"
JSON = "json"  # a representation, not a KQL type
TYPES = (STRING, LONG, REAL, BOOL, DATETIME, TIMESPAN, DYNAMIC)
NUMERIC = (LONG, REAL)

PLACEHOLDER = "§"
MISSING = object()  # Value.literal when the value isn't a constant


@dataclass(frozen=True)
class Frag:
    sql: str
    params: tuple = ()

    def __str__(self) -> str:
        return self.sql


def sql(template: str, *parts: Frag | str) -> Frag:
    """``sql("CASE WHEN § THEN § END", a, b)``: substitute fragments (or plain SQL strings) in order."""
    pieces = template.split(PLACEHOLDER)
    if len(pieces) != len(parts) + 1:
        raise ValueError(f"{len(pieces) - 1} placeholders for {len(parts)} parts in {template!r}")
    text = [pieces[0]]
    params: list = []
    for part, piece in zip(parts, pieces[1:], strict=True):
        if isinstance(part, Frag):
            text.append(part.sql)
            params.extend(part.params)
        else:
            text.append(part)
        text.append(piece)
    return Frag("".join(text), tuple(params))


def join(separator: str, parts) -> Frag:
    parts = list(parts)
    return Frag(separator.join(p.sql for p in parts), tuple(x for p in parts for x in p.params))


@dataclass(frozen=True)
class LazyObject:
    """A whole object of a base row (``properties``, ``tags``, ``identity``), built from the row's kind and key."""

    field: str
    kind: Value
    pk: Value
    kinds: frozenset[str]


@dataclass(frozen=True)
class Value:
    frag: Frag
    type: str
    rep: str = ""
    nullable: bool = True
    lower: bool = False  # every value is lower case (type, resourceGroup, location): ``=~`` needs no lower()
    lazy: LazyObject | None = None
    paths: Mapping[tuple, Value] | None = field(default=None, compare=False)
    literal: Any = field(default=MISSING, compare=False)
    name_hint: str | None = field(default=None, compare=False)
    status: tuple | None = field(default=None, compare=False)  # (row kind, raw heartbeat) behind a derived status
    shape: str | None = field(default=None, compare=False)  # "object" or "array" when a dynamic value always is one
    # What is known of the value beyond its SQL, each fact a value of its own (carried across subqueries):
    # keys.py names them (a machine id's row key, the machine tag rows behind ``tags``, a bag's one key…).
    facts: Mapping[str, Value] | None = field(default=None, compare=False)

    def __post_init__(self):
        if not self.rep:
            object.__setattr__(self, "rep", JSON if self.type == DYNAMIC else self.type)

    @property
    def is_literal(self) -> bool:
        return self.literal is not MISSING

    def with_(self, **changes) -> Value:
        return replace(self, **changes)

    def moved(self, frag: Frag) -> Value:
        """The same value, now read from ``frag`` (a column of a new subquery): no longer a constant or an object."""
        return replace(self, frag=frag, paths=None, status=None, literal=MISSING, facts=None)


def is_literal(value: Value) -> bool:
    return value.is_literal


class Names:
    """Generated SQL identifiers (``t1``, ``c7``): user-chosen column names never reach the SQL text."""

    def __init__(self) -> None:
        self._counters: dict[str, int] = {}

    def next(self, prefix: str) -> str:
        self._counters[prefix] = self._counters.get(prefix, 0) + 1
        return f"{prefix}{self._counters[prefix]}"
