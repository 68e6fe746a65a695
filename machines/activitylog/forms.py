"""The Activity log page's filters: time span (Azure's presets or custom), status, operation, caller."""

from __future__ import annotations

import datetime as dt

from django import forms

from arcportal.forms import GuardedForm

SPANS = {
    "1h": dt.timedelta(hours=1),
    "24h": dt.timedelta(hours=24),
    "7d": dt.timedelta(days=7),
    "30d": dt.timedelta(days=30),
}
MAX_SPAN = dt.timedelta(days=90)


class ActivityFilterForm(GuardedForm):
    timespan = forms.ChoiceField(
        choices=[("1h", "Last hour"), ("24h", "Last 24 hours"), ("7d", "Last 7 days"), ("30d", "Last 30 days"),
                 ("custom", "Custom")],
        required=False,
    )  # fmt: skip
    start = forms.DateTimeField(required=False, input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"])
    end = forms.DateTimeField(required=False, input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"])
    status = forms.ChoiceField(
        choices=[("", "All"), ("Succeeded", "Succeeded"), ("Failed", "Failed"), ("Started", "Started"),
                 ("Accepted", "Accepted")],
        required=False,
    )  # fmt: skip
    operation = forms.CharField(required=False, max_length=200)
    caller = forms.CharField(required=False, max_length=256)

    def window(self, *, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        """``(start, end)`` in UTC; call after ``is_valid()``."""
        data = self.cleaned_data
        span = data.get("timespan") or "24h"
        if span != "custom":
            return now - SPANS[span], now
        return data["start"], data["end"] or now

    def clean(self):
        data = super().clean()
        if data.get("timespan") == "custom":
            start, end = data.get("start"), data.get("end")
            if start is None:
                self.add_error("start", "A custom time span needs a start.")
            elif end is not None and end < start:
                self.add_error("end", "The end is before the start.")
            elif end is not None and end - start > MAX_SPAN:
                self.add_error("end", "At most 90 days can be shown at once.")
        return data
