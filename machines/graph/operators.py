"""The operators that regroup rows: summarize, distinct, count, mv-expand, join, union. Pure.

Each one materializes its input first (``Materializer``) and answers a new subquery with a known row key, so that
pages stay stable: the group keys after ``summarize``, every column after ``distinct``, the input key plus the
element's position after ``mv-expand``, both sides' keys after ``join``, the branch and its key after ``union``.
"""

from __future__ import annotations

from machines.graph import ast, keys
from machines.graph.aggregates import check_arity
from machines.graph.errors import invalid_query
from machines.graph.naming import NameAllocator, aggregate_name, derived_name
from machines.graph.relation import Col, Relation
from machines.graph.values import DYNAMIC, JSON, LONG, STRING, Frag, Value, join, sql


class Operators:
    """Mixed into the compiler."""

    def keyed(self, value: Value) -> Value:
        """A value usable in GROUP BY / DISTINCT / join keys: whole objects become JSON."""
        return Value(self.json_of(value), DYNAMIC, JSON) if value.lazy is not None else value

    # --- summarize -------------------------------------------------------------------------------------------

    def op_summarize(self, op: ast.Summarize, rel: Relation) -> Relation:
        if not op.aggregates and not op.by:
            raise invalid_query("summarize needs an aggregation or a by clause.", code="InvalidArgument", pos=op.pos)
        if rel.limit is not None:
            rel = self.mat.materialize(rel)
        names = NameAllocator()
        by: list[tuple[str, Value]] = []
        for item in op.by:
            by.append((names.claim(item.name or derived_name(item.expr)), self.keyed(self.expr(item.expr, rel))))
        arg_items = [i for i in op.aggregates if isinstance(i.expr, ast.Call) and i.expr.name in ("arg_max", "arg_min")]
        picks: list[tuple[str, Value]] = []
        if arg_items:
            rel, picks = self.arg_extremes(arg_items, rel, by, names)
            by = [(name, rel.get(f"\x00key{i}")) for i, (name, _) in enumerate(by)]
        key_scope = Relation(source=rel.source, columns=[Col(n, v) for n, v in by])
        aggregates: list[tuple[str, Value]] = []
        for item in op.aggregates:
            if item in arg_items:
                continue
            self.aggregate_input = rel
            try:
                value = self.expr(item.expr, key_scope)
            finally:
                self.aggregate_input = None
            aggregates.append((names.claim(item.name or aggregate_name(item.expr)), value))
        alias = self.names.next("t")
        items, columns = [], []
        for number, (name, value) in enumerate(by + picks + aggregates, start=1):
            items.append(sql(f"§ AS s{number}", self.render(value)))
            columns.append(Col(name, value.moved(Frag(f"{alias}.s{number}"))))
        per_row = None if picks else keys.summarize_join(self, rel, by, aggregates)
        if per_row is not None:  # one group per left row of a key join: aggregates per row, for the page's rows
            items, where = per_row
            rows = rel.joined.left.copy(where=[] if where is None else [where], order=[], limit=None)
            body = self.mat.select(rows, items)
            count = sql("(SELECT count(*) FROM (§) AS q)", self.mat.select(rows, []))
        else:
            group = [self.render(v) for _, v in by]
            extra = sql("GROUP BY §", join(", ", group)) if group else None
            body = self.mat.select(rel.copy(order=[], limit=None), items, extra=extra)
            count = None
        return Relation(source=sql(f"(§) AS {alias}", body), columns=columns,
                        key=[c.value for c in columns[: len(by)]], count=count)  # fmt: skip

    def arg_extremes(self, items, rel: Relation, keys, names: NameAllocator):
        """arg_max/arg_min: each returned column's value on the group's first row by the expression (a window)."""
        partition = [self.render(v) for _, v in keys]
        hidden = [Col(f"\x00key{i}", v) for i, (_, v) in enumerate(keys)]
        picks, extra = [], []
        for item in items:
            call = item.expr
            check_arity(call)
            measure = self.keyed(self.expr(call.args[0], rel))
            direction = "DESC" if call.name == "arg_max" else "ASC"
            order = sql(f"§ {direction} NULLS LAST", self.dialect.collate(self.render(measure))
                        if measure.rep == STRING else self.render(measure))  # fmt: skip
            stable = [self.render(v) for v in (rel.key or [])]
            order = join(", ", [order, *stable])
            over = (
                sql("OVER (PARTITION BY § ORDER BY §)", join(", ", partition), order)
                if partition
                else sql("OVER (ORDER BY §)", order)
            )
            returned: list[tuple[str | None, Value]] = [(item.name or derived_name(call.args[0]), measure)]
            for arg in call.args[1:]:
                if isinstance(arg, ast.Star):
                    key_names = {n for n, _ in keys}
                    returned += [(c.name, c.value) for c in rel.columns if c.name not in key_names]
                else:
                    returned.append((derived_name(arg), self.keyed(self.expr(arg, rel))))
            seen = set()
            for name, value in returned:
                if name is not None and name in seen:
                    continue
                seen.add(name)
                value = self.keyed(value)
                label = f"\x00pick{len(extra)}"
                extra.append(Col(label, Value(sql("FIRST_VALUE(§) §", self.render(value), over), value.type,
                                              value.rep)))  # fmt: skip
                picks.append((names.claim(name), label))
        windowed = self.mat.materialize(rel.copy(columns=[*rel.columns, *hidden, *extra]))
        chosen = []
        for name, label in picks:
            value = windowed.get(label)
            chosen.append((name, value.moved(self.dialect.pick(self.render(value), value.rep))))
        return windowed, chosen

    # --- distinct and count ------------------------------------------------------------------------------------

    def op_distinct(self, op: ast.Distinct, rel: Relation) -> Relation:
        if rel.limit is not None:
            rel = self.mat.materialize(rel)
        chosen = op.names or tuple(rel.names())
        alias = self.names.next("t")
        items, columns = [], []
        for number, name in enumerate(chosen, start=1):
            value = rel.get(name)
            if value is None:
                raise invalid_query(f"distinct: there is no column '{name}'.", code="UnknownColumn", name=name,
                                    pos=op.pos)  # fmt: skip
            value = self.keyed(value)
            items.append(sql(f"§ AS d{number}", self.render(value)))
            columns.append(Col(name, value.moved(Frag(f"{alias}.d{number}"))))
        body = self.mat.select(rel.copy(order=[], limit=None), items)
        body = Frag(body.sql.replace("SELECT ", "SELECT DISTINCT ", 1), body.params)
        return Relation(source=sql(f"(§) AS {alias}", body), columns=columns, key=[c.value for c in columns])

    def op_count(self, op: ast.Count, rel: Relation) -> Relation:
        if rel.limit is not None:
            rel = self.mat.materialize(rel)
        alias = self.names.next("t")
        body = self.mat.select(rel.copy(order=[]), [Frag("count(*) AS n")])
        return Relation(source=sql(f"(§) AS {alias}", body),
                        columns=[Col("Count", Value(Frag(f"{alias}.n"), LONG, nullable=False))], key=[])  # fmt: skip

    # --- mv-expand ---------------------------------------------------------------------------------------------

    def op_mvexpand(self, op: ast.MvExpand, rel: Relation) -> Relation:
        if len(op.items) != 1:
            raise invalid_query("mv-expand of several columns at once is not supported; use one mv-expand each.",
                                code="UnsupportedOperator", name="mv-expand", pos=op.pos)  # fmt: skip
        item = op.items[0]
        value = self.expr(item.expr, rel)
        if value.type != DYNAMIC:
            raise self.mismatch("mv-expand takes a dynamic array or property bag.", item.expr)
        # The array is computed once per row, as a column of the input: the expansion reads it several times.
        hidden = Col("\x00array", Value(self.json_of(value), DYNAMIC, JSON, shape=value.shape, facts=value.facts))
        rel = self.mat.materialize(rel.copy(columns=[*rel.columns, hidden]))
        array_value = rel.get("\x00array")
        array = self.render(array_value)
        rel = rel.copy(columns=rel.columns[:-1])
        alias = self.names.next("x")
        rows = None if op.kind == "array" else keys.tag_rows_expand(self, array_value, alias, op.limit)
        if rows is not None:  # machine tags from their rows
            join_clause, keep, element, ordinals, facts = rows
        else:
            join_clause, keep, element, ordinal = self.dialect.mv_expand(
                array, alias, as_array=op.kind == "array", shape=value.shape
            )
            ordinals, facts = [Value(ordinal, LONG, nullable=False)], None
        name = item.name or derived_name(item.expr)
        new = Value(element, DYNAMIC, JSON, facts=facts)
        if name is not None and rel.get(name) is not None:
            columns = [Col(name, new) if c.name == name else c for c in rel.columns]
        else:
            columns = [*rel.columns, Col(NameAllocator(rel.names()).claim(name), new)]
        where = list(rel.where) + ([keep] if keep is not None else [])
        if op.limit is not None and rows is None:
            where.append(self.dialect.mv_limit(alias, op.limit))
        key = None if rel.key is None else [*rel.key, *ordinals]
        expanded = Relation(source=sql("§ §", rel.source, join_clause), columns=columns, where=where, order=[], key=key)
        return self.mat.materialize(expanded)  # the element becomes a column: later uses read it, not rebuild it

    # --- join --------------------------------------------------------------------------------------------------

    def op_join(self, op: ast.Join, left: Relation) -> Relation:
        right = self.mat.materialize(self.tabular(op.right), keep_order=False)
        left = self.mat.materialize(left, keep_order=False)
        for key in op.keys:
            if left.get(key.left) is None or right.get(key.right) is None:
                missing, side = (key.left, "left") if left.get(key.left) is None else (key.right, "right")
                raise invalid_query(f"join: the {side} side has no column '{missing}'.", code="UnknownColumn",
                                    name=missing, pos=op.pos)  # fmt: skip
        if op.kind == "innerunique":
            left = self.unique_left(left, [self.join_pair(left, right, key, op)[0] for key in op.keys])
        on_keys = keys.key_join(self, left, right, op)  # machine ids on both sides: their row keys
        condition = on_keys or join(" AND ", [sql("§ = §", *self.join_pair(left, right, key, op)) for key in op.keys])
        word = "LEFT JOIN" if op.kind == "leftouter" else "JOIN"
        names = NameAllocator(left.names())
        columns = [*left.columns, *(Col(names.claim(c.name), c.value) for c in right.columns)]
        key = None if left.key is None or right.key is None else [*left.key, *right.key]
        source = sql(f"§ {word} § ON §", left.source, right.source, condition)
        joined = None if on_keys is None else keys.KeyJoin(source, left, right, op.kind, condition)
        return Relation(source=source, columns=columns, key=key, joined=joined)

    def join_pair(self, left: Relation, right: Relation, key: ast.JoinKey, op) -> tuple[Frag, Frag]:
        a, b = self.keyed(left.get(key.left)), self.keyed(right.get(key.right))
        kind = self.kind_of(a, b, op)
        return self.coerce(a, kind, op), self.coerce(b, kind, op)

    def unique_left(self, left: Relation, key_frags) -> Relation:
        """innerunique (KQL's default join): one left row per join key, the first in a stable order."""
        stable = join(", ", [self.render(v) for v in (left.key or [c.value for c in left.columns])])
        number = Value(sql("ROW_NUMBER() OVER (PARTITION BY § ORDER BY §)", join(", ", key_frags), stable), LONG)
        marked = self.mat.materialize(left.copy(columns=[*left.columns, Col("\x00rn", number)]), keep_order=False)
        rn = marked.get("\x00rn")
        filtered = marked.copy(where=[sql("§ = 1", self.render(rn))], columns=marked.columns[:-1])
        return self.mat.materialize(filtered, keep_order=False)

    # --- union -----------------------------------------------------------------------------------------------

    def op_unionop(self, op: ast.UnionOp, rel: Relation) -> Relation:
        return self.union([rel, *(self.tabular(other) for other in op.others)])

    def union(self, relations: list[Relation]) -> Relation:
        relations = [self.mat.materialize(r, keep_order=False) for r in relations]
        order: list[str] = []
        for r in relations:
            order += [n for n in r.names() if n not in order]
        alias = self.names.next("t")
        width = max(len(r.key or []) for r in relations) if all(r.key is not None for r in relations) else None
        selects, shapes = [], {}
        for name in order:
            present = [r.get(name) for r in relations]
            shapes[name] = self.union_shape([v for v in present if v is not None])
        for branch, r in enumerate(relations):
            items = [Frag(f"{branch} AS ub")]
            for number, name in enumerate(order, start=1):
                items += self.union_items(shapes[name], r.get(name), f"u{number}")
            if width is not None:
                keys = [self.as_string(v).frag for v in r.key] + [Frag("''")] * (width - len(r.key))
                items += [sql(f"§ AS uk{i}", k) for i, k in enumerate(keys)]
            selects.append(self.mat.select(r, items))
        columns = [Col(name, self.union_value(shapes[name], alias, f"u{n}")) for n, name in enumerate(order, start=1)]
        key = None
        if width is not None:
            key = [Value(Frag(f"{alias}.ub"), LONG, nullable=False)]
            key += [Value(Frag(f"{alias}.uk{i}"), STRING, nullable=False) for i in range(width)]
        body = join(" UNION ALL ", [sql("§", s) for s in selects])
        return Relation(source=sql(f"(§) AS {alias}", body), columns=columns, key=key)

    def union_shape(self, values: list[Value]) -> dict:
        lazy = [v.lazy for v in values]
        if all(lazy) and len({lz.field for lz in lazy}) == 1:
            paths: dict = {}
            for v in values:
                for path, pv in (v.paths or {}).items():
                    paths.setdefault(path, set()).add(pv.rep)
            kinds = frozenset().union(*(lz.kinds for lz in lazy))
            return {"lazy": lazy[0].field, "kinds": kinds,
                    "paths": {p: (reps.pop() if len(reps) == 1 else JSON) for p, reps in paths.items()}}  # fmt: skip
        types = {(v.type, v.rep) for v in values}
        if len(types) == 1:
            (type_, rep) = types.pop()
            return {"type": type_, "rep": rep, "lower": all(v.lower for v in values)}
        return {"type": DYNAMIC, "rep": JSON, "lower": False}

    def union_items(self, shape: dict, value: Value | None, prefix: str) -> list[Frag]:
        d = self.dialect
        if "lazy" in shape:
            if value is None:
                items = [sql(f"§ AS {prefix}k", d.null(STRING)), sql(f"§ AS {prefix}p", d.null(LONG))]
            else:
                items = [sql(f"§ AS {prefix}k", self.render(value.lazy.kind)),
                         sql(f"§ AS {prefix}p", self.render(value.lazy.pk))]  # fmt: skip
            for number, (path, rep) in enumerate(sorted(shape["paths"].items(), key=repr)):
                pv = (value.paths or {}).get(path) if value is not None else None
                frag = d.null(rep) if pv is None else (self.render(pv) if pv.rep == rep else self.json_of(pv))
                items.append(sql(f"§ AS {prefix}x{number}", frag))
            return items
        if value is None:
            return [sql(f"§ AS {prefix}", d.null(shape["rep"]))]
        frag = self.render(value) if (value.type, value.rep) == (shape["type"], shape["rep"]) else self.json_of(value)
        return [sql(f"§ AS {prefix}", frag)]

    def union_value(self, shape: dict, alias: str, prefix: str) -> Value:
        if "lazy" in shape:
            from machines.graph.values import LazyObject

            kind = Value(Frag(f"{alias}.{prefix}k"), STRING)
            pk = Value(Frag(f"{alias}.{prefix}p"), LONG)
            paths = {path: Value(Frag(f"{alias}.{prefix}x{number}"), DYNAMIC, rep)
                     for number, (path, rep) in enumerate(sorted(shape["paths"].items(), key=repr))}  # fmt: skip
            return Value(Frag("NULL"), DYNAMIC, JSON, lazy=LazyObject(shape["lazy"], kind, pk, shape["kinds"]),
                         paths=paths)  # fmt: skip
        return Value(Frag(f"{alias}.{prefix}"), shape["type"], shape["rep"], lower=shape["lower"])
