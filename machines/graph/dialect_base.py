"""What differs between PostgreSQL (``jsonb``) and SQLite (JSON1) in the SQL the compiler writes. Pure.

Representations: string → text; long → bigint/integer; real → double; bool → boolean (PostgreSQL) or 0/1
(SQLite); datetime → timestamptz (PostgreSQL) or Django's text form ``YYYY-MM-DD HH:MM:SS[.ffffff]`` in UTC (SQLite,
compared as text like every Django datetime lookup there); timespan → seconds as a double; dynamic → jsonb or
JSON text. Every method takes and returns ``Frag``s; literal ``%`` is written ``%%`` (Django formats params in).
"""

from __future__ import annotations

import json
import re
from typing import Any

from machines.graph.values import Frag

INT_TEXT = r"^\s*[-+]?[0-9]+\s*$"
REAL_TEXT = r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$"
DATETIME_TEXT = (
    r"^\s*[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"([ T]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?)?)?\s*(Z|[+-][0-9]{2}(:?[0-9]{2})?)?\s*$"
)


def sqlite_trim(pattern: str | None, text: str | None) -> str | None:
    """KQL ``trim(regex, text)``: remove every leading and trailing match of ``regex``."""
    if pattern is None or text is None:
        return None
    return re.sub(f"(?:{pattern})+$", "", re.sub(f"^(?:{pattern})+", "", str(text)))


def sqlite_regexp_escape(text: str | None) -> str | None:
    return None if text is None else re.escape(str(text))


def sqlite_json_head(array: str | None, limit: int | None) -> str | None:
    """The first ``limit`` elements of a JSON array (``make_list(x, max)``)."""
    if array is None or limit is None:
        return array
    value = json.loads(array)
    return json.dumps(value[: max(0, int(limit))], separators=(",", ":")) if isinstance(value, list) else array


# Python functions the SQLite connection must have (the executor registers them): name → (arity, function).
SQLITE_FUNCTIONS = {
    "arcgraph_trim": (2, sqlite_trim),
    "arcgraph_regexp_escape": (1, sqlite_regexp_escape),
    "arcgraph_json_head": (2, sqlite_json_head),
}


class Dialect:
    name = ""
    not_materialized = ""
    true = "TRUE"
    false = "FALSE"

    def param(self, value: Any, type_: str) -> Frag:
        raise NotImplementedError

    def literal_bool(self, value: bool) -> Frag:
        return Frag(self.true if value else self.false)

    def collate(self, frag: Frag) -> Frag:
        return frag
