"""State changes of the onboarding wizard and the agent plane's failure log.

``script_generation_create`` is the one place a script is generated: it creates the resource group (and service
principal) the user asked for, records a ``ScriptGeneration`` with a fresh correlation id, and renders the script.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from arcportal import activity
from arcportal.exceptions import ApplicationError, Invalid, NotFound
from identity.models import Role
from identity.service_principals import service_principal_create
from machines import selectors as machine_selectors
from machines.models import ResourceGroup, Subscription
from machines.services import resource_group_create
from onboarding.models import OnboardingFailure, ScriptGeneration
from onboarding.scripts import ScriptOptions, render_onboarding_script

logger = logging.getLogger(__name__)

# The wizard's "Download and run script" (ArcPortal's own operation name; Azure's portal generates it client-side).
SCRIPT_OPERATION = "Microsoft.HybridCompute/machines/onboardingScript/action"


@dataclass(frozen=True)
class GeneratedScript:
    generation: ScriptGeneration
    options: ScriptOptions  # as rendered (with the secret, if any: never stored)
    script: str

    @property
    def filename(self) -> str:
        return self.options.filename

    def __repr__(self) -> str:  # the script may hold a secret
        return f"GeneratedScript({self.generation.correlation_id}, {self.options.os})"


class ScriptOptionError(ApplicationError):
    """A script could not be generated because of one of its options: ``option`` names which one
    (``subscription``, ``resource_group``, ``service_principal``; ``None`` for the options as a whole), so a caller
    routes the message by type, never by its text. ``status`` and ``code`` are those of the error it wraps."""

    def __init__(self, cause: ApplicationError, *, option: str | None) -> None:
        super().__init__(cause.message, code=cause.code, target=option)
        self.status = cause.status
        self.option = option


@contextmanager
def _option(option: str | None):
    try:
        yield
    except ScriptOptionError:
        raise
    except ApplicationError as exc:
        raise ScriptOptionError(exc, option=option) from exc


@transaction.atomic
def script_generation_create(
    *,
    options: ScriptOptions,
    subscription: Subscription | None = None,
    resource_group: ResourceGroup | None = None,
    user=None,
    created_by_name: str = "",
    create_resource_group: bool = False,
    new_service_principal_name: str = "",
) -> GeneratedScript:
    """Generate one onboarding script with a new correlation id.

    ``subscription`` / ``resource_group``: the rows ``options`` name, when the caller has them already (the wizard's
    form read them once for the request); looked up otherwise. ``create_resource_group``: create
    ``options.resource_group`` (in ``options.location``) first; otherwise it must exist. ``new_service_principal_name``:
    create a service principal (role Azure Connected Machine Onboarding, scope the resource group: it can onboard
    servers there and nowhere else) and put its id and secret in the script. The secret is never stored in
    ``options``. Every refusal is a ``ScriptOptionError`` naming the option at fault.
    """
    with _option(None):
        try:
            options = options.validated()
        except ValueError as exc:
            raise Invalid(str(exc)) from exc
    with _option("subscription"):
        if subscription is None:
            subscription = machine_selectors.subscription_get(subscription_id=options.subscription_id)
        if subscription is None:
            raise NotFound(f"The subscription '{options.subscription_id}' could not be found.")
    with _option("resource_group"):
        if create_resource_group:
            group = resource_group_create(
                subscription=subscription, name=options.resource_group, location=options.location
            )
        else:
            group = resource_group or machine_selectors.resource_group_get(
                subscription=subscription, name=options.resource_group
            )
        if group is None:
            raise NotFound(
                f"Resource group '{options.resource_group}' could not be found.", code="ResourceGroupNotFound"
            )
    service_principal_created = False
    if new_service_principal_name:
        with _option("service_principal"):
            created = service_principal_create(
                display_name=new_service_principal_name,
                role=Role.ONBOARDING,
                scope=group.arm_id,
                created_by=user if getattr(user, "pk", None) else None,
            )
        options = dataclasses.replace(
            options,
            service_principal_id=str(created.service_principal.client_id),
            service_principal_secret=created.secret,
        )
        service_principal_created = True
    correlation_id = uuid.uuid4()
    script = render_onboarding_script(
        options, correlation_id=str(correlation_id), tenant_id=str(subscription.tenant.tenant_id)
    )
    record = options.as_record()
    record["resource_group_created"] = create_resource_group
    record["service_principal_created"] = service_principal_created
    if user is not None and getattr(user, "pk", None):
        created_by_name = created_by_name or user.get_username()
    generation = ScriptGeneration.objects.create(
        correlation_id=correlation_id,
        created_by=user if getattr(user, "pk", None) else None,
        created_by_name=created_by_name,
        os=options.os,
        auth_type=options.auth_type,
        options=record,
    )
    logger.info("onboarding script %s generated by %s (%s)", correlation_id, created_by_name or "-", options.os)
    activity.record(
        operation=SCRIPT_OPERATION,
        status="Succeeded",
        resource_id=group.arm_id,
        caller=created_by_name,
        properties={"scriptCorrelationId": str(correlation_id), "os": options.os, "authType": options.auth_type},
    )
    return GeneratedScript(generation=generation, options=options, script=script)


@transaction.atomic
def onboarding_failures_purge(*, now: datetime, retention_days: int, max_rows: int) -> int:
    """Delete failure reports older than ``retention_days`` and all but the newest ``max_rows`` (beat, hourly):
    ``PUT /his/log`` is public, so what it stores is capped in age and in number. Returns the rows deleted."""
    deleted, _ = OnboardingFailure.objects.filter(received_at__lt=now - timedelta(days=retention_days)).delete()
    boundary = OnboardingFailure.objects.order_by("-id").values_list("id", flat=True)[max_rows : max_rows + 1]
    if boundary:
        more, _ = OnboardingFailure.objects.filter(id__lte=boundary[0]).delete()
        deleted += more
    return deleted


def onboarding_failure_record(*, report: Mapping[str, Any], source_ip: str | None) -> OnboardingFailure:
    """Store one failure report (already validated) sent by a script to ``PUT /his/log``."""
    return OnboardingFailure.objects.create(
        correlation_id=report.get("correlationId") or "",
        operation=report.get("operation") or "",
        message_type=report.get("messageType") or "",
        message=report.get("message") or "",
        payload=dict(report),
        source_ip=source_ip,
    )
