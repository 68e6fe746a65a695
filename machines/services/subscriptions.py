"""Subscriptions: the default one the bootstrap creates in the tenant (identity's)."""

from __future__ import annotations

from django.db import transaction

from identity.models import Tenant
from machines.models import Subscription


@transaction.atomic
def subscription_ensure_default(*, tenant: Tenant, display_name: str = "Arc Subscription") -> Subscription:
    existing = Subscription.objects.filter(tenant=tenant).order_by("id").first()
    if existing:
        return existing
    return Subscription.objects.create(tenant=tenant, display_name=display_name)
