"""The ``$filter`` of ARM's generic resource list (``GET /subscriptions/{s}/resources``). Pure: no Django import.

ARM accepts a small OData subset there, and ``az resource list`` builds exactly that subset
(``azure.cli.command_modules.resource.custom._list_resources_odata_filter_builder``): clauses joined by ``and``,

* ``resourceType eq '<Namespace>/<type>'``, ``resourceGroup eq '<name>'``, ``name eq '<name>'``,
  ``location eq '<region>'``,
* ``tagName eq '<name>'`` with an optional ``tagValue eq '<value>'``, or ``startswith(tagName, '<prefix>')``,
* ``substringof('<text>', name)``.

Names and operators are case-insensitive; string literals are single-quoted with ``''`` for a quote (OData).
Anything else (``or``, ``not``, other properties or functions, unbalanced quotes) raises :class:`FilterError` with a
message that says what is supported, which the API answers with a 400 (never a 500, never silently ignored: an
ignored filter would list, and let a script act on, resources the caller did not mean).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PROPERTIES = {"resourcetype": "resourceType", "resourcegroup": "resourceGroup", "name": "name", "location": "location"}
TAG_NAME = "tagName"
TAG_VALUE = "tagValue"
MAX_LENGTH = 2048  # below the edge guard's 4,096 (arcportal.textguard), so the parser's own message shows
SUPPORTED = (
    "resourceType eq '…', resourceGroup eq '…', name eq '…', location eq '…', tagName eq '…' [and tagValue eq '…'], "
    "startswith(tagName, '…') and substringof('…', name), joined by 'and'"
)

_STRING = r"'((?:[^']|'')*)'"
_EQ = re.compile(rf"^\s*([A-Za-z]+)\s+eq\s+{_STRING}\s*", re.IGNORECASE)
_STARTSWITH = re.compile(rf"^\s*startswith\s*\(\s*tagname\s*,\s*{_STRING}\s*\)\s*", re.IGNORECASE)
_SUBSTRINGOF = re.compile(rf"^\s*substringof\s*\(\s*{_STRING}\s*,\s*name\s*\)\s*", re.IGNORECASE)
_AND = re.compile(r"^and\s+", re.IGNORECASE)


class FilterError(ValueError):
    pass


@dataclass(frozen=True)
class ResourceFilter:
    """What a ``$filter`` asks for; ``None`` = not constrained."""

    resource_type: str | None = None
    resource_group: str | None = None
    name: str | None = None
    name_contains: str | None = None
    location: str | None = None
    tag_name: str | None = None
    tag_name_prefix: str | None = None
    tag_value: str | None = None


def _literal(raw: str) -> str:
    return raw.replace("''", "'")


def parse_resource_filter(text: str | None) -> ResourceFilter:
    """``$filter`` → :class:`ResourceFilter`; an empty or missing filter constrains nothing."""
    if text is None or not text.strip():
        return ResourceFilter()
    if len(text) > MAX_LENGTH:
        raise FilterError(f"The $filter is longer than {MAX_LENGTH} characters.")
    found: dict[str, str] = {}
    rest = text.strip()
    while True:
        match = _EQ.match(rest) or _STARTSWITH.match(rest) or _SUBSTRINGOF.match(rest)
        if match is None:
            raise FilterError(f"The $filter '{text}' is not supported at '{rest[:60]}'. Supported: {SUPPORTED}.")
        if match.re is _EQ:
            prop, value = match[1].lower(), _literal(match[2])
            key = PROPERTIES.get(prop) or {"tagname": TAG_NAME, "tagvalue": TAG_VALUE}.get(prop)
            if key is None:
                raise FilterError(f"The property '{match[1]}' cannot be filtered on. Supported: {SUPPORTED}.")
        elif match.re is _STARTSWITH:
            key, value = "tagNamePrefix", _literal(match[1])
        else:
            key, value = "nameContains", _literal(match[1])
        if key in found:
            raise FilterError(f"The $filter names '{key}' twice; combine conditions with 'and' on different fields.")
        found[key] = value
        rest = rest[match.end() :]
        if not rest:
            break
        joined = _AND.match(rest)
        if joined is None:
            raise FilterError(f"The $filter '{text}' is not supported at '{rest[:60]}'. Supported: {SUPPORTED}.")
        rest = rest[joined.end() :]
    if TAG_VALUE in found and TAG_NAME not in found:
        raise FilterError("A tagValue filter needs a tagName filter: tagName eq '…' and tagValue eq '…'.")
    if TAG_NAME in found and "tagNamePrefix" in found:
        raise FilterError("Use either tagName eq '…' or startswith(tagName, '…'), not both.")
    return ResourceFilter(
        resource_type=found.get("resourceType"),
        resource_group=found.get("resourceGroup"),
        name=found.get("name"),
        name_contains=found.get("nameContains"),
        location=found.get("location"),
        tag_name=found.get(TAG_NAME),
        tag_name_prefix=found.get("tagNamePrefix"),
        tag_value=found.get(TAG_VALUE),
    )


NON_TAG_FIELDS = ("resource_type", "resource_group", "name", "name_contains", "location")


def tags_match(wanted: ResourceFilter, tags: dict[str, str]) -> bool:
    """Does a tag set satisfy the filter's tag clauses? Tag names compare case-insensitively, values exactly."""
    folded = {name.lower(): value for name, value in tags.items()}
    if wanted.tag_name is not None:
        if wanted.tag_name.lower() not in folded:
            return False
        return wanted.tag_value is None or folded[wanted.tag_name.lower()] == wanted.tag_value
    if wanted.tag_name_prefix is not None:
        return any(name.startswith(wanted.tag_name_prefix.lower()) for name in folded)
    return True


EXPANDABLE = {"createdtime": "createdTime", "changedtime": "changedTime", "provisioningstate": "provisioningState"}


def parse_resource_expand(text: str | None) -> frozenset[str]:
    """``$expand=createdTime,changedTime,provisioningState`` (any of them) → the set of their canonical names."""
    if text is None or not text.strip():
        return frozenset()
    names = set()
    for item in text.split(","):
        name = EXPANDABLE.get(item.strip().lower())
        if name is None:
            supported = ", ".join(EXPANDABLE.values())
            raise FilterError(f"The $expand value '{item.strip()[:60]}' is not supported; use any of {supported}.")
        names.add(name)
    return frozenset(names)
