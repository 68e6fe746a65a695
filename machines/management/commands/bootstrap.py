"""Create what a fresh installation needs: tenant, default subscription, admin account, and the identity
material (CA, server certificate, token-signing key). Safe to run again: it only creates what is missing.

It lives in machines, the lowest app that may import everything it creates (the tenant, the admin account and the
PKI are identity's, the default subscription is machines'; docs/decisions.md).
"""

import os

from django.core.management.base import BaseCommand
from django.db import transaction

from identity import pki
from identity.role_assignments import user_role_ensure
from identity.services import portal_admin_ensure, tenant_ensure
from machines.services import subscription_ensure_default


class Command(BaseCommand):
    help = "Bootstrap the tenant, a default subscription, the admin account and the portal's PKI."

    def handle(self, *args, **options):
        with transaction.atomic():
            tenant = tenant_ensure()
            subscription = subscription_ensure_default(tenant=tenant)
        self.stdout.write(f"Tenant:       {tenant.tenant_id}")
        self.stdout.write(f"Subscription: {subscription.subscription_id} ({subscription.display_name})")
        username = self._ensure_admin()
        # The administrator is Owner at subscription scope (issue 13): it can then assign everyone else.
        user_role_ensure(username=username, role="Owner", scope=f"/subscriptions/{subscription.subscription_id}")
        for line in pki.ensure_pki():
            self.stdout.write(line)

    def _ensure_admin(self) -> str:
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME") or "admin"
        account = portal_admin_ensure(username=username, password=os.environ.get("DJANGO_SUPERUSER_PASSWORD") or "")
        if account.generated_password:
            self.stdout.write(
                self.style.WARNING(f"Admin account: {username} / {account.generated_password}  (shown once; keep it)")
            )
        elif account.outcome == "created":
            self.stdout.write(f"Admin account: {username} (password from DJANGO_SUPERUSER_PASSWORD)")
        elif account.outcome == "reset":
            self.stdout.write(f"Admin account: {username} (password reset from DJANGO_SUPERUSER_PASSWORD)")
        else:
            self.stdout.write(f"Admin account: {username} (exists)")
        return username
