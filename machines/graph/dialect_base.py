"""What differs between PostgreSQL (``jsonb``) and SQLite (JSON1) in the SQL the compiler writes. Pure.

Representations: string → text; long → bigint/integer; real → double; bool → boolean (PostgreSQL) or 0/1
(SQLite); datetime → timestamptz (PostgreSQL) or Django's text form ``YYYY-MM-DD HH:MM:SS[.ffffff]`` in UTC (SQLite,
compared as text like every Django datetime lookup there); timespan → seconds as a double; dynamic → jsonb or
JSON text. Every method takes and returns ``Frag``s; literal ``%`` is written ``%%`` (Django formats params in).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Any

from machines.graph.values import Frag, sql

INT_TEXT = r"^\s*[-+]?[0-9]+\s*$"
REAL_TEXT = r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$"
DATETIME_TEXT = (
    r"^\s*[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"([ T]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?)?)?\s*(Z|[+-][0-9]{2}(:?[0-9]{2})?)?\s*$"
)


_SIMPLE = re.compile(
    r"^(?:[A-Za-z_]\w*\.[A-Za-z_]\w*|%s|CAST\(%s AS [a-z ]+\)|NULL|CAST\(NULL AS [a-z ]+\)|json\(%s\)"
    r"|'[^'%]*'|-?\d+(?:\.\d+)?)$"
)


def _simple(frag: Frag) -> bool:
    """A column reference, a parameter or a constant: cheap and short to write twice."""
    return bool(_SIMPLE.match(frag.sql))


class Dialect(ABC):
    name = ""
    not_materialized = ""
    true = "TRUE"
    false = "FALSE"

    @abstractmethod
    def param(self, value: Any, type_: str) -> Frag:
        """A bound parameter of ``value`` as the database's SQL type for ``type_`` (each dialect writes its own)."""

    def literal_bool(self, value: bool) -> Frag:
        return Frag(self.true if value else self.false)

    def collate(self, frag: Frag) -> Frag:
        return frag

    def share(self, frag: Frag, build) -> Frag:
        """``build(x)`` where ``x`` stands for ``frag``, which ``build`` may use several times: a complex ``frag`` is
        computed once in a scalar subquery instead of being written out again (nested conversions would otherwise
        grow the SQL exponentially)."""
        if _simple(frag):
            return build(frag)
        return sql("(SELECT § FROM (SELECT § AS v) AS shared)", build(Frag("shared.v")), frag)
