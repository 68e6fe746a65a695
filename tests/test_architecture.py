"""The layering of docs/architecture.md, enforced over every import (STYLE.md §10, issue 11).

    arcportal (core)  <  identity  <  machines  <  onboarding  <  agentplane
    simulator: a tool beside the layers (may import any of them and the agent); agent/: imports nothing of the portal

A package imports only itself and the layers below it. Every import counts: at module level and inside functions,
``import_module``/``__import__`` with a constant name, ``apps.get_model("app", …)``, and any string constant that is
a dotted path into a portal package (a settings path, a URLconf to include, a Celery task name): such strings may
name another package only in the composition root (``arcportal/settings.py``, ``urls.py``, ``celery.py``,
``wsgi.py``). Module-level imports form no cycle. Pure rule modules import no Django, and only other pure modules of
the portal. No code file outside migrations and tests is over 400 lines. Views never write models.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from tests.astutil import parse

ROOT = Path(__file__).resolve().parents[1]

LAYERS = ["arcportal", "identity", "machines", "onboarding", "agentplane"]
RANK = {package: rank for rank, package in enumerate(LAYERS)}
TOOLS = ["simulator"]
AGENT = "azcmagent"  # agent/azcmagent, installed beside the portal
PACKAGES = [*LAYERS, *TOOLS]
COMPOSITION_ROOT = {"arcportal/settings.py", "arcportal/urls.py", "arcportal/celery.py", "arcportal/wsgi.py"}

# Pure rule modules: no Django, no database, time as an argument; they may import only each other (of the portal).
PURE_MODULES = [
    "arcportal/arm/ids.py",
    "arcportal/authz.py",
    "arcportal/textguard.py",
    "arcportal/files.py",
    "identity/codes.py",
    "machines/status.py",
    "machines/validation.py",
    "machines/regions.py",
    "machines/timeline.py",
    "machines/keyproof.py",
    "machines/keys.py",
    "machines/envelopes.py",
    "machines/egress.py",
    "machines/csv_export.py",
    "machines/extension_catalogue.py",
    "onboarding/quoting.py",
    # The Resource Graph's query language: parser, compiler and dialects are pure; only its executor runs queries.
    *[
        p.relative_to(ROOT).as_posix()
        for p in sorted((ROOT / "machines" / "graph").glob("*.py"))
        if p.name not in ("executor.py", "__init__.py")
    ],
]
DJANGO_PREFIXES = ("django", "rest_framework", "drf_spectacular", "django_filters", "django_htmx", "celery")
MAX_LINES = 400
CODE_SUFFIXES = {".py", ".html", ".sh", ".ps1", ".js", ".css", ".toml"}
DOTTED = re.compile(rf"^(?:{'|'.join(PACKAGES)})(?:\.[A-Za-z_]\w*)+$")


def _path_of(module: str) -> Path | None:
    """The file of a portal module (``machines.services`` → machines/services/__init__.py), or None."""
    parts = module.split(".")
    base = ROOT / "agent" if parts[0] == AGENT else ROOT
    for candidate in (base.joinpath(*parts).with_suffix(".py"), base.joinpath(*parts, "__init__.py")):
        if candidate.exists():
            return candidate
    return None


def _module_of(path: Path) -> str:
    relative = path.relative_to(ROOT / "agent" if path.is_relative_to(ROOT / "agent") else ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> list[Path]:
    paths = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    paths += list((ROOT / "agent" / AGENT).rglob("*.py"))
    return sorted(p for p in paths if "__pycache__" not in p.parts)


@dataclass(frozen=True)
class Edge:
    target: str  # the module (or package) depended on
    line: int
    how: str  # "import", "import in a function", "import_module", "get_model", "string"
    top_level: bool


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


@cache
def edges_of(path: Path) -> tuple[Edge, ...]:
    module = _module_of(path)
    is_package = path.name == "__init__.py"
    tree = parse(path)
    top = {id(node) for node in tree.body}
    for node in tree.body:  # `if`/`try` blocks at module level run at import time too
        if isinstance(node, ast.If | ast.Try):
            top.update(id(child) for child in ast.walk(node))
    edges: list[Edge] = []
    for node in ast.walk(tree):
        at_top = id(node) in top
        how = "import" if at_top else "import in a function"
        if isinstance(node, ast.Import):
            edges += [Edge(alias.name, node.lineno, how, at_top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node, module, is_package)
            for alias in node.names:
                target = f"{base}.{alias.name}"
                edges.append(Edge(target if _path_of(target) else base, node.lineno, how, at_top))
        elif isinstance(node, ast.Call):
            name = ast.unparse(node.func).rsplit(".", 1)[-1]
            first = node.args[0] if node.args else None
            if name in ("import_module", "__import__") and isinstance(first, ast.Constant):
                edges.append(Edge(str(first.value), node.lineno, "import_module", False))
            elif name == "get_model" and isinstance(first, ast.Constant) and isinstance(first.value, str):
                edges.append(Edge(first.value.split(".")[0], node.lineno, "get_model", False))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and DOTTED.match(node.value):
            edges.append(Edge(node.value, node.lineno, "string", False))
    return tuple(edges)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code (for other guardrail tests)."""
    return {edge.target for edge in edges_of(path) if edge.how.startswith("import")}


def _package(module: str) -> str:
    return module.split(".")[0]


def _allowed(importer: str, relative: str, target: str) -> bool:
    source, wanted = _package(importer), _package(target)
    if wanted not in (*PACKAGES, AGENT) or wanted == source:
        return True
    if source == AGENT:
        return False  # the agent installs without the portal
    if source in TOOLS:
        return True  # the simulator may use every app and the agent
    if wanted in TOOLS or wanted == AGENT:
        return False  # no app depends on the tool or on the agent's code
    return relative in COMPOSITION_ROOT or RANK[wanted] <= RANK[source]


@pytest.mark.parametrize("path", _sources(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_import_respects_the_layers(path):
    relative = path.relative_to(ROOT).as_posix()
    module = _module_of(path)
    offenders = [
        f"line {edge.line}: {edge.how} {edge.target}"
        for edge in edges_of(path)
        if not _allowed(module, relative, edge.target)
    ]
    assert not offenders, f"{relative} ({_package(module)}) reaches above its layer: {offenders}"


# Migrations name models as "app.model" by Django's design; their imports are checked above like every module's.
@pytest.mark.parametrize(
    "path", [p for p in _sources() if "migrations" not in p.parts], ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_string_paths_into_other_packages_only_in_the_composition_root(path):
    relative = path.relative_to(ROOT).as_posix()
    source = _package(_module_of(path))
    offenders = [
        f"line {edge.line}: {edge.target!r}"
        for edge in edges_of(path)
        if edge.how == "string" and _package(edge.target) != source and relative not in COMPOSITION_ROOT
    ]
    assert not offenders, f"{relative} names another package by a dotted string: {offenders}"


def _import_graph() -> dict[str, set[str]]:
    """Module-level imports between portal modules. Importing ``a.b.c`` also runs the packages ``a`` and ``a.b``,
    unless the importer is inside them already (a submodule importing a sibling does not re-run its package)."""
    graph: dict[str, set[str]] = {}
    for path in _sources():
        module = _module_of(path)
        targets = graph.setdefault(module, set())
        for edge in edges_of(path):
            if not edge.top_level or edge.how not in ("import",) or _package(edge.target) not in (*PACKAGES, AGENT):
                continue
            parts = edge.target.split(".")
            for depth in range(1, len(parts) + 1):
                candidate = ".".join(parts[:depth])
                if _path_of(candidate) is None or candidate == module:
                    continue
                if depth < len(parts) and (module + ".").startswith(candidate + "."):
                    continue  # a package the importer is part of: already running
                targets.add(candidate)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each a cycle of imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_level_import_cycle():
    graph = _import_graph()
    assert len(graph) > 100 and graph["machines.heartbeats"]  # the graph is real
    assert not _cycles(graph), _cycles(graph)


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("module", [m for m in PURE_MODULES if (ROOT / m).exists()])
def test_pure_modules_import_no_django(module):
    path = ROOT / module
    imported = [edge.target for edge in edges_of(path)]
    offenders = sorted(n for n in imported if n.split(".")[0] in DJANGO_PREFIXES)
    assert not offenders, f"{module} must stay pure but imports {offenders}"
    pure = {m.removesuffix(".py").replace("/", ".") for m in PURE_MODULES}
    impure = sorted(n for n in imported if _package(n) in PACKAGES and n not in pure)
    assert not impure, f"{module} must stay pure but imports portal modules that are not: {impure}"


@pytest.mark.parametrize(
    "path", sorted((ROOT / "agent" / AGENT).rglob("*.py")), ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_the_agent_imports_no_django(path):
    """The agent installs on servers without the portal: no Django, no portal package (tests/agent/test_layout.py
    checks the same from the agent's side)."""
    offenders = sorted(e.target for e in edges_of(path) if e.target.split(".")[0] in (*DJANGO_PREFIXES, *PACKAGES))
    assert not offenders, f"{path.relative_to(ROOT)} imports {offenders}"


def _code_files() -> list[Path]:
    files = []
    for path in ROOT.rglob("*"):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in ("tests", ".venv", "var", ".git", "static", "node_modules") or "migrations" in (
            relative.parts
        ):
            continue
        if path.is_file() and path.suffix in CODE_SUFFIXES and "__pycache__" not in relative.parts:
            files.append(path)
    return sorted(files)


@pytest.mark.parametrize("path", _code_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_code_file_outside_migrations_and_tests_is_over_400_lines(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_the_layers_are_the_installed_apps_in_order():
    from django.conf import settings

    local = [app for app in settings.INSTALLED_APPS if app in PACKAGES]
    assert local == [*LAYERS, *TOOLS]


# --- Templates: an app's templates include and load only their own layer and the ones below ---------------------

TEMPLATE_LIBRARIES = {"graph": "machines", "machines": "machines", "shell": "onboarding"}
INCLUDE = re.compile(r"""{%\s*(?:include|extends)\s+["']([^"']+)["']""")
LOAD = re.compile(r"{%\s*load\s+([^%]+)%}")


def _templates() -> list[Path]:
    return sorted(p for package in LAYERS for p in (ROOT / "templates" / package).rglob("*.html"))


@pytest.mark.parametrize("path", _templates(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_templates_reach_only_their_layer_and_below(path):
    owner = path.relative_to(ROOT / "templates").parts[0]
    text = path.read_text()
    used = [name.split("/")[0] for name in INCLUDE.findall(text)]
    used += [TEMPLATE_LIBRARIES.get(lib, "") for libs in LOAD.findall(text) for lib in libs.split()]
    offenders = [app for app in used if app in RANK and RANK[app] > RANK[owner]]
    assert not offenders, f"{path.relative_to(ROOT)} reaches {offenders}"


def test_the_libraries_of_the_template_check_are_all_the_tag_libraries():
    found = {p.stem: p.parents[1].name for p in ROOT.glob("*/templatetags/*.py") if p.stem != "__init__"}
    assert found == TEMPLATE_LIBRARIES


# --- Views never write models (STYLE.md §8) ----------------------------------------------------------------------

# .save()/.delete() on anything, and manager/queryset writes (Model.objects.create(), .update(), …).
INSTANCE_WRITES = {"save", "delete"}
MANAGER_WRITES = {"create", "bulk_create", "bulk_update", "update", "get_or_create", "update_or_create"}


def _view_modules() -> list[Path]:
    candidates = []
    for app in LAYERS:
        candidates += list((ROOT / app).glob("views*.py"))
        candidates += list((ROOT / app / "views").rglob("*.py"))
        candidates += list((ROOT / app / "api").rglob("*.py"))
    return sorted(p for p in candidates if p.name != "__init__.py")


def test_the_view_scan_sees_every_plane():
    names = {p.relative_to(ROOT).as_posix() for p in _view_modules()}
    assert {"machines/api/views/machines.py", "agentplane/views.py", "identity/api/oidc.py"} <= names


@pytest.mark.parametrize("path", _view_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_views_do_not_write_models_directly(path):
    """Views and APIs parse, call one service or selector, render: writes belong in services."""
    tree = parse(path)
    offenders = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        target = ast.unparse(node.func.value)
        method = node.func.attr
        instance_write = method in INSTANCE_WRITES and not target.endswith(("cache", "session", "super()"))
        manager_write = method in MANAGER_WRITES and (".objects" in target or target.endswith(("_set", "_set.all()")))
        if instance_write or manager_write:
            offenders.append(f"line {node.lineno}: {ast.unparse(node.func)}")
    assert not offenders, f"{path.relative_to(ROOT)} writes models directly: {offenders}"


def test_agent_and_portal_accept_the_same_regions():
    """The agent carries its own copy (it installs without the portal's code); the two lists must not drift."""
    from azcmagent import regions as agent_regions

    from machines import regions as portal_regions

    assert agent_regions.REGIONS == portal_regions.REGIONS
    assert agent_regions.normalize_location(" West Europe ") == portal_regions.normalize_location(" West Europe ")


@pytest.mark.parametrize(
    ("importer", "relative", "target", "allowed"),
    [
        ("identity.selectors", "identity/selectors.py", "machines.models", False),
        ("arcportal.views", "arcportal/views.py", "machines.tasks", False),
        ("arcportal.urls", "arcportal/urls.py", "agentplane.urls", True),
        ("machines.services.registration", "machines/services/registration.py", "identity.pki", True),
        ("onboarding.views", "onboarding/views.py", "agentplane.views", False),
        ("machines.views", "machines/views.py", "simulator.fleet", False),
        ("machines.views", "machines/views.py", "azcmagent.identity", False),
        ("simulator.fleet", "simulator/fleet.py", "azcmagent.identity", True),
        ("simulator.management.commands.simulate_fleet", "x", "onboarding.services", True),
        ("azcmagent.client", "agent/azcmagent/client.py", "machines.keys", False),
    ],
)
def test_the_layer_rule(importer, relative, target, allowed):
    assert _allowed(importer, relative, target) is allowed


def test_imports_inside_functions_and_by_name_are_seen():
    edges = edges_of(ROOT / "machines" / "apps.py")
    assert any(e.target == "machines.tasks" and e.how == "import in a function" and not e.top_level for e in edges)
    strings = [e.target for e in edges_of(ROOT / "arcportal" / "settings.py") if e.how == "string"]
    assert "identity.authentication.BearerTokenAuthentication" in strings


def _error_literals(path: Path) -> list[str]:
    """Dict literals shaped like an ARM error (``{"error": {"code": …}}``) or an OAuth one (``error`` and
    ``error_description``)."""
    found = []
    for node in ast.walk(parse(path)):
        if not isinstance(node, ast.Dict):
            continue
        keys = {k.value: v for k, v in zip(node.keys, node.values, strict=True) if isinstance(k, ast.Constant)}
        inner = keys.get("error")
        arm = isinstance(inner, ast.Dict) and any(isinstance(k, ast.Constant) and k.value == "code" for k in inner.keys)
        oauth = "error" in keys and "error_description" in keys
        if arm or oauth:
            found.append(f"line {node.lineno}: {'ARM' if arm else 'OAuth'} error body")
    return found


@pytest.mark.parametrize(
    "path",
    [
        p
        for p in _sources()
        if p.relative_to(ROOT).as_posix() != "arcportal/arm/errors.py" and _package(_module_of(p)) in LAYERS
    ],
    ids=lambda p: p.relative_to(ROOT).as_posix(),
)
def test_error_bodies_are_built_only_by_arcportal_arm_errors(path):
    """ARM and OAuth errors leave the portal only through arcportal/arm/errors.py."""
    assert not _error_literals(path), f"{path.relative_to(ROOT)}: {_error_literals(path)}"


def test_the_error_body_check_finds_both_shapes():
    assert _error_literals(ROOT / "arcportal" / "arm" / "errors.py")  # where they are built
