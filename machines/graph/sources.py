"""The base tables as SQL: one CTE per table reference, built for the query at hand. Pure.

Each CTE is a UNION ALL of its branches (machines + extensions, or subscriptions + resource groups) with the
well-known columns as plain columns, one column per property path the query mentions (``properties.status`` is
the derived-status CASE, ``tags['env']`` a LEFT JOIN on the machine's tag row), the row's kind and key, and the
caller's visibility as a WHERE clause of each branch — so whatever the query says later, it only ever sees rows
the caller may read. Whole objects (``properties``, ``tags``, ``identity``) are not in the CTE: ``object_table`` is
a CTE of its own that builds them, looked up by kind and key only where the query uses them whole.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from arcportal.arm import ids
from machines.graph.schema import (
    COLUMNS,
    EXTENSION,
    GROUP,
    JSON_TAGS,
    LAZY_FIELDS,
    MACHINE,
    OBJECT_GUARDS,
    OBJECT_MEMBERS,
    SUBSCRIPTION,
    TABLES,
    TAG,
    TENANT,
    TYPES,
    Env,
    Member,
)
from machines.graph.values import JSON, STRING, Frag, join, sql
from machines.graph.visibility import ReadableScope

FROM = {
    "s": f"{SUBSCRIPTION} s JOIN {TENANT} tn ON tn.id = s.tenant_id",
    "g": f"{GROUP} g JOIN {SUBSCRIPTION} s ON s.id = g.subscription_id JOIN {TENANT} tn ON tn.id = s.tenant_id",
    "m": f"{MACHINE} m JOIN {GROUP} g ON g.id = m.resource_group_id JOIN {SUBSCRIPTION} s ON s.id = g.subscription_id"
    f" JOIN {TENANT} tn ON tn.id = s.tenant_id",
    "e": f"{EXTENSION} e JOIN {MACHINE} m ON m.id = e.machine_id JOIN {GROUP} g ON g.id = m.resource_group_id"
    f" JOIN {SUBSCRIPTION} s ON s.id = g.subscription_id JOIN {TENANT} tn ON tn.id = s.tenant_id",
}
PK = {"s": "s.id", "g": "g.id", "m": "m.id", "e": "e.id"}
# What an object's builder reads: the row's own table, except a machine's identity (its tenant).
OBJECT_FROM = {"s": f"{SUBSCRIPTION} s", "g": f"{GROUP} g", "m": f"{MACHINE} m", "e": f"{EXTENSION} e"}


def column_sql(env: Env, kind: str, name: str) -> Frag:
    d = env.dialect
    sub = d.uuid_text("s.subscription_id")
    rg_id = sql("'/subscriptions/' || § || '/resourceGroups/' || g.name", sub)
    machine_id = sql("§ || '/providers/Microsoft.HybridCompute/machines/' || m.name", rg_id)
    ids_by_kind = {
        "s": sql("'/subscriptions/' || §", sub),
        "g": rg_id,
        "m": machine_id,
        "e": sql("§ || '/extensions/' || e.name", machine_id),
    }
    names = {"s": "s.display_name", "g": "g.name", "m": "m.name", "e": "e.name"}
    locations = {"s": "''", "g": "g.location", "m": "m.location", "e": "e.location"}
    if name == "id":
        return ids_by_kind[kind]
    if name == "name":
        return Frag(names[kind])
    if name == "type":
        return Frag(f"'{TYPES[kind]}'")
    if name == "tenantId":
        return d.uuid_text("tn.tenant_id")
    if name == "kind":
        return Frag("m.kind" if kind == "m" else "''")
    if name == "location":
        return Frag(f"lower({locations[kind]})")
    if name == "resourceGroup":
        return Frag("''" if kind == "s" else "lower(g.name)")
    if name == "subscriptionId":
        return sub
    if name == "managedBy":
        return Frag("g.managed_by" if kind == "g" else "''")
    raise KeyError(name)


# --- objects and their paths -----------------------------------------------------------------------------------


def object_sql(env: Env, kind: str, field_name: str) -> Frag:
    """The whole JSON object ``field_name`` of a ``kind`` row, over that branch's FROM aliases."""
    d = env.dialect
    if field_name == "tags":
        if kind == "m":
            if d.name == "postgresql":
                return Frag(f"(SELECT coalesce(jsonb_object(array_agg(t.key), array_agg(t.value)),"
                            f" CAST('{{}}' AS jsonb)) FROM {TAG} t WHERE t.machine_id = m.id)")  # fmt: skip
            return Frag(f"(SELECT json_group_object(t.key, t.value) FROM (SELECT key, value FROM {TAG}"
                        " WHERE machine_id = m.id ORDER BY key) AS t)")  # fmt: skip
        if kind in JSON_TAGS:
            column = JSON_TAGS[kind]
            return Frag(column) if d.name == "postgresql" else Frag(f"json({column})")
        return d.json_literal("{}")
    members = OBJECT_MEMBERS.get((kind, field_name))
    if members is None:
        return d.null(JSON)
    built = _build(env, members)
    guard = OBJECT_GUARDS.get((kind, field_name))
    return sql(f"(CASE WHEN {guard} THEN § END)", built) if guard else built


def _build(env: Env, members: Sequence[Member]) -> Frag:
    """A JSON object of ``members``; members that are NULL or ``""`` are left out unless ``always``."""
    d = env.dialect
    always = [(Frag(f"'{m.key}'"), d.to_json(m.value(env), m.rep)) for m in members if m.always]
    optional = [m for m in members if not m.always]
    if d.name == "postgresql":
        parts = [d.json_object(always)] if always else [d.json_literal("{}")]
        for m in optional:
            value = d.to_json(m.value(env), m.rep)
            parts.append(sql(f"(CASE WHEN § IS NULL THEN CAST('{{}}' AS jsonb) ELSE jsonb_build_object('{m.key}', §) "
                             "END)", value, value))  # fmt: skip
        return sql("(" + " || ".join("§" for _ in parts) + ")", *parts)
    base = d.json_object(always)
    if not optional:
        return base
    pairs = []
    for m in optional:
        value = d.to_json(m.value(env), m.rep)
        pairs.append(sql(f"(CASE WHEN § IS NULL THEN '$.\"~\"' ELSE '$.{m.key}' END), §", value, value))
    return sql("json_remove(json_set(§, " + ", ".join("§" for _ in pairs) + "), '$.\"~\"')", base, *pairs)


def path_sql(env: Env, kind: str, field_name: str, path: tuple) -> tuple[Frag, str] | None:
    """The SQL of ``field_name.path`` for a ``kind`` row and its representation, or None when always null."""
    d = env.dialect
    if not path:
        return None
    if field_name == "tags":
        if kind in JSON_TAGS and len(path) == 1 and isinstance(path[0], str):
            column = JSON_TAGS[kind] if d.name == "postgresql" else f"json({JSON_TAGS[kind]})"
            return d.json_text(d.json_get(Frag(column), d.param(path[0], STRING), False)), STRING
        return None  # machine tags: a LEFT JOIN per key, see render_table
    members = {m.key: m for m in OBJECT_MEMBERS.get((kind, field_name), ())}
    head, rest = path[0], path[1:]
    member = members.get(head) if isinstance(head, str) else None
    if member is None:
        return None
    value = member.value(env)
    guard = OBJECT_GUARDS.get((kind, field_name))
    if guard:
        value = sql(f"(CASE WHEN {guard} THEN § END)", value)
    if not rest:
        return value, member.rep
    if tuple(rest) in member.subpaths:
        build, rep = member.subpaths[tuple(rest)]
        return build(env), rep
    if member.rep != JSON:
        return None
    for step in rest:
        value = d.json_get(value, d.param(step, "long" if isinstance(step, int) else STRING), isinstance(step, int))
    return value, JSON


def object_table(env: Env, name: str, field_name: str) -> Frag:
    """The CTE ``name`` of every row's whole ``field_name`` object, keyed by kind and key. A use of the object is a
    lookup in it (``object_lookup``): the builder's SQL is written once, at the top of the statement, however many
    times and however deep the query uses the object."""
    branches = []
    for kind in ("m", "e", "g", "s"):
        source = FROM[kind] if (kind, field_name) == ("m", "identity") else OBJECT_FROM[kind]
        branches.append(sql(f"SELECT '{kind}' AS k, {PK[kind]} AS pk, § AS j FROM {source}",
                            object_sql(env, kind, field_name)))  # fmt: skip
    return sql(f"{name} AS{env.dialect.not_materialized} (§)", join(" UNION ALL ", branches))


def machine_tags_join(env: Env) -> tuple[Frag, Frag]:
    """Every machine's tags as one object, for queries that use whole ``tags`` on many rows: one aggregate joined
    by machine (the join is dropped by the planner when the column isn't read)."""
    if env.dialect.name == "postgresql":
        return (
            Frag(f"LEFT JOIN (SELECT machine_id, jsonb_object(array_agg(key), array_agg(value)) AS j FROM {TAG}"
                 " GROUP BY machine_id) AS mtags ON mtags.machine_id = m.id"),
            Frag("coalesce(mtags.j, CAST('{}' AS jsonb))"),
        )  # fmt: skip
    return (
        Frag(f"LEFT JOIN (SELECT machine_id, json_group_object(key, value) AS j FROM (SELECT machine_id, key, value"
             f" FROM {TAG} ORDER BY machine_id, key) GROUP BY machine_id) AS mtags ON mtags.machine_id = m.id"),
        Frag("coalesce(mtags.j, json('{}'))"),
    )  # fmt: skip


def object_lookup(name: str, kind: Frag, pk: Frag) -> Frag:
    return sql(f"(SELECT o.j FROM {name} AS o WHERE o.k = § AND o.pk = §)", kind, pk)


def row_key_columns(env: Env, kind: str) -> list[Frag]:
    """The row keys behind ids (keys.py): ``r_m`` the machine's own key on a machine row; ``r_par`` the machine's key
    on an extension row, and ``r_pok`` whether the id cut before its first ``/extensions`` is that machine's id —
    true unless the group or machine name starts with ``extensions`` (names hold no ``/``)."""
    if kind == "m":
        return [Frag("m.id AS r_m"), Frag(f"{env.dialect.null('long').sql} AS r_par"),
                sql("§ AS r_pok", env.dialect.literal_bool(False))]  # fmt: skip
    guard = "(substr(g.name, 1, 10) <> 'extensions' AND substr(m.name, 1, 10) <> 'extensions')"
    return [Frag(f"{env.dialect.null('long').sql} AS r_m"), Frag("e.machine_id AS r_par"), Frag(f"{guard} AS r_pok")]


# --- visibility ----------------------------------------------------------------------------------------------


def _subscription_match(env: Env, subscription: str) -> Frag | None:
    try:
        value = uuid.UUID(subscription)
    except ValueError:
        return None
    return sql("s.subscription_id = §", env.dialect.uuid_param(value))


def scope_condition(env: Env, kind: str, scope: ReadableScope) -> Frag:
    """Rows of ``kind`` whose id is ``scope`` or lies under it (``ids.is_within``), if the scope grants the type."""
    false = env.dialect.literal_bool(False)
    if scope.types is not None and TYPES[kind] not in scope.types:
        return false
    try:
        target = ids.parse(scope.scope)
    except ValueError:
        return false
    if target.is_root:
        return env.dialect.literal_bool(True)
    conditions = [_subscription_match(env, target.subscription)]
    if conditions[0] is None:
        return false
    level = target.kind
    if level == "subscription":
        return conditions[0]
    if level == "machines" and target.resource_group is None:
        return false  # …/subscriptions/{id}/providers/…/machines holds no machine id (they all name their group)
    if kind == "s":
        return false
    conditions.append(sql("lower(g.name) = lower(§)", env.dialect.param(target.resource_group, STRING)))
    if level == "resourceGroup":
        return join(" AND ", conditions)
    if kind == "g":
        return false
    if level == "machines":
        return join(" AND ", conditions)
    conditions.append(sql("lower(m.name) = lower(§)", env.dialect.param(target.machine, STRING)))
    if level == "machine":
        return join(" AND ", conditions)
    if kind != "e":
        return false
    if level == "extension":
        conditions.append(sql("lower(e.name) = lower(§)", env.dialect.param(target.extension, STRING)))
    return join(" AND ", conditions)


def visibility_condition(
    env: Env, kind: str, scopes: Sequence[ReadableScope], subscriptions: Sequence[str] | None
) -> Frag:
    if any(scope.types is None and scope.scope == ids.ROOT for scope in scopes):
        visible = env.dialect.literal_bool(True)
    elif scopes:
        visible = sql("(" + " OR ".join("§" for _ in scopes) + ")", *[scope_condition(env, kind, s) for s in scopes])
    else:
        visible = env.dialect.literal_bool(False)
    if subscriptions is None:
        return visible
    matches = [m for m in (_subscription_match(env, s) for s in subscriptions) if m is not None]
    chosen = (
        sql("(" + " OR ".join("§" for _ in matches) + ")", *matches) if matches else env.dialect.literal_bool(False)
    )
    return sql("(§ AND §)", visible, chosen)


# --- the CTE of one table reference --------------------------------------------------------------------------


@dataclass
class BaseTable:
    """A rendered table reference: its CTE and what its columns are called in it."""

    name: str  # CTE name
    title: str  # Resources / ResourceContainers
    kinds: tuple[str, ...]
    cte: Frag
    columns: dict[str, tuple[str, str]] = field(default_factory=dict)  # KQL name → (SQL column, type)
    paths: dict[tuple[str, tuple], tuple[str, str]] = field(default_factory=dict)  # (field, path) → (col, rep)
    status_column: str | None = None


def _unify(reps: list[str | None]) -> str:
    known = {r for r in reps if r is not None}
    if not known:
        return ""
    return known.pop() if len(known) == 1 else JSON


def render_table(
    env: Env,
    key: str,
    name: str,
    paths: Iterable[tuple[str, tuple]],
    scopes: Sequence[ReadableScope],
    subscriptions: Sequence[str] | None,
    whole: Iterable[str] = (),
    *,
    tag_rows: bool = False,
) -> BaseTable:
    d = env.dialect
    title, kinds = TABLES[key]
    table = BaseTable(name=name, title=title, kinds=kinds, cte=Frag(""))
    wanted: list[tuple[str, tuple, list]] = []  # (field, path, [(frag, rep) | None per kind])
    for field_name in LAZY_FIELDS:
        mentioned = {path for root, path in paths if root == field_name or root not in LAZY_FIELDS}
        for path in sorted(mentioned, key=repr):
            per_kind = [path_sql(env, k, field_name, path) for k in kinds]
            machine_tag = field_name == "tags" and "m" in kinds and len(path) == 1 and isinstance(path[0], str)
            if any(per_kind) or machine_tag:
                wanted.append((field_name, path, per_kind))
    selects = []
    for index, kind in enumerate(kinds):
        items = [Frag(f"'{kind}' AS k"), Frag(f"{PK[kind]} AS pk")]
        joins: list[Frag] = []
        for column, _type in COLUMNS:
            if column in ("sku", "plan", "zones", "extendedLocation", "properties", "tags", "identity"):
                continue
            items.append(sql(f"§ AS c_{column}", column_sql(env, kind, column)))
        for number, (field_name, path, per_kind) in enumerate(wanted, start=1):
            rep = _unify([r[1] if r else None for r in per_kind]) or STRING
            found = per_kind[index]
            if field_name == "tags" and kind == "m" and len(path) == 1 and isinstance(path[0], str):
                alias = f"tg{number}"
                key_param = d.param(path[0], STRING)
                joins.append(sql(f"LEFT JOIN {TAG} {alias} ON {alias}.machine_id = m.id AND lower({alias}.key) ="
                                 f" lower(§) AND {alias}.key = §", key_param, key_param))  # fmt: skip
                found, rep = (Frag(f"{alias}.value"), STRING), STRING
            frag = d.null(rep) if found is None else (found[0] if found[1] == rep else d.to_json(*found))
            items.append(sql(f"§ AS p{number}", frag))
            if index == 0:
                table.paths[(field_name, path)] = (f"p{number}", rep)
        for field_name in sorted(whole):
            if field_name == "tags" and tag_rows:
                # mv-expand reads machine tags from their rows and only other rows' tags from t_tags; o_tags is
                # built per row, for the rows that show it (none when it isn't output)
                items.append(sql("§ AS t_tags", d.null(JSON) if kind == "m" else object_sql(env, kind, field_name)))
            if (kind, field_name) == ("m", "tags") and tag_rows:
                value = object_sql(env, kind, field_name)
            elif (kind, field_name) == ("m", "tags"):
                join_clause, value = machine_tags_join(env)
                joins.append(join_clause)
            else:
                value = object_sql(env, kind, field_name)
            items.append(sql(f"§ AS o_{field_name}", value))
        if "m" in kinds:
            items += row_key_columns(env, kind)
        if any(p == ("properties", ("status",)) for p in table.paths):
            items.append(Frag("m.last_heartbeat_at AS hb" if kind == "m" else f"{d.null('datetime').sql} AS hb"))
            table.status_column = "hb"
        where = visibility_condition(env, kind, scopes, subscriptions)
        selects.append(sql(f"SELECT § FROM {FROM[kind]} § WHERE §", join(", ", items), join(" ", joins), where))
    table.columns = {column: (f"c_{column}", type_) for column, type_ in COLUMNS}
    body = join(" UNION ALL ", selects)
    table.cte = sql(f"{name} AS{d.not_materialized} (§)", body)
    return table
