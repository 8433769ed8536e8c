"""Report import cycles inside a package, and library modules that import its command line.

    python tools/check_imports.py [PACKAGE_DIR]      (default: the ftpose/ beside tools/)

Imports are read with ``ast``, not executed: every ``import`` and ``from ... import``
anywhere in a module counts, including those inside functions (a lazy import still
makes the two modules depend on each other), except under ``if TYPE_CHECKING:``.
``from pkg import name`` depends on the submodule ``pkg.name`` when there is one, else
on ``pkg``.  Importing ``pkg.sub.mod`` is not counted as importing ``pkg.sub``.

Three checks, each printed as one line per problem; the exit status is 1 if any:

- cycles between modules (strongly connected groups of two or more);
- cycles between *units*: a top-level module (``ftpose.predictor``) or a subpackage with
  everything under it (``ftpose.export``), so ``export`` may not import from
  ``predictor`` while ``predictor`` imports from ``export``, whichever submodules do it;
- modules outside ``<package>.cli`` (and the ``<package>.__main__`` entry point) that
  import ``<package>.cli``.
"""
from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path


def module_names(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file under ``package_dir``."""
    root = package_dir.parent
    names = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ``modules`` that module ``name`` (file ``path``) imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = _absolute(node.module, node.level, name, is_package)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        for target in targets:
            while target and target not in modules:   # "import a.b.c" of a module a.b with attribute c
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _import_nodes(tree: ast.AST):
    """Import statements of ``tree``, skipping ``if TYPE_CHECKING:`` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


def _absolute(module: str | None, level: int, importer: str, is_package: bool) -> str:
    if level == 0:
        return module or ""
    parts = importer.split(".")
    base = parts if is_package else parts[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def unit_of(module: str, package: str) -> str:
    """``pkg.sub.x`` -> ``pkg.sub``; ``pkg.mod`` -> ``pkg.mod``; ``pkg`` -> ``pkg``."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == package else module


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of two or more nodes (Tarjan), each sorted, sorted by first node."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups = []
    counter = 0
    nodes = sorted(set(graph) | {n for targets in graph.values() for n in targets})
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return sorted(groups)


def problems(package_dir: Path) -> list[str]:
    """One line per import cycle (modules, then units) and per library module importing the CLI."""
    package = package_dir.name
    modules = module_names(package_dir)
    graph = {name: imported_modules(name, path, modules) for name, path in modules.items()}
    found = [f"module cycle: {' <-> '.join(group)}" for group in cycles(graph)]
    units: dict[str, set[str]] = defaultdict(set)
    for name, targets in graph.items():
        units[unit_of(name, package)] |= {unit_of(t, package) for t in targets} - {unit_of(name, package)}
    for group in cycles(units):
        found.append(f"package cycle: {' <-> '.join(group)} ({_witnesses(graph, group, package)})")
    cli = f"{package}.cli"
    for name, targets in sorted(graph.items()):
        if not _inside(name, cli) and name != f"{package}.__main__":   # the entry point runs the CLI
            found += [f"{name} imports the command line ({t})" for t in sorted(targets) if _inside(t, cli)]
    return found


def _witnesses(graph: dict[str, set[str]], group: list[str], package: str) -> str:
    """The module imports that make up a unit cycle, e.g. ``a.x -> b.y; b.z -> a.w``."""
    members = set(group)
    edges = sorted(f"{name} -> {t}" for name, targets in graph.items() for t in targets
                   if unit_of(name, package) in members and unit_of(t, package) in members
                   and unit_of(name, package) != unit_of(t, package))
    return "; ".join(edges)


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def main(argv: list[str]) -> int:
    package_dir = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent / "ftpose"
    if not (package_dir / "__init__.py").is_file():
        print(f"error: {package_dir} is not a package (no __init__.py)", file=sys.stderr)
        return 2
    found = problems(package_dir)
    for line in found:
        print(line)
    if not found:
        print(f"no import cycles in {package_dir.name}/ and no library module imports {package_dir.name}.cli")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
