"""Resource groups: create (ARM PUT semantics too), update tags, delete with everything in them."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from django.db import IntegrityError, transaction

from arcportal import activity
from arcportal.arm import ids
from arcportal.exceptions import Conflict
from identity.role_assignments import role_assignments_forget
from machines import validation
from machines.locks.enforcement import lock_guard_delete, lock_guard_write
from machines.models import ResourceGroup, Subscription
from machines.services.common import Upsert, checked

logger = logging.getLogger("machines.services")

WRITE = "Microsoft.Resources/subscriptions/resourceGroups/write"
DELETE = "Microsoft.Resources/subscriptions/resourceGroups/delete"


def _recorded(group: ResourceGroup, operation: str, actor: str = "") -> None:
    activity.record(operation=operation, status="Succeeded", resource_id=group.arm_id, caller=actor)


@transaction.atomic
def resource_group_create(
    *, subscription: Subscription, name: str, location: str, tags: Mapping[str, str] | None = None
) -> ResourceGroup:
    name = checked(validation.validate_resource_group_name, name)
    location = checked(validation.validate_location, location)
    tags = checked(validation.validate_tags, tags)
    if ResourceGroup.objects.filter(subscription=subscription, name__iexact_ascii=name).exists():
        raise Conflict(f"A resource group named '{name}' already exists.", code="ResourceGroupExists")
    lock_guard_write(resource_id=ids.resource_group_id(str(subscription.subscription_id), name))
    try:
        with transaction.atomic():
            group = ResourceGroup.objects.create(subscription=subscription, name=name, location=location, tags=tags)
            _recorded(group, WRITE)
            return group
    except IntegrityError as exc:
        raise Conflict(f"A resource group named '{name}' already exists.", code="ResourceGroupExists") from exc


@transaction.atomic
def resource_group_create_or_update(
    *,
    subscription: Subscription,
    name: str,
    location: str,
    tags: Mapping[str, str] | None = None,
    managed_by: str = "",
) -> Upsert:
    """ARM PUT semantics: create, or replace tags of an existing group; the location can't change."""
    name = checked(validation.validate_resource_group_name, name)
    location = checked(validation.validate_location, location)
    tags = checked(validation.validate_tags, tags)
    existing = (
        ResourceGroup.objects.select_for_update().filter(subscription=subscription, name__iexact_ascii=name).first()
    )
    if existing is None:
        group = resource_group_create(subscription=subscription, name=name, location=location, tags=tags)
        if managed_by:
            group.managed_by = managed_by
            group.save(update_fields=["managed_by"])
        return Upsert(group, True)
    if existing.location != location:
        raise Conflict(
            f"Invalid resource group location '{location}'. The Resource group already exists in location "
            f"'{existing.location}'.",
            code="InvalidResourceGroupLocation",
        )
    lock_guard_write(resource_id=existing.arm_id)
    existing.tags = tags
    existing.managed_by = managed_by or existing.managed_by
    existing.save(update_fields=["tags", "managed_by", "updated_at"])
    _recorded(existing, WRITE)
    return Upsert(existing, False)


@transaction.atomic
def resource_group_update_tags(*, resource_group: ResourceGroup, tags: Mapping[str, str]) -> ResourceGroup:
    lock_guard_write(resource_id=resource_group.arm_id)
    resource_group.tags = checked(validation.validate_tags, tags)
    resource_group.save(update_fields=["tags", "updated_at"])
    _recorded(resource_group, WRITE)
    return resource_group


@transaction.atomic
def resource_group_delete(*, resource_group: ResourceGroup, actor: str = "", actor_type: str = "User") -> int:
    """Delete a group and, as Azure does, every machine and extension in it. Returns the machines deleted. Logged
    with who did it, like ``machine_delete``."""
    machine_count = resource_group.machines.count()
    arm_id = resource_group.arm_id
    lock_guard_delete(resource_id=arm_id)  # locks on the group, above it, or on a machine inside it
    identities = list(resource_group.machines.values_list("identity_principal_id", flat=True))
    role_assignments_forget(scopes=[arm_id], principal_ids=identities)
    resource_group.delete()
    activity.record(
        operation=DELETE, status="Succeeded", resource_id=arm_id, caller=actor, properties={"machines": machine_count}
    )
    logger.info(
        "resource group %s deleted with its %d machines by %s (%s)", arm_id, machine_count, actor or "-", actor_type
    )
    return machine_count
