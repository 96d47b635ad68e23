"""The packages import in layers, and no module imports itself back.

Every import counts: module-level, inside a function, under `TYPE_CHECKING`. The layers
(docs/architecture.md, "Layers"):

- `domain` imports nothing of ours outside `domain`;
- `projections` imports `domain` and, of `infra`, only the storage port its views are written
  through (`infra.store.database`); what it needs of the event log it declares itself
  (`projections/event_log.py`), and the event store provides it;
- `application` does not import `api`;
- `infra` does not import `application`, `api` or `projections`;
- `api` may import any of them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("domain", "projections", "application", "api", "infra")

# What each package may import of ours besides itself (a module name or a package prefix).
ALLOWED: dict[str, tuple[str, ...]] = {
    "domain": (),
    "projections": ("domain", "infra.store.database"),
    "application": ("domain", "projections", "infra"),
    "infra": ("domain",),
    "api": ("domain", "projections", "application", "infra"),
}

Graph = dict[str, set[str]]


def module_files(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def import_graph(root: Path, packages: Iterable[str]) -> Graph:
    """Module -> the modules of ours it imports (a name imported from a package counts as that
    package's module when there is one, else as the package)."""
    modules = module_files(root, packages)

    def ours(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: Graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    imported.add(full if full in modules else base)
        graph[name] = {m for m in map(ours, imported) if m is not None and m != name}
    return graph


def reachable(graph: Graph, start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def cycles(graph: Graph) -> list[list[str]]:
    """The groups of modules that import each other through some chain (strongly connected
    components of more than one module): a and b share one when each reaches the other."""
    reach = {node: reachable(graph, node) for node in graph}
    found: list[list[str]] = []
    placed: set[str] = set()
    for node in sorted(graph):
        if node in placed or node not in reach[node]:
            continue
        component = sorted(m for m in reach[node] if node in reach.get(m, ()))
        placed.update(component)
        if len(component) > 1:
            found.append(component)
    return found


def broken_layers(graph: Graph) -> list[str]:
    broken = []
    for source, targets in sorted(graph.items()):
        layer = source.split(".")[0]
        for target in sorted(targets):
            if target.split(".")[0] == layer:
                continue
            allowed = ALLOWED[layer]
            if not any(target == a or target.startswith(a + ".") for a in allowed):
                broken.append(f"{source} -> {target}")
    return broken


def test_no_module_imports_itself_back() -> None:
    assert cycles(import_graph(ROOT, PACKAGES)) == []


def test_every_package_imports_only_the_layers_below_it() -> None:
    assert broken_layers(import_graph(ROOT, PACKAGES)) == []


def test_the_checks_see_function_level_imports_and_broken_layers(tmp_path: Path) -> None:
    """The checker itself, on a small tree: a cycle closed by an import inside a function,
    and a domain module importing infra."""
    (tmp_path / "infra").mkdir()
    (tmp_path / "domain").mkdir()
    (tmp_path / "infra" / "__init__.py").write_text("")
    (tmp_path / "domain" / "__init__.py").write_text("")
    (tmp_path / "infra" / "port.py").write_text("def open():\n    from infra import adapter\n")
    (tmp_path / "infra" / "adapter.py").write_text("from infra.port import open\n")
    (tmp_path / "domain" / "rules.py").write_text("from .facts import FACT\nimport infra.port\n")
    (tmp_path / "domain" / "facts.py").write_text("FACT = 1\n")
    graph = import_graph(tmp_path, ("domain", "infra"))
    assert graph["domain.rules"] == {"domain.facts", "infra.port"}
    assert cycles(graph) == [["infra.adapter", "infra.port"]]
    assert broken_layers(graph) == ["domain.rules -> infra.port"]
