"""Quoting of user values for the generated onboarding scripts, and the ``--tags`` wire format. PURE: no Django.

Every user-supplied value that reaches a script goes through exactly one function per shell:

- ``sh_quote``: a bash single-quoted word. Inside single quotes bash interprets nothing (no ``$``, backtick,
  backslash or history expansion), so the only character to handle is ``'`` itself: close the quote, add an
  escaped quote, reopen (``'`` → ``'\\''``).
- ``ps_quote``: a PowerShell single-quoted (verbatim) string. PowerShell ends such a string at any of four quote
  characters, the ASCII ``'`` and the typographic ``‘ ’ ‚ ‛``; doubling one of them yields it literally.

``format_tags`` writes tags in the ``--tags`` format documented in docs/tags-format.md; the agent's
``azcmagent.tags.parse_tags`` reads it back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# PowerShell's single-quote characters (System.Management.Automation.Language.CharExtensions.IsSingleQuote).
PS_SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"
_PS_QUOTE_RE = re.compile(f"[{PS_SINGLE_QUOTES}]")
# A tag name or value containing one of these (or any whitespace, or nothing at all) is written quoted.
TAG_SPECIAL_CHARS = frozenset(",='\"")


def _reject_nul(value: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"Only strings can be quoted, not {type(value).__name__}.")
    if "\x00" in value:
        raise ValueError("A value for a script can't contain a NUL character.")
    return value


def sh_quote(value: str) -> str:
    """``value`` as one bash word that expands to exactly ``value``."""
    return "'" + _reject_nul(value).replace("'", "'\\''") + "'"


def ps_quote(value: str) -> str:
    """``value`` as a PowerShell verbatim string literal that evaluates to exactly ``value``."""
    return "'" + _PS_QUOTE_RE.sub(lambda match: match.group(0) * 2, _reject_nul(value)) + "'"


def _tag_token(text: str) -> str:
    if text and not any(char in TAG_SPECIAL_CHARS or char.isspace() for char in text):
        return text
    return "'" + text.replace("'", "''") + "'"


def format_tags(tags: Mapping[str, str]) -> str:
    """``--tags`` argument: ``{"Owner": "Shared Services", "City": "Baar"}`` → ``Owner='Shared Services',City=Baar``.

    Names and values that contain ``,`` ``=`` ``'`` ``"`` or whitespace, or are empty, are single-quoted, with an
    embedded ``'`` doubled. The result is one argument: quote it for the shell with ``sh_quote``/``ps_quote``.
    """
    parts = []
    for name, value in tags.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError("Tag names and values must be strings.")
        parts.append(f"{_tag_token(_reject_nul(name))}={_tag_token(_reject_nul(value))}")
    return ",".join(parts)
