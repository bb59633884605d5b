"""The package's shape, read from its source: import arrows point one way (no cycle, counting
imports inside functions too), the Triton kernels depend on nothing of ours, and no function
grows past what a reader holds in view."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Installed names of the source folders (setup.py's NAMESPACED): kernels/ and export/ live at the
# top of the repository but are imported as sportsfusion.kernels and sportsfusion.export.
FOLDERS = {
    "sportsfusion": "sportsfusion",
    "kernels": "sportsfusion.kernels",
    "export": "sportsfusion.export",
}
LONGEST_FUNCTION = 100  # lines, kernels aside (a @triton.jit body is one GPU program)
LONGEST_IN_TRAIN = 80


def modules() -> dict[str, Path]:
    """Module name -> source file, for every .py file of the package."""
    found = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that `name` imports anywhere in its source (function level too).
    `from a.b import c` is an arrow to a.b.c when that is a module, else to a.b."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package `level - 1` up
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names]
            targets = [t if t in known else base for t in targets]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import a.b.c` of a non-module attribute
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return result


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    # A package's __init__ importing its own submodules is how packages export names; arrows
    # from a submodule back up to its package are what this test is about.
    return {name: imports_of(name, path, known) for name, path in found.items()}


def test_the_reader_sees_function_level_imports():
    known = {"sportsfusion.a", "sportsfusion.b"}
    source = "def f():\n    from sportsfusion.b import thing\n"
    path = ROOT / "build" / "structure-probe" / "a.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    assert imports_of("sportsfusion.a", path, known) == {"sportsfusion.b"}
    assert cycles({"x": {"y"}, "y": {"x"}, "z": {"x"}}) == [["x", "y"]]


def test_no_import_cycle():
    found = cycles(graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_kernels_import_only_torch_triton_and_the_standard_library():
    allowed = {"torch", "triton", "sportsfusion"} | set(sys.stdlib_module_names)
    for path in sorted((ROOT / "kernels").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in allowed, f"{path.name} imports {name}"
                if top == "sportsfusion":  # only its own package's helpers
                    assert name.startswith("sportsfusion.kernels"), f"{path.name} imports {name}"


def _is_kernel(node: ast.FunctionDef) -> bool:
    return any("jit" in ast.unparse(d) for d in node.decorator_list)


def function_lengths():
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not _is_kernel(
                    node
                ):
                    yield path.relative_to(ROOT), node.name, node.end_lineno - node.lineno + 1


@pytest.mark.parametrize("limit_for", ["package", "train.py"])
def test_no_function_is_too_long(limit_for):
    if limit_for == "package":
        long = [f"{p}:{n} ({k} lines)" for p, n, k in function_lengths() if k > LONGEST_FUNCTION]
    else:
        long = [
            f"{p}:{n} ({k} lines)"
            for p, n, k in function_lengths()
            if p == Path("sportsfusion/train.py") and k > LONGEST_IN_TRAIN
        ]
    assert not long, "too long to read in one view: " + ", ".join(long)
