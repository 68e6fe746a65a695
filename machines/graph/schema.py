"""Resource Graph tables and columns over the portal's tables. Pure: the SQL names the tables Django created.

``Resources`` holds machines (``m``) and their extensions (``e``); ``ResourceContainers`` holds subscriptions
(``s``) and resource groups (``g``). Each kind is a *branch*: its FROM clause, its well-known columns, and its
``properties``/``tags``/``identity`` as a list of members (``Member``) from which both the whole JSON object (the
ARM ``properties`` exactly as the ARM API renders them, ``machines.api.serializers``) and each path's column
(``properties.status`` → the derived status, ``properties.osName`` → ``os_name``) are built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from machines.graph.dialects import Dialect
from machines.graph.values import BOOL, DATETIME, DYNAMIC, JSON, STRING, Frag, sql
from machines.status import AWAITING, CONNECTED, DISCONNECTED, EXPIRED

TABLES = {"resources": ("Resources", ("m", "e")), "resourcecontainers": ("ResourceContainers", ("s", "g"))}
TYPES = {
    "m": "microsoft.hybridcompute/machines",
    "e": "microsoft.hybridcompute/machines/extensions",
    "g": "microsoft.resources/subscriptions/resourcegroups",
    "s": "microsoft.resources/subscriptions",
}
COLUMNS = (
    ("id", STRING), ("name", STRING), ("type", STRING), ("tenantId", STRING), ("kind", STRING),
    ("location", STRING), ("resourceGroup", STRING), ("subscriptionId", STRING), ("managedBy", STRING),
    ("sku", DYNAMIC), ("plan", DYNAMIC), ("properties", DYNAMIC), ("tags", DYNAMIC), ("identity", DYNAMIC),
    ("zones", DYNAMIC), ("extendedLocation", DYNAMIC),
)  # fmt: skip
LAZY_FIELDS = ("properties", "tags", "identity")
LOWER_COLUMNS = frozenset({"type", "resourceGroup", "location"})
SUBSCRIPTION_POLICIES = {"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01",
                         "spendingLimit": "Off"}  # fmt: skip

MACHINE = "machines_machine"
GROUP = "machines_resourcegroup"
SUBSCRIPTION = "machines_subscription"
TENANT = "machines_tenant"
TAG = "machines_machinetag"
EXTENSION = "machines_extension"


@dataclass(frozen=True)
class Env:
    """What a query is compiled for: the database dialect, the instant ``now`` and the status thresholds."""

    dialect: Dialect
    now: datetime
    offline_after: timedelta
    expired_after: timedelta

    def datetime(self, value: datetime) -> Frag:
        return self.dialect.param(value, DATETIME)

    @property
    def connected_since(self) -> Frag:
        return self.datetime(self.now - self.offline_after)

    @property
    def expired_before(self) -> Frag:
        return self.datetime(self.now - self.expired_after)


@dataclass(frozen=True)
class Member:
    """One member of a branch object: its SQL in representation ``rep`` (STRING, BOOL or JSON).

    ``always``: kept when empty (dicts and lists, as the serializers keep them); otherwise left out when NULL or
    ``""`` (``CompactSerializer``). A JSON member answers deeper paths with JSON access.
    """

    key: str
    value: Callable[[Env], Frag]
    rep: str = STRING
    always: bool = False
    subpaths: dict = field(default_factory=dict)  # deeper path → (value, rep) cheaper than JSON access


def _text(column: str) -> Callable[[Env], Frag]:
    return lambda env: Frag(f"NULLIF({column}, '')")


def _json_column(column: str) -> Callable[[Env], Frag]:
    return lambda env: Frag(column) if env.dialect.name == "postgresql" else Frag(f"json({column})")


def _bool(column: str) -> Callable[[Env], Frag]:
    return lambda env: Frag(column)


def member_json(env: Env, column: str, key: str) -> Frag:
    """``column[key]`` of a JSON column, NULL when absent, JSON null or ``""`` (``_extra`` in the serializer)."""
    if env.dialect.name == "postgresql":
        return Frag(f"(CASE WHEN ({column} -> '{key}') IN ('null', '\"\"') THEN NULL ELSE {column} -> '{key}' END)")
    path = f"'$.{key}'"
    return Frag(
        f"(CASE WHEN coalesce(json_type({column}, {path}), 'null') = 'null' OR ({column} ->> {path}) = '' "
        f"THEN NULL ELSE {column} -> {path} END)"
    )


# --- machines --------------------------------------------------------------------------------------------------


def derived_status(env: Env) -> Frag:
    """``machines.status.derive_status`` in SQL, with the same cutoffs computed from ``now``."""
    return sql(
        f"(CASE WHEN m.last_heartbeat_at IS NULL THEN '{AWAITING}' WHEN m.last_heartbeat_at >= § THEN '{CONNECTED}'"
        f" WHEN m.last_heartbeat_at < § THEN '{EXPIRED}' ELSE '{DISCONNECTED}' END)",
        env.connected_since,
        env.expired_before,
    )


def last_status_change(env: Env) -> Frag:
    """``MachinePropertiesOutput.get_lastStatusChange`` in SQL, as a timestamp (printed as the API prints it): the
    recorded change when it matches the derived status, else the exact transition time the last heartbeat implies."""
    d = env.dialect
    status = derived_status(env)
    hb = Frag("m.last_heartbeat_at")
    offline = int(env.offline_after.total_seconds())
    expired = int(env.expired_after.total_seconds())
    return sql(
        f"(CASE WHEN § = m.status AND m.last_status_change IS NOT NULL THEN m.last_status_change"
        f" WHEN § = '{AWAITING}' THEN coalesce(m.last_status_change, m.created_at) WHEN § = '{CONNECTED}' THEN §"
        f" WHEN § = '{DISCONNECTED}' THEN § ELSE § END)",
        status,
        status,
        status,
        hb,
        status,
        d.datetime_plus_exact(hb, offline),
        d.datetime_plus_exact(hb, expired),
    )


def os_profile(env: Env) -> Frag:
    d = env.dialect
    extra = "m.extra_properties" if d.name == "postgresql" else "json(m.extra_properties)"
    if d.name == "postgresql":
        base = Frag(f"(CASE WHEN jsonb_typeof({extra} -> 'osProfile') = 'object' THEN {extra} -> 'osProfile' "
                    "ELSE CAST('{}' AS jsonb) END)")  # fmt: skip
        return Frag(f"({base.sql} || (CASE WHEN m.computer_name <> '' THEN jsonb_build_object('computerName', "
                    "m.computer_name) ELSE CAST('{}' AS jsonb) END))")  # fmt: skip
    base = (
        f"(CASE WHEN json_type({extra}, '$.osProfile') = 'object' THEN {extra} -> '$.osProfile' ELSE json('{{}}') END)"
    )
    return Frag(f"(CASE WHEN m.computer_name <> '' THEN json_set(json({base}), '$.computerName', m.computer_name) "
                f"ELSE json({base}) END)")  # fmt: skip


def computer_name(env: Env) -> Frag:
    """``properties.osProfile.computerName``: the reported name, else the one a PUT gave in ``osProfile``."""
    if env.dialect.name == "postgresql":
        given = "(m.extra_properties -> 'osProfile' ->> 'computerName')"
    else:
        given = "(CASE WHEN json_type(m.extra_properties, '$.osProfile.computerName') = 'text' THEN" \
                " json_extract(m.extra_properties, '$.osProfile.computerName') END)"  # fmt: skip
    return Frag(f"(CASE WHEN m.computer_name <> '' THEN m.computer_name ELSE {given} END)")


def _extra(key: str) -> Member:
    def value(env: Env) -> Frag:
        column = "m.extra_properties" if env.dialect.name == "postgresql" else "json(m.extra_properties)"
        return member_json(env, column, key)

    return Member(key, value, JSON)


def _vm_id(env: Env) -> Frag:
    text = env.dialect.uuid_text("m.vm_id")
    return sql("(CASE WHEN m.vm_id IS NOT NULL THEN § END)", text)


MACHINE_PROPERTIES = (
    Member("provisioningState", _text("m.provisioning_state")),
    Member("status", derived_status),
    Member("lastStatusChange", last_status_change, DATETIME),
    Member("agentVersion", _text("m.agent_version")),
    Member("osName", _text("m.os_name")),
    Member("osType", _text("m.os_type")),
    Member("osVersion", _text("m.os_version")),
    Member("osSku", _text("m.os_sku")),
    Member("osEdition", _text("m.os_edition")),
    Member("vmId", _vm_id),
    Member("vmUuid", _text("m.vm_uuid")),
    Member("clientPublicKey", _text("m.client_public_key")),
    Member("displayName", _text("m.display_name")),
    Member("machineFqdn", _text("m.machine_fqdn")),
    Member("dnsFqdn", _text("m.dns_fqdn")),
    Member("adFqdn", _text("m.ad_fqdn")),
    Member("domainName", _text("m.domain_name")),
    Member("mssqlDiscovered", _text("m.mssql_discovered")),
    Member("detectedProperties", _json_column("m.detected_properties"), JSON, always=True),
    Member("osProfile", os_profile, JSON, always=True, subpaths={("computerName",): (computer_name, STRING)}),
    Member("errorDetails", _json_column("m.error_details"), JSON, always=True),
    *(
        _extra(key)
        for key in (
            "locationData", "cloudMetadata", "agentUpgrade", "parentClusterResourceId", "privateLinkScopeResourceId",
            "identityKeyStore", "tpmEkCertificate", "licenseProfile", "serviceStatuses", "agentConfiguration",
        )
    ),
)  # fmt: skip


def _instance_view(env: Env) -> Frag:
    if env.dialect.name == "postgresql":
        return Frag("(CASE WHEN e.instance_view = CAST('{}' AS jsonb) THEN NULL ELSE e.instance_view END)")
    return Frag("(CASE WHEN json(e.instance_view) = '{}' THEN NULL ELSE json(e.instance_view) END)")


EXTENSION_PROPERTIES = (
    Member("publisher", _text("e.publisher")),
    Member("type", _text("e.type")),
    Member("typeHandlerVersion", _text("e.type_handler_version")),
    Member("autoUpgradeMinorVersion", _bool("e.auto_upgrade_minor_version"), BOOL),
    Member("enableAutomaticUpgrade", _bool("e.enable_automatic_upgrade"), BOOL),
    Member("forceUpdateTag", _text("e.force_update_tag")),
    Member("settings", _json_column("e.settings"), JSON, always=True),
    Member("provisioningState", _text("e.provisioning_state")),
    Member("instanceView", _instance_view, JSON),
)
GROUP_PROPERTIES = (Member("provisioningState", lambda env: Frag("g.provisioning_state"), always=True),)


def _policies(env: Env) -> Frag:
    pairs = ", ".join(f"'{k}', '{v}'" for k, v in SUBSCRIPTION_POLICIES.items())
    return Frag(f"jsonb_build_object({pairs})" if env.dialect.name == "postgresql" else f"json_object({pairs})")


SUBSCRIPTION_PROPERTIES = (
    Member("state", lambda env: Frag("s.state"), always=True),
    Member("subscriptionPolicies", _policies, JSON, always=True),
)


def _identity_member(key: str, value: Callable[[Env], Frag]) -> Member:
    def guarded(env: Env) -> Frag:
        return sql("(CASE WHEN m.identity_type = 'SystemAssigned' THEN § END)", value(env))

    return Member(key, guarded)


MACHINE_IDENTITY = (
    _identity_member("type", lambda env: Frag("'SystemAssigned'")),
    _identity_member("principalId", lambda env: env.dialect.uuid_text("m.identity_principal_id")),
    _identity_member("tenantId", lambda env: env.dialect.uuid_text("tn.tenant_id")),
)

OBJECT_MEMBERS = {
    ("m", "properties"): MACHINE_PROPERTIES,
    ("e", "properties"): EXTENSION_PROPERTIES,
    ("g", "properties"): GROUP_PROPERTIES,
    ("s", "properties"): SUBSCRIPTION_PROPERTIES,
    ("m", "identity"): MACHINE_IDENTITY,
}
OBJECT_GUARDS = {("m", "identity"): "m.identity_type = 'SystemAssigned'"}
JSON_TAGS = {"e": "e.tags", "g": "g.tags"}
