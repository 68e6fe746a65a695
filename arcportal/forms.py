"""Django-forms adapter of ``arcportal.textguard``: every portal form derives from ``GuardedForm``.

Before a field cleans its value (a ``ModelChoiceField`` would query the database with it), the raw value is checked:
NUL, lone surrogates, or more than ``textguard.MAX_FORM_TEXT`` characters make a field error and the field is not
cleaned, so nothing downstream ever sees the text. ``parse_id`` is the one way a form turns posted text into a
database id.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from arcportal import textguard


def parse_id(value: object) -> int | None:
    """A database id from posted text: 1–18 ASCII digits, else None (``"²"``, 5,000 digits, ``"-1"``)."""
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        return None
    if len(value) > textguard.MAX_ID_DIGITS:
        return None
    return int(value)


def raw_problem(value: object, *, max_length: int | None) -> str | None:
    for item in value if isinstance(value, list | tuple) else [value]:
        if isinstance(item, str):
            problem = textguard.text_problem(item, max_length=max_length)
            if problem:
                return problem
    return None


class GuardedFormMixin:
    """Checks every field's raw value with the text guard before the field cleans it."""

    max_text_length = textguard.MAX_FORM_TEXT

    def _clean_fields(self):
        refused = []
        for name, bound in self._bound_items():
            if bound.field.disabled:
                continue
            limit = getattr(bound.field, "max_length", None) or self.max_text_length
            problem = raw_problem(bound.data, max_length=max(limit, self.max_text_length))
            if problem:
                refused.append(name)
                self.add_error(name, ValidationError(f"This value {problem}.", code="refused_text"))
        if not refused:
            return super()._clean_fields()
        fields, self.fields = self.fields, {k: v for k, v in self.fields.items() if k not in refused}
        try:
            return super()._clean_fields()
        finally:
            self.fields = fields


class GuardedForm(GuardedFormMixin, forms.Form):
    pass
