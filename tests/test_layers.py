"""The package's import graph: a DAG that goes down the layers of design.md, no private names.

Every ``import`` statement of every module (module level and inside functions) is read
with ``ast``. A module imports only from its own layer or the layers above it in
``LAYERS``; the graph has no cycle; no name starting with ``_`` is imported from another
module (private *modules* such as ``nmfsep._checks`` are fine: their public names are
the base layer's API); and each heavy third-party library is imported by its one owner.
A new module must be added to a layer here, which is where its place is decided.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "nmfsep"

#: From the bottom up: a module may import from its own layer and the ones before it.
LAYERS: list[tuple[str, set[str]]] = [
    ("base", {"exceptions", "_checks", "_version", "_startup"}),
    ("engine", {"_tiles", "_gen_tiles", "_kernels", "divergence", "_mu", "_sparse", "_cd",
                "_adapt", "init", "nmf", "ntf", "ntf_coarse", "online", "estimator"}),
    ("audio front end", {"spectral", "masks", "context", "grouping", "io", "percussive",
                         "harmonic", "sources", "spatial_wiener", "_wiener_kernels"}),
    ("models", {"_npz", "dictionary", "builtins", "model"}),
    ("pipeline", {"plan", "adaptation", "auto_sources", "relearn", "separate", "stream"}),
    ("outputs", {"bsseval", "evaluate", "rank", "plots", "report"}),
    ("files", {"files", "batch"}),
    ("cli", {"cli", "__main__"}),
]

#: Third-party libraries only one module may import (the rest go through it).
OWNERS = {"typer": {"cli"}, "matplotlib": {"plots"}, "soundfile": {"io"}, "soxr": {"io"}}


def _layer_of() -> dict[str, int]:
    return {m: i for i, (_, mods) in enumerate(LAYERS) for m in mods}


def _modules() -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text(encoding="utf-8"), filename=str(p))
            for p in sorted(PACKAGE.glob("*.py")) if p.stem != "__init__"}


def _imports(tree: ast.Module) -> list[tuple[str, str | None, int]]:
    """Return ``(module, name or None, line)`` for every import of the package or others."""
    found: list[tuple[str, str | None, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, None, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = "nmfsep" + ("." + base if base else "")
            found += [(base, a.name, node.lineno) for a in node.names]
    return found


def _edges() -> tuple[dict[str, set[str]], list[str]]:
    """Return the package's import graph and the private names that cross modules."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    private: list[str] = []
    for mod, tree in modules.items():
        for target, name, line in _imports(tree):
            if target == "nmfsep" and name in modules:  # from nmfsep import io
                target, name = f"nmfsep.{name}", None
            if target == "nmfsep":
                private.append(f"{mod}:{line} imports {name} from the package's __init__")
                continue
            if not target.startswith("nmfsep."):
                continue
            dep = target.split(".")[1]
            graph[mod].add(dep)
            if name is not None and name.startswith("_") and not name.startswith("__"):
                private.append(f"{mod}:{line} imports the private name {name} from {dep}")
    return graph, private


def test_every_module_has_a_layer() -> None:
    layer = _layer_of()
    missing = sorted(set(_modules()) - set(layer))
    assert not missing, f"add these modules to a layer of LAYERS: {missing}"
    stale = sorted(set(layer) - set(_modules()))
    assert not stale, f"LAYERS names modules that do not exist: {stale}"


def test_imports_never_go_up_a_layer() -> None:
    layer = _layer_of()
    graph, _ = _edges()
    up = [f"{m} ({LAYERS[layer[m]][0]}) imports {d} ({LAYERS[layer[d]][0]})"
          for m, deps in graph.items() for d in sorted(deps) if layer[d] > layer[m]]
    assert not up, "\n".join(up)


def test_import_graph_has_no_cycle() -> None:
    graph, _ = _edges()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for d in sorted(graph[m] - {m}):
            if state.get(d) == 1:
                return path[path.index(d):] + [d]
            if d not in state and (cycle := visit(d)) is not None:
                return cycle
        state[m] = 2
        path.pop()
        return None

    for m in sorted(graph):
        if m not in state:
            cycle = visit(m)
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_private_name_crosses_a_module_boundary() -> None:
    _, private = _edges()
    assert not private, "\n".join(private)


@pytest.mark.parametrize(("library", "owners"), sorted(OWNERS.items()))
def test_heavy_libraries_have_one_owner(library: str, owners: set[str]) -> None:
    users = sorted(
        f"{m}:{line}" for m, tree in _modules().items() if m not in owners
        for target, _, line in _imports(tree) if target.split(".")[0] == library
    )
    assert not users, f"only {sorted(owners)} may import {library}: {users}"


def test_the_checker_sees_what_it_must_refuse(tmp_path: Path) -> None:
    tree = ast.parse("from nmfsep.io import _secret\nfrom . import separate\n"
                     "def f():\n    import soundfile\n")
    found = _imports(tree)
    assert ("nmfsep.io", "_secret", 1) in found and ("nmfsep", "separate", 2) in found
    assert ("soundfile", None, 4) in found
