"""Locks enforced in the services layer: every write or delete of a caller asks here first (portal, ARM, agent
registration, cascading deletes). Heartbeats and the status sweep are not a caller's writes and never ask.

``ReadOnly`` on a scope or above refuses writes and deletes; ``CanNotDelete`` refuses deletes. Deleting a scope
also refuses when any lock lies *below* it (a machine locked inside a group being deleted): the cascade would
delete it."""

from __future__ import annotations

from arcportal.exceptions import Conflict
from machines.locks.models import LockLevel, ManagementLock
from machines.locks.rules import ancestor_keys, key_of


class ScopeLocked(Conflict):
    code = "ScopeLocked"
    status = 409


def _refuse(resource_id: str, operation: str, lock: ManagementLock) -> ScopeLocked:
    return ScopeLocked(
        f"The scope '{resource_id}' cannot perform {operation} operation because following scope(s) are locked: "
        f"'{lock.arm_id}' ({lock.level}). Please remove the lock and try again.",
        target=lock.arm_id,
    )


def lock_guard_write(*, resource_id: str) -> None:
    """Raise ``ScopeLocked`` (409) if a ``ReadOnly`` lock covers ``resource_id``."""
    lock = ManagementLock.objects.filter(scope_key__in=ancestor_keys(resource_id), level=LockLevel.READ_ONLY).first()
    if lock is not None:
        raise _refuse(resource_id, "write", lock)


def lock_guard_delete(*, resource_id: str) -> None:
    """Raise ``ScopeLocked`` (409) if any lock covers ``resource_id`` or lies under it."""
    key = key_of(resource_id)
    lock = (
        ManagementLock.objects.filter(scope_key__in=ancestor_keys(resource_id)).first()
        or ManagementLock.objects.filter(scope_key__startswith=key + "/").first()
    )
    if lock is not None:
        raise _refuse(resource_id, "delete", lock)
