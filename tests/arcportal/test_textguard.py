"""The pure text guard (arcportal/textguard.py): what it refuses, where it says the problem is, and that deep
nesting is refused before the recursive parser runs."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arcportal import textguard
from arcportal.textguard import TextRefused, json_loads, text_problem


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("ok", None),
        ("a\x00b", "NUL"),
        ("a\ud800", "lone surrogate (U+D800)"),
        ("\udfff", "lone surrogate (U+DFFF)"),
        ("x" * 11, "longer than 10"),
        ("😀 é ß", None),  # real astral characters and accents are fine
    ],
)
def test_text_problem(value, problem):
    found = text_problem(value, max_length=10)
    assert (found is None) if problem is None else (problem in found)


def test_json_nesting_is_refused_before_parsing():
    for raw in (b"[" * 5000, b"[" * 33 + b"]" * 33, b'{"a":' * 40 + b"1" + b"}" * 40):
        with pytest.raises(TextRefused, match="nests deeper than 32"):
            json_loads(raw)
    assert json_loads(b"[" * 32 + b"]" * 32) is not None
    assert json_loads(json.dumps(["[" * 42])) == ["[" * 42]  # brackets inside strings don't count


def test_json_refusals_name_their_target():
    with pytest.raises(TextRefused) as refused:
        json_loads(json.dumps({"properties": {"settings": {"cmd": "echo \x00"}}}))
    assert refused.value.target == "properties.settings.cmd" and "NUL" in refused.value.message
    with pytest.raises(TextRefused) as refused:
        json_loads(b'{"tags": {"env\\ud800": "x"}}')
    assert refused.value.target == "tags.env\\ud800"  # printable: the message itself can always be encoded
    with pytest.raises(TextRefused, match="more than 30 digits"):
        json_loads(b'{"n": ' + b"9" * 5000 + b"}")
    with pytest.raises(TextRefused, match="not valid JSON"):
        json_loads(b"{")
    with pytest.raises(TextRefused, match="not valid UTF-8"):
        json_loads(b'{"a": "\xed\xa0\x80"}')
    with pytest.raises(TextRefused, match="larger than"):
        json_loads(b" " * (textguard.MAX_JSON_BYTES + 1))


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.text(),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(), c, max_size=3),
        max_leaves=20,
    )
)
def test_any_json_either_round_trips_or_is_refused_with_a_reason(value):
    raw = json.dumps(value)
    try:
        assert json_loads(raw) == value
    except TextRefused as exc:
        assert exc.message and ("\x00" in raw or "\\u0000" in raw or "\\ud" in raw.lower() or "nests" in exc.message)
