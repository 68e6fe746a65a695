"""``python manage.py create_service_principal --name NAME --role ROLE --scope SCOPE``

Prints what ``az ad sp create-for-rbac`` prints: ``{"appId", "displayName", "password", "tenant"}``. The password is
shown here once and stored only as a hash.
"""

import datetime as dt
import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from arcportal.exceptions import ApplicationError
from identity.models import Role
from identity.selectors import tenant_get
from identity.service_principals import service_principal_create
from machines.selectors import subscription_list


class Command(BaseCommand):
    help = "Create a service principal and print its credentials as JSON (like `az ad sp create-for-rbac`)."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="Display name.")
        parser.add_argument(
            "--role", default=Role.ONBOARDING, choices=Role.values, help=f"Built-in role (default: {Role.ONBOARDING})."
        )
        parser.add_argument(
            "--scope",
            default="",
            help="/subscriptions/{id}[/resourceGroups/{name}] (default: the first subscription).",
        )
        parser.add_argument("--years", type=float, default=1.0, help="Secret lifetime in years (default 1).")
        parser.add_argument("--max-uses", type=int, default=None, help="Sign-ins allowed (default: unlimited).")

    def handle(self, *args, **options):
        tenant = tenant_get()
        if tenant is None:
            raise CommandError("No tenant yet: run `python manage.py bootstrap` first.")
        scope = options["scope"]
        if not scope:
            subscription = subscription_list().first()
            if subscription is None:
                raise CommandError("No subscription yet: run `python manage.py bootstrap` first.")
            scope = subscription.arm_id
        try:
            created = service_principal_create(
                display_name=options["name"],
                role=options["role"],
                scope=scope,
                expires_at=timezone.now() + dt.timedelta(days=365 * options["years"]),
                max_uses=options["max_uses"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        principal = created.service_principal
        self.stdout.write(
            json.dumps(
                {
                    "appId": str(principal.client_id),
                    "displayName": principal.display_name,
                    "password": created.secret,
                    "tenant": str(tenant.tenant_id),
                },
                indent=2,
            )
        )
