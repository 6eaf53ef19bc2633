"""Loading: any source a team has (event logs, CRM exports, XES, spreadsheets, SQL) -> History.

:func:`load_history` is the one entry point. It reads the source into a table, resolves the
column mapping (a dict or a preset name, or none for canonical names), and hands the rows to the
shape-specific builder. Validation happens once, in :mod:`salesproc.load._build`.
"""

from __future__ import annotations

import codecs
import dataclasses
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from salesproc.errors import (
    EmptyInputError,
    EncodingError,
    InputError,
    MalformedFileError,
    ParameterError,
)
from salesproc.history._history import History
from salesproc.load._build import Errors, MilestoneRule, check_reading_parameters
from salesproc.load._guards import (
    OWN_ROW,
    check_not_utf16,
    check_nul_cells,
    keep_own_row_column,
    row_too_long_error,
    utf16_bom,
)
from salesproc.load._mapping import (
    from_table,
    resolve_mapping,
)
from salesproc.load._numbers import convert_numeric_text
from salesproc.load._options import LoadOptions

__all__ = ["load_history", "read_table"]

_TABLE_SUFFIXES = {".csv", ".tsv", ".txt", ".parquet", ".pq", ".xlsx", ".xlsm", ".xls"}


def load_history(
    source: Any,
    *,
    mapping: Mapping[str, str] | str | None = None,
    kind: str = "deal",
    errors: Errors = "raise",
    tz: str = "UTC",
    outcome_values: Mapping[str, str] | None = None,
    outcome_events: Mapping[str, Iterable[str]] | None = None,
    milestones: MilestoneRule = None,
    lifecycle: str | Iterable[str] | None = "complete",
    sheet: str | int | None = None,
    encoding: str = "utf-8",
    delimiter: str | None = None,
    decimal: str | None = None,
    na_values: Iterable[str] | None = None,
    dayfirst: bool = False,
    date_format: str | None = None,
    sla_days: float | None = None,
    finish_events: Iterable[str] | None = None,
    query: str | None = None,
    table: str | None = None,
    cases_table: str | None = None,
    options: LoadOptions | None = None,
) -> History:
    """Load past (and open) deals or projects into a validated :class:`History`.

    Parameters
    ----------
    source
        A path (CSV/TSV, Parquet, Excel ``.xlsx``, XES or ``.xes.gz``, or a folder written by
        :meth:`History.to_parquet`), a DataFrame of events, a SQLAlchemy URL / engine / connection
        (with ``query`` or ``table``), or a History (returned unchanged).
    mapping
        Canonical name -> the file's column name, e.g. ``{"case_id": "Opportunity ID"}``, or a preset
        name. Files whose columns already use the canonical names need none, and the presets' own
        exports are recognised by their column names. An event log's names: ``case_id``, ``name``,
        ``timestamp``, ``type``, ``owner``, ``role`` (per event); ``outcome``, ``kind``, ``created``,
        ``closed`` (a closed case's close date), ``expected_close`` (an open deal's expected close
        date: it never sets a closed deal's date), ``amount``, ``segment``, ``target_date``,
        ``case_owner`` (per case). An unknown name is an error naming the closest one. The presets
        and the columns they read:

        ``"crm-snapshot"`` (one row per opportunity, Maven's ``sales_pipeline.csv``)
            ``opportunity_id``, ``deal_stage`` (Prospecting, Engaging, Won, Lost), ``engage_date``
            (created, and an ``Engaging`` milestone), ``close_date``, ``close_value`` (amount),
            ``sales_agent`` (owner); other columns become case attributes. Opportunities with no
            date at all get the latest date in the file as ``created`` (``created_known=False``).
        ``"salesforce"`` (``OpportunityHistory``, one row per change)
            ``OpportunityId``, ``StageName``, ``CreatedDate`` (time of the change), ``Amount``,
            ``CloseDate``, ``IsWon``, ``IsClosed``, ``CreatedById``, optional ``OwnerId``; other
            columns (``ExpectedRevenue``, ``Probability``, ``ForecastCategory``) stay on the
            stage-change events. Adds ``close_date_changes`` (times the close date moved later).
        ``"hubspot"`` (deal stage history, one row per stage change)
            ``Record ID`` (or ``Deal ID``), ``Deal Stage`` (label or id such as ``closedwon``),
            ``Date entered stage``, ``Create Date``, ``Close Date``, ``Amount``, ``Deal owner``,
            ``Pipeline`` (segment), ``Deal Name``. HubSpot's one-row-per-deal export with
            ``Date entered "<stage> (<pipeline>)"`` columns is read as a snapshot.
        ``"project-milestones"`` (one row per project milestone)
            ``project_id``, ``milestone``, ``planned_date``, ``actual_date`` (empty until done),
            optional ``owner``, ``project_owner``, ``target_date``, ``start_date``, ``segment``,
            ``project_name``: projects on time or late against the last planned milestone.
        ``"xes-csv"``
            A flat CSV export of an XES log (``case:concept:name``, ``concept:name``,
            ``time:timestamp``).

        In the stage presets ``outcome_values`` says what other stages mean, e.g.
        ``{"Negotiating": "open"}``. An export whose columns are named differently is renamed
        first: ``load_history(df.rename(columns={"Stage": "deal_stage"}), mapping="crm-snapshot")``.
    kind
        ``"deal"`` or ``"project"`` for cases whose kind is not in the data.
    errors
        ``"raise"`` (default) stops at the first bad row with a message naming file, row, column and
        value; ``"skip"`` skips such rows and counts them, with reasons, in ``summary()``.
    tz
        Time zone of timestamps written without an offset. Everything is stored in UTC.
    outcome_values
        Extra outcome labels, e.g. ``{"Closed Won": "won", "Closed Lost": "lost"}``.
    outcome_events
        Outcome from terminal events: ``{"won": ["Closed Won"], "lost": ["Closed Lost"]}``. Those
        events become the case's outcome and close date and leave the event table. To say when a
        project (a ticket) is finished, use ``finish_events``: an outcome event would make every
        ticket on time.
    sla_days
        Projects: a service-level target in days, e.g. ``10`` for "resolved within 10 days". A
        project without a ``target_date`` is due ``created + sla_days`` (its ``target_date`` is set
        so).
    finish_events
        Projects: the event names that mark a project (a ticket) as finished, e.g. ``["Resolved"]``.
        A project without a ``closed`` date closes at its first such event (which stays in the
        event table), and is ``on_time`` when that is no later than its due date (``target_date``,
        else ``created + sla_days``), else ``late``. A project not finished by the end of the data
        stays ``open``, even when past its due date. ``summary()`` notes which rule was used, with
        counts ("projects: success = finished by created + 10 days (sla_days)..."), or why every
        project is open.
    milestones
        Which event names are milestones when the data has no ``type`` column: a list of names, a
        regular expression or prefix, or a callable. Without it all events are milestones.
    lifecycle
        XES only: which ``lifecycle:transition`` values to keep (``None`` keeps all).
    sheet, encoding, delimiter, decimal, dayfirst, date_format
        Reading options; the delimiter is sniffed (``,`` ``;`` tab ``|``). ``date_format`` is a
        strftime format (``"%d.%m.%Y"``), or for dates written as numbers ``"epoch_s"`` /
        ``"epoch_ms"`` (Unix time in seconds / milliseconds, UTC) or ``"excel"`` (Excel serial days
        such as 45292 for 2024-01-01, local time in ``tz``). Dates must fall between 1677-09-21 and
        2262-04-11; a local time that a daylight-saving change skips or repeats in ``tz`` is a bad
        value (write it with its offset). UTF-16 text with a byte order mark is read as such (the
        report notes it).
    decimal
        The decimal mark of numbers written as text, ``"."`` or ``","``. By default it is decided
        for each column of numbers from its own values, whatever the delimiter: ``1234.50`` or
        ``1,234.50`` prove a decimal point, ``12,5`` or ``1.234,50`` a decimal comma, and a
        thousands separator is accepted only where it groups digits by three. A column whose
        values read both ways (only ``1,234`` or ``1.234``) is an error naming the value: pass
        ``decimal=`` then. ``summary()`` notes the mark read for the amounts
        (``amount: decimal comma, thousands '.'``).
    na_values
        Texts that mean "no value" in CSV and Excel files, e.g. ``["NA", "n/a"]``. By default only
        an empty cell is missing: ``NA`` (North America) and ``null`` stay text. Parquet, SQL and
        DataFrame nulls are always missing.
    query, table, cases_table
        SQL only: a query or table of events, and optionally a table of cases.
    options
        All of the options above except the SQL ones, as one :class:`~salesproc.load.LoadOptions`
        (kept and passed on by the command line and the workshop); pass it or the keywords, not both.

    Notes
    -----
    Case values on event rows. A flat event log may repeat a case's values (outcome, amount,
    segment, owner, dates) on each of its rows, and an export often updates them over time. Each
    case takes the value of its last row in time order that gives one, and ``summary()`` notes
    every column where some case's rows disagree (how many cases, and one with both values): an
    amount that grew from 10,000 to 12,000 is 12,000. Outcomes are stricter, since a wrong one
    turns a lost deal into a won one: two closed outcomes on one case's rows (``won`` on one,
    ``lost`` on another) are an error naming both rows, or with ``errors="skip"`` the case is
    skipped and counted. A case open on its last row after a closed one is kept open and noted;
    open rows before a closed one are the case's progress and need no note. A case table's value
    wins over its events' values.

    Excel formulas. A workbook written by a program that does not calculate (openpyxl, many
    report generators) saves formulas without their results, which read as empty cells: such a
    cell is an error naming the sheet, the cell and the fix (open and save the workbook in Excel
    or LibreOffice, or export the values).

    Examples
    --------
    >>> import io, salesproc
    >>> csv = io.StringIO(
    ...     "case_id,name,timestamp,outcome\\n"
    ...     "A,Qualify,2024-01-02,won\\nA,Proposal,2024-01-20,won\\nB,Qualify,2024-01-05,open\\n"
    ... )
    >>> h = salesproc.load_history(csv)
    >>> h.cases[["case_id", "outcome", "status"]].to_dict("records")
    [{'case_id': 'A', 'outcome': 'won', 'status': 'success'}, {'case_id': 'B', 'outcome': 'open', 'status': 'open'}]
    """
    if isinstance(source, History):
        return source
    given = dict(
        mapping=mapping, kind=kind, errors=errors, tz=tz, outcome_values=outcome_values,
        outcome_events=outcome_events, milestones=milestones, lifecycle=lifecycle, sheet=sheet,
        encoding=encoding, delimiter=delimiter, decimal=decimal, dayfirst=dayfirst, date_format=date_format,
        na_values=None if na_values is None else _na_values(na_values), sla_days=sla_days,
        finish_events=None if finish_events is None else (
            (finish_events,) if isinstance(finish_events, str) else tuple(finish_events)
        ),
    )
    opts = _options(options, given)
    check_reading_parameters(tz=opts.tz, decimal=opts.decimal, date_format=opts.date_format)
    if _is_sql(source):
        from salesproc.load._sql import read_sql_history

        return read_sql_history(source, query=query, table=table, cases_table=cases_table, options=opts)
    if isinstance(source, pd.DataFrame):
        df = keep_own_row_column(source)
        return _noted(from_table(df, "<DataFrame>", options=opts), _reading_notes(df))
    if isinstance(source, (io.StringIO, io.BytesIO)) or hasattr(source, "read"):
        return _load_stream(source, opts)
    if not isinstance(source, (str, PathLike)):
        raise ParameterError(
            "The 'source' parameter of load_history must be a path, a DataFrame, an open file, a SQL "
            f"URL or engine, or a History. Got {type(source).__name__} instead."
        )
    return _load_path(Path(source), opts)


def _options(options: LoadOptions | None, given: dict[str, Any]) -> LoadOptions:
    """The keywords as one :class:`LoadOptions`, or ``options`` when it was passed (and no keyword
    was changed from its default: two places for one option would leave one of them ignored)."""
    if options is None:
        return LoadOptions(**given)
    if not isinstance(options, LoadOptions):
        raise ParameterError(
            f"The 'options' parameter of load_history must be a LoadOptions. Got {type(options).__name__} instead."
        )
    defaults = LoadOptions()
    both = [f"{k}={v!r}" for k, v in given.items() if v != getattr(defaults, k)]
    if both:
        raise ParameterError(
            f"load_history got options= and also {', '.join(both)}. Fix: pass one of them, e.g. "
            f"options=options.replace({', '.join(both)})."
        )
    return options


def _load_stream(source: Any, opts: LoadOptions) -> History:
    """An open text or binary file of CSV rows."""
    raw = source.read()
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    df, _ = _read_csv_bytes(
        data, "<stream>", encoding=opts.encoding, delimiter=opts.delimiter, mapping=opts.mapping, decimal=opts.decimal,
        na_values=opts.na_values,
    )
    return _noted(from_table(df, "<stream>", options=opts), _reading_notes(df, data[:4], opts.encoding))


def _load_path(path: Path, opts: LoadOptions) -> History:
    """A file (table or XES) or a folder saved by :meth:`History.to_parquet`."""
    if not path.exists():
        raise InputError(f"{path}: no such file or folder. Fix: check the path (working folder: {Path.cwd()}).")
    if path.is_dir():
        if (path / "events.parquet").exists():
            return History.read_parquet(path)
        raise InputError(f"{path} is a folder but not a saved history (no events.parquet inside).")
    name = path.name.lower()
    if name.endswith((".xes", ".xes.gz")):
        from salesproc.load._xes import read_xes

        return read_xes(path, options=opts)
    if path.suffix.lower() not in _TABLE_SUFFIXES:
        raise InputError(
            f"{path}: unknown file type {path.suffix!r}. Expected one of "
            f"{sorted(_TABLE_SUFFIXES | {'.xes', '.xes.gz'})}, or a folder saved by History.to_parquet."
        )
    df, _ = read_table(
        path, sheet=opts.sheet, encoding=opts.encoding, delimiter=opts.delimiter, mapping=opts.mapping,
        decimal=opts.decimal, na_values=opts.na_values,
    )
    return _noted(from_table(df, str(path), options=opts), _reading_notes(df, _first_bytes(path), opts.encoding))


def _first_bytes(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(4)


def _reading_notes(df: pd.DataFrame, head: bytes = b"", encoding: str = "utf-8") -> list[str]:
    """What the report should say about how the table was read: UTF-16 text read by its byte order
    mark, a column of the source's own named ``_row`` loaded under another name."""
    notes = []
    if _is_utf8(encoding) and utf16_bom(head):
        notes.append("read as UTF-16 text: the file starts with a UTF-16 byte order mark")
    if OWN_ROW in df.columns:
        notes.append(f"the column '_row' is loaded as {OWN_ROW!r} (salesproc keeps row numbers in '_row')")
    return notes


def _noted(h: History, notes: list[str]) -> History:
    """The history with ``notes`` added to its report."""
    if not notes:
        return h
    return History(h.cases, h.events, dataclasses.replace(h.report, notes=(*h.report.notes, *notes)))


def _is_utf8(encoding: str) -> bool:
    return encoding.lower().replace("_", "-") in ("utf-8", "utf8")


def _na_values(values: Iterable[str]) -> tuple[str, ...]:
    """The ``na_values`` keyword as a tuple of texts (one text is one value, not its letters)."""
    if isinstance(values, str):
        return (values,)
    try:
        return tuple(str(v) for v in values)
    except TypeError:
        raise ParameterError(
            "The 'na_values' parameter of load_history must be a list of texts such as ['NA', 'n/a']. "
            f"Got {type(values).__name__} instead."
        ) from None


def _is_sql(source: Any) -> bool:
    if isinstance(source, str) and re.match(r"^[a-z][a-z0-9+]*://", source):
        return True
    mod = type(source).__module__
    return mod.startswith("sqlalchemy") or mod.startswith("sqlite3")














# --- reading tables ------------------------------------------------------------------------------

def read_table(
    path: Path,
    *,
    sheet: str | int | None = None,
    encoding: str = "utf-8",
    delimiter: str | None = None,
    mapping: Mapping[str, str] | str | None = None,
    decimal: str | None = None,
    na_values: Iterable[str] | None = None,
) -> tuple[pd.DataFrame, str | None]:
    """Read CSV/TSV, Parquet or Excel into a DataFrame; returns it with the decimal mark given
    (None: each column of numbers was, and its amounts are to be, read with the mark its values show).

    Only empty cells are missing, and the texts in ``na_values``. Blank rows are dropped; when
    there were any, a ``_row`` column keeps each row's number as a spreadsheet shows it (header
    row 1), so messages point at the right row.
    """
    suffix = path.suffix.lower()
    if path.stat().st_size == 0:
        raise EmptyInputError(f"{path}: the file is empty (0 bytes). Fix: export the data again.")
    if suffix in (".parquet", ".pq"):
        try:
            df = _read_parquet(path, mapping)
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise MalformedFileError(
                f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]}). "
                "Fix: write it again (e.g. DataFrame.to_parquet), or give the CSV export instead."
            ) from None
        if len(df) == 0:
            raise EmptyInputError(f"{path}: the file holds no rows.")
        return keep_own_row_column(df), decimal
    if suffix in (".xlsx", ".xlsm", ".xls"):
        frame = _read_excel(path, sheet, na_values)
        frame = _drop_blank_rows(keep_own_row_column(frame.infer_objects()))
        if len(frame) == 0:
            raise EmptyInputError(
                f"{path}: the sheet holds no rows. Fix: check the sheet (pass sheet=<name or number>) "
                "or export the data again."
            )
        return frame, decimal
    return _read_csv_path(
        path, encoding=encoding, delimiter=delimiter, mapping=mapping, decimal=decimal, na_values=na_values
    )


def _read_parquet(path: Path, mapping: Mapping[str, str] | str | None) -> pd.DataFrame:
    """A Parquet file with an event log's identifying text read dictionary-encoded (Parquet
    usually stores it so; the values are then never expanded to one string per row)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from salesproc._arrow import table_to_frame

    schema = pq.read_schema(path)
    types = dict(zip(schema.names, schema.types))
    wanted = _column_types(mapping, list(schema.names), types)
    as_dictionary = [c for c, t in wanted.items() if pa.types.is_dictionary(t)]
    return table_to_frame(pq.read_table(path, read_dictionary=as_dictionary or None))


def _read_excel(path: Path, sheet: str | int | None, na_values: Iterable[str] | None = None) -> pd.DataFrame:
    """One sheet as text-and-dates cells; damaged or mislabelled files and absent sheets say so, and
    so do formulas saved without their result. Only empty cells (and ``na_values``) are missing."""
    if path.suffix.lower() == ".xls":
        try:
            import xlrd  # noqa: F401
        except ImportError:
            raise InputError(
                f"{path}: old-style .xls workbooks need the xlrd package. "
                "Fix: save the workbook as .xlsx in Excel, or pip install xlrd."
            ) from None
    elif not zipfile.is_zipfile(path):
        raise MalformedFileError(
            f"{path}: not an Excel .xlsx workbook (it is not a zip archive; perhaps a CSV or an old .xls "
            "renamed). Fix: open it in Excel and save it as .xlsx, or give it its real extension."
        )
    try:
        book = pd.ExcelFile(path)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise MalformedFileError(
            f"{path}: the workbook cannot be read ({exc}). Fix: open it in Excel and save it again."
        ) from None
    with book:
        sheets = [str(n) for n in book.sheet_names]
        wanted: str | int = 0 if sheet is None else sheet
        if (isinstance(wanted, int) and not 0 <= wanted < len(sheets)) or (
            isinstance(wanted, str) and wanted not in sheets
        ):
            raise InputError(
                f"{path}: no sheet {wanted!r}. Sheets: {', '.join(repr(n) for n in sheets)}. "
                f"Fix: pass sheet=<one of those names, or its number from 0>."
            )
        frame = pd.read_excel(
            book, sheet_name=wanted, dtype=object, keep_default_na=False, na_values=["", *(na_values or ())]
        )
    if path.suffix.lower() != ".xls" and frame.isna().to_numpy().any():
        from salesproc.load._excel import check_cells

        check_cells(path, sheets[wanted] if isinstance(wanted, int) else wanted, na_values)
    return frame


def _read_csv_path(
    path: Path,
    *,
    encoding: str,
    delimiter: str | None,
    mapping: Mapping[str, str] | str | None,
    decimal: str | None = None,
    na_values: Iterable[str] | None = None,
) -> tuple[pd.DataFrame, str | None]:
    """Read a CSV file: pyarrow reads the path itself (in parallel, no copy of the bytes in
    Python); other encodings, and files whose first MiB is blank, take the bytes route."""
    head = b""
    utf8 = encoding.lower().replace("_", "-") in ("utf-8", "utf8")
    if utf8:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD_BYTES)
        if utf16_bom(head):  # its byte order mark says how to read it (the report notes it)
            encoding, head = "utf-16", b""
        check_not_utf16(head, str(path))
        if head.startswith(codecs.BOM_UTF8):
            head = head[len(codecs.BOM_UTF8):]
    if not head.strip():  # another encoding, or nothing to look at
        return _read_csv_bytes(
            path.read_bytes(), str(path), encoding=encoding, delimiter=delimiter, mapping=mapping, decimal=decimal,
            na_values=na_values,
        )
    return _read_csv_arrow(
        str(path), head, str(path), full=path.read_bytes, delimiter=delimiter, mapping=mapping, decimal=decimal,
        na_values=na_values,
    )


def _read_csv_bytes(
    data: bytes,
    source: str,
    *,
    encoding: str,
    delimiter: str | None,
    mapping: Mapping[str, str] | str | None,
    decimal: str | None = None,
    na_values: Iterable[str] | None = None,
) -> tuple[pd.DataFrame, str | None]:
    """Read CSV text held in memory (a stream, or a file in another encoding than UTF-8)."""
    import pyarrow as pa

    if not data or data.isspace():
        raise EmptyInputError(f"{source}: the file is empty. Fix: export the data again.")
    if _is_utf8(encoding):
        if utf16_bom(data):  # its byte order mark says how to read it (the report notes it)
            encoding = "utf-16"
        else:
            check_not_utf16(data[:4096], source)
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    enc = encoding.lower().replace("_", "-")
    if enc not in ("utf-8", "utf8"):
        try:
            data = data.decode(encoding).encode("utf-8")
        except LookupError:
            raise EncodingError(
                f"{source}: {encoding!r} is not a text encoding Python knows. "
                "Fix: use e.g. encoding='utf-8', 'cp1252' (Windows/Excel) or 'latin-1'."
            ) from None
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            bad = data[exc.start : exc.start + 1]
            raise EncodingError(
                f"{source}, row {line}: byte {bad!r} at offset {exc.start} is not {encoding}. "
                "Fix: pass the file's encoding, e.g. encoding='utf-8', 'cp1252' or 'latin-1'."
            ) from None
    else:
        _check_utf8(data, source)
    return _read_csv_arrow(
        pa.BufferReader(data), data[:_HEAD_BYTES], source, full=lambda: data,
        delimiter=delimiter, mapping=mapping, decimal=decimal, na_values=na_values,
    )


_HEAD_BYTES = 1 << 20  # how much of a file is looked at for the header, delimiter and quoting
_BLOCK_BYTES = 1 << 22  # what pyarrow's CSV reader reads at a time: a row may span two blocks, no more
_NO_MARK = "\x1f"  # a decimal mark no file uses: the reader then parses whole numbers only
# identifying text of an event log, read dictionary-encoded: few distinct values over many rows
_DICTIONARY_FIELDS = ("case_id", "name", "type", "outcome", "segment", "kind", "owner", "role")
_TEXT_FIELDS = ("case_id", "name", "owner", "role", "segment", "type", "outcome")


def _column_types(
    mapping: Mapping[str, str] | str | None, names: list[str], types: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Column -> the pyarrow type to read it as: the mapped text fields as text (never guessed as
    numbers or dates), and, for event logs, their identifying fields dictionary-encoded.

    ``types`` (a file's schema, when it has one) limits the dictionary encoding to text columns.
    """
    import pyarrow as pa

    from salesproc._arrow import text_dictionary

    cols, preset = resolve_mapping(mapping, names)
    present = set(names)
    out: dict[str, Any] = {cols.get(k, k): pa.string() for k in _TEXT_FIELDS if cols.get(k, k) in present}
    if preset is None or preset.shape == "events":
        for k in _DICTIONARY_FIELDS:
            c = cols.get(k, k)
            if c in present and (types is None or pa.types.is_string(types[c]) or pa.types.is_large_string(types[c])):
                out[c] = text_dictionary()
    return out


def _amount_column(mapping: Mapping[str, str] | str | None, names: list[str]) -> str:
    """The column the mapping reads amounts from (left as text by the reader, for the builder)."""
    return resolve_mapping(mapping, names)[0].get("amount", "amount")


def _read_csv_arrow(
    data: Any,
    head: bytes,
    source: str,
    *,
    full: Callable[[], bytes],
    delimiter: str | None,
    mapping: Mapping[str, str] | str | None,
    decimal: str | None,
    na_values: Iterable[str] | None = None,
) -> tuple[pd.DataFrame, str | None]:
    """Parse CSV with pyarrow from ``data`` (a path or a buffer); ``head`` is its first bytes
    without a BOM, ``full()`` all of it (read only to point an error at a row).

    Without a ``decimal`` mark no number with a mark is parsed by the reader: each column of them
    is read afterwards with the mark its own values prove (the amounts by the builder, which
    notes it). Only empty cells, and ``na_values``, are missing."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from salesproc._arrow import table_to_frame, text_dictionary

    first_nl = head.find(b"\n")
    header = (head if first_nl < 0 else head[:first_nl]).decode("utf-8", "replace")
    if delimiter is None:
        counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
        delimiter = max(counts, key=lambda d: counts[d]) if max(counts.values()) > 0 else ","
    names = [h.strip().strip('"') for h in header.rstrip("\r").split(delimiter)]
    column_types = _column_types(mapping, names)
    amount = _amount_column(mapping, names)
    if decimal is None and amount in names:
        # text for the builder, which decides its decimal mark; dictionary-encoded, as a case's
        # amount repeats on its rows
        column_types.setdefault(amount, text_dictionary())

    def read(newlines_in_values: bool) -> pa.Table:
        return pacsv.read_csv(
            data,
            read_options=pacsv.ReadOptions(use_threads=True, block_size=_BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter,
                newlines_in_values=newlines_in_values,
                # blank lines stay rows here (dropped below) so row numbers match a spreadsheet's
                ignore_empty_lines=False,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=column_types,
                null_values=["", *(na_values or ())],  # "NA" is North America, not a gap
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
                # "1.234" may be a thousand or one point two: unless the mark is given, numbers
                # with one stay text here, read per column below with the mark their values prove
                decimal_point=decimal or _NO_MARK,
            ),
        )

    quoted = b'"' in head
    try:
        try:
            tbl = read(quoted)
        except pa.ArrowInvalid as exc:
            # quoted line breaks may first appear past the head: read once more allowing them
            if quoted or "Expected" not in str(exc) or b'"' not in full():
                raise
            tbl = read(True)
    except pa.ArrowInvalid as exc:
        msg = str(exc)
        if "straddl" in msg:  # a row longer than two blocks
            raise row_too_long_error(full, source, delimiter=delimiter, block=_BLOCK_BYTES) from None
        if "UTF8" in msg or "UTF-8" in msg:
            _check_utf8(full(), source)
        m = re.search(r"Expected (\d+) columns, got (\d+): (.*)", msg)
        if m:
            row = _find_row(full(), m.group(3)[:40])
            raise InputError(
                f"{source}{f', row {row}' if row else ''}: expected {m.group(1)} fields (the header's), "
                f"found {m.group(2)}: {m.group(3)[:80]!r}. Fix: quote values that contain {delimiter!r}, "
                "or pass the right delimiter=."
            ) from None
        raise InputError(f"{source}: cannot read as CSV ({msg.splitlines()[0]}).") from None
    if any(pa.types.is_binary(t) or pa.types.is_large_binary(t) for t in tbl.schema.types):
        _check_utf8(full(), source)  # pyarrow reads a column with bytes that are not UTF-8 as binary
    check_nul_cells(tbl, source)
    if tbl.num_rows == 0:
        raise EmptyInputError(f"{source}: the file has a header but no rows. Fix: export the data again.")
    if decimal is None:
        tbl = convert_numeric_text(tbl, skip=list(column_types))
    df = table_to_frame(tbl)
    df.columns = [str(c).strip() for c in df.columns]
    df = _drop_blank_rows(keep_own_row_column(df))
    if len(df) == 0:
        raise EmptyInputError(f"{source}: the file has a header but no rows. Fix: export the data again.")
    return df, decimal


def _drop_blank_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Drop rows with every cell empty; if any, add ``_row`` (spreadsheet row numbers) to the rest."""
    if len(df) == 0 or len(df.columns) == 0:
        return df
    first = df.iloc[:, 0]
    cand = first.isna().to_numpy()
    if not cand.any():
        return df
    idx = np.flatnonzero(cand)
    sub = df.iloc[idx]
    blank_sub = sub.isna().all(axis=1).to_numpy()
    if not blank_sub.any():
        return df
    blank = np.zeros(len(df), dtype=bool)
    blank[idx[blank_sub]] = True
    out = df.loc[~blank].copy()
    out["_row"] = np.flatnonzero(~blank).astype(np.int64) + 2
    return out.reset_index(drop=True)


def _check_utf8(data: bytes, source: str) -> None:
    if data.isascii():
        return
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        row = data[: exc.start].count(b"\n") + 1
        bad = data[exc.start : exc.start + 1]
        raise EncodingError(
            f"{source}, row {row}: byte {bad!r} at offset {exc.start} is not UTF-8. "
            "Fix: save the file as UTF-8, or pass encoding='cp1252' (Windows/Excel) or encoding='latin-1'."
        ) from None


def _find_row(data: bytes, fragment: str) -> int | None:
    pos = data.find(fragment.encode("utf-8", "replace"))
    return None if pos < 0 else data[:pos].count(b"\n") + 1


