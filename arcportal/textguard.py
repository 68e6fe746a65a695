"""The one input guard for text (issue 10, item 17). Pure: no Django import; adapters live next to their framework.

Every text that reaches the portal from outside passes one of these checks before a serializer, form, query or
service sees it:

* ``text_problem(value)`` — a string: no NUL (U+0000: PostgreSQL refuses it in text and JSON), no lone surrogate
  (U+D800–U+DFFF: not encodable as UTF-8, so neither database nor the JSON encoder can store it), at most
  ``max_length`` characters.
* ``json_loads(raw)`` — a JSON body: at most ``max_bytes``, nesting at most ``max_depth`` (checked on the raw text
  *before* parsing, so ``'[' * 5000`` never reaches the recursive parser), every key and string value passes
  ``text_problem``, and integers have at most ``MAX_INT_DIGITS`` digits.

Adapters: ``arcportal.arm.parsers`` (DRF parser and the ARM views' ``json_body``), ``arcportal.forms`` (a form
mixin for every Django form), ``arcportal.middleware.InputGuardMiddleware`` (query strings and form bodies of every
request, answered in the shape of the plane), ``arcportal.converters`` (bounded ids in portal URLs), the agent plane
(``agentplane.views``, ``agentplane.views_log``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MAX_JSON_DEPTH = 32
MAX_JSON_BYTES = 1024 * 1024
MAX_JSON_STRING = 64 * 1024
MAX_FORM_TEXT = 4096
# Script boxes (Run command, an extension's command): up to 256 KiB, as ARM accepts (issue 12); other fields above.
MAX_SCRIPT_TEXT = 256 * 1024
SCRIPT_FORM_FIELDS = frozenset({"script", "command_to_execute", "protected_command", "protected_settings"})
MAX_INT_DIGITS = 30
MAX_ID_DIGITS = 18  # a bigint has 19 digits; 18 always fit

_SURROGATE = re.compile("[\ud800-\udfff]")
# A JSON string (escapes included) or one bracket: strings are skipped whole, so brackets inside them don't count.
_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class TextRefused(ValueError):
    """Text the portal refuses; ``message`` says why, ``target`` names where (``properties.settings.x``)."""

    def __init__(self, message: str, target: str = "") -> None:
        super().__init__(f"{target}: {message}" if target else message)
        self.message = message
        self.target = target


@dataclass(frozen=True)
class Limits:
    max_bytes: int = MAX_JSON_BYTES
    max_depth: int = MAX_JSON_DEPTH
    max_string: int = MAX_JSON_STRING


DEFAULT_LIMITS = Limits()


def printable(value: str, limit: int = 40) -> str:
    """``value`` shortened and safe to put in an error message: NUL, controls and surrogates as ``\\uXXXX``."""
    short = value[:limit]
    return "".join(c if c.isprintable() and not _SURROGATE.match(c) else f"\\u{ord(c):04x}" for c in short)


def text_problem(value: str, *, max_length: int | None = None) -> str | None:
    """Why ``value`` is refused, or None when it is acceptable text."""
    if "\x00" in value:
        return "contains the NUL character (U+0000)"
    match = _SURROGATE.search(value)
    if match:
        return f"contains a lone surrogate (U+{ord(match.group()):04X}), which is not valid Unicode text"
    if max_length is not None and len(value) > max_length:
        return f"is longer than {max_length} characters"
    return None


def check_text(value: str, *, target: str = "", max_length: int | None = None) -> str:
    """``value`` unchanged, or ``TextRefused``."""
    problem = text_problem(value, max_length=max_length)
    if problem:
        raise TextRefused(f"The text {problem}.", target)
    return value


def check_texts(
    values: Iterable[tuple[str, Any]], *, max_length: int | None = MAX_FORM_TEXT, long_fields: frozenset = frozenset()
) -> None:
    """``(name, value)`` pairs of a query string or form (values: strings or lists of strings); fields named in
    ``long_fields`` may hold ``MAX_SCRIPT_TEXT`` characters."""
    for name, value in values:
        check_text(name, target="(a parameter name)", max_length=200)
        limit = MAX_SCRIPT_TEXT if name in long_fields else max_length
        for item in value if isinstance(value, list | tuple) else [value]:
            if isinstance(item, str):
                check_text(item, target=printable(name), max_length=limit)


def json_depth(raw: bytes) -> int:
    """The deepest nesting of arrays/objects in a JSON text, counted without parsing it."""
    depth = deepest = 0
    for token in _JSON_TOKENS.finditer(raw):
        char = token.group()
        if char in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif char in (b"]", b"}"):
            depth -= 1
    return deepest


def check_json_value(value: Any, *, limits: Limits = DEFAULT_LIMITS, target: str = "") -> Any:
    """Every key and string of a parsed JSON value passes ``text_problem``; depth and integers are bounded.
    Iterative (an explicit stack), so no value can exhaust the interpreter's recursion limit."""
    stack: list[tuple[Any, str, int]] = [(value, target, 0)]
    while stack:
        item, where, depth = stack.pop()
        if depth > limits.max_depth:
            raise TextRefused(f"The JSON nests deeper than {limits.max_depth} levels.", where)
        if isinstance(item, str):
            check_text(item, target=where, max_length=limits.max_string)
        elif isinstance(item, bool) or item is None or isinstance(item, float):
            continue
        elif isinstance(item, int):
            if item.bit_length() > MAX_INT_DIGITS * 4:  # ~ 10**36: far beyond any id or count we accept
                raise TextRefused(f"The number has more than {MAX_INT_DIGITS} digits.", where)
        elif isinstance(item, Mapping):
            for key, child in item.items():
                name = printable(str(key))
                path = f"{where}.{name}" if where else name
                check_text(str(key), target=path, max_length=1024)
                stack.append((child, path, depth + 1))
        elif isinstance(item, list | tuple):
            for index, child in enumerate(item):
                stack.append((child, f"{where}[{index}]", depth + 1))
        else:
            raise TextRefused(f"Unexpected value of type {type(item).__name__}.", where)
    return value


def _no_huge_ints(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise TextRefused(f"A number has more than {MAX_INT_DIGITS} digits.")
    return int(text)


def json_loads(raw: bytes | str, *, limits: Limits = DEFAULT_LIMITS) -> Any:
    """Parse a JSON body under ``limits``; raises ``TextRefused`` for anything refused (including invalid JSON,
    whose message starts with "not valid JSON")."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    if len(data) > limits.max_bytes:
        raise TextRefused(f"The body is larger than {limits.max_bytes} bytes.")
    if json_depth(data) > limits.max_depth:
        raise TextRefused(f"The JSON nests deeper than {limits.max_depth} levels.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TextRefused(f"The body is not valid UTF-8 ({exc.reason} at byte {exc.start}).") from exc
    try:
        value = json.loads(text.removeprefix("\ufeff"), parse_int=_no_huge_ints)
    except TextRefused:
        raise
    except (ValueError, RecursionError) as exc:
        raise TextRefused(f"not valid JSON: {exc}") from exc
    return check_json_value(value, limits=limits)
