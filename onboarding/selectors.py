"""Reads of the onboarding pages: the onboarding errors list and the machine page's onboarding panel."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from onboarding.models import OnboardingFailure, ScriptGeneration


def onboarding_failure_list(*, correlation_id: str = "") -> QuerySet[OnboardingFailure]:
    qs = OnboardingFailure.objects.order_by("-received_at", "-id")
    if correlation_id:
        qs = qs.filter(correlation_id__iexact=correlation_id.strip())
    return qs


def script_generations_by_correlation_id(correlation_ids: Iterable[str]) -> dict[str, ScriptGeneration]:
    """``{correlation id (lowercase, as sent): ScriptGeneration}`` for the ids that parse as GUIDs."""
    wanted: dict[uuid.UUID, list[str]] = {}
    for raw in correlation_ids:
        try:
            wanted.setdefault(uuid.UUID(str(raw)), []).append(raw)
        except ValueError:
            continue
    found: dict[str, ScriptGeneration] = {}
    if not wanted:
        return found
    for generation in ScriptGeneration.objects.select_related("created_by").filter(Q(correlation_id__in=list(wanted))):
        for raw in wanted.get(generation.correlation_id, []):
            found[raw] = generation
    return found


@dataclass(frozen=True)
class FailureRow:
    failure: OnboardingFailure
    generation: ScriptGeneration | None


def onboarding_failure_rows(failures: Iterable[OnboardingFailure]) -> list[FailureRow]:
    """Each failure with the ScriptGeneration of its correlation id (who generated the script, when)."""
    failures = list(failures)
    generations = script_generations_by_correlation_id(f.correlation_id for f in failures)
    return [FailureRow(failure=f, generation=generations.get(f.correlation_id)) for f in failures]
