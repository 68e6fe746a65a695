"""Which subscriptions and resource groups the Generate script wizard lets a user use, decided per scope the way
Azure would, by ``arcportal.authz`` alone (no rule of its own here):

* a script for an existing resource group: ``Microsoft.HybridCompute/machines/write`` on that group (the role Azure
  Connected Machine Onboarding, Contributor, Owner);
* a new resource group: ``Microsoft.Resources/subscriptions/resourceGroups/write`` on the subscription;
* a new service principal (its role Azure Connected Machine Onboarding on the group): what the Service principals
  page asks, ``authz.may_create_service_principal`` on the group (it assigns a role there).

The wizard offers only what passes (so nobody is led into an error); a forged POST for anything else is refused by
``refusal_*`` as a form error before anything is written. A refusal reads the same whether the scope exists or not
(Azure answers AuthorizationFailed before it looks): it never tells a user which groups exist where it may not act.
The subscriptions and groups are read once (two queries); every decision after that is ``authz.can`` on a scope
string, without the database.
"""

from __future__ import annotations

from arcportal import authz
from arcportal.arm import ids
from machines import selectors as machine_selectors


class WizardScopes:
    """The subscriptions and groups of the installation, and what ``user`` may do with them in the wizard."""

    def __init__(self, user) -> None:
        self.user = user
        subscriptions = list(machine_selectors.subscription_list())
        self.all_groups = list(machine_selectors.resource_group_list())
        self.groups = [g for g in self.all_groups if self.may_generate(g.arm_id)]
        self.creatable = {s.pk for s in subscriptions if self.may_create_group(s)}
        with_groups = {g.subscription_id for g in self.groups}
        self.subscriptions = [s for s in subscriptions if s.pk in self.creatable or s.pk in with_groups]

    # --- the three rules (each one call of authz) ------------------------------------------------------------

    def may_generate(self, group_scope: str) -> bool:
        return authz.can(self.user, authz.MACHINES_WRITE, group_scope)

    def may_create_group(self, subscription) -> bool:
        return authz.can(self.user, authz.RESOURCE_GROUPS_WRITE, subscription.arm_id)

    def may_create_service_principal(self, group_scope: str) -> bool:
        return authz.may_create_service_principal(self.user, group_scope)

    # --- what the form offers --------------------------------------------------------------------------------

    @property
    def offers_new_group(self) -> bool:
        return bool(self.creatable)

    @property
    def offers_new_service_principal(self) -> bool:
        """Some offered group, or a new group in some subscription, is a scope where the user may create one."""
        return any(self.may_create_service_principal(g.arm_id) for g in self.groups) or any(
            self.may_create_service_principal(s.arm_id) for s in self.subscriptions if s.pk in self.creatable
        )

    # --- refusals of what was posted (None: allowed) ---------------------------------------------------------

    @staticmethod
    def group_scope(subscription, name: str) -> str:
        """The scope a group of ``subscription`` called ``name`` has (or would have, once created)."""
        return ids.resource_group_id(str(subscription.subscription_id), name)

    def refusal_existing_group(self, subscription, name: str) -> str | None:
        if self.may_generate(self.group_scope(subscription, name)):
            return None
        return (
            f"You may not onboard servers into the resource group '{name}': that needs "
            f"{authz.MACHINES_WRITE} on it (the role {authz.ONBOARDING}, {authz.CONTRIBUTOR} or {authz.OWNER})."
        )

    def refusal_new_group(self, subscription) -> str | None:
        if self.may_create_group(subscription):
            return None
        return (
            f"You may not create resource groups in the subscription '{subscription.display_name}': that needs "
            f"{authz.RESOURCE_GROUPS_WRITE} on the subscription ({authz.CONTRIBUTOR} or {authz.OWNER}). "
            "Choose an existing resource group."
        )

    def refusal_service_principal(self, subscription, name: str) -> str | None:
        if self.may_create_service_principal(self.group_scope(subscription, name)):
            return None
        return (
            f"You may not create a service principal with a role on the resource group '{name}': assigning a role "
            f"there needs {authz.ROLE_ASSIGNMENTS_WRITE} ({authz.OWNER}). Use an existing service principal or "
            "enter an application (client) ID."
        )
