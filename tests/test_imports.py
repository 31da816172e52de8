"""The first-party import graph, read from the source with ``ast``: no cycle among module-level imports,
every import inside a function listed below with its reason, and no flask in the domain packages.

A module-level import runs when its module is imported; an import inside a function (a *lazy* one) runs
when the function is called. Imports under ``if TYPE_CHECKING:`` never run and are not counted for cycles.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "vault", "connectors", "render", "printagent", "bench")
#: Packages that are importable without a web framework (docs/architecture.md, "Import rules").
NO_FLASK = ("vault", "connectors", "render", "printagent")
#: The print agent is a client of the label API: it never imports the server's code (docs/print-agent.md).
CLIENT_ONLY = ("printagent",)

#: Lazy imports without which module-level imports would form a cycle, ``(importer, imported): why``.
BREAKS_CYCLE: dict[tuple[str, str], str] = {
    ("app.cli", "app"): "create_app imports app.cli to register the commands; labelvault builds the app when a "
    "command runs",
    ("app.tasks", "app"): "a Celery worker builds its Flask app on first use; create_app imports the dashboard, "
    "which queues jobs through app.tasks",
    ("app.dashboard", "app.dashboard.auth"): "the views register on the blueprint app.dashboard defines",
    ("app.dashboard", "app.dashboard.pages"): "the views register on the blueprint app.dashboard defines",
}
#: The other lazy first-party imports, ``(importer, imported): why the import waits for the call``.
DEFERRED: dict[tuple[str, str], str] = {
    **{
        ("app", module): "create_app imports what contributes to the pipeline, routes and commands when it "
        "builds an app, so importing one submodule (app.settings, app.limit_store) does not load them all"
        for module in (
            "app.alarms",
            "app.allowlist",
            "app.bodies",
            "app.api.routes",
            "app.cli",
            "app.dashboard",
            "app.errors",
            "app.health",
            "app.limits",
            "app.logpaths",
            "app.observability",
            "app.refusals",
            "app.security",
            "app.services",
            "app.webhooks",
            "connectors.registry",
            "vault.retention",
        )
    },
    ("app.dashboard.jobs", "app.tasks"): "Celery is loaded only when a broker is configured; the embedded "
    "scheduler runs without it",
    ("app.cli.worker", "app.tasks"): "Celery is loaded only by the commands that run the task queue, not by "
    "`worker --embedded`",
    ("app.cli.worker", "render"): "only the queue's worker warms up the label font",
    ("app.dashboard.pages.clients", "vault.netaddr"): "parses a form's CIDRs only when one is submitted",
    **{
        ("render", f"render.{module}"): "asking for one format loads only its renderer: JSON never imports Pillow "
        "or fontTools"
        for module in ("fonts", "jsonlabel", "pdf", "png", "zpl")
    },
    **{
        ("bench.crypto", module): "only the KMS-call count needs a database and moto; the timing rounds load "
        "the crypto alone"
        for module in ("vault.db", "vault.keyproviders", "vault.labels", "vault.models", "vault.tenants")
    },
}
ALLOWED_LAZY = BREAKS_CYCLE | DEFERRED


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    lazy: bool
    type_only: bool
    line: int


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = {_module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))} | {
    "wsgi": ROOT / "wsgi.py"
}


def _statements(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool, bool]]:
    """Every import statement with (inside a function?, under ``if TYPE_CHECKING``?)."""

    def visit(node: ast.AST, lazy: bool, type_only: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, lazy, type_only
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                yield from visit(child, True, type_only)
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for statement in child.body:
                    yield from visit(ast.Module(body=[statement], type_ignores=[]), lazy, True)
                for statement in child.orelse:
                    yield from visit(ast.Module(body=[statement], type_ignores=[]), lazy, type_only)
            else:
                yield from visit(child, lazy, type_only)

    yield from visit(tree, False, False)


def _targets(statement: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> Iterator[str]:
    """The module names a statement imports (``from a import b`` is ``a.b`` when that is a module)."""
    if isinstance(statement, ast.Import):
        yield from (alias.name for alias in statement.names)
        return
    base = statement.module or ""
    if statement.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - (statement.level - 1)]
        base = ".".join([*package, base] if base else package)
    for alias in statement.names:
        yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in SOURCES else base


def imports() -> list[Import]:
    """Every import in the first-party source, third-party ones included (by their dotted name)."""
    found = []
    for module, path in SOURCES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for statement, lazy, type_only in _statements(tree):
            for target in _targets(statement, module, path.name == "__init__.py"):
                found.append(Import(module, target, lazy, type_only, statement.lineno))
    return found


def first_party_edges(lazy: bool) -> set[tuple[str, str]]:
    edges = set()
    for imp in imports():
        if imp.type_only or imp.lazy != lazy or imp.imported.split(".")[0] not in (*PACKAGES, "wsgi"):
            continue
        target = imp.imported
        while target not in SOURCES and "." in target:
            target = target.rsplit(".", 1)[0]
        if target != imp.importer:
            edges.add((imp.importer, target))
    return edges


def cycles(edges: set[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    graph: dict[str, list[str]] = {}
    for a, b in sorted(edges):
        graph.setdefault(a, []).append(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, []):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_the_graph_is_read_from_every_package() -> None:
    eager = first_party_edges(lazy=False)
    assert ("app.api.routes", "app.api.labels") in eager
    assert ("wsgi", "app") in eager
    assert ("app", "app.dashboard") in first_party_edges(lazy=True)
    assert cycles({("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")}) == [["a", "b", "c"]]


def test_no_cycle_among_module_level_imports() -> None:
    assert cycles(first_party_edges(lazy=False)) == []


def test_every_lazy_import_is_listed_with_its_reason() -> None:
    lazy = first_party_edges(lazy=True)
    assert sorted(lazy - ALLOWED_LAZY.keys()) == [], "a new import inside a function: move it up or list why"
    assert sorted(ALLOWED_LAZY.keys() - lazy) == [], "listed lazy imports that no longer exist"


def test_only_the_listed_lazy_imports_stand_between_the_modules_and_a_cycle() -> None:
    # Were every deferred import at module level, the graph would still have no cycle ...
    assert cycles(first_party_edges(lazy=False) | DEFERRED.keys()) == []
    # ... and each import listed as breaking a cycle does: at module level, it would close one.
    for edge in BREAKS_CYCLE:
        assert cycles(first_party_edges(lazy=False) | DEFERRED.keys() | {edge}) != [], f"{edge} breaks no cycle"


def test_vault_connectors_and_render_never_import_flask() -> None:
    offenders = [
        f"{imp.importer}:{imp.line} imports {imp.imported}"
        for imp in imports()
        if imp.importer.split(".")[0] in NO_FLASK
        and (imp.imported.split(".")[0] == "flask" or imp.imported.startswith("flask_"))
    ]
    assert offenders == []


def test_the_print_agent_imports_neither_the_app_nor_the_vault() -> None:
    offenders = [
        f"{imp.importer}:{imp.line} imports {imp.imported}"
        for imp in imports()
        if imp.importer.split(".")[0] in CLIENT_ONLY
        and imp.imported.split(".")[0] in ("app", "vault", "connectors", "render", "flask", "sqlalchemy", "wsgi")
    ]
    assert offenders == []
