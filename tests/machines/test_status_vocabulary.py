"""One status vocabulary (issue 11): ``machines.status.VOCABULARY`` is the only definition of what the portal calls
each status, and every place that shows a status reads it from there: badges, counts and the filter menu, the
filter parser, choices, the timeline, the CSV column and the ARM schema's enum."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from machines import status as rules
from machines import timeline
from machines.choices import MachineStatus
from machines.filters import STATUS_CHOICES, StatusField
from tests.astutil import parse

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_the_vocabulary_covers_every_status_once():
    assert sorted(word.value for word in rules.VOCABULARY) == sorted(rules.ALL_STATUSES)
    assert [rules.status_name(s) for s in rules.ALL_STATUSES] == [
        "Not connected yet",
        "Connected",
        "Offline",
        "Expired",
    ]
    assert [rules.portal_label(s) for s in rules.ALL_STATUSES] == ["", "Connected", "Offline", "Expired"]
    assert rules.status_css("Bogus") == rules.UNKNOWN_CSS and rules.status_name("Bogus") == "Bogus"


def test_the_filter_menu_and_the_choices_use_the_vocabulary():
    assert [(word.value, word.name) for word in rules.VOCABULARY] == STATUS_CHOICES
    assert dict(MachineStatus.choices) == {word.value: word.name for word in rules.VOCABULARY}


@pytest.mark.parametrize("text", ["Offline", "offline", "Disconnected", "DISCONNECTED", " offline "])
def test_a_query_names_a_status_by_its_value_or_its_word(text):
    assert rules.parse_status(text) == rules.DISCONNECTED
    assert StatusField().clean(text) == rules.DISCONNECTED


def test_not_connected_yet_is_awaiting_and_a_wrong_word_is_refused():
    assert rules.parse_status("not connected yet") == rules.AWAITING
    assert rules.parse_status("Awaiting connection") is None


def test_the_timeline_names_bands_with_the_vocabulary():
    bands = timeline.status_bands(
        events=[], last_heartbeat_at=None, now=NOW, thresholds=rules.StatusThresholds(), created_at=NOW - timedelta(1)
    )
    assert [band.label for band in bands] == ["Not connected yet"]
    assert [label for _, label, _ in timeline.legend(bands, now=NOW) if label != "Not registered yet"] == [
        "Not connected yet"
    ]


def test_the_arm_schema_enum_is_the_status_module_s():
    from machines.api import serializers

    assert rules.ARM_STATUS_VALUES == ("Connected", "Disconnected", "Error", "AwaitingConnection", "Expired")
    field = serializers.MachinePropertiesOutput().fields["status"]
    assert field is not None  # the schema's enum is built from rules.ARM_STATUS_VALUES (test_openapi checks it)


def test_no_other_module_spells_the_words():
    """The words live in machines/status.py only: no string in any other module is a status word."""
    words = {"Offline", "Not connected yet", "Awaiting connection", "No status"}
    offenders = []
    for path in ROOT.glob("*/**/*.py"):
        relative = path.relative_to(ROOT)
        if (
            relative.parts[0] in ("tests", "agent", ".venv", ".venv-az", "var", "bench")
            or "migrations" in relative.parts
        ):
            continue
        if relative.as_posix() == "machines/status.py":
            continue
        constants = {node.value for node in ast.walk(parse(path)) if isinstance(node, ast.Constant)}
        if constants & words:
            offenders.append(f"{relative.as_posix()}: {sorted(constants & words)}")
    assert not offenders, offenders
