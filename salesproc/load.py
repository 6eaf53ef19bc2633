"""Loading: any source a team has (event logs, CRM exports, XES, spreadsheets, SQL) -> History.

:func:`load_history` is the one entry point. It reads the source into a table, resolves the
column mapping (a dict or a preset name, or none for canonical names), and hands the rows to the
shape-specific builder. Validation happens once, in :mod:`salesproc._build`.
"""

from __future__ import annotations

import codecs
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from salesproc._build import Errors, MilestoneRule, build_history, check_reading_parameters
from salesproc._presets import Preset, detect_preset, get_preset
from salesproc.errors import (
    EmptyInputError,
    EncodingError,
    InputError,
    MalformedFileError,
    MissingColumnError,
    ParameterError,
)
from salesproc.history import History

__all__ = ["load_history", "read_table"]

REQUIRED_EVENT_COLUMNS = ("case_id", "name", "timestamp")
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
    dayfirst: bool = False,
    date_format: str | None = None,
    query: str | None = None,
    table: str | None = None,
    cases_table: str | None = None,
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
        exports are recognised by their column names. The presets and the columns they read:

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
        events become the case's outcome and close date and leave the event table.
    milestones
        Which event names are milestones when the data has no ``type`` column: a list of names, a
        regular expression or prefix, or a callable. Without it all events are milestones.
    lifecycle
        XES only: which ``lifecycle:transition`` values to keep (``None`` keeps all).
    sheet, encoding, delimiter, decimal, dayfirst, date_format
        Reading options; the delimiter is sniffed (``,`` ``;`` tab ``|``) and ``;`` files default to
        decimal commas.
    query, table, cases_table
        SQL only: a query or table of events, and optionally a table of cases.

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
    build_opts: dict[str, Any] = dict(
        kind=kind,
        errors=errors,
        tz=tz,
        outcome_values=outcome_values,
        outcome_events=outcome_events,
        milestones=milestones,
        dayfirst=dayfirst,
        date_format=date_format,
    )
    if isinstance(source, History):
        return source
    check_reading_parameters(tz=tz, decimal=decimal, date_format=date_format)
    if _is_sql(source):
        from salesproc._sql import read_sql_history

        return read_sql_history(
            source, query=query, table=table, cases_table=cases_table, mapping=mapping, **build_opts
        )
    if isinstance(source, pd.DataFrame):
        return _from_table(source, mapping, "<DataFrame>", build_opts, decimal or ".")
    if isinstance(source, (io.StringIO, io.BytesIO)) or hasattr(source, "read"):
        raw = source.read()
        data = raw.encode("utf-8") if isinstance(raw, str) else raw
        df, dec = _read_csv_bytes(
            data, "<stream>", encoding=encoding, delimiter=delimiter, mapping=mapping, decimal=decimal
        )
        return _from_table(df, mapping, "<stream>", build_opts, decimal or dec)
    if not isinstance(source, (str, PathLike)):
        raise ParameterError(
            "The 'source' parameter of load_history must be a path, a DataFrame, an open file, a SQL "
            f"URL or engine, or a History. Got {type(source).__name__} instead."
        )
    path = Path(source)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder. Fix: check the path (working folder: {Path.cwd()}).")
    if path.is_dir():
        if (path / "events.parquet").exists():
            return History.read_parquet(path)
        raise InputError(f"{path} is a folder but not a saved history (no events.parquet inside).")
    name = path.name.lower()
    if name.endswith((".xes", ".xes.gz")):
        from salesproc._xes import read_xes

        return read_xes(path, lifecycle=lifecycle, mapping=mapping, **build_opts)
    if path.suffix.lower() not in _TABLE_SUFFIXES:
        raise InputError(
            f"{path}: unknown file type {path.suffix!r}. Expected one of "
            f"{sorted(_TABLE_SUFFIXES | {'.xes', '.xes.gz'})}, or a folder saved by History.to_parquet."
        )
    df, dec = read_table(
        path, sheet=sheet, encoding=encoding, delimiter=delimiter, mapping=mapping, decimal=decimal
    )
    return _from_table(df, mapping, str(path), build_opts, decimal or dec)


def _is_sql(source: Any) -> bool:
    if isinstance(source, str) and re.match(r"^[a-z][a-z0-9+]*://", source):
        return True
    mod = type(source).__module__
    return mod.startswith("sqlalchemy") or mod.startswith("sqlite3")


def resolve_mapping(
    mapping: Mapping[str, str] | str | None, columns: list[str]
) -> tuple[dict[str, str], Preset | None]:
    """Canonical -> source column, and the preset when one was named or detected."""
    if mapping is None:
        preset = detect_preset(columns)
        return resolve_mapping(preset.name, columns) if preset else ({}, None)
    if isinstance(mapping, str):
        preset = get_preset(mapping)
        present = set(columns)
        required = set(preset.options.get("required", REQUIRED_EVENT_COLUMNS))
        # a preset's optional columns may be absent from a given export
        return {k: v for k, v in preset.mapping.items() if v in present or k in required}, preset
    if not isinstance(mapping, Mapping):
        raise ParameterError(
            f"The 'mapping' parameter must be a dict or a preset name. Got {type(mapping).__name__} instead."
        )
    if "preset" in mapping:
        # a preset whose column names differ in this export: {"preset": "crm-snapshot", "stage": "Stage"}
        base = get_preset(str(mapping["preset"]))
        own = {str(k): str(v) for k, v in mapping.items() if k != "preset"}
        merged = {**dict(base.mapping), **own}
        present = set(columns)
        required = set(base.options.get("required", REQUIRED_EVENT_COLUMNS))
        cols = {k: v for k, v in merged.items() if v in present or k in required or k in own}
        return cols, base
    return {str(k): str(v) for k, v in mapping.items()}, None


# what export columns holding a canonical field are often called, best guess first
_COLUMN_GUESSES: dict[str, tuple[str, ...]] = {
    "case_id": (
        "case id", "case", "caseid", "deal id", "deal", "opportunity id", "opportunity", "project id",
        "project", "ticket id", "id", "case:concept:name",
    ),
    "name": (
        "activity", "stage", "step", "milestone", "event", "task", "phase", "status", "action",
        "concept:name",
    ),
    "timestamp": (
        "time", "date", "when", "datetime", "date time", "timestamp", "time:timestamp", "changed at",
        "entered", "changed", "start",
    ),
}


def _norm_col(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", str(name).strip().lower())


def suggest_mapping(
    mapping: Mapping[str, str], present: list[str], needed: Iterable[str] = REQUIRED_EVENT_COLUMNS
) -> dict[str, str]:
    """A mapping the user can copy: theirs with absent columns replaced by the likeliest present ones.

    Examples
    --------
    >>> suggest_mapping({}, ["Deal ID", "Stage", "Date", "Amount"])
    {'case_id': 'Deal ID', 'name': 'Stage', 'timestamp': 'Date'}
    >>> suggest_mapping({"case_id": "Deal", "name": "Stage"}, ["deal", "Stage", "When"])
    {'case_id': 'deal', 'name': 'Stage', 'timestamp': 'When'}
    """
    import difflib

    by_norm = {_norm_col(c): c for c in reversed(present)}
    taken = {c for c in mapping.values() if c in present}
    out: dict[str, str] = {}
    for canon in dict.fromkeys([*mapping, *needed]):
        col = mapping.get(canon)
        if col in present:
            out[canon] = col
            continue
        guess = None
        wanted = [col] if col is not None else []
        for cand in [*wanted, canon, *_COLUMN_GUESSES.get(canon, ())]:
            hit = by_norm.get(_norm_col(cand))
            if hit is not None and hit not in taken:
                guess = hit
                break
        if guess is None and col is not None:
            free = [c for c in present if c not in taken]
            close = difflib.get_close_matches(_norm_col(col), [_norm_col(c) for c in free], n=1, cutoff=0.6)
            guess = by_norm[close[0]] if close else None
        out[canon] = guess or "<your column>"
        if guess:
            taken.add(guess)
    return out


def apply_mapping(
    df: pd.DataFrame,
    mapping: Mapping[str, str],
    *,
    source: str,
    required: Iterable[str] = REQUIRED_EVENT_COLUMNS,
) -> pd.DataFrame:
    """Rename the source's columns to canonical names; a missing column gets a helpful error.

    The error lists the columns present and a whole mapping to copy, with the absent names replaced
    by the likeliest present columns.
    """
    present = [str(c) for c in df.columns if c != "_row"]
    required = list(required)
    for canon, col in mapping.items():
        if col not in present:
            raise MissingColumnError(
                col, canonical=canon, present=present, source=source,
                suggest=suggest_mapping(mapping, present, required),
            )
    rename = {col: canon for canon, col in mapping.items()}
    clash = [c for c in present if c in rename.values() and c not in rename]
    out = df.drop(columns=clash).rename(columns=rename) if clash else df.rename(columns=rename)
    for canon in required:
        if canon not in out.columns:
            raise MissingColumnError(
                canon, canonical=canon, present=present, source=source,
                suggest=suggest_mapping(mapping, present, required),
            )
    return out


def _from_table(
    df: pd.DataFrame,
    mapping: Mapping[str, str] | str | None,
    source: str,
    build_opts: dict[str, Any],
    decimal: str,
) -> History:
    if len(df) == 0:
        raise EmptyInputError(f"{source}: the table has a header but no rows. Fix: export the data again.")
    names = pd.Index([str(c) for c in df.columns])
    if names.has_duplicates:
        twice = names[names.duplicated()][0]
        raise InputError(
            f"{source}: the column {twice!r} appears {int((names == twice).sum())} times in the header. "
            "Fix: rename the repeats so that each column name is unique."
        )
    cols, preset = resolve_mapping(mapping, [str(c) for c in df.columns])
    shape = preset.shape if preset else "events"
    popts = {k: v for k, v in (preset.options if preset else {}).items() if k != "required"}
    opts = {**popts, **{k: v for k, v in build_opts.items() if v is not None}}
    if shape == "events":
        mapped = apply_mapping(df, cols, source=source)
        return build_history(mapped, source=source, decimal=decimal, column_names=cols, **opts)
    if shape == "snapshot":
        from salesproc._crm import snapshot_history

        return snapshot_history(df, cols, source=source, decimal=decimal, **opts)
    if shape == "stage_history":
        from salesproc._crm import stage_history

        return stage_history(df, cols, source=source, decimal=decimal, **opts)
    if shape == "milestones":
        from salesproc._projects import milestone_table_history

        return milestone_table_history(df, cols, source=source, decimal=decimal, **opts)
    raise InputError(f"preset {preset.name if preset else '?'} has an unknown shape {shape!r}")


# --- reading tables ------------------------------------------------------------------------------

def read_table(
    path: Path,
    *,
    sheet: str | int | None = None,
    encoding: str = "utf-8",
    delimiter: str | None = None,
    mapping: Mapping[str, str] | str | None = None,
    decimal: str | None = None,
) -> tuple[pd.DataFrame, str]:
    """Read CSV/TSV, Parquet or Excel into a DataFrame; returns it with the decimal mark guessed.

    Blank rows are dropped; when there were any, a ``_row`` column keeps each row's number as a
    spreadsheet shows it (header row 1), so messages point at the right row.
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
        return df, "."
    if suffix in (".xlsx", ".xlsm", ".xls"):
        frame = _read_excel(path, sheet)
        frame = _drop_blank_rows(frame.infer_objects())
        if len(frame) == 0:
            raise EmptyInputError(
                f"{path}: the sheet holds no rows. Fix: check the sheet (pass sheet=<name or number>) "
                "or export the data again."
            )
        return frame, "."
    return _read_csv_path(path, encoding=encoding, delimiter=delimiter, mapping=mapping, decimal=decimal)


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


def _read_excel(path: Path, sheet: str | int | None) -> pd.DataFrame:
    """One sheet as text-and-dates cells; damaged or mislabelled files and absent sheets say so."""
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
        return pd.read_excel(book, sheet_name=wanted, dtype=object)


def _read_csv_path(
    path: Path,
    *,
    encoding: str,
    delimiter: str | None,
    mapping: Mapping[str, str] | str | None,
    decimal: str | None = None,
) -> tuple[pd.DataFrame, str]:
    """Read a CSV file: pyarrow reads the path itself (in parallel, no copy of the bytes in
    Python); other encodings, and files whose first MiB is blank, take the bytes route."""
    head = b""
    utf8 = encoding.lower().replace("_", "-") in ("utf-8", "utf8")
    if utf8:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD_BYTES)
        if head.startswith(codecs.BOM_UTF8):
            head = head[len(codecs.BOM_UTF8):]
    if not head.strip():  # another encoding, or nothing to look at
        return _read_csv_bytes(
            path.read_bytes(), str(path), encoding=encoding, delimiter=delimiter, mapping=mapping, decimal=decimal
        )
    return _read_csv_arrow(
        str(path), head, str(path), full=path.read_bytes, delimiter=delimiter, mapping=mapping, decimal=decimal
    )


def _read_csv_bytes(
    data: bytes,
    source: str,
    *,
    encoding: str,
    delimiter: str | None,
    mapping: Mapping[str, str] | str | None,
    decimal: str | None = None,
) -> tuple[pd.DataFrame, str]:
    """Read CSV text held in memory (a stream, or a file in another encoding than UTF-8)."""
    import pyarrow as pa

    if not data or data.isspace():
        raise EmptyInputError(f"{source}: the file is empty. Fix: export the data again.")
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
        delimiter=delimiter, mapping=mapping, decimal=decimal,
    )


_HEAD_BYTES = 1 << 20  # how much of a file is looked at for the header, delimiter and quoting
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


def _read_csv_arrow(
    data: Any,
    head: bytes,
    source: str,
    *,
    full: Callable[[], bytes],
    delimiter: str | None,
    mapping: Mapping[str, str] | str | None,
    decimal: str | None,
) -> tuple[pd.DataFrame, str]:
    """Parse CSV with pyarrow from ``data`` (a path or a buffer); ``head`` is its first bytes
    without a BOM, ``full()`` all of it (read only to point an error at a row)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from salesproc._arrow import table_to_frame

    first_nl = head.find(b"\n")
    header = (head if first_nl < 0 else head[:first_nl]).decode("utf-8", "replace")
    if delimiter is None:
        counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
        delimiter = max(counts, key=lambda d: counts[d]) if max(counts.values()) > 0 else ","
    if decimal is None:
        decimal = "," if delimiter == ";" else "."
    names = [h.strip().strip('"') for h in header.rstrip("\r").split(delimiter)]
    column_types = _column_types(mapping, names)

    def read(newlines_in_values: bool) -> pa.Table:
        return pacsv.read_csv(
            data,
            read_options=pacsv.ReadOptions(use_threads=True, block_size=1 << 22),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter,
                newlines_in_values=newlines_in_values,
                # blank lines stay rows here (dropped below) so row numbers match a spreadsheet's
                ignore_empty_lines=False,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=column_types,
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
                # "1.234" in a decimal-comma file is a thousand, not one point two: keep such
                # text for the builder's number parser instead of letting the reader guess
                decimal_point=decimal,
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
    if tbl.num_rows == 0:
        raise EmptyInputError(f"{source}: the file has a header but no rows. Fix: export the data again.")
    df = table_to_frame(tbl)
    df.columns = [str(c).strip() for c in df.columns]
    df = _drop_blank_rows(df)
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


