"""Path converters of portal URLs: ``<id:pk>`` is a database id of at most 18 digits (``textguard.MAX_ID_DIGITS``),
so a 5,000-digit id is simply no match (404), never an overflow in ``int()`` or in the database."""

from __future__ import annotations

from django.urls import register_converter

from arcportal import textguard


class IdConverter:
    regex = f"[0-9]{{1,{textguard.MAX_ID_DIGITS}}}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(int(value))


register_converter(IdConverter, "id")
