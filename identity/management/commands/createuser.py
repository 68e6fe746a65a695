"""``manage.py createuser NAME [--password P]``: a portal user with no access until a role is assigned to them
(Access control (IAM) page, or the ARM ``roleAssignments`` API). Without ``--password`` one is generated and shown
once."""

from django.core.management.base import BaseCommand, CommandError

from arcportal.exceptions import ApplicationError
from identity.services import portal_user_create
from identity.tokens import user_object_id


class Command(BaseCommand):
    help = "Create a portal user with no role assignment (no access until one is assigned)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--password", default="", help="The password (default: a generated one, shown once).")

    def handle(self, *args, username: str, password: str, **options):
        try:
            user, generated = portal_user_create(username=username, password=password)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"User: {user.get_username()} (object id {user_object_id(user)}); no access until a role is assigned."
        )
        if generated:
            self.stdout.write(self.style.WARNING(f"Password: {generated}  (shown once; keep it)"))
