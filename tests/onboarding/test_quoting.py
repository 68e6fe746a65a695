"""quoting.py (pure) and the agent's tags parser: round trips through the real shells' rules."""

import subprocess

import pytest
from azcmagent.tags import TagsFormatError, parse_tags
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onboarding.quoting import PS_SINGLE_QUOTES, format_tags, ps_quote, sh_quote

HOSTILE = [
    "'; rm -rf ~; '",
    "$(touch /tmp/pwned)",
    "`whoami`",
    '"; Remove-Item C:\\ -Recurse; "',
    "$env:PATH",
    "line one\nline two\r\n\ttabbed",
    "Zürich – 東京 ‘quoted’ ‚low‛",
    "a,b=c",
    "it's",
    "\\",
    "${IFS}!!",
    "",
]
# Text that a tag value can hold: anything but NUL (and surrogates, which are not text).
values = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
hostile_or_random = st.one_of(st.sampled_from(HOSTILE), values)


def bash_echo(word: str) -> bytes:
    return subprocess.run(
        ["bash", "-c", f"printf '%s' {word}"], capture_output=True, check=True, env={"PATH": "/usr/bin:/bin"}
    ).stdout


@pytest.mark.parametrize("value", HOSTILE)
def test_sh_quote_is_one_bash_word_with_the_exact_text(value):
    assert bash_echo(sh_quote(value)) == value.encode()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_sh_quote_round_trips_any_text_through_bash(value):
    assert bash_echo(sh_quote(value)) == value.encode()


def test_sh_quote_escapes_the_single_quote_the_posix_way():
    assert sh_quote("it's") == "'it'\\''s'"


def test_quoting_refuses_nul():
    with pytest.raises(ValueError):
        sh_quote("a\x00b")
    with pytest.raises(ValueError):
        ps_quote("a\x00b")


def powershell_verbatim(literal: str) -> tuple[str, str]:
    """PowerShell's tokenizer for a single-quoted string (Tokenizer.ScanStringLiteral): a string starts and ends at any
    of ' ‘ ’ ‚ ‛; two of them in a row stand for the second one. Returns (value, rest of the input)."""
    assert literal[0] in PS_SINGLE_QUOTES
    out, i = [], 1
    while i < len(literal):
        char = literal[i]
        if char in PS_SINGLE_QUOTES:
            if i + 1 < len(literal) and literal[i + 1] in PS_SINGLE_QUOTES:
                out.append(literal[i + 1])
                i += 2
                continue
            return "".join(out), literal[i + 1 :]
        out.append(char)
        i += 1
    raise AssertionError("unterminated string")


@pytest.mark.parametrize("value", [*HOSTILE, "‘", "’’", "‚'‛"])
def test_ps_quote_is_one_verbatim_string_with_the_exact_text(value):
    assert powershell_verbatim(ps_quote(value)) == (value, "")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab '\"$`\n" + PS_SINGLE_QUOTES)), max_size=30) | values)
def test_ps_quote_round_trips_any_text_through_powershells_rules(value):
    assert powershell_verbatim(ps_quote(value)) == (value, "")


def test_ps_quote_doubles_every_kind_of_single_quote():
    assert ps_quote("a'b‘c’d‚e‛f") == "'a''b‘‘c’’d‚‚e‛‛f'"


# --- --tags: format_tags (portal) and parse_tags (agent) -----------------------------------------------------------

tag_names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="<>%&\\?/"), min_size=1, max_size=30
).filter(lambda s: s.strip())
tag_sets = st.dictionaries(
    st.one_of(st.sampled_from(["Owner", "it's", "a=b", "x,y", 'q"uote', "$env:PATH", "`whoami`", "Zürich"]), tag_names),
    hostile_or_random,
    max_size=8,
).filter(lambda d: len({k.casefold() for k in d}) == len(d))


@settings(max_examples=300, deadline=None)
@given(tag_sets)
def test_parse_tags_reads_back_what_format_tags_writes(tags):
    assert parse_tags(format_tags(tags)) == tags


def test_format_tags_quotes_like_the_azure_cli_documents():
    assert format_tags({"Owner": "Shared Infrastructure Services", "City": "Baar"}) == (
        "Owner='Shared Infrastructure Services',City=Baar"
    )
    assert format_tags({"Note": "it's, a=b"}) == "Note='it''s, a=b'"
    assert format_tags({"Empty": ""}) == "Empty=''"


def test_parse_tags_reads_the_real_portal_format():
    assert parse_tags("Datacenter=CH01,City=Baar,StateOrDistrict=Zug,CountryOrRegion=Switzerland") == {
        "Datacenter": "CH01",
        "City": "Baar",
        "StateOrDistrict": "Zug",
        "CountryOrRegion": "Switzerland",
    }
    assert parse_tags("Owner='Shared Infrastructure Services', Env = prod") == {
        "Owner": "Shared Infrastructure Services",
        "Env": "prod",
    }
    assert parse_tags("") == {}


@pytest.mark.parametrize(
    "text", ["Owner", "=x", "a='unterminated", "a='x'y", "a=1,a=2", "A=1,a=2", "a=b'c", "a=1,,b=2", "'a'b=1"]
)
def test_parse_tags_rejects_malformed_input(text):
    with pytest.raises(TagsFormatError):
        parse_tags(text)
