"""An installation upgrades without locking anybody out (issue 13, docs/decisions.md 74), part 2 of 2.

Before role assignments every portal user was Owner of everything. Every portal user becomes Owner at the scope
of every subscription, so nobody loses access by the upgrade (part 1, identity 0003, moves service principals).
It lives in machines because subscriptions are machines' (identity is the lower layer and may not read them).
"""

import string
import uuid

from django.db import migrations

OWNER_ID = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
# identity.tokens.USER_OID_NAMESPACE: a portal user's object id is uuid5(namespace, "user:{pk}").
USER_OID_NAMESPACE = uuid.UUID("7d4f6c2e-3f0a-4f5e-9d6b-0a6c6a1e2b3c")
_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def forwards(apps, schema_editor):
    RoleAssignment = apps.get_model("identity", "RoleAssignment")
    User = apps.get_model("auth", "User")
    Subscription = apps.get_model("machines", "Subscription")
    scopes = [f"/subscriptions/{sub_id}" for sub_id in Subscription.objects.values_list("subscription_id", flat=True)]
    for pk in User.objects.values_list("pk", flat=True):
        object_id = uuid.uuid5(USER_OID_NAMESPACE, f"user:{pk}")
        for scope in scopes:
            RoleAssignment.objects.get_or_create(
                principal_id=object_id,
                role_definition_id=OWNER_ID,
                scope_key=scope.translate(_FOLD),
                defaults={
                    "scope": scope,
                    "principal_kind": "user",
                    "created_by": "upgrade",
                    "description": "Owner of everything before role assignments existed.",
                },
            )


class Migration(migrations.Migration):
    dependencies = [
        ("machines", "0010_extension_goal_state"),
        ("identity", "0003_role_assignments_from_existing_access"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
