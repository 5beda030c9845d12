"""The house rules the layout keeps: the library never imports the Chalice app, reads its configuration
only through what the edges pass in, and the store's adapters never import the package that picks them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.unit

LIBRARY = ROOT / "chalicelib"
# The edges: they read the settings and pass them down (app.py is outside chalicelib).
EDGES = {"settings.py", "cli.py", "__main__.py"}


def modules() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(encoding="utf-8"))) for path in sorted(LIBRARY.rglob("*.py"))]


def imported(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_library_module_imports_the_app():
    assert [p.name for p, tree in modules() if "app" in imported(tree)] == []


def test_only_the_edges_read_the_settings():
    readers = []
    for path, tree in modules():
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "settings"]
        if calls and path.name not in EDGES:
            readers.append(str(path.relative_to(ROOT)))
    assert readers == []


def test_no_library_module_reads_a_chiptracker_variable_itself():
    readers = [str(p.relative_to(ROOT)) for p, tree in modules() if p.name != "settings.py"
               and any(isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.startswith("CHIPTRACKER_")
                       and _in_environ_lookup(tree, n) for n in ast.walk(tree))]
    assert readers == []


def _in_environ_lookup(tree: ast.Module, constant: ast.Constant) -> bool:
    """`os.environ[…]`, `os.environ.get(…)`, `os.getenv(…)` with this constant as its key."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and node.slice is constant:
            return "environ" in ast.unparse(node.value)
        if isinstance(node, ast.Call) and constant in node.args:
            return any(word in ast.unparse(node.func) for word in ("environ", "getenv"))
    return False


def test_the_store_adapters_import_the_shared_helpers_not_their_package():
    for name in ("sqlite.py", "dynamodb.py"):
        tree = ast.parse((LIBRARY / "store" / name).read_text(encoding="utf-8"))
        assert "chalicelib.store" not in imported(tree), name
        assert "chalicelib.store.common" in imported(tree), name
