"""The package's shape: steps import each other in one direction only, and functions stay readable.

The layers themselves (which step may import which) are the import-linter contract in
``pyproject.toml``, checked by ``lint-imports`` in ``make test``. These tests add what a layers
contract does not see: circles between modules of one step, and functions grown too long.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "salesproc"

#: The longest a function may grow, in lines of code (its docstring not counted): about two
#: screens. Longer ones are split into named steps.
MAX_FUNCTION_LINES = 100


def _import_graph() -> nx.DiGraph:
    graph = grimp.build_graph("salesproc", include_external_packages=False)
    return nx.DiGraph(
        (module, imported) for module in graph.modules for imported in graph.find_modules_directly_imported_by(module)
    )


def test_no_module_imports_itself_through_others() -> None:
    # imports inside functions count too: a lazy import is still a circle in the design
    cycles = sorted(sorted(c) for c in nx.simple_cycles(_import_graph()))
    assert cycles == [], f"import circles: {cycles}"


def test_the_import_graph_sees_lazy_imports() -> None:
    # the check above can fail: grimp reports imports made inside functions
    graph = _import_graph()
    assert graph.has_edge("salesproc.cli", "salesproc._demo")  # imported inside the demo command


def _function_lengths(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
            doc = node.body[0]
            if isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant) and isinstance(doc.value.value, str):
                lines -= doc.end_lineno - doc.lineno + 1  # type: ignore[operator]
            out.append((lines, f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}"))
    return out


def test_no_function_is_longer_than_two_screens() -> None:
    too_long = sorted(
        (n, where) for p in PACKAGE.rglob("*.py") for n, where in _function_lengths(p) if n > MAX_FUNCTION_LINES
    )
    assert too_long == [], "split these into named steps: " + "; ".join(f"{w} ({n} lines)" for n, w in too_long)


@pytest.mark.parametrize("module", ["salesproc.backtest", "salesproc.edit", "salesproc.widgets"])
def test_old_import_paths_still_work(module: str) -> None:
    import importlib

    import salesproc

    old = importlib.import_module(module)
    assert old.__all__ and all(hasattr(old, name) for name in old.__all__)
    # importing the old module does not replace a function of the same name on the package
    assert callable(salesproc.backtest) and salesproc.backtest.__name__ == "backtest"
