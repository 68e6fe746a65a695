"""KQL text → syntax tree (``machines.graph.ast``), with Lark (LALR, contextual lexer). Pure: no Django import.

``parse(text)`` raises ``GraphQueryError``: ``QueryTooLong`` over 10,000 characters, ``ParserFailure`` with the line
and column of the first unexpected token, ``InvalidQuery`` naming an unsupported operator or statement.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from lark import Lark, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from machines.graph import ast
from machines.graph.errors import GraphQueryError, invalid_query, limit_error, parser_failure
from machines.graph.tree import ToAst

MAX_QUERY_LENGTH = 10_000
MAX_DEPTH = 80
SUPPORTED_OPERATORS = frozenset(
    {"where", "filter", "project", "project-away", "extend", "summarize", "order", "sort", "top", "take", "limit"}
    | {"distinct", "count", "mv-expand", "mvexpand", "join", "union"}
)


@lru_cache(maxsize=1)
def _lark() -> Lark:
    grammar = (Path(__file__).with_name("grammar.lark")).read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True, maybe_placeholders=False)


def parse(text: str) -> ast.Pipeline:
    if len(text) > MAX_QUERY_LENGTH:
        raise limit_error(
            "QueryTooLong", f"The query is {len(text):,} characters long; at most {MAX_QUERY_LENGTH:,} are allowed."
        )
    _check_characters(text)
    if not text.strip():
        raise parser_failure("The query is empty.", line=1, column=1)
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as exc:
        raise _failure(text, exc) from None
    _check_depth(tree)
    try:
        return ToAst().transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, GraphQueryError):
            raise exc.orig_exc from None
        raise


def _check_characters(text: str) -> None:
    for offset, char in enumerate(text):
        if char == "\x00" or 0xD800 <= ord(char) <= 0xDFFF:
            line = text.count("\n", 0, offset) + 1
            column = offset - (text.rfind("\n", 0, offset) + 1) + 1
            what = "the NUL character" if char == "\x00" else "a lone surrogate"
            raise parser_failure(f"The query contains {what}.", line=line, column=column)


def _check_depth(tree: Tree) -> None:
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            line, column = _tree_pos(node)
            raise invalid_query(
                f"The query is nested more than {MAX_DEPTH} levels deep.", code="QueryTooComplex", pos=(line, column)
            )
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))


def _tree_pos(node: Tree) -> tuple[int, int]:
    meta = node.meta
    return (getattr(meta, "line", 1) or 1, getattr(meta, "column", 1) or 1)


def _failure(text: str, exc: UnexpectedInput) -> GraphQueryError:
    line, column = getattr(exc, "line", -1), getattr(exc, "column", -1)
    at_end = isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END")
    if at_end or line is None or line < 1:
        lines = text.split("\n")
        line, column = len(lines), len(lines[-1]) + 1
        return parser_failure("The query ended where more was expected.", line=line, column=column)
    offset = _offset(text, line, column)
    token = ""
    if isinstance(exc, UnexpectedToken):
        token = str(exc.token)
    elif isinstance(exc, UnexpectedCharacters):
        token = text[offset : offset + 1]
    unsupported = _unsupported_word(text, offset)
    if unsupported is not None:
        word, (wline, wcolumn), kind = unsupported
        return invalid_query(
            f"The {kind} '{word}' is not supported by this Resource Graph.",
            code="UnsupportedOperator" if kind == "operator" else "UnsupportedStatement",
            name=word,
            pos=(wline, wcolumn),
        )
    shown = token.replace("\n", "\\n")[:40]
    message = f"Unexpected '{shown}'" if shown else "Unexpected input"
    return parser_failure(message, line=line, column=column, token=token[:100])


def _offset(text: str, line: int, column: int) -> int:
    starts = [0] + [m.end() for m in re.finditer("\n", text)]
    return starts[min(line, len(starts)) - 1] + column - 1


_WORD = re.compile(r"[A-Za-z_][\w-]*")


_STATEMENTS = ("let", "set", "declare", "print", "datatable", "range", "search", "find", "evaluate")


def _position(text: str, offset: int) -> ast.Pos:
    return (text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1)


def _unsupported_word(text: str, offset: int):
    """The operator after the last ``|`` before the error (or a ``let``/``print`` … statement at the start) when
    the grammar doesn't know it: ``project-rename``, ``parse``, ``render`` …"""
    first = re.match(r"(?:\s|//[^\n]*)*([A-Za-z_]+)", text)
    if first and first.group(1) in _STATEMENTS:
        return first.group(1), _position(text, first.start(1)), "statement"
    bar = text.rfind("|", 0, offset + 1)
    if bar < 0:
        return None
    match = re.compile(r"\s*").match(text, bar + 1)
    word = _WORD.match(text, match.end()) if match else None
    if word and word.group(0) not in SUPPORTED_OPERATORS:
        return word.group(0), _position(text, word.start()), "operator"
    return None
