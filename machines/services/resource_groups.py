"""Resource groups: create (ARM PUT semantics too), update tags, delete with everything in them."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from django.db import IntegrityError, transaction

from arcportal.exceptions import Conflict
from identity.role_assignments import role_assignments_forget
from machines import validation
from machines.models import ResourceGroup, Subscription
from machines.services.common import Upsert, checked

logger = logging.getLogger("machines.services")


@transaction.atomic
def resource_group_create(
    *, subscription: Subscription, name: str, location: str, tags: Mapping[str, str] | None = None
) -> ResourceGroup:
    name = checked(validation.validate_resource_group_name, name)
    location = checked(validation.validate_location, location)
    tags = checked(validation.validate_tags, tags)
    if ResourceGroup.objects.filter(subscription=subscription, name__iexact_ascii=name).exists():
        raise Conflict(f"A resource group named '{name}' already exists.", code="ResourceGroupExists")
    try:
        with transaction.atomic():
            return ResourceGroup.objects.create(subscription=subscription, name=name, location=location, tags=tags)
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
    existing.tags = tags
    existing.managed_by = managed_by or existing.managed_by
    existing.save(update_fields=["tags", "managed_by", "updated_at"])
    return Upsert(existing, False)


@transaction.atomic
def resource_group_update_tags(*, resource_group: ResourceGroup, tags: Mapping[str, str]) -> ResourceGroup:
    resource_group.tags = checked(validation.validate_tags, tags)
    resource_group.save(update_fields=["tags", "updated_at"])
    return resource_group


@transaction.atomic
def resource_group_delete(*, resource_group: ResourceGroup, actor: str = "", actor_type: str = "User") -> int:
    """Delete a group and, as Azure does, every machine and extension in it. Returns the machines deleted. Logged
    with who did it, like ``machine_delete``."""
    machine_count = resource_group.machines.count()
    arm_id = resource_group.arm_id
    identities = list(resource_group.machines.values_list("identity_principal_id", flat=True))
    role_assignments_forget(scopes=[arm_id], principal_ids=identities)
    resource_group.delete()
    logger.info(
        "resource group %s deleted with its %d machines by %s (%s)", arm_id, machine_count, actor or "-", actor_type
    )
    return machine_count
