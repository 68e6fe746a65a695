"""Lark parse tree → ``machines.graph.ast`` nodes (literals decoded, chains folded left to right). Pure."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from lark import Token, Transformer, v_args

from machines.graph import ast
from machines.graph.errors import invalid_query, parser_failure

TIMESPAN_UNITS = {
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
    "h": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "m": 60.0, "min": 60.0, "minute": 60.0, "minutes": 60.0,
    "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0,
    "ms": 1e-3, "millisecond": 1e-3, "milliseconds": 1e-3,
    "microsecond": 1e-6, "microseconds": 1e-6, "tick": 1e-7, "ticks": 1e-7,
}  # fmt: skip
MV_EXPAND_DEFAULT_ROWS = 128  # Resource Graph's default and maximum rows per input row, for mvexpand and mv-expand
MV_EXPAND_MAX_ROWS = 400
ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0"}


def _pos(meta) -> ast.Pos:
    return (getattr(meta, "line", 1) or 1, getattr(meta, "column", 1) or 1)


def _tok_pos(token: Token) -> ast.Pos:
    return (token.line or 1, token.column or 1)


def decode_string(token: str) -> str:
    """A KQL string literal ('…' or "…", backslash escapes) → its value."""
    body = token[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", body[i + 2 : i + 6] or ""):
                code = int(body[i + 2 : i + 6], 16)
                out.append(chr(code) if not 0xD800 <= code <= 0xDFFF else "\ufffd")
                i += 6
                continue
            out.append(ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


def parse_datetime_literal(body: str) -> datetime | None:
    body = body.strip().strip("'\"").strip()
    if body.lower() == "null":
        return None
    value = datetime.fromisoformat(body.replace(" ", "T", 1) if "T" not in body else body)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@v_args(meta=True)
class ToAst(Transformer):
    # --- tabular -------------------------------------------------------------------------------------------------

    def start(self, meta, children):
        return children[0]

    def implicit_pipeline(self, meta, children):
        """A query that starts with an operator reads ``Resources``, Resource Graph's default table."""
        return ast.Pipeline(source=ast.Table(name="Resources", pos=(1, 1)), operators=tuple(children), pos=(1, 1))

    def pipeline(self, meta, children):
        source, *operators = children
        if isinstance(source, ast.Pipeline) and not operators:
            return source
        if isinstance(source, ast.Pipeline):
            return ast.Pipeline(source=source.source, operators=source.operators + tuple(operators), pos=source.pos)
        return ast.Pipeline(source=source, operators=tuple(operators), pos=_pos(meta))

    def table(self, meta, children):
        return ast.Table(name=children[0], pos=_pos(meta))

    def union_source(self, meta, children):
        return ast.Union(sources=tuple(c for c in children if c is not None), pos=_pos(meta))

    def union_options(self, meta, children):
        if children and str(children[0]).lower() != "outer":
            raise invalid_query(
                f"union kind={children[0]} is not supported (only kind=outer).",
                code="UnsupportedOperator",
                name=f"union kind={children[0]}",
                pos=_tok_pos(children[0]),
            )
        return None

    def union_op(self, meta, children):
        return ast.UnionOp(others=tuple(c for c in children if c is not None), pos=_pos(meta))

    def where_op(self, meta, children):
        return ast.Where(predicate=children[0], pos=_pos(meta))

    def project_op(self, meta, children):
        return ast.Project(items=tuple(children), pos=_pos(meta))

    def project_away_op(self, meta, children):
        return ast.ProjectAway(names=tuple(children), pos=_pos(meta))

    def extend_op(self, meta, children):
        return ast.Extend(items=tuple(children), pos=_pos(meta))

    def summarize_aggs(self, meta, children):
        return ("aggs", tuple(children))

    def summarize_by(self, meta, children):
        return ("by", tuple(c for c in children if isinstance(c, ast.Item)))

    def summarize_op(self, meta, children):
        parts = dict(children)
        return ast.Summarize(aggregates=parts.get("aggs", ()), by=parts.get("by", ()), pos=_pos(meta))

    def order_op(self, meta, children):
        return ast.Order(keys=tuple(c for c in children if isinstance(c, ast.OrderKey)), pos=_pos(meta))

    def order_key(self, meta, children):
        expr, *rest = children
        words = [str(token) for token in rest]
        descending = "asc" not in words
        nulls_first = None
        if "first" in words:
            nulls_first = True
        elif "last" in words:
            nulls_first = False
        return ast.OrderKey(expr=expr, descending=descending, nulls_first=nulls_first)

    def top_op(self, meta, children):
        return ast.Top(count=children[0], key=children[1], pos=_pos(meta))

    def take_op(self, meta, children):
        return ast.Take(count=children[-1], pos=_pos(meta))

    def distinct_op(self, meta, children):
        names = tuple(c for c in children if isinstance(c, str) and not isinstance(c, Token))
        return ast.Distinct(names=names, pos=_pos(meta))

    def count_op(self, meta, children):
        return ast.Count(pos=_pos(meta))

    def mv_kind(self, meta, children):
        kind = str(children[0])
        if kind not in ("bag", "array"):
            raise invalid_query(f"mv-expand kind={kind} is not supported (bag or array).", pos=_tok_pos(children[0]))
        return ("kind", kind)

    def mv_limit(self, meta, children):
        return ("limit", int(children[0]))

    def mvexpand_op(self, meta, children):
        keyword, *rest = children
        options = dict(c for c in rest if isinstance(c, tuple))
        items = tuple(c for c in rest if isinstance(c, ast.Item))
        limit = options.get("limit", MV_EXPAND_DEFAULT_ROWS)
        if not 0 <= limit <= MV_EXPAND_MAX_ROWS:
            raise invalid_query(
                f"mv-expand limit {limit}: Resource Graph expands at most {MV_EXPAND_MAX_ROWS} rows per row.",
                code="InvalidArgument",
                name=str(keyword),
                pos=_pos(meta),
            )
        return ast.MvExpand(items=items, limit=limit, kind=options.get("kind", "bag"), pos=_pos(meta))

    def join_kind(self, meta, children):
        kind = str(children[0]).lower()
        if kind not in ("inner", "leftouter", "innerunique"):
            raise invalid_query(
                f"join kind={children[0]} is not supported (inner, innerunique or leftouter).",
                code="UnsupportedOperator",
                name=f"join kind={children[0]}",
                pos=_tok_pos(children[0]),
            )
        return ("kind", kind)

    def join_op(self, meta, children):
        options = dict(c for c in children if isinstance(c, tuple))
        right = next(c for c in children if isinstance(c, ast.Tabular))
        keys = tuple(c for c in children if isinstance(c, ast.JoinKey))
        return ast.Join(right=right, keys=keys, kind=options.get("kind", "innerunique"), pos=_pos(meta))

    def join_same(self, meta, children):
        return ast.JoinKey(left=children[0], right=children[0])

    def _join_equality(self, children):
        first, op, second = children
        if str(op) != "==":
            raise invalid_query(f"join conditions compare with '==', not '{op}'.", code="InvalidJoinCondition",
                                pos=_tok_pos(op))  # fmt: skip
        return first, second

    def join_pair(self, meta, children):
        left, right = self._join_equality(children)
        return ast.JoinKey(left=left, right=right)

    def join_pair_reversed(self, meta, children):
        right, left = self._join_equality(children)
        return ast.JoinKey(left=left, right=right)

    def named_item(self, meta, children):
        return ast.Item(expr=children[1], name=children[0], pos=_pos(meta))

    def bare_item(self, meta, children):
        return ast.Item(expr=children[0], pos=_pos(meta))

    def name(self, meta, children):
        return str(children[0])

    def quoted_name(self, meta, children):
        return decode_string(str(children[0]))

    # --- scalar ----------------------------------------------------------------------------------------------

    def _chain(self, meta, children, word: str | None = None):
        result = children[0]
        if word is not None:
            for right in children[1:]:
                result = ast.Binary(op=word, left=result, right=right, pos=result.pos)
            return result
        for i in range(1, len(children), 2):
            result = ast.Binary(op=str(children[i]), left=result, right=children[i + 1], pos=result.pos)
        return result

    def or_chain(self, meta, children):
        return self._chain(meta, children, "or")

    def and_chain(self, meta, children):
        return self._chain(meta, children, "and")

    def arith_chain(self, meta, children):
        return self._chain(meta, children)

    def compare(self, meta, children):
        left, op, right = children
        return ast.Binary(op=str(op), left=left, right=right, pos=left.pos)

    string_op = compare

    def in_list(self, meta, children):
        left, op, *items = children
        return ast.InList(op=str(op), left=left, items=tuple(items), pos=left.pos)

    def matches_regex(self, meta, children):
        return ast.Binary(op="matches regex", left=children[0], right=children[1], pos=children[0].pos)

    def negate(self, meta, children):
        operand = children[0]
        if isinstance(operand, ast.Literal) and operand.type in ("long", "real", "timespan"):
            return ast.Literal(value=-operand.value, type=operand.type, pos=_pos(meta))
        return ast.Negate(operand=operand, pos=_pos(meta))

    def member(self, meta, children):
        return ast.Member(obj=children[0], name=children[1], pos=children[0].pos)

    def index(self, meta, children):
        return ast.Index(obj=children[0], index=children[1], pos=children[0].pos)

    def column(self, meta, children):
        return ast.Column(name=children[0], pos=_pos(meta))

    def call(self, meta, children):
        name, *args = children
        return ast.Call(name=str(name), args=tuple(args), pos=_tok_pos(name))

    def star(self, meta, children):
        return ast.Star(pos=_pos(meta))

    def string(self, meta, children):
        return ast.Literal(value=decode_string(str(children[0])), type="string", pos=_pos(meta))

    def verbatim_string(self, meta, children):
        return ast.Literal(value=str(children[0])[2:-1], type="string", pos=_pos(meta))

    def integer(self, meta, children):
        value = int(children[0])
        if value >= 2**63:
            raise invalid_query(f"The number {children[0]} is too large for a long.", pos=_pos(meta))
        return ast.Literal(value=value, type="long", pos=_pos(meta))

    def real(self, meta, children):
        return ast.Literal(value=float(children[0]), type="real", pos=_pos(meta))

    def timespan(self, meta, children):
        match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([a-z]+)", str(children[0]))
        seconds = float(match.group(1)) * TIMESPAN_UNITS[match.group(2)]
        return ast.Literal(value=seconds, type="timespan", pos=_pos(meta))

    def datetime(self, meta, children):
        text = str(children[0])
        try:
            value = parse_datetime_literal(text[text.index("(") + 1 : -1])
        except ValueError:
            line, column = _pos(meta)
            raise parser_failure(f"'{text}' is not a valid datetime.", line=line, column=column) from None
        return ast.Literal(value=value, type="datetime", pos=_pos(meta))

    def true(self, meta, children):
        return ast.Literal(value=True, type="bool", pos=_pos(meta))

    def false(self, meta, children):
        return ast.Literal(value=False, type="bool", pos=_pos(meta))

    def dynamic(self, meta, children):
        value = children[0].value if isinstance(children[0], ast.Literal) else children[0]
        return ast.Literal(value=value, type="dynamic", pos=_pos(meta))

    # JSON inside dynamic(...): plain Python values (booleans come through ``true``/``false`` as literals).

    def json_string(self, meta, children):
        return decode_string(str(children[0]))

    def json_number(self, meta, children):
        return json.loads(str(children[0]))

    def json_null(self, meta, children):
        return None

    def json_array(self, meta, children):
        return [c.value if isinstance(c, ast.Literal) else c for c in children]

    def json_object(self, meta, children):
        return dict(children)

    def json_pair(self, meta, children):
        key, value = children
        return (decode_string(str(key)), value.value if isinstance(value, ast.Literal) else value)
