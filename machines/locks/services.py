"""Writes of management locks; each records its activity event in its own transaction."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import IntegrityError, transaction

from arcportal import activity
from arcportal.arm import ids
from arcportal.exceptions import Invalid, NotFound
from machines import selectors
from machines.locks import rules
from machines.locks.models import ManagementLock
from machines.services.common import Upsert, checked


def lock_scope_resolve(*, scope: str) -> str:
    """The canonical id of an existing lockable scope, spelled with its rows' names; 404 if it does not exist."""
    try:
        parsed = rules.lockable(scope)
    except ValueError as exc:
        raise Invalid(str(exc), code="InvalidScope") from exc
    subscription = selectors.subscription_get(subscription_id=parsed.subscription)
    if subscription is None:
        raise NotFound(f"The subscription '{parsed.subscription}' could not be found.", code="SubscriptionNotFound")
    sub = str(subscription.subscription_id)
    if parsed.resource_group is None:
        return ids.subscription_id(sub)
    group = selectors.resource_group_get(subscription=subscription, name=parsed.resource_group)
    if group is None:
        raise NotFound(f"Resource group '{parsed.resource_group}' could not be found.", code="ResourceGroupNotFound")
    if parsed.machine is None:
        return ids.resource_group_id(sub, group.name)
    machine = selectors.machine_get(resource_group=group, name=parsed.machine)
    if machine is None:
        raise NotFound(
            f"The Resource '{ids.MACHINE_TYPE}/{parsed.machine}' under resource group '{group.name}' was not found.",
            code="ResourceNotFound",
        )
    return ids.machine_id(sub, group.name, machine.name)


def _owners(owners: Sequence[object] | None) -> list[dict[str, str]]:
    result = []
    for owner in owners or []:
        application_id = owner.get("applicationId") if isinstance(owner, dict) else None
        if not isinstance(application_id, str) or not 1 <= len(application_id) <= 128:
            raise Invalid("Each lock owner must be an object with an 'applicationId' string.", code="InvalidOwner")
        result.append({"applicationId": application_id})
    if len(result) > 20:
        raise Invalid("A lock has at most 20 owners.", code="InvalidOwner")
    return result


@transaction.atomic
def lock_create_or_update(
    *,
    scope: str,
    name: str,
    level: str,
    notes: str = "",
    owners: Sequence[object] | None = None,
    caller: str = "",
) -> Upsert:
    """Create or replace the lock ``name`` on ``scope`` (ARM PUT). Who may is the caller's to check
    (``arcportal.authz.LOCKS_WRITE``)."""
    name = checked(rules.validate_lock_name, name)
    level = checked(rules.validate_level, level)
    if not isinstance(notes, str) or len(notes) > 512:
        raise Invalid("The lock notes must be a string of at most 512 characters.", code="InvalidNotes")
    owner_list = _owners(owners)
    canonical = lock_scope_resolve(scope=scope)
    key, name_key = rules.key_of(canonical), ids.fold_name(name)
    lock = ManagementLock.objects.select_for_update().filter(scope_key=key, name_key=name_key).first()
    created = lock is None
    if created:
        lock = ManagementLock(scope=canonical, scope_key=key, name=name, name_key=name_key, created_by=caller)
    lock.level, lock.notes, lock.owners = level, notes, owner_list
    try:
        with transaction.atomic():
            lock.save()
    except IntegrityError:  # a concurrent PUT of the same name created it first: replace that one
        lock = ManagementLock.objects.select_for_update().get(scope_key=key, name_key=name_key)
        lock.level, lock.notes, lock.owners = level, notes, owner_list
        lock.save()
        created = False
    activity.record(
        operation="Microsoft.Authorization/locks/write",
        status="Succeeded",
        resource_id=lock.arm_id,
        caller=caller,
        properties={"level": level, "notes": notes},
    )
    return Upsert(lock, created)


@transaction.atomic
def lock_delete(*, lock: ManagementLock, caller: str = "") -> None:
    arm_id = lock.arm_id
    lock.delete()
    activity.record(
        operation="Microsoft.Authorization/locks/delete", status="Succeeded", resource_id=arm_id, caller=caller
    )
