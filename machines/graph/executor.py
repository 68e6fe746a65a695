"""Run a compiled Resource Graph query in the database, one page at a time, within ``ARC_GRAPH_TIMEOUT_SECONDS``.

The only Django module of the engine. PostgreSQL gets ``SET LOCAL statement_timeout`` in a transaction; SQLite a
progress handler that interrupts the statement at the deadline (and the two Python functions the SQLite dialect
calls). Pages are ``$top`` rows (at most and by default 1,000) from an offset carried in an opaque ``$skipToken`` tied
to the query text; the total is counted only when the first page doesn't already show it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from machines.conf import status_thresholds
from machines.graph.compiler import OutputColumn, compile_query
from machines.graph.dialects import DIALECTS, SQLITE_FUNCTIONS
from machines.graph.errors import GraphQueryError, invalid_query, limit_error
from machines.graph.schema import Env
from machines.graph.values import BOOL, DATETIME, DYNAMIC, JSON, LONG, REAL, TIMESPAN
from machines.graph.visibility import ReadableScope

logger = logging.getLogger(__name__)

DEFAULT_TOP = 1000  # Resource Graph returns at most 1,000 rows per page unless $top says fewer
MAX_TOP = 1000
MAX_SQL_LENGTH = 2_000_000
WORK_MEM = "64MB"
TOO_COMPLEX = ("parser stack overflow", "stack depth limit exceeded", "Expression tree is too large", "too many terms")


@dataclass
class GraphResult:
    columns: list[OutputColumn]
    rows: list[list]
    total: int
    offset: int
    skip_token: str | None

    def objects(self) -> list[dict]:
        return [dict(zip((c.name for c in self.columns), row, strict=True)) for row in self.rows]


def graph_env(*, now: datetime) -> Env:
    thresholds = status_thresholds()
    return Env(
        dialect=DIALECTS[connection.vendor],
        now=now,
        offline_after=thresholds.offline_after,
        expired_after=thresholds.expired_after,
    )


def resource_graph_query(
    *,
    query: str,
    scopes: Sequence[ReadableScope],
    now: datetime,
    subscriptions: Sequence[str] | None = None,
    top: int | None = None,
    skip: int | None = None,
    skip_token: str | None = None,
) -> GraphResult:
    """One page of ``query`` over the rows within ``scopes`` (and ``subscriptions``, when given)."""
    if top is None:
        top = DEFAULT_TOP
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= MAX_TOP:
        raise limit_error("InvalidTop", f"$top must be 1 to {MAX_TOP:,} rows per page; {top!r} was given.")
    if skip is not None and (isinstance(skip, bool) or not isinstance(skip, int) or skip < 0):
        raise limit_error("InvalidSkip", f"$skip must be 0 or more; {skip!r} was given.")
    fingerprint = _fingerprint(query, subscriptions)
    offset = _decode_token(skip_token, fingerprint) if skip_token else (skip or 0)
    compiled = compile_query(query, env=graph_env(now=now), scopes=scopes, subscriptions=subscriptions)
    page_sql = compiled.page(offset=offset, limit=top + 1)
    if len(page_sql.sql) > MAX_SQL_LENGTH:
        raise limit_error("QueryTooComplex", "The query is too complex: nest fewer functions and operators.")
    with _deadline():
        rows = _fetch(page_sql)
        if rows:
            total = int(rows[0][-1])
        else:  # past the end (or nothing at all): the window had no row to count on
            total = 0 if offset == 0 else int(_fetch(compiled.count())[0][0])
    rows = [row[:-1] for row in rows]
    more = len(rows) > top
    rows = rows[:top]
    decoded = [[_decode(value, column) for value, column in zip(row, compiled.columns, strict=True)] for row in rows]
    token = _encode_token(offset + len(rows), fingerprint) if more else None
    return GraphResult(columns=compiled.columns, rows=decoded, total=total, offset=offset, skip_token=token)


# --- running -------------------------------------------------------------------------------------------------------


def _fetch(statement) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, list(statement.params))
        return cursor.fetchall()


class _deadline:
    """``ARC_GRAPH_TIMEOUT_SECONDS`` for the statements run inside; a timeout → ``QueryTimeout``."""

    def __enter__(self):
        self.seconds = float(settings.ARC_GRAPH_TIMEOUT_SECONDS)
        connection.ensure_connection()
        if connection.vendor == "postgresql":
            self.atomic = transaction.atomic()
            self.atomic.__enter__()
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_setting('statement_timeout')")
                self.previous = cursor.fetchone()[0]
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", [f"{int(self.seconds * 1000)}ms"])
                # The plans cost a lot on paper (a subplan per row), so PostgreSQL would JIT-compile them: seconds of
                # LLVM work for queries that run in milliseconds (measured in bench/resource_graph.py).
                cursor.execute("SELECT set_config('jit', 'off', true)")
                # Joins and groupings over the fleet sort and hash more than the default 4 MB: keep them in memory.
                cursor.execute("SELECT set_config('work_mem', %s, true)", [WORK_MEM])
                # Joins on computed keys (upper-cased ids …) have no sorted input: a merge join sorts both sides (to
                # disk at 100,000 rows), a hash join doesn't — 1.7 s against 1.06 s for Microsoft's extensions sample.
                cursor.execute("SELECT set_config('enable_mergejoin', 'off', true)")
        else:
            raw = connection.connection
            for name, (arity, function) in SQLITE_FUNCTIONS.items():
                raw.create_function(name, arity, function, deterministic=True)
            deadline = time.monotonic() + self.seconds
            raw.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 2000)
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if connection.vendor == "postgresql":
                if exc_type is None:
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT set_config('statement_timeout', %s, true)", [self.previous])
                self.atomic.__exit__(exc_type, exc, tb)
            elif connection.connection is not None:
                connection.connection.set_progress_handler(None, 0)
        finally:
            if isinstance(exc, DatabaseError):
                raise _database_error(exc, self.seconds) from exc
        return False


def _database_error(exc: DatabaseError, seconds: float) -> GraphQueryError:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    cause = exc.__cause__
    timed_out = "statement timeout" in text or "interrupted" in text or "QueryCanceled" in type(cause).__name__
    if timed_out:
        seconds_text = f"{seconds:g}"
        return limit_error(
            "QueryTimeout",
            f"The query ran longer than {seconds_text} seconds (ARC_GRAPH_TIMEOUT_SECONDS) and was stopped; "
            "narrow it with where or take.",
        )
    if any(sign in text for sign in TOO_COMPLEX):
        return limit_error("QueryTooComplex", "The query is too complex for the database to parse: nest fewer "
                                              "functions and operators.")  # fmt: skip
    logger.warning("Resource Graph query failed in the database: %s", text)
    return invalid_query(f"The query failed while running: {text}", code="QueryExecutionFailed")


# --- values, tokens ------------------------------------------------------------------------------------------------


def _decode(value, column: OutputColumn):
    if value is None:
        return None
    rep = column.rep
    if rep == JSON:
        return json.loads(value) if isinstance(value, str | bytes) else value
    if rep == BOOL:
        return bool(value)
    if rep == LONG:
        return int(value)
    if rep == REAL:
        return float(value)
    if rep == DATETIME:
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if column.type == DYNAMIC:  # a date inside properties: the ARM API's form
            return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond:06d}0Z"
    if rep == TIMESPAN:
        return format_timespan(float(value))
    return str(value)


def format_timespan(seconds: float) -> str:
    """.NET TimeSpan text, as Resource Graph prints timespans: ``[-][d.]hh:mm:ss[.fffffff]``."""
    sign = "-" if seconds < 0 else ""
    ticks = round(abs(seconds) * 10_000_000)
    whole, fraction = divmod(ticks, 10_000_000)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{sign}{f'{days}.' if days else ''}{hours:02d}:{minutes:02d}:{secs:02d}"
    return text + (f".{fraction:07d}" if fraction else "")


def _fingerprint(query: str, subscriptions: Sequence[str] | None) -> str:
    material = json.dumps([query, sorted(subscriptions) if subscriptions is not None else None])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:16]


def _encode_token(offset: int, fingerprint: str) -> str:
    raw = json.dumps({"o": offset, "q": fingerprint}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str, fingerprint: str) -> int:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        offset = data["o"]
        valid = isinstance(offset, int) and not isinstance(offset, bool) and 0 <= offset < 10**9
    except (ValueError, KeyError, TypeError, UnicodeError):
        valid = False
    if not valid or data.get("q") != fingerprint:
        raise limit_error(
            "InvalidSkipToken", "The $skipToken is not valid for this query (send it with the same query)."
        )
    return offset
