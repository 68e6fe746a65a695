"""``python manage.py issue_token --user NAME``: print an ARM access token for a portal user (for curl and tests)."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from identity.selectors import tenant_get
from identity.tokens import issue_user_token


class Command(BaseCommand):
    help = "Print a bearer token (valid one hour) that acts as the given portal user on the ARM API."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="Username of an active portal user.")

    def handle(self, *args, **options):
        tenant = tenant_get()
        if tenant is None:
            raise CommandError("No tenant yet: run `python manage.py bootstrap` first.")
        user = get_user_model()._default_manager.filter(username=options["user"], is_active=True).first()
        if user is None:
            raise CommandError(f"No active user named '{options['user']}'.")
        issuer = f"{settings.ARC_PUBLIC_BASE_URL.rstrip('/')}/{tenant.tenant_id}/v2.0"
        issued = issue_user_token(user=user, tenant_id=str(tenant.tenant_id), issuer=issuer)
        self.stdout.write(issued.access_token)
