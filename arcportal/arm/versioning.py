"""``?api-version=`` on every ARM request (API-CONTRACT.md §3): required and well-formed, any date accepted.

Known versions are listed for documentation and the OpenAPI schema; well-formed unknown ones are accepted too,
because newer and older SDKs send other dates and the wire shapes we serve are the same.
"""

from __future__ import annotations

import datetime as dt
import re

from arcportal.arm.errors import ArmError

PARAMETER = "api-version"
API_VERSION_RE = re.compile(r"^(?P<date>\d{4}-\d{2}-\d{2})(?P<preview>-preview)?$")

# What the official SDKs send (API-CONTRACT.md header table and notes).
HYBRIDCOMPUTE_VERSIONS = ("2026-07-15", "2025-06-01", "2025-01-13", "2024-07-10")
RESOURCES_VERSIONS = ("2025-04-01", "2025-03-01", "2021-04-01")
SUBSCRIPTIONS_VERSIONS = ("2022-12-01", "2021-01-01")
SUPPORTED_VERSIONS = (*HYBRIDCOMPUTE_VERSIONS, *RESOURCES_VERSIONS, *SUBSCRIPTIONS_VERSIONS)


def parse_api_version(value: str | None) -> str:
    """The api-version if it is ``YYYY-MM-DD[-preview]`` with a real date; otherwise an ARM 400."""
    if value is None or value == "":
        raise ArmError(
            "The api-version query parameter (?api-version=) is required for all requests.",
            code="MissingApiVersionParameter",
            status=400,
            target=PARAMETER,
        )
    match = API_VERSION_RE.match(value)
    valid = match is not None
    if match:
        try:
            dt.date.fromisoformat(match["date"])
        except ValueError:
            valid = False
    if not valid:
        raise ArmError(
            f"The api-version '{value}' is invalid. The supported format is 'YYYY-MM-DD' or 'YYYY-MM-DD-preview'.",
            code="InvalidApiVersionParameter",
            status=400,
            target=PARAMETER,
        )
    return value


def request_api_version(request) -> str:
    """Read and check the api-version of a Django or DRF request."""
    values = request.GET.getlist(PARAMETER)
    return parse_api_version(values[-1] if values else None)
