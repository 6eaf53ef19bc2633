"""Excel workbooks whose formulas were saved without their results.

Excel and LibreOffice save each formula with the value it last calculated, and readers show that
value. A workbook written by a library (openpyxl, xlsxwriter, a report generator) holds the
formula text alone until a spreadsheet program opens and saves it: read for its values, every such
cell is empty, and amounts and dates would vanish without a word. This module finds those cells.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from salesproc.errors import InvalidValueError

__all__ = ["check_formula_results"]


def _has_formulas(path: Path) -> bool:
    """Whether any worksheet of the workbook holds a formula (a cheap look at its XML, so that
    workbooks without formulas, the usual export, are not read twice)."""
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/") and name.endswith(".xml"):
                with z.open(name) as fh:
                    tail = b""
                    while chunk := fh.read(1 << 20):
                        if b"<f>" in tail + chunk or b"<f " in tail + chunk:
                            return True
                        tail = chunk[-3:]
    return False


def check_formula_results(path: Path, sheet: str) -> None:
    """Raise :class:`~salesproc.errors.InvalidValueError` when a formula cell of ``sheet`` has no
    saved result (openpyxl reads it as empty with ``data_only=True`` and as ``=...`` without).

    The message names the sheet, the cell (``D7``), its column's header and the formula, how many
    cells are so, and the fix: open and save the workbook in Excel or LibreOffice, or export values.

    Examples
    --------
    >>> import openpyxl, tempfile, pathlib
    >>> wb = openpyxl.Workbook(); ws = wb.active; ws.title = "Deals"
    >>> for row in (["case_id", "amount"], ["A", 10], ["B", "=B2*2"]): ws.append(row)
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "deals.xlsx"; wb.save(p)
    >>> try:
    ...     check_formula_results(p, "Deals")
    ... except ValueError as exc:
    ...     print(str(exc).split(": found")[0].split("deals.xlsx")[1])
    , sheet 'Deals', row 3, column 'amount'
    """
    if not _has_formulas(path):
        return
    import openpyxl

    formulas = openpyxl.load_workbook(path, read_only=True, data_only=False)
    values = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        header: list[object] = []
        missing: list[tuple[str, int, int, str]] = []  # cell, row, column number, formula
        for f_row, v_row in zip(formulas[sheet].iter_rows(), values[sheet].iter_rows(values_only=True)):
            if not header:
                header = list(v_row)
            for cell, value in zip(f_row, v_row):
                if value is None and getattr(cell, "data_type", None) == "f":
                    missing.append((cell.coordinate, cell.row, cell.column, str(cell.value)))
    finally:
        formulas.close()
        values.close()
    if not missing:
        return
    where, row, col, formula = missing[0]
    cells = f" ({len(missing)} such cells in the sheet)" if len(missing) > 1 else ""
    name = header[col - 1] if col - 1 < len(header) and header[col - 1] is not None else f"column {col}"
    raise InvalidValueError(
        source=f"{path}, sheet {sheet!r}", row=row, column=str(name), value=formula,
        expected=(
            f"a value, but cell {where} holds a formula saved without its result (the workbook was "
            "written by a program that does not calculate, such as openpyxl), which reads as an empty cell"
            + cells
        ),
        fix=(
            "open the workbook in Excel or LibreOffice and save it (that calculates and stores the "
            "results), or export the values (Paste Special > Values, or save the sheet as CSV)."
        ),
        count=len({r for _, r, _, _ in missing}),
    )
