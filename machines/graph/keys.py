"""Row keys behind values, and the rewrites they allow. Pure: no Django import.

A value may carry *facts* (``Value.facts``): values of their own, carried across subqueries like any column, that
say what the value is in terms of row keys. They let two expensive shapes run on keys instead of strings, with the
same answers (docs/decisions.md, "Resource Graph at 100,000 machines"):

* ``m:<fold>`` — this string is the id of the machine whose key is the fact's value (NULL: the string is the id of
  no machine at all; ``mall``: never NULL on these rows, after ``where type == 'microsoft.hybridcompute/machines'``),
  folded by ``<fold>`` (``exact``, ``upper``, ``lower``; ASCII-only case mapping in both
  dialects, and machine ids are unique ASCII-case-insensitively); ``mok:<fold>`` — a condition that must hold too.
  A join whose keys are both machine ids of the same fold, one of them on every row, becomes a join on the machine
  keys (``key_join``).
* ``own`` — the value is distinct for distinct base rows (a row's own id, folded or not). ``summarize … by`` a join
  whose groups are the left rows computes the aggregates for the rows of the page only (``summarize_join``).
* ``par``/``parok`` on a row's own id: the key of the machine whose id is the id cut before its first
  ``/extensions`` (an extension's machine), and when that cut is that machine's id.
* ``tagrows`` on a base row's whole ``tags``: the machine key on machine rows (the tags are its tag rows), NULL on
  other rows, whose tags are ``tagjson`` (NULL on machine rows). ``bagkey`` on an expanded bag element: its one key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from machines.graph import ast
from machines.graph.relation import Col, Relation
from machines.graph.schema import TAG
from machines.graph.values import BOOL, DYNAMIC, JSON, LONG, STRING, Frag, Value, join, sql

PARENT_MARK = "/extensions"
FOLDS = ("exact", "upper", "lower")
TAG_ROWS_LIMIT = 50  # machines.validation.MAX_TAGS: a machine never has more tag rows than this


@dataclass(frozen=True)
class KeyJoin:
    """What a join on machine keys was made of, for ``summarize_join``."""

    source: Frag  # the join relation's FROM clause (identifies it)
    left: Relation
    right: Relation
    kind: str
    condition: Frag


def id_facts(alias: str) -> dict[str, Value]:
    """Facts of the ``id`` column of a Resources row (sources.row_key_columns)."""
    return {
        "m:exact": Value(Frag(f"{alias}.r_m"), LONG),
        "own": Value(Frag(f"{alias}.pk"), LONG, nullable=False),
        "par": Value(Frag(f"{alias}.r_par"), LONG),
        "parok": Value(Frag(f"{alias}.r_pok"), BOOL),
    }


MACHINE_TYPE = "microsoft.hybridcompute/machines"
ALWAYS = Value(Frag("1"), LONG, nullable=False, literal=1)  # a marker fact: a constant, carried as it is


def machines_only(c, predicate: ast.Expr, rel: Relation) -> Relation:
    """After ``where`` with a conjunct ``type == 'microsoft.hybridcompute/machines'`` (or ``=~``) on the rows' own
    type, every machine id fact of ``rel`` is known to name a machine on every row (``mall``): a join may then trust
    that a string equal to it is that machine's id."""
    stack, found = [predicate], False
    while stack and not found:
        node = stack.pop()
        if isinstance(node, ast.Binary) and node.op == "and":
            stack += [node.left, node.right]
        elif isinstance(node, ast.Binary) and node.op in ("==", "=~"):
            for column, literal in ((node.left, node.right), (node.right, node.left)):
                if not (isinstance(column, ast.Column) and isinstance(literal, ast.Literal)):
                    continue
                value = rel.get(column.name)
                text = literal.value if isinstance(literal.value, str) else None
                if text is not None and node.op == "=~":
                    text = text.lower()
                if value is not None and "rowtype" in (value.facts or {}) and text == MACHINE_TYPE:
                    found = True
    if not found:
        return rel
    columns = []
    for col in rel.columns:
        facts = col.value.facts or {}
        if any(f"m:{fold}" in facts for fold in FOLDS) and "mall" not in facts:
            col = Col(col.name, col.value.with_(facts={**facts, "mall": ALWAYS}))
        columns.append(col)
    return rel.copy(columns=columns)


def folded(value: Value, fold: str) -> dict[str, Value] | None:
    """The facts of ``toupper``/``tolower`` of ``value``: a folded machine id is the folded id of the same machine."""
    facts = value.facts or {}
    result = {}
    for source in ("exact", fold):
        if f"m:{source}" in facts:
            result[f"m:{fold}"] = facts[f"m:{source}"]
            if f"mok:{source}" in facts:
                result[f"mok:{fold}"] = facts[f"mok:{source}"]
            break
    for kept in ("own", "mall"):
        if kept in facts and result:
            result[kept] = facts[kept]
    return result or None


def parent_facts(c, node: ast.Call, values: list[Value], rel: Relation) -> dict[str, Value] | None:
    """``substring(id, 0, indexof(id, '/extensions'))`` of a row's own id: its machine's id, when ``parok``."""
    if len(node.args) != 3 or "par" not in (values[0].facts or {}):
        return None
    start, length = node.args[1], node.args[2]
    if not (isinstance(start, ast.Literal) and start.type == LONG and start.value == 0):
        return None
    if not (isinstance(length, ast.Call) and length.name == "indexof" and len(length.args) == 2):
        return None
    text, mark = length.args
    if not (isinstance(mark, ast.Literal) and mark.type == STRING and mark.value == PARENT_MARK):
        return None
    if c.expr(text, rel).frag != values[0].frag:
        return None
    facts = values[0].facts
    return {"m:exact": facts["par"], "mok:exact": facts["parok"]}  # not ``mall``: extensions' cuts may be no id


# --- joins ---------------------------------------------------------------------------------------------------------


def machine_ref(value: Value) -> tuple[str, Value, Value | None] | None:
    facts = value.facts or {}
    for fold in FOLDS:
        if f"m:{fold}" in facts:
            return fold, facts[f"m:{fold}"], facts.get(f"mok:{fold}")
    return None


def key_join(c, left: Relation, right: Relation, op: ast.Join) -> Frag | None:
    """``l.a == r.b`` for every key, where both are machine ids of the same fold: the equality of the machine keys
    (with their conditions). None when any key isn't such a pair, or for ``innerunique``."""
    if op.kind not in ("leftouter", "inner") or not op.keys:
        return None
    parts = []
    for key in op.keys:
        a, b = machine_ref(left.get(key.left)), machine_ref(right.get(key.right))
        if a is None or b is None or a[0] != b[0]:
            return None
        # Two strings that are no machine's id may still be equal: one side must name a machine on every row.
        if not any("mall" in (v.facts or {}) for v in (left.get(key.left), right.get(key.right))):
            return None
        parts.append(sql("§ = §", c.render(a[1]), c.render(b[1])))
        parts += [c.render(ok) for ok in (a[2], b[2]) if ok is not None]
    return join(" AND ", [sql("(§)", p) for p in parts])


def _alias(source: Frag) -> str | None:
    found = re.search(r"\) AS (t\d+)$", source.sql)
    return found.group(1) if found else None


def summarize_join(c, rel: Relation, keys: list[tuple[str, Value]], aggregates: list[tuple[str, Value]]):
    """``summarize aggregates by keys`` over a key join whose groups are its left rows — one key is the left row's
    own id, every key reads the left side only, every aggregate the right side only — as one row per left row with
    each aggregate a subquery over that row's matches. The page's order and its total read the left rows only, so
    the aggregates run for the rows of the page (PostgreSQL computes costly output columns after the LIMIT).
    Returns ``(source, items)`` or None when the shape doesn't hold."""
    joined = rel.joined
    if not isinstance(joined, KeyJoin) or rel.source is not joined.source or rel.where or rel.order or rel.limit:
        return None
    left, right = joined.left, joined.right
    l_alias, r_alias = _alias(left.source), _alias(right.source)
    if l_alias is None or r_alias is None or left.key is None or len(left.key) != 2 or not aggregates:
        return None
    row_key = c.render(left.key[1]).sql
    rendered = [(name, c.render(v)) for name, v in keys]
    if any(f"{r_alias}." in frag.sql for _, frag in rendered):
        return None
    if not any((v.facts or {}).get("own") is not None and c.render(v.facts["own"]).sql == row_key for _, v in keys):
        return None
    aggregate_frags = [(name, c.render(v)) for name, v in aggregates]
    if any(f"{l_alias}." in frag.sql for _, frag in aggregate_frags):
        return None
    word = "LEFT JOIN" if joined.kind == "leftouter" else "JOIN"
    matches = sql(f"(SELECT 1 AS one) AS {c.names.next('d')} {word} § ON §", right.source, joined.condition)
    items = [sql(f"§ AS s{n}", frag) for n, (_, frag) in enumerate(rendered, start=1)]
    for n, (_, frag) in enumerate(aggregate_frags, start=len(rendered) + 1):
        items.append(sql(f"(SELECT § FROM §) AS s{n}", frag, matches))
    where = None
    if joined.kind == "inner":
        where = sql("EXISTS (SELECT 1 FROM § WHERE §)", right.source, joined.condition)
    return items, where


# --- bags --------------------------------------------------------------------------------------------------------


def tag_rows_expand(c, value: Value, alias: str, limit: int | None):
    """mv-expand of whole ``tags`` from the machine tag rows on machine rows (one row per tag, none for no tags),
    from the JSON elsewhere — instead of building each machine's object and expanding it again. PostgreSQL only
    (SQLite expands its JSON as before). ``(join, keep, element, ordinal keys, facts)`` or None."""
    facts = value.facts or {}
    if "tagrows" not in facts or c.dialect.name != "postgresql" or value.shape != "object":
        return None
    if limit is not None and limit < TAG_ROWS_LIMIT:
        return None
    pk, j = c.render(facts["tagrows"]), c.render(facts["tagjson"])  # tagjson: NULL on machine rows
    rows, bag = f"{alias}r", f"{alias}j"
    join_clause = sql(
        f"LEFT JOIN {TAG} {rows} ON {rows}.machine_id = § LEFT JOIN LATERAL jsonb_each(CASE WHEN § IS NULL THEN § END)"
        f" WITH ORDINALITY AS {bag}(key, value, n) ON TRUE",
        pk, pk, j,
    )  # fmt: skip
    key = Frag(f"coalesce({rows}.key, {bag}.key)")
    elsewhere = sql(f"({bag}.key IS NOT NULL OR § IS NULL)", j)
    if limit is not None:  # as mv_limit: a null row (n is NULL) is not kept either
        elsewhere = sql(f"(§ AND {bag}.n <= {int(limit)})", elsewhere)
    keep = sql(f"({rows}.key IS NOT NULL OR (§ IS NULL AND §))", pk, elsewhere)
    element = Frag(f"(CASE WHEN {rows}.key IS NOT NULL THEN jsonb_build_object({rows}.key, {rows}.value)"
                   f" WHEN {bag}.key IS NOT NULL THEN jsonb_build_object({bag}.key, {bag}.value) END)")  # fmt: skip
    # jsonb's own order of keys (shorter first, then bytewise), as jsonb_each of the built object gives them
    ordinal = [Value(Frag(f"coalesce(octet_length({rows}.key), {bag}.n)"), LONG),
               Value(Frag(f"coalesce({rows}.key, '')"), STRING, nullable=False)]  # fmt: skip
    return join_clause, keep, element, ordinal, {"bagkey": Value(key, STRING)}


def bag_keys_of_pair(c, value: Value) -> Value | None:
    """``bag_keys`` of a bag known to hold one key: ``[key]``, and ``[0]`` is the key itself."""
    key = (value.facts or {}).get("bagkey")
    if key is None:
        return None
    frag = c.render(key)
    array = sql("(CASE WHEN § IS NOT NULL THEN § END)", frag, c.dialect.json_array([frag]))
    return Value(array, DYNAMIC, JSON, shape="array", paths={(0,): Value(frag, DYNAMIC, STRING)})
