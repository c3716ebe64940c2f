"""The import rules of docs/architecture.md, checked on the source (``ast``), so they stay true.

* The wings below the napari face never import napari, Qt or magicgui; only ``viewer/_qt``
  imports Qt or magicgui.
* Each wing imports only the wings it builds on (the table below, the same as in
  docs/architecture.md); the one upward import is the registry's discovery of ``methods/``.
* Intra-package imports sit at module top (no hidden import inside a function) and form
  no loop.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "napari_useg"

#: wing -> the wings it may import (besides itself).
ALLOWED = {
    "metrics": set(),
    "core": {"metrics"},
    "nn": {"core"},
    "methods": {"core", "nn", "metrics"},
    "io": {"core", "metrics"},
    "api": {"core", "io"},
    "batch": {"core", "io", "api"},
    "evaluation": {"core", "io", "metrics", "api", "batch"},
    "viewer": {"core", "io", "metrics", "api", "viewer"},
    "cli": {"core", "io", "metrics", "api", "batch", "evaluation"},
    "__init__": {"core", "api", "methods", "viewer"},
}
GUI = ("napari", "qtpy", "magicgui", "PyQt5", "PyQt6", "PySide2", "PySide6")
QT = ("qtpy", "magicgui", "PyQt5", "PyQt6", "PySide2", "PySide6", "napari.qt", "napari._qt")
#: The registry finds the methods by importing the ``methods`` package (when first asked).
DISCOVERY = {("core.registry", "methods")}


def _modules() -> dict[str, Path]:
    out = {}
    for f in sorted(SRC.rglob("*.py")):
        parts = list(f.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(absolute module name, line, at module top) for every import in ``path``."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    for n in tree.body:  # imports under `if TYPE_CHECKING:` / try at top count as top
        if isinstance(n, (ast.If, ast.Try)):
            top |= {id(m) for m in ast.walk(n)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
            mod = node.module or ""
            if mod == "napari_useg":
                out += [(f"napari_useg.{a.name}", node.lineno, id(node) in top)
                        for a in node.names]
            else:
                out.append((mod, node.lineno, id(node) in top))
    return out


def _wing(module: str) -> str:
    return module.split(".")[0] if module else "__init__"


def _internal(name: str, modules: dict[str, Path]) -> str | None:
    if not name.startswith("napari_useg"):
        return None
    rel = name[len("napari_useg."):] if name != "napari_useg" else ""
    while rel and rel not in modules:  # `from napari_useg.x import name` of a function
        rel = rel.rpartition(".")[0]
    return rel


MODULES = _modules()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_respects_the_wing_rules(module):
    path = MODULES[module]
    wing = _wing(module)
    problems = []
    for name, line, at_top in _imports(path):
        where = f"{path.relative_to(SRC.parent)}:{line}"
        is_gui = name.split(".")[0] in GUI
        is_qt = any(name == q or name.startswith(q + ".") for q in QT)
        if is_gui and wing != "viewer":
            problems.append(f"{where}: {wing}/ imports {name} (only viewer/ may)")
        if is_qt and not module.startswith("viewer._qt"):
            problems.append(f"{where}: {name} imported outside viewer/_qt")
        target = _internal(name, MODULES)
        if target is None:
            continue
        if not at_top and (module, _wing(target)) not in DISCOVERY:
            problems.append(f"{where}: intra-package import of {name} inside a function")
        tw = _wing(target)
        if tw != wing and tw not in ALLOWED[wing] and (module, tw) not in DISCOVERY:
            problems.append(f"{where}: {wing}/ imports {name} ({tw}/ is not below it)")
    assert not problems, "\n".join(problems)


def test_no_import_loops():
    graph = {m: set() for m in MODULES}
    for m, path in MODULES.items():
        for name, _, at_top in _imports(path):
            t = _internal(name, MODULES)
            if t is not None and at_top and t != m and t in graph:
                graph[m].add(t)
    # a package __init__ re-exporting its submodules is not a loop of the submodules
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if m.startswith(t + ".") or t == "":  # a submodule importing its own package
                continue
            if state.get(t) == 1:
                cycle = stack[stack.index(t):] + [t]
                raise AssertionError("import loop: " + " -> ".join(cycle))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_only_one_manifest_and_it_names_real_objects():
    manifests = sorted(p.relative_to(SRC.parents[1]) for p in SRC.parents[1].rglob("napari.yaml")
                       if ".venv" not in p.parts)
    assert manifests == [Path("src/napari_useg/viewer/napari.yaml")]


def test_architecture_doc_names_every_module():
    doc = (SRC.parents[1] / "docs" / "architecture.md").read_text()
    missing = []
    for f in sorted(SRC.rglob("*.py")):
        rel = f.relative_to(SRC).as_posix()
        if rel.endswith("__init__.py") and rel.count("/") >= 1 and rel not in doc:
            continue  # a sub-package's __init__ re-exports its modules
        if f"`{rel}`" not in doc and rel != "__init__.py":
            missing.append(rel)
    assert not missing, f"docs/architecture.md does not name: {missing}"
