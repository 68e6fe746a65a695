"""Naming and tag rules of Azure (ARC-REFERENCE.md §7). Pure: used by forms, services and the ARM API alike.

Each function returns the cleaned value or raises ``ValueError`` with a message meant for the user.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from machines.regions import REGIONS, normalize_location

MACHINE_NAME_RE = re.compile(r"^[a-zA-Z0-9\-_.]{1,54}$")
EXTENSION_NAME_RE = re.compile(r"^[a-zA-Z0-9\-_.]{1,64}$")
MAX_TAGS = 50
MAX_TAG_NAME = 512
MAX_TAG_VALUE = 256
FORBIDDEN_TAG_NAME_CHARS = set("<>%&\\?/")
RESOURCE_GROUP_PUNCTUATION = set("_-.()")


def validate_resource_group_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError("The resource group name is required.")
    if len(name) > 90:
        raise ValueError("The resource group name must be 1 to 90 characters long.")
    for char in name:
        if char in RESOURCE_GROUP_PUNCTUATION:
            continue
        category = unicodedata.category(char)
        if not (category.startswith("L") or category == "Nd"):
            raise ValueError(
                "The resource group name can only contain letters, digits, underscores, hyphens, periods and "
                f"parentheses; {char!r} is not allowed."
            )
    if name.endswith("."):
        raise ValueError("The resource group name can't end with a period.")
    return name


def validate_machine_name(name: str) -> str:
    if not isinstance(name, str) or not MACHINE_NAME_RE.match(name):
        raise ValueError(
            "The machine name must be 1 to 54 characters of letters, digits, hyphens, underscores and periods."
        )
    return name


def validate_extension_name(name: str) -> str:
    if not isinstance(name, str) or not EXTENSION_NAME_RE.match(name):
        raise ValueError("The extension name must be 1 to 64 characters of letters, digits, '-', '_' and '.'.")
    return name


def validate_location(value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("A location is required.")
    location = normalize_location(value)
    if location not in REGIONS:
        raise ValueError(f"'{value}' is not a supported region. Use one of: {', '.join(sorted(REGIONS))}.")
    return location


def validate_tag_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError("A tag name can't be empty.")
    if len(name) > MAX_TAG_NAME:
        raise ValueError(f"The tag name '{name[:40]}…' is longer than {MAX_TAG_NAME} characters.")
    bad = sorted(FORBIDDEN_TAG_NAME_CHARS.intersection(name))
    if bad:
        raise ValueError(f"The tag name '{name}' can't contain {' '.join(bad)} (< > % & \\ ? / are not allowed).")
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise ValueError(f"The tag name {name!r} can't contain control characters.")
    return name


def validate_tag_value(name: str, value: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"The value of tag '{name}' must be a string.")
    if len(value) > MAX_TAG_VALUE:
        raise ValueError(f"The value of tag '{name}' is longer than {MAX_TAG_VALUE} characters.")
    return value


def validate_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    """A whole tag set: at most 50 pairs, names unique case-insensitively, each name and value valid."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise ValueError("Tags must be an object of names to string values.")
    if len(tags) > MAX_TAGS:
        raise ValueError(f"A resource can have at most {MAX_TAGS} tags; {len(tags)} were given.")
    cleaned: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in tags.items():
        validate_tag_name(name)
        validate_tag_value(name, value)
        folded = name.casefold()
        if folded in seen:
            raise ValueError(f"The tag name '{name}' is given twice (tag names are case-insensitive).")
        seen.add(folded)
        cleaned[name] = value
    return cleaned
