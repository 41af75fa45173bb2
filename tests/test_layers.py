"""The layers of the code (issue 11 item 1): each package imports only those below it, and
no module imports itself back through others (no cycle), counting imports inside
functions too. Read with the standard library's ``ast``.

    api/         workers/        the processes: HTTP, and the Celery workers and recorder
       \\        /    |
       services/     |          what both do: accepting a send, API keys, request shapes
           |         |
       messaging/    |          Redis: events, slot registry, pacing, claims, dispatch
           |         |
    models/  browser/  storage/  settings  logs  celeryconfig
"""
from __future__ import annotations

import ast

from tests.helpers import ROOT

PACKAGES = ("api", "workers", "services", "messaging", "models", "browser", "storage")
MODULES = ("settings", "logs", "celeryconfig")
# What each package may import, of the project's own (itself always).
ALLOWED = {
    "api": {"services", "messaging", "models", "storage", "settings", "logs"},  # storage: health
    "workers": {"services", "messaging", "models", "browser", "storage", "settings", "logs"},
    "services": {"messaging", "models", "storage", "settings"},  # storage: inline media
    "messaging": {"models", "settings", "celeryconfig", "logs"},  # logs: a task's bound ids
    "models": {"settings"},
    "browser": {"models", "settings"},  # models.phones
    "storage": {"settings"},
    "settings": set(),
    "logs": set(),
    "celeryconfig": {"settings"},
}


def module_name(path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def project_files():
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))
    for module in MODULES:
        yield ROOT / f"{module}.py"


def _typing_only(tree: ast.Module) -> set[int]:
    """The ids of the nodes inside ``if TYPE_CHECKING:`` blocks (never run)."""
    return {id(inner) for node in ast.walk(tree)
            if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
            for stmt in node.body for inner in ast.walk(stmt)}


def imports_of(path) -> set[str]:
    """Every project module ``path`` imports when it runs, anywhere in it ("from a import
    b" counts as a.b when that is a module, else as a); type-checking imports do not run."""
    own = {module_name(p) for p in project_files()}
    found = set()
    tree = ast.parse(path.read_text(), str(path))
    skipped = _typing_only(tree)
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                found.add(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in own else node.module)
    return {name for name in found if name in own}


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in project_files()}


def test_each_package_imports_only_those_below_it():
    upward = []
    for module, imported in sorted(graph().items()):
        top = module.split(".")[0]
        for name in sorted(imported):
            other = name.split(".")[0]
            if other != top and other not in ALLOWED[top]:
                upward.append(f"{module} imports {name}")
    assert upward == []


def test_no_import_cycle():
    edges = graph()
    cycles, state = [], {}  # state: 1 on the current path, 2 done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for name in sorted(edges.get(module, ())):
            if name not in edges:
                # a package's __init__ is its own node; "import a.b" also runs a/__init__
                continue
            if state.get(name) == 1:
                cycles.append(path[path.index(name):] + [name])
            elif name not in state:
                visit(name, path + [name])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_graph_is_read():
    """The checks above look at real edges: a few that must be there are."""
    edges = graph()
    assert "services.accepting" in edges["api.sessions"]
    assert "messaging.dispatch" in edges["services.accepting"]
    assert "workers.app" in edges["workers.slot_tasks"]
