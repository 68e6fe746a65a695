"""One filter spec for machine lists: the portal's Machines blade and the ARM list operations (NetBox's filtersets).

``MachineFilterSet(data, queryset=..., now=...)`` takes plain query parameters, so any caller that can express its
query as ``{"status": "Connected", "tag": "env=prod", ...}`` reuses the same validation and the same SQL. Status is
derived at ``now`` from the indexed ``last_heartbeat_at`` (``querysets.status_q``), never read from the stored field.
Bad values are form errors (``filterset.errors``) with a message naming the value, never an exception.
"""

from __future__ import annotations

from datetime import datetime

import django_filters
from django import forms
from django.db.models import F, QuerySet, Value
from django.db.models.functions import Lower
from django.utils import timezone

from arcportal.forms import GuardedForm
from machines import status as rules
from machines import validation
from machines.choices import OsType
from machines.conf import status_thresholds
from machines.models import Machine, MachineTag
from machines.querysets import status_q
from machines.status import StatusThresholds

# The portal's word for each ARM status value (machines.status.VOCABULARY); both spellings, in any casing, are
# accepted in a query.
STATUS_CHOICES = [(word.value, word.name) for word in rules.VOCABULARY]

# ?sort= keys → ORDER BY. Status sorts by the heartbeat: Connected, Offline, Expired, then no status.
# Every ordering ends in the primary key so that pages never overlap or skip rows.
SORT_DEFAULT = "name"
SORTS = {
    "name": ([Lower("name").asc()], [Lower("name").desc()]),
    "status": (
        [F("last_heartbeat_at").desc(nulls_last=True)],
        [F("last_heartbeat_at").asc(nulls_first=True)],
    ),
    # The group's id breaks ties between same-named groups of different subscriptions, so that a page can be
    # read group by group (selectors.machine_page_ids) in exactly this order.
    "resource_group": (
        [Lower("resource_group__name").asc(), F("resource_group_id").asc(), Lower("name").asc()],
        [Lower("resource_group__name").desc(), F("resource_group_id").desc(), Lower("name").desc()],
    ),
    "location": ([F("location").asc(), Lower("name").asc()], [F("location").desc(), Lower("name").desc()]),
    "os": ([F("os_sku").asc(), Lower("name").asc()], [F("os_sku").desc(), Lower("name").desc()]),
    "agent_version": (
        [F("agent_version").asc(), Lower("name").asc()],
        [F("agent_version").desc(), Lower("name").desc()],
    ),
    "last_heartbeat": (
        [F("last_heartbeat_at").asc(nulls_first=True)],
        [F("last_heartbeat_at").desc(nulls_last=True)],
    ),
}
SORT_CHOICES = [(key, key) for key in SORTS] + [(f"-{key}", f"-{key}") for key in SORTS]


def order_machines(queryset: QuerySet[Machine], sort: str | None) -> QuerySet[Machine]:
    key = sort or SORT_DEFAULT
    descending = key.startswith("-")
    ascending_order, descending_order = SORTS[key.lstrip("-")]
    order = descending_order if descending else ascending_order
    return queryset.order_by(*order, "-pk" if descending else "pk")


# --- Form fields: parse and validate one query parameter each --------------------------------------------------


class StatusField(forms.CharField):
    def to_python(self, value):
        value = super().to_python(value).strip()
        if not value:
            return ""
        status = rules.parse_status(value)
        if status is None:
            allowed = ", ".join(value for value, _ in STATUS_CHOICES)
            raise forms.ValidationError(f"'{value}' is not a status. Use one of: {allowed}.", code="invalid_status")
        return status


class LocationField(forms.CharField):
    """A region's programmatic or display name, any casing ("West Europe" == "westeurope")."""

    def to_python(self, value):
        value = super().to_python(value).strip()
        if not value:
            return ""
        try:
            return validation.validate_location(value)
        except ValueError as exc:
            raise forms.ValidationError(str(exc), code="invalid_location") from exc


class TagField(forms.CharField):
    """``key=value`` (key case-insensitive, value exact) or ``key`` alone for "has this tag, any value"."""

    def to_python(self, value):
        value = super().to_python(value)
        if not value.strip():
            return None
        key, sep, tag_value = value.partition("=")
        key = key.strip()
        try:
            validation.validate_tag_name(key)
            validation.validate_tag_value(key, tag_value)
        except ValueError as exc:
            raise forms.ValidationError(
                f"'{value}' is not a tag filter: {exc} Write it as key=value.", code="invalid_tag"
            ) from exc
        return (key, tag_value if sep else None)


class SortField(forms.CharField):
    def to_python(self, value):
        value = super().to_python(value).strip()
        if value and value.lstrip("-") not in SORTS:
            raise forms.ValidationError(
                f"'{value}' is not a sortable column. Use one of: {', '.join(SORTS)} (prefix '-' for descending).",
                code="invalid_sort",
            )
        return value


class OsField(forms.CharField):
    def to_python(self, value):
        value = super().to_python(value).strip().lower()
        if value and value not in OsType.values:
            raise forms.ValidationError(
                f"'{value}' is not an operating system. Use one of: {', '.join(OsType.values)}.", code="invalid_os"
            )
        return value


class LocationFilter(django_filters.Filter):
    field_class = LocationField


class StatusFilter(django_filters.Filter):
    field_class = StatusField


class OsFilter(django_filters.Filter):
    field_class = OsField


class TagFilter(django_filters.Filter):
    field_class = TagField


class SortFilter(django_filters.Filter):
    field_class = SortField


class MachineFilterSet(django_filters.FilterSet):
    subscription = django_filters.UUIDFilter(
        field_name="resource_group__subscription__subscription_id",
        error_messages={"invalid": "The subscription must be a subscription ID (a GUID)."},
    )
    resource_group = django_filters.CharFilter(method="filter_resource_group", max_length=90)
    location = LocationFilter(field_name="location")
    status = StatusFilter(method="filter_status")
    os = OsFilter(field_name="os_name")
    tag = TagFilter(method="filter_tag")
    q = django_filters.CharFilter(method="filter_name", max_length=200)
    sort = SortFilter(method="filter_sort")

    class Meta:
        model = Machine
        fields: list[str] = []
        form = GuardedForm  # the text guard (arcportal.textguard) before any filter parses a value

    def __init__(self, data=None, queryset=None, *, now: datetime | None = None, thresholds=None, **kwargs):
        super().__init__(data, queryset=queryset, **kwargs)
        self.now = now or timezone.now()
        self.thresholds: StatusThresholds = thresholds or status_thresholds()

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        # ``sort`` is applied last and always, so a list without ?sort= is still in a stable order.
        return order_machines(queryset, self.form.cleaned_data.get("sort"))

    def filter_resource_group(self, queryset, name, value):
        return queryset.filter(resource_group__name__iexact_ascii=value.strip())

    def filter_status(self, queryset, name, value):
        return queryset.filter(status_q(value, now=self.now, thresholds=self.thresholds))

    def filter_tag(self, queryset, name, value):
        # An uncorrelated ``pk IN (…)``: the tags are found once through the (LOWER(key), value) index. A correlated
        # EXISTS is the same on PostgreSQL but SQLite runs it once per machine.
        key, tag_value = value
        tags = MachineTag.objects.annotate(lower_key=Lower("key")).filter(lower_key=Lower(Value(key)))
        if tag_value is not None:
            tags = tags.filter(value=tag_value)
        return queryset.filter(pk__in=tags.values("machine_id"))

    def filter_name(self, queryset, name, value):
        return queryset.filter(name__icontains=value.strip())

    def filter_sort(self, queryset, name, value):
        return queryset  # ordering happens in filter_queryset, after every filter

    def active_filters(self) -> dict[str, object]:
        """The filters that narrowed this list (valid, non-empty), for the filter pills and the empty state."""
        if not self.is_valid():
            return {}
        return {
            name: value
            for name, value in self.form.cleaned_data.items()
            if name != "sort" and value not in (None, "", [], ())
        }
