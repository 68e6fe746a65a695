"""``manage.py createuser NAME [--password P]``: a portal user with no access until a role is assigned to them
(Access control (IAM) page, or the ARM ``roleAssignments`` API). Without ``--password`` one is generated and shown
once."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from identity.tokens import user_object_id


class Command(BaseCommand):
    help = "Create a portal user with no role assignment (no access until one is assigned)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--password", default="", help="The password (default: a generated one, shown once).")

    def handle(self, *args, username: str, password: str, **options):
        user_model = get_user_model()
        username = username.strip()
        if not username or len(username) > 150:
            raise CommandError("The user name must be 1 to 150 characters.")
        if user_model._default_manager.filter(username=username).exists():
            raise CommandError(f"The user '{username}' already exists.")
        generated = "" if password else secrets.token_urlsafe(12)
        user = user_model._default_manager.create_user(username=username, password=password or generated)
        self.stdout.write(f"User: {username} (object id {user_object_id(user)}); no access until a role is assigned.")
        if generated:
            self.stdout.write(self.style.WARNING(f"Password: {generated}  (shown once; keep it)"))
