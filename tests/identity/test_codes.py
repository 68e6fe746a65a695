"""Pure rules of device codes (RFC 8628): no database, no Django."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identity import codes

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_user_code_has_two_groups_of_four_from_the_unambiguous_alphabet():
    for _ in range(200):
        code = codes.new_user_code()
        assert len(code) == 9 and code[4] == "-"
        assert all(ch in codes.USER_CODE_ALPHABET for ch in code.replace("-", ""))


def test_alphabet_has_no_look_alike_characters():
    for ambiguous in "0O1IL2Z5S8BUV":
        assert ambiguous not in codes.USER_CODE_ALPHABET


def test_new_user_code_uses_the_random_source():
    assert codes.new_user_code(randbelow=lambda n: 0) == "3333-3333"
    assert codes.new_user_code(randbelow=lambda n: n - 1) == "YYYY-YYYY"


@pytest.mark.parametrize("typed", ["wdjh-mjht", "WDJHMJHT", " wdjh mjht ", "WD-JH-MJ-HT", "wDjH\tMjHt"])
def test_normalisation_ignores_case_dashes_and_spaces(typed):
    assert codes.normalize_user_code(typed) == "WDJH-MJHT"


@pytest.mark.parametrize("typed", ["", "WDJH-MJH", "WDJH-MJHTX", "WDJH-MJH0", "WDJH-MJHO", "WDJH_MJHT", "ÄDJH-MJHT"])
def test_normalisation_rejects_what_cannot_be_a_code(typed):
    assert codes.normalize_user_code(typed) is None


@given(st.text(alphabet=codes.USER_CODE_ALPHABET, min_size=8, max_size=8))
def test_every_code_round_trips_through_any_casing(raw):
    display = codes.format_user_code(raw)
    assert codes.normalize_user_code(display.lower()) == display
    assert codes.normalize_user_code(raw) == display


def test_device_codes_are_long_unique_and_hashed_stably():
    first, second = codes.new_device_code(), codes.new_device_code()
    assert first != second and len(first) >= 43
    assert codes.hash_device_code(first) == codes.hash_device_code(first)
    assert codes.hash_device_code(first) != codes.hash_device_code(second)
    assert len(codes.hash_device_code(first)) == 64 and first not in codes.hash_device_code(first)


def test_codes_expire_after_fifteen_minutes_exactly():
    expires = codes.expires_at(now=NOW)
    assert expires == NOW + timedelta(minutes=15)
    assert not codes.is_expired(now=expires - timedelta(microseconds=1), expires=expires)
    assert codes.is_expired(now=expires, expires=expires)
    assert codes.expires_in_seconds(now=NOW, expires=expires) == 900
    assert codes.expires_in_seconds(now=expires + timedelta(minutes=1), expires=expires) == 0


def test_first_poll_is_never_too_fast():
    verdict = codes.check_poll(now=NOW, last_polled_at=None, interval=timedelta(seconds=5))
    assert not verdict.too_fast and verdict.interval == timedelta(seconds=5)


def test_polling_faster_than_the_interval_slows_down_by_five_seconds():
    verdict = codes.check_poll(now=NOW, last_polled_at=NOW - timedelta(seconds=4), interval=timedelta(seconds=5))
    assert verdict.too_fast and verdict.interval == timedelta(seconds=10)


def test_polling_at_the_interval_is_fine():
    verdict = codes.check_poll(now=NOW, last_polled_at=NOW - timedelta(seconds=5), interval=timedelta(seconds=5))
    assert not verdict.too_fast


def test_slow_down_is_capped():
    verdict = codes.check_poll(now=NOW, last_polled_at=NOW, interval=codes.MAX_INTERVAL)
    assert verdict.too_fast and verdict.interval == codes.MAX_INTERVAL


def test_sign_in_message_is_the_microsoft_wording():
    assert codes.sign_in_message(verification_uri="https://portal/devicelogin", user_code="WDJH-MJHT") == (
        "To sign in, use a web browser to open the page https://portal/devicelogin and enter the code WDJH-MJHT "
        "to authenticate."
    )
