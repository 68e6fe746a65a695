"""Python functions the SQLite dialect calls (the executor registers them on the connection). Pure.

KQL's conversions of dynamic and text values, written once here instead of as nested CASE expressions: SQLite's
parser has a small stack, and a conversion spelled in SQL repeats its argument, so nested conversions grew the SQL
text exponentially. Django registers its own Python functions on SQLite the same way (``REGEXP``).
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime

from machines.graph.dialect_base import DATETIME_TEXT, INT_TEXT, REAL_TEXT

_INT = re.compile(INT_TEXT)
_REAL = re.compile(REAL_TEXT)
_DATETIME = re.compile(DATETIME_TEXT)


def _load(j):
    if j is None:
        return None
    try:
        return json.loads(j)
    except (TypeError, ValueError):
        return j


def real_text(value):
    """``tostring(real)`` as PostgreSQL prints a double: shortest form, no ``.0`` on whole numbers."""
    if value is None:
        return None
    value = float(value)
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def json_text(j):
    value = _load(j)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return real_text(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def text_real(t):
    if t is None or not _REAL.match(str(t)):
        return None
    return float(str(t).strip())


def text_long(t):
    if t is None or not _INT.match(str(t)):
        return None
    value = int(str(t).strip())
    return value if -(2**63) <= value < 2**63 else None


def text_bool(t):
    return {"true": 1, "false": 0, "1": 1, "0": 0}.get(str(t).lower()) if t is not None else None


def text_datetime(t):
    """A date/time text → Django's SQLite form (UTC, ``YYYY-MM-DD HH:MM:SS.ffffff``), or NULL."""
    if t is None or not _DATETIME.match(str(t)):
        return None
    text = str(t).strip().replace(" ", "T", 1)
    text = re.sub(r"\.(\d{6})\d+", r".\1", text)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", timespec="microseconds")


def json_number(j):
    value = _load(j)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    return text_real(value) if isinstance(value, str) else None


def json_bool(j):
    value = _load(j)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return int(value != 0)
    return text_bool(value) if isinstance(value, str) else None


def trim(pattern, text):
    """KQL ``trim(regex, text)``: remove every leading and trailing match of ``regex``."""
    if pattern is None or text is None:
        return None
    return re.sub(f"(?:{pattern})+$", "", re.sub(f"^(?:{pattern})+", "", str(text)))


def regexp_escape(text):
    return None if text is None else re.escape(str(text))


def json_head(array, limit):
    """The first ``limit`` elements of a JSON array (``make_list(x, max)``)."""
    value = _load(array)
    if not isinstance(value, list) or limit is None:
        return array
    return json.dumps(value[: max(0, int(limit))], separators=(",", ":"), ensure_ascii=False)


FUNCTIONS = {
    "arcgraph_json_text": (1, json_text),
    "arcgraph_json_number": (1, json_number),
    "arcgraph_json_bool": (1, json_bool),
    "arcgraph_text_real": (1, text_real),
    "arcgraph_text_long": (1, text_long),
    "arcgraph_text_bool": (1, text_bool),
    "arcgraph_text_datetime": (1, text_datetime),
    "arcgraph_real_text": (1, real_text),
    "arcgraph_trim": (2, trim),
    "arcgraph_regexp_escape": (1, regexp_escape),
    "arcgraph_json_head": (2, json_head),
}
