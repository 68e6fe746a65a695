"""The SQLite dialect: JSON1 (``->``, ``json_each``), Django's text datetimes, REGEXP (registered by Django).
Pure."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from machines.graph.dialect_base import Dialect
from machines.graph.values import BOOL, DATETIME, DYNAMIC, JSON, LONG, REAL, TIMESPAN, Frag, sql


class SQLite(Dialect):
    name = "sqlite"
    not_materialized = " NOT MATERIALIZED"
    true = "1"
    false = "0"

    def param(self, value, type_):
        if value is None:
            return Frag("NULL")
        if type_ == DATETIME:
            return Frag("%s", (self.datetime_value(value),))
        if type_ in (DYNAMIC, JSON):
            return Frag("json(%s)", (json.dumps(value),))
        if type_ == BOOL:
            return Frag("%s", (1 if value else 0,))
        if type_ in (REAL, TIMESPAN):
            return Frag("CAST(%s AS REAL)", (float(value),))
        return Frag("%s", (value,))

    @staticmethod
    def datetime_value(value: datetime) -> str:
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")

    def upper(self, frag):
        return sql("upper(§)", frag)

    def lower(self, frag):
        return sql("lower(§)", frag)

    def null(self, rep):
        return Frag("NULL")

    def to_json(self, frag, rep):
        if rep == JSON:
            return sql("json(§)", frag)
        if rep == BOOL:
            return sql("(CASE § WHEN 1 THEN json('true') WHEN 0 THEN json('false') END)", frag)
        if rep == DATETIME:
            return self.share(frag, lambda v: sql("(CASE WHEN § IS NOT NULL THEN json_quote(§) END)", v,
                                                  self.rfc3339(v)))  # fmt: skip
        return self.share(frag, lambda v: sql("(CASE WHEN § IS NOT NULL THEN json_quote(§) END)", v, v))

    def json_text(self, j):
        return sql("arcgraph_json_text(§)", j)

    def json_typeof(self, j):
        return sql(
            "(CASE json_type(§) WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number' WHEN 'text' THEN 'string'"
            " WHEN 'true' THEN 'boolean' WHEN 'false' THEN 'boolean' ELSE json_type(§) END)",
            j,
            j,
        )

    def json_kind_is(self, j, kinds):
        native = {"number": ("integer", "real"), "string": ("text",), "boolean": ("true", "false")}
        names = ", ".join(f"'{n}'" for k in kinds for n in native.get(k, (k,)))
        return sql(f"(json_type(§) IN ({names}))", j)

    def json_number(self, j):
        return sql("arcgraph_json_number(§)", j)

    def json_bool(self, j):
        return sql("arcgraph_json_bool(§)", j)

    def json_get(self, j, key, by_index):
        if by_index:
            return sql("(§ -> (CASE WHEN § < 0 THEN '$[#' || § || ']' ELSE '$[' || § || ']' END))", j, key, key, key)
        return sql("(§ -> ('$.' || json_quote(§)))", j, key)

    def json_object(self, pairs):
        if not pairs:
            return Frag("json('{}')")
        return sql("json_object(" + ", ".join("§, §" for _ in pairs) + ")", *[x for pair in pairs for x in pair])

    def json_array(self, items):
        return sql("json_array(" + ", ".join("§" for _ in items) + ")", *items)

    def json_array_length(self, j):
        return self.share(j, lambda v: sql("(CASE WHEN json_type(§) = 'array' THEN json_array_length(§) END)", v, v))

    def json_keys(self, j):
        return self.share(j, lambda v: sql(
            "(CASE WHEN json_type(§) = 'object' THEN (SELECT json_group_array(k.key) FROM (SELECT key FROM"
            " json_each(§) ORDER BY length(key), key) AS k) END)", v, v))  # fmt: skip

    def json_merge(self, a, b):
        return sql("json_patch(§, §)", a, b)

    def json_literal(self, text):
        return Frag(f"json('{text}')")

    def list_agg(self, f, rep, *, distinct):
        return self.json_agg(self.to_json(f, rep), distinct=distinct)

    def json_agg(self, j, *, distinct):
        return sql(f"json_group_array({'DISTINCT ' if distinct else ''}json(§)) FILTER (WHERE § IS NOT NULL)", j, j)

    def json_head(self, array: Frag, limit: int) -> Frag:
        # A subquery over json_each(<aggregate>) is "misuse of aggregate" in SQLite: a registered function slices.
        return sql(f"arcgraph_json_head(§, {int(limit)})", array)

    def mv_expand(self, j, alias, *, as_array, shape=None):
        """``(join, keep, element, ordinal)`` with json_each (a null expands to one null row, as json_each of
        JSON null does)."""
        join_clause = sql(f"JOIN json_each(coalesce(§, 'null')) AS {alias}", j)
        pair = "json_array" if as_array else "json_object"
        bag = sql(f"{pair}({alias}.key, § -> {alias}.fullkey)", j)
        value = sql(f"(CASE json_type(§) WHEN 'object' THEN § ELSE § -> {alias}.fullkey END)", j, bag, j)
        return join_clause, None, value, Frag(f"({alias}.id)")

    def mv_limit(self, alias: str, limit: int) -> Frag:
        return Frag(f"(CASE WHEN typeof({alias}.key) = 'integer' THEN {alias}.key < {int(limit)} ELSE 1 END)")

    def text_to_long(self, t):
        return sql("arcgraph_text_long(§)", t)

    def text_to_real(self, t):
        return sql("arcgraph_text_real(§)", t)

    def text_to_bool(self, t):
        return sql("arcgraph_text_bool(§)", t)

    def text_to_datetime(self, t):
        return sql("arcgraph_text_datetime(§)", t)

    def long_text(self, f):
        return sql("CAST(§ AS TEXT)", f)

    def real_text(self, f):
        return sql("arcgraph_real_text(§)", f)

    def bool_text(self, f):
        return sql("(CASE § WHEN 1 THEN 'true' WHEN 0 THEN 'false' END)", f)

    def bool_from_int(self, f):
        return sql("(§ <> 0)", f)

    def to_real(self, f):
        return sql("CAST(§ AS REAL)", f)

    def to_long(self, f):
        return sql("CAST(§ AS INTEGER)", f)

    def floor(self, f):
        return sql("floor(§)", f)

    def round(self, f, digits):
        return sql("round(§, §)", f, digits)

    def modulo(self, a, b):
        return sql("(§ %% NULLIF(§, 0))", a, b)

    def regex(self, text, pattern, *, case_insensitive=False):
        if case_insensitive:
            return sql("(§ REGEXP ('(?i)' || §))", text, pattern)
        return sql("(§ REGEXP (§))", text, pattern)

    def regexp_escape(self, text):
        return sql("arcgraph_regexp_escape(§)", text)

    def trim(self, pattern, text):
        return sql("arcgraph_trim(§, §)", pattern, text)

    def ilike(self, text, pattern):
        return sql("(UPPER(§) LIKE UPPER(§) ESCAPE '\\')", text, pattern)

    def split(self, text, delimiter):
        return sql(
            "json('[' || replace(json_quote(§), substr(json_quote(§), 2, length(json_quote(§)) - 2), '\",\"') || ']')",
            text,
            delimiter,
            delimiter,
        )

    def strpos(self, text, sub):
        return sql("instr(§, §)", text, sub)

    def substr(self, text, start, length=None):
        if length is None:
            return sql("substr(§, §)", text, start)
        return sql("substr(§, §, max(§, 0))", text, start, length)

    def rfc3339(self, ts):
        return self.share(ts, lambda v: sql(
            "(substr(§, 1, 10) || 'T' || substr(§, 12, 8) || '.' || substr(substr(§, 21) || '000', 1, 3) || 'Z')",
            v, v, v))  # fmt: skip

    def datetime_text(self, ts):
        return self.share(ts, lambda v: sql(
            "(substr(§, 1, 10) || 'T' || substr(§, 12, 8) || '.' || substr(substr(§, 21) || '0000000', 1, 7) || 'Z')",
            v, v, v))  # fmt: skip

    def datetime_plus(self, ts, seconds):
        return sql("strftime('%%Y-%%m-%%d %%H:%%M:%%f', §, printf('%%+.3f seconds', §))", ts, seconds)

    def datetime_plus_exact(self, ts, seconds: int):
        return sql(f"(strftime('%%Y-%%m-%%d %%H:%%M:%%S', substr(§, 1, 19), '{int(seconds):+d} seconds')"
                   " || substr(§, 20))", ts, ts)  # fmt: skip

    def datetime_diff(self, a, b):
        return sql("((julianday(§) - julianday(§)) * 86400.0)", a, b)

    def bin_datetime(self, ts, seconds):
        return sql(
            "strftime('%%Y-%%m-%%d %%H:%%M:%%f', floor(((julianday(§) - 2440587.5) * 86400.0 + 0.0005) / §) * §,"
            " 'unixepoch')",
            ts,
            seconds,
            seconds,
        )

    def uuid_text(self, column):
        c = column
        return Frag(
            f"(substr({c}, 1, 8) || '-' || substr({c}, 9, 4) || '-' || substr({c}, 13, 4) || '-' ||"
            f" substr({c}, 17, 4) || '-' || substr({c}, 21, 12))"
        )

    def uuid_param(self, value):
        return Frag("%s", (value.hex,))

    def pick(self, f, rep):
        return sql("min(§)", f)

    def minmax(self, func, f, rep):
        return sql(f"{func}(§)", f)

    def sum(self, f, rep):
        return sql("total(§)" if rep != LONG else "sum(§)", f)

    def avg(self, f):
        return sql("avg(§)", f)
