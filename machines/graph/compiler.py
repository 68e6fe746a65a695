"""Syntax tree → SQL text and parameters for PostgreSQL or SQLite. Pure: no Django import.

``compile_query(query, env=…, scopes=…, subscriptions=…)`` returns a ``CompiledQuery`` whose ``page(offset,
limit)`` and ``count()`` are complete statements (``WITH`` the base tables' CTEs ``SELECT …``). Visibility is in
the CTEs (``sources.render_table``), so no operator can reach a row the caller may not read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from machines.graph import ast, keys
from machines.graph.aggregates import aggregate
from machines.graph.errors import invalid_query
from machines.graph.expressions import Expressions
from machines.graph.functions import AGGREGATE_NAMES
from machines.graph.functions import call as call_function
from machines.graph.naming import NameAllocator, derived_name
from machines.graph.operators import Operators
from machines.graph.parser import parse
from machines.graph.relation import Col, Materializer, Relation, SortKey
from machines.graph.schema import COLUMNS, LAZY_FIELDS, LOWER_COLUMNS, TABLES, Env
from machines.graph.sources import object_table, render_table
from machines.graph.values import DATETIME, DYNAMIC, JSON, LONG, STRING, Frag, LazyObject, Names, Value, join, sql
from machines.graph.visibility import ReadableScope


@dataclass(frozen=True)
class OutputColumn:
    name: str
    type: str  # KQL type
    rep: str  # SQL representation the executor decodes


class CompiledQuery:
    def __init__(self, compiler: Compiler, rel: Relation):
        self.compiler = compiler
        if rel.limit is not None:
            rel = compiler.mat.materialize(rel)
        self.rel = rel
        self.columns = [OutputColumn(c.name, c.value.type, JSON if c.value.lazy else c.value.rep) for c in rel.columns]

    def _with(self, body: Frag) -> Frag:
        return sql("WITH § §", join(", ", self.compiler.ctes + list(self.compiler.object_ctes.values())), body)

    def page(self, *, offset: int, limit: int) -> Frag:
        """The rows ``offset`` … ``offset + limit`` and, as the last column, the total number of rows: counted by a
        window over the same rows, so the query runs once (whole objects are built for the page's rows only) — or by
        the cheaper statement the relation knows (``Relation.count``), so that the order can be a top-N sort."""
        c = self.compiler
        counted = self.rel.count if self.rel.count is not None else Frag("count(*) OVER ()")
        total = Col("\x00total", Value(counted, LONG, nullable=False))
        limited = self.rel.copy(columns=[*self.rel.columns, total], limit=c.const(int(limit), LONG).frag)
        page = c.mat.materialize(limited, offset=c.const(int(offset), LONG).frag)
        items = [sql(f"§ AS o{i}", c.render(col.value)) for i, col in enumerate(page.columns)]
        body = sql("SELECT § FROM §", join(", ", items) if items else Frag("1 AS one"), page.source)
        order = c.mat.order_by(page)
        if order is not None:
            body = sql("§ ORDER BY §", body, order)
        return self._with(body)

    def count(self) -> Frag:
        inner = self.compiler.mat.select(self.rel, [])
        return self._with(sql("SELECT count(*) FROM (§) AS q", inner))


class Compiler(Expressions, Operators):
    def __init__(self, env: Env, scopes: Sequence[ReadableScope], subscriptions: Sequence[str] | None):
        self.env = env
        self.dialect = env.dialect
        self.scopes = list(scopes)
        self.subscriptions = None if subscriptions is None else list(subscriptions)
        self.names = Names()
        self.ctes: list[Frag] = []
        self.paths: set[tuple] = set()
        self.whole: set[str] = set()  # objects the query computes with on many rows: built in the base CTE
        self.tag_rows = False
        self.mat = Materializer(self.names, self.dialect, self.render)
        self.aggregate_input: Relation | None = None
        self.object_ctes: dict[str, Frag] = {}  # CTE name → definition, for whole objects the query uses

    # --- entry points ----------------------------------------------------------------------------------------

    def compile(self, query: ast.Pipeline) -> CompiledQuery:
        check_limits(query)
        self.paths = collect_paths(query)
        self.whole = whole_object_uses(query)
        # machine tags used whole only to be expanded: expanded from their rows (keys.tag_rows_expand), not built
        self.tag_rows = (self.dialect.name == "postgresql" and "tags" in self.whole
                         and "tags" not in whole_object_uses(query, skip_expanded=True))  # fmt: skip
        return CompiledQuery(self, self.tabular(query))

    def tabular(self, node: ast.Tabular) -> Relation:
        if isinstance(node, ast.Table):
            return self.table(node)
        if isinstance(node, ast.Union):
            return self.union([self.tabular(s) for s in node.sources])
        if isinstance(node, ast.Pipeline):
            rel = self.tabular(node.source)
            for operator in node.operators:
                rel = self.operator(operator, rel)
            return rel
        raise invalid_query(f"Unsupported tabular expression {type(node).__name__}.", pos=node.pos)

    def object_cte(self, field_name: str) -> str:
        name = f"obj_{field_name}"
        if name not in self.object_ctes:
            self.object_ctes[name] = object_table(self.env, name, field_name)
        return name

    def call(self, node: ast.Call, rel: Relation, *, predicate: bool = False) -> Value:
        if self.aggregate_input is not None and node.name in AGGREGATE_NAMES:
            source, self.aggregate_input = self.aggregate_input, None
            try:
                return aggregate(self, node, source)
            finally:
                self.aggregate_input = source
        return call_function(self, node, rel, predicate=predicate)

    # --- tables ------------------------------------------------------------------------------------------------

    def table(self, node: ast.Table) -> Relation:
        key = node.name.lower()
        if key not in TABLES:
            known = ", ".join(title for title, _ in TABLES.values())
            raise invalid_query(
                f"Table '{node.name}' is not supported by this Resource Graph (it has {known}).",
                code="UnknownTable",
                name=node.name,
                pos=node.pos,
            )
        name = self.names.next("src")
        base = render_table(self.env, key, name, self.paths, self.scopes, self.subscriptions, self.whole,
                            tag_rows=self.tag_rows)  # fmt: skip
        self.ctes.append(base.cte)
        alias = self.names.next("t")
        kind = Value(Frag(f"{alias}.k"), STRING, nullable=False)
        pk = Value(Frag(f"{alias}.pk"), LONG, nullable=False)
        status = (kind, Value(Frag(f"{alias}.hb"), DATETIME)) if base.status_column else None
        columns = []
        for column, type_ in COLUMNS:
            if column in LAZY_FIELDS:
                paths = {
                    path: Value(Frag(f"{alias}.{sql_name}"), DYNAMIC, rep,
                                status=status if (column, path) == ("properties", ("status",)) else None)
                    for (field_name, path), (sql_name, rep) in base.paths.items()
                    if field_name == column
                }  # fmt: skip
                if column in self.whole:
                    facts = None
                    if column == "tags" and self.tag_rows and "m" in base.kinds:
                        facts = {"tagrows": Value(Frag(f"{alias}.r_m"), LONG),
                                 "tagjson": Value(Frag(f"{alias}.t_tags"), DYNAMIC, JSON)}  # fmt: skip
                    value = Value(Frag(f"{alias}.o_{column}"), DYNAMIC, JSON, paths=paths, shape="object", facts=facts)
                else:
                    lazy = LazyObject(column, kind, pk, frozenset(base.kinds))
                    value = Value(Frag("NULL"), DYNAMIC, JSON, lazy=lazy, paths=paths, shape="object")
            elif type_ == DYNAMIC:
                value = Value(self.dialect.null(JSON), DYNAMIC, JSON, literal=None)
            else:
                facts = keys.id_facts(alias) if column == "id" and "m" in base.kinds else None
                facts = {"rowtype": keys.ALWAYS} if column == "type" else facts
                value = Value(Frag(f"{alias}.c_{column}"), type_, nullable=False, lower=column in LOWER_COLUMNS,
                              facts=facts)  # fmt: skip
            columns.append(Col(column, value))
        return Relation(source=Frag(f"{name} AS {alias}"), columns=columns, key=[kind, pk])

    # --- row operators ---------------------------------------------------------------------------------------------

    def operator(self, op: ast.Operator, rel: Relation) -> Relation:
        handler = getattr(self, f"op_{type(op).__name__.lower()}", None)
        if handler is None:
            raise invalid_query(f"Unsupported operator {type(op).__name__}.", code="UnsupportedOperator", pos=op.pos)
        return handler(op, rel)

    def op_where(self, op: ast.Where, rel: Relation) -> Relation:
        if rel.limit is not None:
            rel = self.mat.materialize(rel)
        predicate = self.as_bool(self.expr(op.predicate, rel, predicate=True), op.predicate)
        return keys.machines_only(self, op.predicate, rel.copy(where=[*rel.where, predicate.frag]))

    def op_extend(self, op: ast.Extend, rel: Relation) -> Relation:
        for item in op.items:
            value = self.expr(item.expr, rel)
            name = item.name or derived_name(item.expr)
            columns = list(rel.columns)
            if name is not None and rel.get(name) is not None:
                columns = [Col(name, value) if c.name == name else c for c in columns]
            else:
                columns.append(Col(NameAllocator(rel.names()).claim(name), value))
            rel = rel.copy(columns=columns)
        return rel

    def op_project(self, op: ast.Project, rel: Relation) -> Relation:
        names = NameAllocator()
        columns = []
        for item in op.items:
            name = item.name or derived_name(item.expr)
            if name is not None and name in names.taken:
                raise invalid_query(f"The column '{name}' is projected twice.", code="DuplicateColumn", name=name,
                                    pos=item.pos)  # fmt: skip
            columns.append(Col(names.claim(name), self.expr(item.expr, rel)))
        return rel.copy(columns=columns)

    def op_projectaway(self, op: ast.ProjectAway, rel: Relation) -> Relation:
        for name in op.names:
            if rel.get(name) is None:
                raise invalid_query(f"project-away: there is no column '{name}'.", code="UnknownColumn", name=name,
                                    pos=op.pos)  # fmt: skip
        return rel.copy(columns=[c for c in rel.columns if c.name not in op.names])

    def sort_keys(self, keys: Sequence[ast.OrderKey], rel: Relation) -> list[SortKey]:
        result = []
        for key in keys:
            value = self.expr(key.expr, rel)
            if value.lazy is not None:
                value = Value(self.json_of(value), DYNAMIC, JSON)
            nulls_first = (not key.descending) if key.nulls_first is None else key.nulls_first
            result.append(SortKey(value, key.descending, nulls_first))
        return result

    def op_order(self, op: ast.Order, rel: Relation) -> Relation:
        if rel.limit is not None:
            rel = self.mat.materialize(rel)
        return rel.copy(order=self.sort_keys(op.keys, rel))

    def count_literal(self, node: ast.Expr, what: str) -> int:
        if isinstance(node, ast.Literal) and node.type == LONG and node.value >= 0:
            return int(node.value)
        raise invalid_query(f"{what} needs a constant number of rows (0 or more).", code="InvalidArgument",
                            pos=node.pos)  # fmt: skip

    def op_top(self, op: ast.Top, rel: Relation) -> Relation:
        count = self.count_literal(op.count, "top")
        if rel.limit is not None:
            rel = self.mat.materialize(rel)
        return rel.copy(order=self.sort_keys([op.key], rel), limit=self.const(count, LONG).frag)

    def op_take(self, op: ast.Take, rel: Relation) -> Relation:
        count = self.count_literal(op.count, "take")
        if rel.limit is not None:
            rel = self.mat.materialize(rel)
        return rel.copy(limit=self.const(count, LONG).frag)


# Resource Graph's per-query limits (query-language.md: "a default limit of 3 join and 3 mv-expand operators",
# "Limit of 3 union legs in a single query").
LIMITS = {ast.Join: ("join", 3), ast.MvExpand: ("mv-expand", 3), "union": ("union leg", 3)}


def check_limits(query: ast.Pipeline) -> None:
    counts: dict = {}
    first: dict = {}
    stack: list = [query]
    while stack:
        node = stack.pop()
        kind, step = (type(node), 1) if type(node) in LIMITS else (None, 0)
        if isinstance(node, ast.UnionOp):
            kind, step = "union", len(node.others)
        elif isinstance(node, ast.Union):
            kind, step = "union", len(node.sources) - 1
        if kind is not None:
            counts[kind] = counts.get(kind, 0) + step
            first[kind] = min(first.get(kind, node.pos), node.pos)
        if dataclasses.is_dataclass(node):
            for f in dataclasses.fields(node):
                value = getattr(node, f.name)
                if isinstance(value, tuple):
                    stack.extend(v for v in value if isinstance(v, ast.Tabular | ast.Operator))
                elif isinstance(value, ast.Tabular | ast.Operator):
                    stack.append(value)
    for kind, count in counts.items():
        word, limit = LIMITS[kind]
        if count > limit:
            raise invalid_query(
                f"The query has {count} {word}s; Resource Graph allows {limit} in one query.",
                code="TooManyOperators",
                name=word,
                pos=first[kind],
            )


def whole_object_uses(query: ast.Pipeline, *, skip_expanded: bool = False) -> set[str]:
    """The base objects (properties, tags, identity) the query computes with as a whole — compared, converted,
    expanded, grouped, sorted — rather than only projecting them. Those are built in the base table's CTE for every
    row (set-wise, no lookups); an object only projected stays lazy and is built for the rows of the page."""
    found: set[str] = set()
    stack: list[tuple[object, bool]] = [(query, False)]  # (node, projected as a bare item)
    while stack:
        node, bare = stack.pop()
        if isinstance(node, ast.Column) and node.name in LAZY_FIELDS and not bare:
            found.add(node.name)
        if isinstance(node, ast.Distinct) and (not node.names or set(node.names) & set(LAZY_FIELDS)):
            found.update(LAZY_FIELDS if not node.names else set(node.names) & set(LAZY_FIELDS))
        if isinstance(node, ast.Call) and any(isinstance(a, ast.Star) for a in node.args):
            found.update(LAZY_FIELDS)
        if isinstance(node, ast.Member | ast.Index):
            root = node
            while isinstance(root, ast.Member | ast.Index) and (
                isinstance(root, ast.Member) or isinstance(root.index, ast.Literal)
            ):
                root = root.obj
            if isinstance(root, ast.Column):
                continue  # a constant path: a column of its own, the object isn't needed
        projecting = isinstance(node, ast.Project | ast.Extend)
        if not dataclasses.is_dataclass(node):
            continue
        if skip_expanded and isinstance(node, ast.MvExpand):  # ``mv-expand x = tags``: not counted as a use
            stack += [(i.expr, False) for i in node.items if not isinstance(i.expr, ast.Column)]
            stack += [(v, False) for f in dataclasses.fields(node) if f.name != "items"
                      for v in (getattr(node, f.name),) if dataclasses.is_dataclass(v)]  # fmt: skip
            continue
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            children = value if isinstance(value, tuple) else (value,)
            for child in children:
                if isinstance(child, ast.Item):
                    stack.append((child.expr, projecting))
                elif dataclasses.is_dataclass(child):
                    stack.append((child, False))
    return found


def collect_paths(node) -> set[tuple[str, tuple]]:
    """Every constant member path written in the query, with the column it starts from
    (``properties.osProfile.computerName`` → ``("properties", ("osProfile", "computerName"))``): the base tables
    get a column for each."""
    found: set[tuple] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.Member | ast.Index):
            steps, root = [], current
            while isinstance(root, ast.Member | ast.Index):
                if isinstance(root, ast.Member):
                    steps.append(root.name)
                elif isinstance(root.index, ast.Literal) and root.index.type in (STRING, LONG):
                    steps.append(root.index.value)
                else:
                    steps = []
                    break
                root = root.obj
            if steps and isinstance(root, ast.Column):
                found.add((root.name, tuple(reversed(steps))))
        if dataclasses.is_dataclass(current):
            for f in dataclasses.fields(current):
                value = getattr(current, f.name)
                if isinstance(value, tuple):
                    stack.extend(v for v in value if dataclasses.is_dataclass(v))
                elif dataclasses.is_dataclass(value):
                    stack.append(value)
    return found


def compile_query(
    query: str | ast.Pipeline,
    *,
    env: Env,
    scopes: Sequence[ReadableScope],
    subscriptions: Sequence[str] | None = None,
) -> CompiledQuery:
    tree = parse(query) if isinstance(query, str) else query
    return Compiler(env, scopes, subscriptions).compile(tree)
