"""What every service module of machines shares: turning a rule's ``ValueError`` into ``Invalid``, and the result of
an ARM PUT (created or replaced)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from arcportal.exceptions import Invalid


def checked(func, *args):
    """``func(*args)`` (a validation rule of ``machines.validation``); its ``ValueError`` becomes ``Invalid``."""
    try:
        return func(*args)
    except ValueError as exc:
        raise Invalid(str(exc)) from exc


@dataclass(frozen=True)
class Upsert:
    instance: Any
    created: bool
