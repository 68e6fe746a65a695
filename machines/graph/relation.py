"""A relation under construction: one SELECT whose parts are still open. Pure.

``where``, ``extend``, ``project`` … only change the column list and the WHERE clause of the current SELECT; an
operator that needs the rows as they are (``summarize``, ``join``, ``take`` then ``where`` …) first *materializes*
it into a subquery. Materializing carries, under generated names, what later operators may still need: the row key
(for stable paging), the sort keys, and for a base object its kind, key and path columns — so ``properties`` stays
lazy (built only on the rows returned) and ``properties.status`` stays a plain column across subqueries.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from machines.graph.values import MISSING, STRING, Frag, LazyObject, Names, Value, join, sql


@dataclass(frozen=True)
class Col:
    name: str
    value: Value


@dataclass(frozen=True)
class SortKey:
    value: Value
    descending: bool
    nulls_first: bool


@dataclass
class Relation:
    source: Frag  # the FROM clause
    columns: list[Col]
    where: list[Frag] = field(default_factory=list)
    order: list[SortKey] = field(default_factory=list)
    limit: Frag | None = None
    key: list[Value] | None = None  # values that identify a row; None: unknown (order by every column)
    joined: object | None = None  # keys.KeyJoin when this relation is a join on row keys, as op_join made it
    count: Frag | None = None  # a cheaper statement of its number of rows, when known (keys.summarize_join)

    def get(self, name: str) -> Value | None:
        for col in self.columns:
            if col.name == name:
                return col.value
        return None

    def names(self) -> list[str]:
        return [col.name for col in self.columns]

    def copy(self, **changes) -> Relation:
        values = {
            "source": self.source,
            "columns": list(self.columns),
            "where": list(self.where),
            "order": list(self.order),
            "limit": self.limit,
            "key": None if self.key is None else list(self.key),
            "joined": self.joined,
            # new columns or another order keep the rows; a filter or a limit changes how many there are
            "count": self.count if set(changes) <= {"columns", "order"} else None,
        }
        values.update(changes)
        return Relation(**values)


class Materializer:
    """Turns a relation into ``(SELECT …) AS tN`` and rewrites every carried value to its new column."""

    def __init__(self, names: Names, dialect, render) -> None:
        self.names = names
        self.dialect = dialect
        self.render = render  # Value → Frag (builds lazy objects)

    def order_by(self, rel: Relation, *, stable: bool = True) -> Frag | None:
        keys = list(rel.order)
        if stable:
            for value in rel.key if rel.key is not None else [c.value for c in rel.columns if not c.value.lazy]:
                keys.append(SortKey(value, False, True))
        if not keys:
            return None
        parts = []
        for key in keys:
            frag = self.render(key.value)
            if key.value.rep == STRING:
                frag = self.dialect.collate(frag)
            nulls = "NULLS FIRST" if key.nulls_first else "NULLS LAST"
            parts.append(sql(f"§ {'DESC' if key.descending else 'ASC'} {nulls}", frag))
        return join(", ", parts)

    def select(self, rel: Relation, items: list[Frag], *, offset: Frag | None = None, extra: Frag | None = None):
        """``SELECT items FROM … WHERE … [ORDER BY … LIMIT …]`` of ``rel`` (ORDER BY only under a LIMIT)."""
        parts = [sql("SELECT § FROM §", join(", ", items) if items else Frag("1 AS one"), rel.source)]
        if rel.where:
            parts.append(sql("WHERE §", join(" AND ", [sql("(§)", w) for w in rel.where])))
        if extra is not None:
            parts.append(extra)
        if rel.limit is not None or offset is not None:
            order = self.order_by(rel)
            if order is not None:
                parts.append(sql("ORDER BY §", order))
            parts.append(sql("LIMIT §", rel.limit))
            if offset is not None:
                parts.append(sql("OFFSET §", offset))
        return join(" ", parts)

    def materialize(self, rel: Relation, *, keep_order: bool = True, offset: Frag | None = None) -> Relation:
        alias = self.names.next("t")
        carried: dict[tuple, str] = {}
        items: list[Frag] = []

        def carry(value: Value) -> Value:
            if value.lazy is not None:
                lazy = value.lazy
                new_lazy = LazyObject(lazy.field, carry(lazy.kind), carry(lazy.pk), lazy.kinds)
                paths = {p: carry(v) for p, v in (value.paths or {}).items()}
                return value.with_(lazy=new_lazy, paths=paths, frag=Frag("NULL"))
            if value.is_literal:
                return value
            frag = self.render(value)
            ident = (frag.sql, frag.params)
            if ident not in carried:
                carried[ident] = self.names.next("c")
                items.append(sql(f"§ AS {carried[ident]}", frag))
            status = None
            if value.status is not None:
                status = (carry(value.status[0]), carry(value.status[1]))
            paths = {p: carry(v) for p, v in value.paths.items()} if value.paths else None
            facts = {f: carry(v) for f, v in value.facts.items()} if value.facts else None
            return value.with_(frag=Frag(f"{alias}.{carried[ident]}"), status=status, paths=paths, literal=MISSING,
                               facts=facts)  # fmt: skip

        columns = [Col(col.name, carry(col.value)) for col in rel.columns]
        key = None if rel.key is None else [carry(v) for v in rel.key]
        order = [replace(k, value=carry(k.value)) for k in rel.order] if keep_order else []
        body = self.select(rel, items, offset=offset)
        return Relation(source=sql(f"(§) AS {alias}", body), columns=columns, order=order, key=key)
