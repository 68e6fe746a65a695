"""Reads of management locks."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from arcportal.arm import ids
from machines.locks import rules
from machines.locks.models import ManagementLock


def lock_get(*, scope: str, name: str) -> ManagementLock | None:
    return ManagementLock.objects.filter(scope_key=rules.key_of(scope), name_key=ids.fold_name(name)).first()


def lock_list(*, scope: str) -> QuerySet[ManagementLock]:
    """The locks that apply to ``scope`` (on it or above it) and those under it, as Azure lists them."""
    key = rules.key_of(scope)
    return ManagementLock.objects.filter(
        Q(scope_key__in=rules.ancestor_keys(scope)) | Q(scope_key__startswith=key + "/")
    )


def lock_list_at(*, scope: str) -> QuerySet[ManagementLock]:
    """The locks placed on ``scope`` itself."""
    return ManagementLock.objects.filter(scope_key=rules.key_of(scope))


def lock_list_applying(*, scope: str) -> QuerySet[ManagementLock]:
    """The locks on ``scope`` or above it (``$filter=atScope()``)."""
    return ManagementLock.objects.filter(scope_key__in=rules.ancestor_keys(scope))
