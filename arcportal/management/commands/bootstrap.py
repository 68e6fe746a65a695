"""Create what a fresh installation needs: tenant, default subscription, admin account, and the identity
material (CA, server certificate, token-signing key). Safe to run again: it only creates what is missing."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from arcportal import bootstrap_steps
from machines.services import subscription_ensure_default, tenant_ensure


class Command(BaseCommand):
    help = "Bootstrap the tenant, a default subscription, the admin account and the portal's PKI."

    def handle(self, *args, **options):
        with transaction.atomic():
            tenant = tenant_ensure()
            subscription = subscription_ensure_default(tenant=tenant)
        self.stdout.write(f"Tenant:       {tenant.tenant_id}")
        self.stdout.write(f"Subscription: {subscription.subscription_id} ({subscription.display_name})")
        self._ensure_admin()
        for step in bootstrap_steps.STEPS:
            for line in step():
                self.stdout.write(line)

    def _ensure_admin(self) -> None:
        User = get_user_model()
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME") or "admin"
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD") or ""
        user = User.objects.filter(username=username).first()
        if user is None:
            generated = not password
            password = password or secrets.token_urlsafe(12)
            User.objects.create_superuser(username=username, email="", password=password)
            if generated:
                self.stdout.write(self.style.WARNING(f"Admin account: {username} / {password}  (shown once; keep it)"))
            else:
                self.stdout.write(f"Admin account: {username} (password from DJANGO_SUPERUSER_PASSWORD)")
        elif password and not user.check_password(password):
            user.set_password(password)
            user.save(update_fields=["password"])
            self.stdout.write(f"Admin account: {username} (password reset from DJANGO_SUPERUSER_PASSWORD)")
        else:
            self.stdout.write(f"Admin account: {username} (exists)")
