"""PURE: the ``$filter`` of ``GET …/providers/Microsoft.Insights/eventtypes/management/values``, parsed with Lark.

The OData subset Azure Monitor accepts for the activity log (and ``azure-mgmt-monitor``'s ``activity_logs.list``
passes through as written): ``eventTimestamp ge '<time>'`` (required), ``eventTimestamp le '<time>'`` (optional,
default: now), and at most one of each of ``resourceGroupName``, ``resourceUri`` (also ``resourceId``),
``correlationId``, ``resourceProvider``, ``status``, ``caller`` with ``eq '<value>'``, joined by ``and``.
``eventChannels eq '…'`` (the legacy channel filter) is accepted and ignored. Anything else — another field or
operator, ``or``, ``not``, parentheses, functions, a malformed time, a span over 90 days — is an ``ODataError``
naming what is wrong. Time comes in as ``now``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache

from lark import Lark, Token
from lark.exceptions import UnexpectedInput

MAX_FILTER_LENGTH = 4000
MAX_SPAN = dt.timedelta(days=90)
FIELDS = {
    "resourcegroupname": "resource_group",
    "resourceuri": "resource_uri",
    "resourceid": "resource_uri",
    "correlationid": "correlation_id",
    "resourceprovider": "resource_provider",
    "status": "status",
    "caller": "caller",
    "eventchannels": None,
}

GRAMMAR = r"""
start: clause (_AND clause)*
clause: NAME OP STRING
_AND.2: /and(?![A-Za-z0-9_])/i
OP.2: /(eq|ne|ge|gt|le|lt)(?![A-Za-z0-9_])/i
NAME: /[A-Za-z_][A-Za-z0-9_.\/]*/
STRING: /'(?:[^']|'')*'/
%ignore /[ \t\r\n]+/
"""


class ODataError(ValueError):
    """A ``$filter`` we do not serve; ``code`` is the ARM error code."""

    def __init__(self, message: str, *, code: str = "InvalidFilterParameter") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class EventFilter:
    start: dt.datetime
    end: dt.datetime
    terms: dict[str, str] = field(default_factory=dict)


@lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark(GRAMMAR, parser="lalr", lexer="contextual")


def parse_time(value: str) -> dt.datetime:
    """ISO 8601 with a time zone or ``Z`` (fractions of any length); a date alone means midnight UTC."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if "." in text:  # Azure sends 7-digit fractions; Python reads at most 6
        head, _, rest = text.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = head + "." + (rest[:digits][:6].ljust(6, "0")) + rest[digits:]
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ODataError(f"'{value}' is not a valid time: use ISO 8601, e.g. 2026-01-02T03:04:05Z.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def parse_filter(text: str | None, *, now: dt.datetime) -> EventFilter:
    if text is None or not text.strip():
        raise ODataError("The $filter parameter is required, with at least eventTimestamp ge '<time>'.")
    if len(text) > MAX_FILTER_LENGTH:
        raise ODataError(f"The $filter is longer than {MAX_FILTER_LENGTH} characters.")
    if any((ord(char) < 32 and char not in "\t\r\n") or 0xD800 <= ord(char) <= 0xDFFF for char in text):
        raise ODataError("The $filter contains control characters.")
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as exc:
        raise ODataError(
            f"The $filter is malformed at position {exc.column}: expected "
            "\"<field> <operator> '<value>'\" terms joined by 'and'."
        ) from None
    start = end = None
    terms: dict[str, str] = {}
    for clause in tree.children:
        name, op, raw = (str(token) for token in clause.children if isinstance(token, Token))
        key, op = name.lower(), op.lower()
        value = raw[1:-1].replace("''", "'")
        if key == "eventtimestamp":
            if op not in ("ge", "le"):
                raise ODataError(f"eventTimestamp supports only 'ge' and 'le', not '{op}'.")
            moment = parse_time(value)
            if op == "ge":
                if start is not None:
                    raise ODataError("eventTimestamp ge is given twice.")
                start = moment
            else:
                if end is not None:
                    raise ODataError("eventTimestamp le is given twice.")
                end = moment
            continue
        if key not in FIELDS:
            raise ODataError(
                f"The $filter field '{name}' is not supported; use eventTimestamp, resourceGroupName, resourceUri, "
                "correlationId, resourceProvider, status or caller."
            )
        if op != "eq":
            raise ODataError(f"'{name}' supports only 'eq', not '{op}'.")
        target = FIELDS[key]
        if target is None:
            continue
        if target in terms:
            raise ODataError(f"'{name}' is given twice.")
        if not value or len(value) > 1024:
            raise ODataError(f"The value of '{name}' must be 1 to 1024 characters.")
        terms[target] = value
    if start is None:
        raise ODataError("The $filter must contain eventTimestamp ge '<time>'.")
    end = end or now
    if end < start:
        raise ODataError("The end of the time span (eventTimestamp le) is before its start.")
    if end - start > MAX_SPAN:
        raise ODataError(
            f"The time span is {(end - start).days} days; at most 90 days can be queried at once.",
            code="InvalidTimeRange",
        )
    return EventFilter(start=start, end=end, terms=terms)
