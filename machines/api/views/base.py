"""The base of every ARM operation view of machines: output context, permission on the URL and again on the rows
found, and the lookups that raise the ARM 404 the contract names."""

from __future__ import annotations

import dataclasses
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter

from arcportal import authz, textguard
from arcportal.arm import ids
from arcportal.arm.errors import ArmError
from arcportal.arm.parsers import guarded_json
from arcportal.arm.schema import ArmAutoSchema
from arcportal.arm.views import ArmApiView
from arcportal.exceptions import NotFound
from identity import selectors as identity_selectors
from machines import selectors
from machines.api import serializers as s
from machines.conf import status_thresholds
from machines.models import Machine, ResourceGroup, Subscription

SKIPTOKEN_PARAMETER = OpenApiParameter("$skiptoken", str, OpenApiParameter.QUERY, description="Continuation token.")
SCRIPT_LIMITS = textguard.Limits(max_bytes=2 * 1024 * 1024, max_depth=textguard.MAX_JSON_DEPTH, max_string=512 * 1024)
EXPAND_PARAMETER = OpenApiParameter("$expand", str, OpenApiParameter.QUERY, description="Accepted and ignored.")


class ArmOperation(ArmApiView):
    schema = ArmAutoSchema()

    def output_context(self) -> dict[str, Any]:
        tenant = identity_selectors.tenant_get()
        principal = self.request.user
        return {
            "now": timezone.now(),
            "thresholds": status_thresholds(),
            "tenant_id": str(tenant.tenant_id) if tenant else "",
            "request": self.request,
            # A machine body's ``resources`` are its extensions (settings included): only for callers who may
            # read them (not the Onboarding role).
            "may_read_extensions": lambda machine: authz.can(principal, authz.READ, machine.extensions_scope),
        }

    def script_body(self) -> dict[str, Any]:
        """``json_body`` for bodies that carry scripts and settings (extensions, run commands): strings up to
        ``SCRIPT_LIMITS.max_string`` pass the text guard, so the 256 KiB rule of the serializers answers with its
        own message."""
        raw = self.request._request.body
        if not raw or not raw.strip() or not raw.lstrip().startswith(b"{"):
            return self.json_body()  # the shared 400s
        data = guarded_json(raw, limits=SCRIPT_LIMITS)
        if not isinstance(data, dict):
            return self.json_body()
        return data

    def validated(self, serializer_class, data: dict[str, Any]) -> dict[str, Any]:
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    # --- permissions: the URL first, then the rows it resolved to ------------------------------------------------

    def require(self, action: str, scope: str) -> None:
        """403 unless the caller may ``action`` on the URL's ``scope`` (before any lookup, so a caller outside its
        scope learns nothing about what exists), and remember it for ``require_rows``."""
        super().require(action, scope)
        self._required = [*getattr(self, "_required", []), (action, ids.parse(scope))]

    def require_rows(self, **names: str) -> None:
        """Check every permission required so far again, on the id spelled with the names of the rows found
        (``resource_group=``, ``machine=``, ``extension=``). Scope is decided by the rows a request reaches, not
        by the URL's spelling, so a name the database matched differently from ``ids.is_within`` could never
        reach a row outside the caller's scope. The lookups below call it for every row they return."""
        for action, wanted in getattr(self, "_required", []):
            resolved = dataclasses.replace(
                wanted, **{part: name for part, name in names.items() if getattr(wanted, part) is not None}
            )
            if resolved != wanted:
                super().require(action, resolved.to_string())

    # --- lookups: each raises the ARM 404 the contract names, and re-checks permission on the row found ---------

    def get_subscription(self, subscription_id: str) -> Subscription:
        subscription = selectors.subscription_get(subscription_id=subscription_id)
        if subscription is None:
            raise NotFound(f"The subscription '{subscription_id}' could not be found.", code="SubscriptionNotFound")
        return subscription

    def find_resource_group(self, subscription_id: str, name: str) -> ResourceGroup | None:
        subscription = selectors.subscription_get(subscription_id=subscription_id)
        group = selectors.resource_group_get(subscription=subscription, name=name) if subscription else None
        if group is not None:
            self.require_rows(resource_group=group.name)
        return group

    def get_resource_group(self, subscription_id: str, name: str) -> ResourceGroup:
        self.get_subscription(subscription_id)
        group = self.find_resource_group(subscription_id, name)
        if group is None:
            raise NotFound(f"Resource group '{name}' could not be found.", code="ResourceGroupNotFound")
        return group

    def find_machine(self, group: ResourceGroup, name: str) -> Machine | None:
        machine = selectors.machine_get(resource_group=group, name=name)
        if machine is not None:
            self.require_rows(resource_group=group.name, machine=machine.name)
        return machine

    def get_machine(self, group: ResourceGroup, name: str) -> Machine:
        machine = self.find_machine(group, name)
        if machine is None:
            raise NotFound(
                f"The Resource '{ids.MACHINE_TYPE}/{name}' under resource group '{group.name}' was not found.",
                code="ResourceNotFound",
            )
        return machine

    def get_parent_machine(self, group: ResourceGroup, name: str) -> Machine:
        machine = self.find_machine(group, name)
        if machine is None:
            raise NotFound(
                "Can not perform requested operation on nested resource. Parent resource "
                f"'{ids.MACHINE_TYPE}/{name}' not found.",
                code="ParentResourceNotFound",
            )
        return machine

    def find_extension(self, machine: Machine, name: str):
        extension = selectors.extension_get(machine=machine, name=name)
        if extension is not None:
            self.require_rows(extension=extension.name)
        return extension

    def render_machine(self, machine: Machine) -> dict[str, Any]:
        return s.MachineOutput(machine, context=self.output_context()).data


def check_name(validator, name: str, code: str) -> str:
    try:
        return validator(name)
    except ValueError as exc:
        raise ArmError(str(exc), code=code, status=400, target="name") from exc
