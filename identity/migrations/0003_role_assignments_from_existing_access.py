"""An installation upgrades without locking anybody out (issue 13, docs/decisions.md 74), part 1 of 2.

Before role assignments each service principal carried one role at one scope: that role + scope becomes a role
assignment. Portal users (Owner of everything before) become Owner of every subscription in
``machines/migrations/0011_portal_users_become_owners.py`` (subscriptions are machines', a higher layer).
"""

import string

from django.db import migrations

OWNER_ID = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
ROLE_IDS = {
    "Owner": OWNER_ID,
    "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "Azure Connected Machine Onboarding": "b64e21ea-ac4e-4cdf-9dc9-5b892992bee7",
}
_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def forwards(apps, schema_editor):
    RoleAssignment = apps.get_model("identity", "RoleAssignment")
    ServicePrincipal = apps.get_model("identity", "ServicePrincipal")
    rows = []
    for principal in ServicePrincipal.objects.all():
        role_id = ROLE_IDS.get(principal.role)
        if role_id and principal.scope:
            rows.append((principal.scope, role_id, principal.object_id, "app"))
    seen = set()
    for scope, role_id, object_id, kind in rows:
        key = (scope.translate(_FOLD), role_id, object_id)
        if key in seen:
            continue
        seen.add(key)
        RoleAssignment.objects.create(
            scope=scope,
            scope_key=key[0],
            role_definition_id=role_id,
            principal_id=object_id,
            principal_kind=kind,
            created_by="upgrade",
            description="Access this principal had before role assignments existed.",
        )


class Migration(migrations.Migration):
    dependencies = [
        ("identity", "0002_role_assignments"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
