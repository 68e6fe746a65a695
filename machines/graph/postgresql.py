"""The PostgreSQL dialect: jsonb, timestamptz, regular expressions with ``~``. Pure."""

from __future__ import annotations

import json

from machines.graph.dialect_base import DATETIME_TEXT, INT_TEXT, REAL_TEXT, Dialect
from machines.graph.values import BOOL, DATETIME, DYNAMIC, JSON, LONG, REAL, STRING, TIMESPAN, Frag, sql


class PostgreSQL(Dialect):
    name = "postgresql"
    not_materialized = " NOT MATERIALIZED"

    CASTS = {STRING: "text", LONG: "bigint", REAL: "double precision", BOOL: "boolean", TIMESPAN: "double precision"}

    def param(self, value, type_):
        if value is None:
            return Frag(f"CAST(NULL AS {self.sql_type(type_)})")
        if type_ == DATETIME:
            return Frag("CAST(%s AS timestamptz)", (value,))
        if type_ in (DYNAMIC, JSON):
            return Frag("CAST(%s AS jsonb)", (json.dumps(value),))
        return Frag(f"CAST(%s AS {self.CASTS[type_]})", (value,))

    def sql_type(self, type_: str) -> str:
        return {DATETIME: "timestamptz", DYNAMIC: "jsonb", JSON: "jsonb"}.get(type_) or self.CASTS[type_]

    def null(self, rep: str) -> Frag:
        return Frag(f"CAST(NULL AS {self.sql_type(rep)})")

    def upper(self, frag):
        """``toupper``: ASCII letters (the "C" collation's fast path), as SQLite's upper() does."""
        return sql('upper(§ COLLATE "C")', frag)

    def lower(self, frag):
        return sql('lower(§ COLLATE "C")', frag)

    def collate(self, frag):
        return sql('(§ COLLATE "C")', frag)

    # --- JSON ------------------------------------------------------------------------------------------------

    def to_json(self, frag: Frag, rep: str) -> Frag:
        if rep == JSON:
            return frag
        if rep == DATETIME:
            return sql("to_jsonb(§)", self.rfc3339(frag))
        return sql("to_jsonb(§)", frag)

    def json_text(self, j):
        return sql("(§ #>> '{}')", j)

    def json_typeof(self, j):
        return sql("jsonb_typeof(§)", j)

    def json_kind_is(self, j, kinds: tuple[str, ...]) -> Frag:
        names = ", ".join(f"'{k}'" for k in kinds)
        return sql(f"(jsonb_typeof(§) IN ({names}))", j)

    def json_number(self, j):
        def build(j):
            return sql(
                "(CASE jsonb_typeof(§) WHEN 'number' THEN CAST(§ #>> '{}' AS double precision)"
                " WHEN 'string' THEN § END)",
                j,
                j,
                self.text_to_real(sql("(§ #>> '{}')", j)),
            )

        return self.share(j, build)

    def json_bool(self, j):
        def build(j):
            return sql(
                "(CASE jsonb_typeof(§) WHEN 'boolean' THEN CAST(§ #>> '{}' AS boolean)"
                " WHEN 'string' THEN § WHEN 'number' THEN CAST(§ #>> '{}' AS double precision) <> 0 END)",
                j,
                j,
                self.text_to_bool(sql("(§ #>> '{}')", j)),
                j,
            )

        return self.share(j, build)

    def json_get(self, j, key: Frag, by_index: bool) -> Frag:
        if by_index:
            return sql("(§ -> CAST(§ AS integer))", j, key)
        return sql("(§ -> CAST(§ AS text))", j, key)

    def json_object(self, pairs: list[tuple[Frag, Frag]]) -> Frag:
        if not pairs:
            return Frag("CAST('{}' AS jsonb)")
        chunks = [pairs[i : i + 50] for i in range(0, len(pairs), 50)]
        built = [
            sql("jsonb_build_object(" + ", ".join("§, §" for _ in chunk) + ")", *[x for pair in chunk for x in pair])
            for chunk in chunks
        ]
        return sql("(" + " || ".join("§" for _ in built) + ")", *built)

    def json_array(self, items: list[Frag]) -> Frag:
        if not items:
            return Frag("CAST('[]' AS jsonb)")
        return sql("jsonb_build_array(" + ", ".join("§" for _ in items) + ")", *items)

    def json_array_length(self, j):
        def build(j):
            return sql("(CASE WHEN jsonb_typeof(§) = 'array' THEN CAST(jsonb_array_length(§) AS bigint) END)", j, j)

        return self.share(j, build)

    def json_keys(self, j):
        """``bag_keys``: in jsonb's order (shorter keys first, then bytewise), without a subquery per row."""
        return self.share(j, lambda v: sql(
            "(CASE WHEN jsonb_typeof(§) = 'object' THEN jsonb_path_query_array(§, 'strict $.keyvalue().key') END)",
            v, v))  # fmt: skip

    def json_merge(self, a, b):
        return sql("(§ || §)", a, b)

    def json_literal(self, text: str) -> Frag:
        return Frag(f"CAST('{text}' AS jsonb)")

    def list_agg(self, f, rep: str, *, distinct: bool) -> Frag:
        """``make_list``/``make_set``: the values in their own type collected by array_agg and turned into one JSON
        array (half the cost of building a jsonb per element with jsonb_agg). Nulls are left out."""
        if rep == DATETIME:
            f, distinct_word = self.rfc3339(f), "DISTINCT " if distinct else ""
        else:
            distinct_word = "DISTINCT " if distinct else ""
        return sql(f"coalesce(to_jsonb(array_agg({distinct_word}§) FILTER (WHERE § IS NOT NULL)), CAST('[]' AS jsonb))",
                   f, f)  # fmt: skip

    def json_head(self, array: Frag, limit: int) -> Frag:
        """The first ``limit`` elements of a JSON array (``make_list(x, max)``)."""
        return sql(
            "(SELECT coalesce(jsonb_agg(e.value ORDER BY e.n), CAST('[]' AS jsonb)) FROM jsonb_array_elements(§)"
            f" WITH ORDINALITY AS e(value, n) WHERE e.n <= {int(limit)})",
            array,
        )

    def mv_expand(self, j, alias: str, *, as_array: bool, shape: str | None = None):
        """``(join, keep, element, ordinal)``: one row per element (array) or per property (bag), one null row for
        null, none when empty. A value known to be an object or an array (``shape``) expands with one set-returning
        function joined on the left — rows of empty values dropped by ``keep`` —, cheaper per row than the union
        of every case."""
        pair = f"jsonb_build_array({alias}.key, {alias}.value)" if as_array else (
            f"jsonb_build_object({alias}.key, {alias}.value)"
        )  # fmt: skip
        if shape == "object":
            join_clause = sql(f"LEFT JOIN LATERAL jsonb_each(§) WITH ORDINALITY AS {alias}(key, value, n) ON TRUE", j)
            element = Frag(f"(CASE WHEN {alias}.key IS NOT NULL THEN {pair} END)")
            return join_clause, sql(f"({alias}.key IS NOT NULL OR § IS NULL)", j), element, Frag(f"{alias}.n")
        if shape == "array":
            join_clause = sql(f"LEFT JOIN LATERAL jsonb_array_elements(§) WITH ORDINALITY AS {alias}(value, n) ON TRUE",
                              j)  # fmt: skip
            return join_clause, sql(f"({alias}.n IS NOT NULL OR § IS NULL)", j), Frag(f"{alias}.value"), Frag(
                f"{alias}.n"
            )  # fmt: skip
        array = "SELECT e.value AS v, e.ordinality AS n FROM jsonb_array_elements(§) WITH ORDINALITY AS e"
        bag = (
            f"SELECT {pair.replace(alias + '.', 'b.')} AS v, b.ordinality AS n FROM jsonb_each(§) WITH ORDINALITY AS b"
        )
        guarded_array = array.replace("(§)", "(CASE WHEN jsonb_typeof(§) = 'array' THEN § END)")
        guarded_bag = bag.replace("(§)", "(CASE WHEN jsonb_typeof(§) = 'object' THEN § END)")
        join_clause = sql(
            f"CROSS JOIN LATERAL ({guarded_array} UNION ALL {guarded_bag} UNION ALL SELECT §, 1"
            f" WHERE § IS NULL OR jsonb_typeof(§) NOT IN ('array', 'object')) AS {alias}",
            *[j] * 7,
        )
        return join_clause, None, Frag(f"{alias}.v"), Frag(f"{alias}.n")

    def mv_limit(self, alias: str, limit: int) -> Frag:
        return Frag(f"{alias}.n <= {int(limit)}")

    # --- text, numbers, time -----------------------------------------------------------------------------------

    def text_to_long(self, t):
        def build(t):
            return sql(f"(CASE WHEN § ~ '{INT_TEXT}' THEN CAST(§ AS bigint) END)", t, t)

        return self.share(t, build)

    def text_to_real(self, t):
        def build(t):
            return sql(f"(CASE WHEN § ~ '{REAL_TEXT}' THEN CAST(§ AS double precision) END)", t, t)

        return self.share(t, build)

    def text_to_bool(self, t):
        return sql("(CASE lower(§) WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE WHEN '1' THEN TRUE"
                   " WHEN '0' THEN FALSE END)", t)  # fmt: skip

    def text_to_datetime(self, t):
        def build(t):
            return sql(f"(CASE WHEN § ~ '{DATETIME_TEXT}' THEN CAST(§ AS timestamptz) END)", t, t)

        return self.share(t, build)

    def long_text(self, f):
        return sql("CAST(§ AS text)", f)

    def real_text(self, f):
        return sql("CAST(§ AS text)", f)

    def bool_text(self, f):
        def build(f):
            return sql("(CASE WHEN § THEN 'true' WHEN NOT § THEN 'false' END)", f, f)

        return self.share(f, build)

    def bool_from_int(self, f):
        return sql("(§ <> 0)", f)

    def to_real(self, f):
        return sql("CAST(§ AS double precision)", f)

    def to_long(self, f):
        return sql("CAST(trunc(§) AS bigint)", f)

    def floor(self, f):
        return sql("floor(§)", f)

    def round(self, f, digits: Frag):
        return sql("CAST(round(CAST(§ AS numeric), CAST(§ AS integer)) AS double precision)", f, digits)

    def modulo(self, a, b):
        return sql("(§ %% NULLIF(§, 0))", a, b)

    def regex(self, text, pattern, *, case_insensitive=False):
        return sql("(§ ~* (§))" if case_insensitive else "(§ ~ (§))", text, pattern)

    def regexp_escape(self, text):
        return sql("regexp_replace(§, '([^A-Za-z0-9_])', '\\\\\\1', 'g')", text)

    def trim(self, pattern, text):
        return sql(
            "regexp_replace(regexp_replace(§, '^(?:' || § || ')+', ''), '(?:' || § || ')+$', '')",
            text,
            pattern,
            pattern,
        )

    def ilike(self, text, pattern):
        return sql("(UPPER(§) LIKE UPPER(§) ESCAPE '\\')", text, pattern)

    def split(self, text, delimiter):
        return sql(
            "(CASE WHEN § = '' THEN CAST('[\"\"]' AS jsonb) ELSE to_jsonb(string_to_array(§, §)) END)",
            text,
            text,
            delimiter,
        )

    def strpos(self, text, sub):
        return sql("strpos(§, §)", text, sub)

    def substr(self, text, start, length=None):
        if length is None:
            return sql("substr(§, CAST(§ AS integer))", text, start)
        return sql("substr(§, CAST(§ AS integer), GREATEST(CAST(§ AS integer), 0))", text, start, length)

    def rfc3339(self, ts):
        return sql("to_char(§ AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')", ts)

    def datetime_text(self, ts):
        return sql("to_char(§ AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"0Z\"')", ts)

    def datetime_plus(self, ts, seconds):
        return sql("(§ + § * interval '1 second')", ts, seconds)

    def datetime_plus_exact(self, ts, seconds: int):
        return sql(f"(§ + interval '{int(seconds)} seconds')", ts)

    def datetime_diff(self, a, b):
        return sql("CAST(EXTRACT(EPOCH FROM (§ - §)) AS double precision)", a, b)

    def bin_datetime(self, ts, seconds):
        return sql("to_timestamp(floor(EXTRACT(EPOCH FROM §) / §) * §)", ts, seconds, seconds)

    def uuid_text(self, column: str) -> Frag:
        return Frag(f"CAST({column} AS text)")

    def uuid_param(self, value) -> Frag:
        return Frag("CAST(%s AS uuid)", (str(value),))

    def pick(self, f, rep):
        return sql("(array_agg(§) FILTER (WHERE § IS NOT NULL))[1]", f, f)

    def minmax(self, func: str, f, rep):
        if rep == BOOL:
            return sql(("bool_or(§)" if func == "max" else "bool_and(§)"), f)
        if rep == JSON:
            direction = "DESC" if func == "max" else "ASC"
            return sql(f"(array_agg(§ ORDER BY § {direction}) FILTER (WHERE § IS NOT NULL))[1]",
                       f, f, f)  # fmt: skip
        if rep == STRING:
            return sql(f'{func}(§ COLLATE "C")', f)
        return sql(f"{func}(§)", f)

    def sum(self, f, rep):
        return sql("CAST(sum(§) AS bigint)" if rep == LONG else "CAST(sum(§) AS double precision)", f)

    def avg(self, f):
        return sql("CAST(avg(§) AS double precision)", f)
