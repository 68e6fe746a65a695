"""Parse the ``--tags`` argument of ``azcmagent connect`` (format: docs/tags-format.md). Pure Python.

``Datacenter=CH01,City=Baar,Owner='Shared Infrastructure Services',Note='it''s, a=b'`` →
``{"Datacenter": "CH01", "City": "Baar", "Owner": "Shared Infrastructure Services", "Note": "it's, a=b"}``.

A name or value is either single-quoted (``''`` stands for one ``'``; everything else, including ``,`` ``=`` ``"``
whitespace and newlines, is literal) or bare (it runs to the next ``=`` for a name, to the next ``,`` for a value,
and surrounding whitespace is dropped). Tag names are case-insensitive, so a name given twice is an error.
"""

from __future__ import annotations


class TagsFormatError(ValueError):
    """The ``--tags`` argument does not follow the format; the message says where."""


def _skip_spaces(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _quoted(text: str, pos: int) -> tuple[str, int]:
    """Read a quoted token starting at ``text[pos] == "'"``; return it and the position after the closing quote."""
    chars: list[str] = []
    pos += 1
    while True:
        end = text.find("'", pos)
        if end < 0:
            raise TagsFormatError(f"Unterminated quote in --tags at position {pos}.")
        chars.append(text[pos:end])
        if text.startswith("''", end):
            chars.append("'")
            pos = end + 2
            continue
        return "".join(chars), end + 1


def _token(text: str, pos: int, stops: str) -> tuple[str, int]:
    pos = _skip_spaces(text, pos)
    if pos < len(text) and text[pos] == "'":
        value, pos = _quoted(text, pos)
        return value, _skip_spaces(text, pos)
    end = pos
    while end < len(text) and text[end] not in stops:
        if text[end] == "'":
            raise TagsFormatError(f"Unexpected quote in --tags at position {end}; quote the whole name or value.")
        end += 1
    return text[pos:end].strip(" \t"), end


def parse_tags(text: str) -> dict[str, str]:
    """The tags in a ``--tags`` argument, in order. Raises ``TagsFormatError`` on malformed input."""
    tags: dict[str, str] = {}
    seen: set[str] = set()
    if not text.strip(" \t"):
        return tags
    pos = 0
    while True:
        name, pos = _token(text, pos, "=,")
        if pos >= len(text) or text[pos] != "=":
            raise TagsFormatError(f"Expected '=' after the tag name {name!r} in --tags.")
        if not name:
            raise TagsFormatError(f"Empty tag name in --tags at position {pos}.")
        value, pos = _token(text, pos + 1, ",")
        if name.casefold() in seen:
            raise TagsFormatError(f"The tag name {name!r} is given twice in --tags.")
        seen.add(name.casefold())
        tags[name] = value
        if pos >= len(text):
            return tags
        if text[pos] != ",":
            raise TagsFormatError(f"Expected ',' after the value of tag {name!r} in --tags at position {pos}.")
        pos += 1
