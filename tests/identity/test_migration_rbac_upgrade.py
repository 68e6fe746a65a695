"""An installation made before role assignments upgrades without locking anybody out (issue 13).

The database is taken back to the state just before role assignments were filled in (identity 0002: the empty
table; machines 0010), filled with portal users, two subscriptions and service principals through the historical
models, then migrated forward to the leaves. Every portal user is then Owner at the scope of every subscription, and
every service principal holds exactly the role it had at the scope it had — as ``arcportal.authz.can`` decides from
the loaded grants, not just as rows.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from arcportal import authz
from identity.models import RoleAssignment
from identity.role_assignments import role_grants_for
from identity.tokens import user_object_id

BEFORE = [("identity", "0002_role_assignments"), ("machines", "0010_extension_goal_state")]
AT = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def before_rbac(transactional_db):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old_apps = MigrationExecutor(connection).loader.project_state(BEFORE).apps
    try:
        yield old_apps
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_every_portal_user_becomes_owner_of_every_subscription_and_principals_keep_their_role(before_rbac):
    old = before_rbac
    users = [old.get_model("auth", "User").objects.create(username=name, password="!") for name in ("alice", "bob")]
    tenant = old.get_model("identity", "Tenant").objects.create(tenant_id=uuid.uuid4())
    subs = [
        old.get_model("machines", "Subscription").objects.create(tenant=tenant, display_name=name)
        for name in ("Prod", "Dev")
    ]
    onboarder_scope = f"/subscriptions/{subs[0].subscription_id}/resourceGroups/rg-upgrade"
    principal = old.get_model("identity", "ServicePrincipal").objects.create(
        display_name="onboarder",
        secret_hash="x",
        role="Azure Connected Machine Onboarding",
        scope=onboarder_scope,
        expires_at=AT + dt.timedelta(days=3650),
    )
    assert old.get_model("identity", "RoleAssignment").objects.count() == 0

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    owner = authz.ROLES_BY_NAME[authz.OWNER]
    for user in users:
        grants = role_grants_for(principal_id=user_object_id(user))
        assert sorted(grants, key=lambda g: g.scope) == sorted(
            (authz.Grant(owner.id, f"/subscriptions/{sub.subscription_id}") for sub in subs), key=lambda g: g.scope
        )
        machine = (
            f"/subscriptions/{subs[1].subscription_id}/resourceGroups/rg/providers/Microsoft.HybridCompute/machines/m"
        )
        holder = type("U", (), {"is_authenticated": True, "is_active": True, "arc_grants": grants})()
        assert authz.can(holder, authz.DELETE, machine)
        assert authz.can(holder, authz.ROLE_ASSIGNMENTS_WRITE, f"/subscriptions/{subs[0].subscription_id}")
    onboarding = authz.ROLES_BY_NAME[authz.ONBOARDING]
    assert role_grants_for(principal_id=str(principal.object_id)) == (authz.Grant(onboarding.id, onboarder_scope),)
    row = RoleAssignment.objects.get(principal_id=principal.object_id)
    assert (row.principal_kind, row.created_by) == ("app", "upgrade")
    assert RoleAssignment.objects.count() == len(users) * len(subs) + 1
