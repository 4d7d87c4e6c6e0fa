"""The package's import graph, read from the source: no cycles, and every import goes down the layer order.

Every ``import``/``from … import`` of a ``vaelab`` module counts, at module level and inside functions alike
(a function-level import is for heavy optional dependencies, not for dodging a cycle). The layers, lowest
first, are the subpackages in :data:`vaelab.LAYERS`; a module may import modules of its own layer (without
cycles) and of the layers below it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "vaelab"


def layers() -> tuple[str, ...]:
    """:data:`vaelab.LAYERS`, read from the source (importing it would be testing the thing under test)."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "LAYERS" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise AssertionError("vaelab/__init__.py defines no LAYERS")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(path: Path, known: dict[str, Path], root: Path = ROOT) -> set[str]:
    """The vaelab modules ``path`` imports: ``from vaelab.a import b`` names ``vaelab.a.b`` when that is a
    module, else ``vaelab.a``."""
    out: set[str] = set()
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "vaelab")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            if base.split(".")[0] != "vaelab":
                continue
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in known else base)
    return {m for m in out if m in known}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported(path, known) - {name} for name, path in known.items()}


def layer_of(module: str, order: tuple[str, ...]) -> int | None:
    """The index of the module's layer; None for ``vaelab`` itself (the public face, above every layer)."""
    parts = module.split(".")
    if len(parts) == 1:
        return None
    if parts[1] not in order:
        raise AssertionError(f"{module} is in no layer of vaelab.LAYERS {order}")
    return order.index(parts[1])


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def longest_chain(edges: dict[str, set[str]]) -> list[str]:
    memo: dict[str, list[str]] = {}

    def chain(node):
        if node not in memo:
            memo[node] = [node] + max((chain(n) for n in edges[node]), key=len, default=[])
        return memo[node]

    return max((chain(n) for n in edges), key=len)


def test_the_package_has_no_import_cycle():
    assert find_cycle(graph()) is None, " -> ".join(find_cycle(graph()))


def test_every_import_goes_down_the_layer_order():
    order = layers()
    wrong = []
    for module, targets in graph().items():
        here = layer_of(module, order)
        for target in targets:
            there = layer_of(target, order)
            if here is not None and (there is None or there > here):
                wrong.append(f"{module} ({order[here]}) imports {target} "
                             f"({'the package' if there is None else order[there]})")
    assert not wrong, "\n".join(sorted(wrong))


def test_every_subpackage_docstring_is_its_map():
    """Each package's ``__init__.py`` names every module and subpackage in it and says what it may import."""
    order = layers()
    for init in sorted(PACKAGE.rglob("__init__.py")):
        if init.parent == PACKAGE:
            continue
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "may import" in doc.lower(), f"{init}: the docstring does not say what the layer may import"
        for path in sorted(init.parent.iterdir()):
            name = path.stem if path.suffix == ".py" else path.name
            if name != "__init__" and (path.suffix == ".py" or (path / "__init__.py").exists()):
                assert name in doc, f"{init}: the map does not name {name}"
    assert set(order) == {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}


def test_no_module_is_over_400_lines():
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > 400}
    assert not long, long


@pytest.mark.parametrize("edges, cycle", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
    ({"a": {"b"}, "b": set(), "c": {"a"}}, None),
])
def test_the_cycle_finder_finds_a_planted_cycle(edges, cycle):
    assert find_cycle(edges) == cycle


def test_the_import_reader_sees_function_level_and_relative_imports(tmp_path):
    pkg = tmp_path / "vaelab"
    (pkg / "x").mkdir(parents=True)
    for name in ("__init__", "x/__init__", "x/b", "x/c"):
        (pkg / f"{name}.py").write_text("")
    (pkg / "x" / "a.py").write_text("import os\n\n\ndef f():\n    from vaelab.x import b\n    from . import c\n")
    known = {module_name(p, tmp_path): p for p in pkg.rglob("*.py")}
    assert imported(pkg / "x" / "a.py", known, tmp_path) == {"vaelab.x.b", "vaelab.x.c"}
