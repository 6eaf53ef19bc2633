"""Keep the workshop notebooks reviewable: outputs stripped, except the ones nbval checks.

    python tools/notebooks.py refresh [NOTEBOOK ...]   # run in a fresh folder, keep checked outputs only
    python tools/notebooks.py strip [NOTEBOOK ...]     # strip without running (after editing in JupyterLab)
    python tools/notebooks.py check [NOTEBOOK ...]     # fail if a notebook is not clean (tests run this)

A cell whose source contains ``# NBVAL_CHECK_OUTPUT`` keeps its outputs and execution count: they are
what nbval compares against (``pytest --nbval-lax`` runs every cell and compares only those). Every
other output and execution count, and all widget state, are removed, so a diff shows only what a
person changed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
CHECK = "# NBVAL_CHECK_OUTPUT"
KERNEL = {"name": "salesproc", "display_name": "Python (salesproc)", "language": "python"}
KEEP_METADATA = {"kernelspec", "language_info"}


def notebooks(args: list[str]) -> list[Path]:
    return [Path(a).resolve() for a in args] if args else sorted(NOTEBOOKS.glob("*.ipynb"))


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook with outputs only in checked cells, no counts, no widget state, stable metadata."""
    nb.metadata = {k: v for k, v in nb.metadata.items() if k in KEEP_METADATA}
    nb.metadata["kernelspec"] = dict(KERNEL)
    nb.metadata["language_info"] = {"name": "python", "pygments_lexer": "ipython3"}
    for i, cell in enumerate(nb.cells):
        cell.id = f"c{i:02d}"
        keep = {k: v for k, v in cell.metadata.items() if k == "tags"}
        cell.metadata = keep
        if cell.cell_type != "code":
            continue
        if CHECK in cell.source:
            # nbval treats a cell with outputs but no execution count as never run: keep a count
            cell.execution_count = cell.execution_count or 1
            for out in cell.outputs:
                if "execution_count" in out:
                    out.execution_count = cell.execution_count
        else:
            cell.execution_count = None
            cell.outputs = []
    return nb


def problems(nb: nbformat.NotebookNode, name: str) -> list[str]:
    """What keeps a notebook from being clean (empty when it is)."""
    out = []
    if not nb.cells or nb.cells[0].cell_type != "code" or "parameters" not in nb.cells[0].metadata.get("tags", []):
        out.append(f"{name}: the first cell must be a code cell tagged 'parameters'")
    else:
        out += _unparsed_parameters(nb.cells[0].source, name)
    if nb.metadata.get("kernelspec", {}).get("name") != KERNEL["name"]:
        out.append(f"{name}: kernelspec must be {KERNEL['name']!r}")
    if "widgets" in nb.metadata:
        out.append(f"{name}: widget state saved in the metadata")
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.execution_count is not None and CHECK not in cell.source:
            out.append(f"{name}: cell {i} has an execution count")
        if cell.outputs and CHECK not in cell.source:
            out.append(f"{name}: cell {i} keeps outputs but is not marked {CHECK}")
        if CHECK in cell.source and not cell.outputs:
            out.append(f"{name}: cell {i} is marked {CHECK} but has no stored output to compare")
    return out


def _unparsed_parameters(source: str, name: str) -> list[str]:
    """Parameters papermill cannot read (it then warns and cannot tell users their help text)."""
    import re

    from papermill.translators import PythonTranslator

    assigned = [m.group(1) for m in re.finditer(r"^(\w+)\s*=", source, re.MULTILINE)]
    parsed = {p.name for p in PythonTranslator.inspect(nbformat.v4.new_code_cell(source))}
    return [f"{name}: papermill cannot parse parameter {a!r} (avoid '=' and ';' in its comment)"
            for a in assigned if a not in parsed]


def refresh(paths: list[Path], timeout: int = 300) -> None:
    """Run each notebook in a fresh folder (as CI does), then keep only the checked outputs."""
    from nbclient import NotebookClient

    for path in paths:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp) / path.name
            shutil.copy(path, work)
            nb = nbformat.read(work, as_version=4)
            NotebookClient(nb, timeout=timeout, kernel_name=KERNEL["name"],
                           resources={"metadata": {"path": tmp}}).execute()
        nbformat.write(clean(nb), path)
        print(f"refreshed {path.relative_to(ROOT)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["refresh", "strip", "check"])
    ap.add_argument("notebooks", nargs="*")
    a = ap.parse_args(argv)
    paths = notebooks(a.notebooks)
    if a.command == "refresh":
        refresh(paths)
        return 0
    bad: list[str] = []
    for p in paths:
        nb = nbformat.read(p, as_version=4)
        if a.command == "strip":
            nbformat.write(clean(nb), p)
        else:
            bad += problems(nb, p.name)
    for line in bad:
        print(line, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
