"""The house rules, checked on the source itself (static AST, nothing imported):
no import cycle, no module over 400 lines, ``MAAS_*`` read only in config.py,
TensorFlow only in convert/ and only inside functions."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Where each importable package lives (pyproject's package-dir mapping).
PACKAGES = {"maas": ROOT / "layers/serving/maas", "maas.convert": ROOT / "convert"}
MAX_LINES = 400
#: Read where they are used, by design (see maas/config.py).
ENV_EXEMPT = {"MAAS_REGISTRY", "MAAS_ACTOR", "MAAS_DEBUG"}


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package, base in PACKAGES.items():
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import, at any depth (inside functions too), except under TYPE_CHECKING."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                yield from _import_nodes(ast.Module(body=[child], type_ignores=[]))
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _import_nodes(node)


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}

    def add(importer: str, target: str) -> None:
        # Loading a.b.c first loads the packages a and a.b; a module inside a
        # package loading its siblings through the package is how packages work,
        # so parent packages count only for importers outside them.
        parts = target.split(".")
        for end in range(1, len(parts) + 1):
            candidate = ".".join(parts[:end])
            inside = importer == candidate or importer.startswith(candidate + ".")
            if candidate in known and candidate != importer and not inside:
                graph[importer].add(candidate)
        if target in known and target != importer:
            graph[importer].add(target)

    for name, path in known.items():
        tree = ast.parse(path.read_text("utf-8"), str(path))
        for node in _import_nodes(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    add(name, alias.name)
                continue
            base = _absolute(name, path, node)
            add(name, base)
            for alias in node.names:
                if f"{base}.{alias.name}" in known:
                    add(name, f"{base}.{alias.name}")
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_graph_is_read_from_the_real_tree() -> None:
    graph = import_graph()
    assert "maas.registry.history" in graph["maas.registry.aliases"]
    assert "maas.promotion" in graph["maas.cli"]  # imported inside a function
    assert "maas.convert.cli" in graph["maas.cli"]
    assert "maas.registry" in graph["maas.promotion"]


def test_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_sees_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_over_400_lines(name: str) -> None:
    path = modules()[name]
    lines = len(path.read_text("utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines; split it by job"


def _env_reads(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """``os.environ.get("X")``, ``os.environ["X"]``, ``os.getenv("X")``, ``env.get("X")``."""
    for node in ast.walk(tree):
        key: ast.expr | None = None
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in ("get", "getenv", "pop"):
                key = node.args[0]
        elif isinstance(node, ast.Subscript):
            key = node.slice
        if not isinstance(key, ast.Constant) or not isinstance(node, ast.Call | ast.Subscript):
            continue
        if isinstance(key.value, str) and key.value.startswith("MAAS_"):
            yield node.lineno, key.value


def test_maas_variables_are_read_only_in_config() -> None:
    offenders = []
    for name, path in modules().items():
        if name == "maas.config":
            continue
        tree = ast.parse(path.read_text("utf-8"))
        offenders += [
            f"{path.relative_to(ROOT)}:{line} reads {variable}"
            for line, variable in _env_reads(tree)
            if variable not in ENV_EXEMPT
        ]
    assert not offenders, offenders


def test_tensorflow_is_imported_only_by_convert_and_lazily() -> None:
    offenders = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text("utf-8"))
        top_level = {id(node) for node in tree.body}
        for node in _import_nodes(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            if not any(n and n.split(".")[0] in ("tensorflow", "keras", "tf2onnx") for n in names):
                continue
            if not name.startswith("maas.convert") or id(node) in top_level:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders
