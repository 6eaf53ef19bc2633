"""Excel cells that read as empty without being empty: formulas saved without their results, and
error values.

Excel and LibreOffice save each formula with the value it last calculated, and readers show that
value. A workbook written by a library (openpyxl, xlsxwriter, a report generator) holds the
formula text alone until a spreadsheet program opens and saves it: read for its values, every such
cell is empty, and amounts and dates would vanish without a word. An error value (``#DIV/0!``,
``#REF!``, ``#N/A``) reads as empty too. This module finds those cells.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from pathlib import Path

from salesproc.errors import InvalidValueError

__all__ = ["check_cells"]


def _may_hold_them(path: Path) -> bool:
    """Whether any worksheet of the workbook holds a formula or an error value (a cheap look at its
    XML, so that workbooks without them, the usual export, are not read twice)."""
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/") and name.endswith(".xml"):
                with z.open(name) as fh:
                    tail = b""
                    while chunk := fh.read(1 << 20):
                        seen = tail + chunk
                        if b"<f>" in seen or b"<f " in seen or b't="e"' in seen:
                            return True
                        tail = chunk[-5:]
    return False


def check_cells(path: Path, sheet: str, na_values: Iterable[str] | None = None) -> None:
    """Raise :class:`~salesproc.errors.InvalidValueError` when a cell of ``sheet`` reads as empty
    but is not: a formula with no saved result (openpyxl reads it as empty with ``data_only=True``
    and as ``=...`` without), or an error value such as ``#DIV/0!`` (unless ``na_values`` names it:
    ``na_values=["#N/A"]`` makes ``#N/A`` a missing value).

    The message names the sheet, the cell (``D7``), its column's header and what it holds, how
    many cells are so, and the fix.

    Examples
    --------
    >>> import openpyxl, tempfile, pathlib
    >>> wb = openpyxl.Workbook(); ws = wb.active; ws.title = "Deals"
    >>> for row in (["case_id", "amount"], ["A", 10], ["B", "=B2*2"]): ws.append(row)
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "deals.xlsx"; wb.save(p)
    >>> try:
    ...     check_cells(p, "Deals")
    ... except ValueError as exc:
    ...     print(str(exc).split(": found")[0].split("deals.xlsx")[1])
    , sheet 'Deals', row 3, column 'amount'
    """
    if not _may_hold_them(path):
        return
    import openpyxl

    missing = set(na_values or ())
    formulas = openpyxl.load_workbook(path, read_only=True, data_only=False)
    values = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        header: list[object] = []
        found: list[tuple[str, int, int, str, bool]] = []  # cell, row, column number, content, uncalculated
        for f_row, v_row in zip(formulas[sheet].iter_rows(), values[sheet].iter_rows()):
            if not header:
                header = [c.value for c in v_row]
            for cell, value in zip(f_row, v_row):
                kind = getattr(cell, "data_type", None)
                if kind == "f" and value.value is None:
                    found.append((cell.coordinate, cell.row, cell.column, str(cell.value), True))
                elif getattr(value, "data_type", None) == "e" and str(value.value) not in missing:
                    content = f"{cell.value} (={value.value})" if kind == "f" else str(value.value)
                    found.append((cell.coordinate, cell.row, cell.column, content, False))
    finally:
        formulas.close()
        values.close()
    if found:
        raise _error(path, sheet, header, found)


def _error(
    path: Path, sheet: str, header: list[object], found: list[tuple[str, int, int, str, bool]]
) -> InvalidValueError:
    where, row, col, content, uncalculated = found[0]
    name = header[col - 1] if col - 1 < len(header) and header[col - 1] is not None else f"column {col}"
    cells = f" ({len(found)} such cells in the sheet)" if len(found) > 1 else ""
    if uncalculated:
        expected = (
            f"a value, but cell {where} holds a formula saved without its result (the workbook was "
            "written by a program that does not calculate, such as openpyxl), which reads as an empty cell"
        )
        fix = (
            "open the workbook in Excel or LibreOffice and save it (that calculates and stores the "
            "results), or export the values (Paste Special > Values, or save the sheet as CSV)."
        )
    else:
        error = content.rsplit("=", 1)[-1].rstrip(")") if content.endswith(")") else content
        expected = f"a value, but cell {where} holds the Excel error {error}, which reads as an empty cell"
        fix = (
            f"correct the cell or its formula; if {error} means 'no value' here, say so with "
            f"load_history(..., na_values=[{error!r}])."
        )
    return InvalidValueError(
        source=f"{path}, sheet {sheet!r}", row=row, column=str(name), value=content,
        expected=expected + cells, fix=fix, count=len({r for _, r, _, _, _ in found}),
    )
