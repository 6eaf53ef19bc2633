"""Read a history from a SQL database: a table or query of events, optionally a table of cases.

The source is a SQLAlchemy URL (``"sqlite:///crm.db"``, ``"postgresql://user:pw@host/db"``), a
SQLAlchemy ``Engine``, ``Connection`` or ``URL``, or a :class:`sqlite3.Connection`. The rows then go
through the same mapping and validation as a file's. Table names are checked against the tables the
database has and quoted by SQLAlchemy (or, for a sqlite3 connection, as SQL identifiers), so a table
name cannot inject SQL. Messages show the URL with its password hidden.
"""

from __future__ import annotations

import abc
import difflib
import re
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from salesproc.errors import (
    EmptyInputError,
    InputError,
    MissingColumnError,
    MissingDependencyError,
    ParameterError,
)
from salesproc.history._history import History
from salesproc.load._build import CASE_LEVEL, build_history
from salesproc.load._guards import keep_own_row_column
from salesproc.load._mapping import (
    REQUIRED_EVENT_COLUMNS,
    apply_mapping,
    from_table,
    resolve_mapping,
    suggest_mapping,
)
from salesproc.load._options import LoadOptions
from salesproc.load._presets import preset_options

__all__ = ["read_sql_history", "safe_url"]

_CASE_FIELDS = frozenset({"case_id", *CASE_LEVEL})
# the pip name of drivers whose import name differs
_DRIVER_PACKAGES = {"psycopg2": "psycopg2-binary", "psycopg": "'psycopg[binary]'", "MySQLdb": "mysqlclient"}


def safe_url(url: Any) -> str:
    """A database URL fit for messages and reports: the password is replaced by ``***``.

    Examples
    --------
    >>> safe_url("postgresql://sales:s3cret@db.example.com:5432/crm")
    'postgresql://sales:***@db.example.com:5432/crm'
    >>> safe_url("sqlite:///deals.db")
    'sqlite:///deals.db'
    """
    from sqlalchemy.engine import URL, make_url

    try:
        parsed = url if isinstance(url, URL) else make_url(str(url))
        return parsed.render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can read: mask anything between user: and @
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", str(url))


class _Database(abc.ABC):
    """What the loader needs from a database: its tables, a table's rows, a query's rows."""

    label: str

    @abc.abstractmethod
    def tables(self) -> list[str]: ...

    @abc.abstractmethod
    def select_all(self, table: str) -> pd.DataFrame: ...

    @abc.abstractmethod
    def query(self, sql: str) -> pd.DataFrame: ...

    def check_table(self, table: object, parameter: str) -> str:
        """The table's name as the database knows it; a clear error listing the tables if absent."""
        if not isinstance(table, str) or not table.strip():
            raise ParameterError(
                f"The {parameter!r} parameter of load_history must be a table name (str). "
                f"Got {table!r} instead."
            )
        names = self.tables()
        if table in names:
            return table
        folded = [n for n in names if n.lower() == table.lower()]
        close = folded or difflib.get_close_matches(table, names, n=1, cutoff=0.6)
        shown = ", ".join(repr(n) for n in names[:40]) or "none"
        if len(names) > 40:
            shown += f", ... ({len(names) - 40} more)"
        hint = f"{parameter}={close[0]!r}" if close else f"{parameter}=<one of them>"
        raise InputError(
            f"{self.label}: no table {table!r}. Tables present: {shown}. "
            f"Fix: load_history(..., {hint}), or give query='SELECT ...' instead."
        )


    def failed(self, what: str, exc: BaseException) -> InputError:
        """The database's own reason (not pandas' wrapping, not the driver's traceback) and a fix."""
        return InputError(
            f"{self.label}: {what} failed: {_reason(exc)}. Fix: run the query in your SQL client to "
            f"check it; the tables present are {', '.join(repr(t) for t in self.tables()) or 'none'}."
        )


def _reason(exc: BaseException) -> str:
    """The innermost driver message of a (pandas- or SQLAlchemy-wrapped) database error."""
    inner: BaseException = exc
    while True:
        nxt = getattr(inner, "orig", None) or inner.__cause__
        if not isinstance(nxt, BaseException) or nxt is inner:
            break
        inner = nxt
    text = str(inner).strip().splitlines()
    return text[0] if text else type(inner).__name__


# catalogues a database keeps about itself, never a team's data
_SYSTEM_SCHEMAS = frozenset({"information_schema", "sys", "mysql", "performance_schema"})


class _SqlAlchemyDatabase(_Database):
    def __init__(self, conn: Any, label: str) -> None:
        self.conn = conn
        self.label = label

    def _default_tables(self) -> list[str]:
        import sqlalchemy as sa

        insp = sa.inspect(self.conn)
        return [*insp.get_table_names(), *insp.get_view_names()]

    def tables(self) -> list[str]:
        """Tables and views: those of the default schema by name, the others as ``schema.table``
        (PostgreSQL's ``sales.deals``); the database's own catalogues are left out."""
        import sqlalchemy as sa

        insp = sa.inspect(self.conn)
        names = self._default_tables()
        for schema in insp.get_schema_names():
            if schema == insp.default_schema_name or schema.lower() in _SYSTEM_SCHEMAS or schema.startswith("pg_"):
                continue
            names += [f"{schema}.{n}" for n in (*insp.get_table_names(schema=schema), *insp.get_view_names(schema=schema))]
        return sorted(dict.fromkeys(names))

    def select_all(self, table: str) -> pd.DataFrame:
        import sqlalchemy as sa

        schema, _, name = table.rpartition(".") if table not in self._default_tables() else ("", "", table)
        stmt = sa.select(sa.text("*")).select_from(sa.table(name, schema=schema or None))
        return self._read(stmt, f"reading table {table!r}")

    def query(self, sql: str) -> pd.DataFrame:
        return self._read(sql, "the query")

    def _read(self, stmt: Any, what: str) -> pd.DataFrame:
        import sqlalchemy as sa

        try:
            return pd.read_sql_query(stmt, self.conn)
        except (sa.exc.DBAPIError, pd.errors.DatabaseError) as exc:
            raise self.failed(what, exc) from None


class _SqliteDatabase(_Database):
    """A plain :class:`sqlite3.Connection`, used as it is (never closed or committed here)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        try:
            files = [row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"]
        except sqlite3.Error as exc:
            raise InputError(f"sqlite3 connection: cannot use it ({exc}). Fix: pass an open connection.") from None
        self.label = f"sqlite:///{files[0]}" if files and files[0] else "sqlite3 connection (in memory)"

    def tables(self) -> list[str]:
        rows = self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' "
            "UNION SELECT name FROM sqlite_temp_master WHERE type IN ('table', 'view') ORDER BY name"
        ).fetchall()
        return [str(r[0]) for r in rows]

    def select_all(self, table: str) -> pd.DataFrame:
        quoted = '"' + table.replace('"', '""') + '"'
        return self._read(f"SELECT * FROM {quoted}", f"reading table {table!r}")

    def query(self, sql: str) -> pd.DataFrame:
        return self._read(sql, "the query")

    def _read(self, sql: str, what: str) -> pd.DataFrame:
        try:
            return pd.read_sql_query(sql, self.conn)
        except (sqlite3.Error, pd.errors.DatabaseError) as exc:
            raise self.failed(what, exc) from None


@contextmanager
def _connect(source: Any) -> Iterator[_Database]:
    """Open what ``source`` names; close only what was opened here."""
    if isinstance(source, sqlite3.Connection):
        yield _SqliteDatabase(source)
        return
    import sqlalchemy as sa

    if isinstance(source, sa.engine.Connection):
        yield _SqlAlchemyDatabase(source, safe_url(source.engine.url))
        return
    if isinstance(source, sa.engine.Engine):
        label = safe_url(source.url)
        with _opening(label):
            conn = source.connect()
        with conn:
            yield _SqlAlchemyDatabase(conn, label)
        return
    if not isinstance(source, (str, sa.engine.URL)):
        raise ParameterError(
            "The 'source' parameter of load_history must be a file, a DataFrame, a SQLAlchemy URL, "
            f"Engine or Connection, or a sqlite3 connection. Got {type(source).__name__} instead."
        )
    label = safe_url(source)
    try:
        url = sa.engine.make_url(source)
    except sa.exc.ArgumentError:
        raise InputError(
            f"{label}: not a database URL SQLAlchemy can read. Fix: write it as "
            "dialect+driver://user:password@host/database, e.g. 'sqlite:///deals.db' or "
            "'postgresql://user:password@host/crm'."
        ) from None
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        db = str(url.database)
        if not db.startswith("file:") and not Path(db).exists():
            # SQLite would create an empty database there; a typo should not leave a file behind
            raise InputError(
                f"{label}: no such database file {db!r} (working folder: {Path.cwd()}). "
                "Fix: check the path; 'sqlite:///relative.db' is relative, 'sqlite:////abs/path.db' absolute."
            )
    with _opening(label):
        engine = sa.create_engine(url)
    try:
        with _opening(label):
            conn = engine.connect()
        with conn:
            yield _SqlAlchemyDatabase(conn, label)
    finally:
        engine.dispose()


@contextmanager
def _opening(label: str) -> Iterator[None]:
    """Turn driver and connection failures into salesproc errors that name the (safe) URL."""
    import sqlalchemy as sa

    try:
        yield
    except sa.exc.NoSuchModuleError:
        raise InputError(
            f"{label}: SQLAlchemy knows no such database dialect. Fix: start the URL with one it has, "
            "e.g. sqlite:///, postgresql://, mysql+pymysql://, mssql+pyodbc:// (or install the package "
            "that provides the dialect)."
        ) from None
    except sa.exc.ArgumentError as exc:
        raise InputError(
            f"{label}: SQLAlchemy cannot use this URL ({_reason(exc)}). Fix: write it as "
            "dialect+driver://user:password@host/database, e.g. 'sqlite:///deals.db' or "
            "'postgresql://user:password@host/crm'."
        ) from None
    except ModuleNotFoundError as exc:
        package = _DRIVER_PACKAGES.get(str(exc.name), str(exc.name))
        raise MissingDependencyError(
            f"{label}: the database driver {exc.name!r} is not installed. Fix: pip install {package}"
        ) from None
    except sa.exc.DBAPIError as exc:
        raise InputError(
            f"{label}: cannot connect ({_reason(exc)}). Fix: check the host, database name and "
            "credentials, and that the server is running."
        ) from None


def _split_mapping(
    cols: Mapping[str, str], events: pd.DataFrame, cases: pd.DataFrame | None, source: str
) -> tuple[dict[str, str], dict[str, str]]:
    """Which mapped columns the events have and which the case table has (case-level ones)."""
    ev_cols = [str(c) for c in events.columns]
    case_cols = [] if cases is None else [str(c) for c in cases.columns]
    to_events: dict[str, str] = {}
    to_cases: dict[str, str] = {}
    for canon, col in cols.items():
        if col in ev_cols:
            to_events[canon] = col
        if col in case_cols and canon in _CASE_FIELDS:
            to_cases[canon] = col
        if col not in ev_cols and canon not in to_cases:
            present = ev_cols + [c for c in case_cols if c not in ev_cols]
            raise MissingColumnError(
                col, canonical=canon, present=present, source=source,
                suggest=suggest_mapping(dict(cols), present, REQUIRED_EVENT_COLUMNS),
            )
    return to_events, to_cases


def read_sql_history(
    source: Any,
    *,
    query: str | None = None,
    table: str | None = None,
    cases_table: str | None = None,
    options: LoadOptions | None = None,
) -> History:
    """Load a :class:`History` from a database table or query of events (one row per event).

    :func:`salesproc.load_history` calls this for database sources; the options mean the same there.

    Parameters
    ----------
    source
        A SQLAlchemy URL string or ``URL``, an ``Engine``, a ``Connection``, or a
        :class:`sqlite3.Connection`. Connections passed in are used as they are and left open.
    query, table
        Exactly one: a SQL query whose rows are the events, or the name of the events table (or
        view; ``schema.table`` works too). The name must be one the database lists.
    cases_table
        Optionally a table with one row per case (``case_id`` and case-level columns such as
        ``outcome``, ``created``, ``amount``), mapped with the same mapping.
    options
        The options of :func:`salesproc.load_history` as one :class:`~salesproc.load.LoadOptions`.
        Its ``mapping`` (canonical name -> column, or a preset name, as for files) may name columns
        of the case table for case-level fields; the reading options for files (``encoding``,
        ``delimiter``, ``decimal``, ``sheet``, ``lifecycle``) are not used. Default:
        ``LoadOptions()`` (canonical column names, or a preset's recognised by its columns).

    Returns
    -------
    History
        Row numbers in messages count the rows of each result from 1.

    Examples
    --------
    >>> import sqlite3
    >>> from salesproc.load import LoadOptions
    >>> from salesproc.load._sql import read_sql_history
    >>> con = sqlite3.connect(":memory:")
    >>> _ = con.execute("CREATE TABLE activity (deal TEXT, step TEXT, at TEXT)")
    >>> _ = con.executemany("INSERT INTO activity VALUES (?, ?, ?)", [
    ...     ("D1", "Qualify", "2024-01-02"), ("D1", "Proposal", "2024-01-09"), ("D2", "Qualify", "2024-01-04")])
    >>> mapping = {"case_id": "deal", "name": "step", "timestamp": "at"}
    >>> h = read_sql_history(con, table="activity", options=LoadOptions(mapping=mapping))
    >>> h.summary().cases, h.summary().events
    (2, 3)
    >>> read_sql_history(con, table="activities")
    Traceback (most recent call last):
    ...
    salesproc.errors.InputError: sqlite3 connection (in memory): no table 'activities'. Tables present: 'activity'. Fix: load_history(..., table='activity'), or give query='SELECT ...' instead.
    """
    opts = _check_sql_parameters(query, table, options)
    rows = _fetch(source, query=query, table=table, cases_table=cases_table)
    columns = [str(c) for c in rows.events.columns]
    if rows.cases is not None:
        columns += [str(c) for c in rows.cases.columns if str(c) not in columns]
    cols, preset = resolve_mapping(opts.mapping, columns)
    if preset is not None and preset.shape != "events":
        if rows.cases is not None:
            raise ParameterError(
                f"The 'cases_table' parameter of load_history works with event rows; the preset "
                f"{preset.name!r} reads {preset.shape} rows. Got {cases_table!r} instead."
            )
        return from_table(rows.events, rows.label, options=opts.replace(decimal="."))
    return _build_events(rows, cols, preset_options(preset, opts)[0])


def _check_sql_parameters(query: str | None, table: str | None, options: LoadOptions | None) -> LoadOptions:
    """Either a query (a non-empty string) or a table; the options (defaults when None)."""
    if (query is None) == (table is None):
        if query is None:
            raise ParameterError(
                "The 'query' parameter of load_history must be a SQL query when the source is a "
                "database (or give 'table' instead). Got None instead."
            )
        raise ParameterError(
            "The 'query' and 'table' parameters of load_history are exclusive: give one of them. "
            "Got both instead."
        )
    if query is not None and (not isinstance(query, str) or not query.strip()):
        raise ParameterError(
            f"The 'query' parameter of load_history must be a SQL query (a non-empty str). Got {query!r} instead."
        )
    if options is None:
        return LoadOptions()
    if not isinstance(options, LoadOptions):
        raise ParameterError(
            f"The 'options' parameter of read_sql_history must be a LoadOptions. Got {type(options).__name__} instead."
        )
    return options


@dataclass(frozen=True)
class _Fetched:
    """The rows read from the database: events, cases (when a case table was named), and a label
    naming the database and the tables for messages."""

    events: pd.DataFrame
    cases: pd.DataFrame | None
    label: str


# what a query may start with, and the words that make a statement write (outside text and names)
_READING_STARTS = frozenset({"SELECT", "WITH", "VALUES", "TABLE"})
_WRITING_WORDS = re.compile(
    r"\b(INSERT|UPDATE|DELETE|MERGE|UPSERT|REPLACE\s+INTO|DROP|CREATE|ALTER|TRUNCATE|GRANT|REVOKE|ATTACH|"
    r"DETACH|PRAGMA|VACUUM|REINDEX|COPY|CALL|EXEC|EXECUTE|INTO|LOCK|COMMIT|ROLLBACK|SAVEPOINT)\b",
    re.IGNORECASE,
)
# comments, text literals and quoted names, whose words are not SQL keywords
_NOT_KEYWORDS = re.compile(r"--[^\n]*|/\*.*?(?:\*/|$)|'(?:[^']|'')*'?|\"(?:[^\"]|\"\")*\"?|`[^`]*`?|\[[^\]]*\]?", re.DOTALL)


def check_reads_only(query: str, label: str) -> None:
    """Refuse, before it runs, a query that is not one statement that only reads (``SELECT``, or
    ``WITH ... SELECT``): salesproc never changes a database.

    Examples
    --------
    >>> check_reads_only("SELECT deal, 'drop' AS note FROM stages -- no DELETE here", "crm.db")
    >>> check_reads_only("DELETE FROM stages", "crm.db")
    Traceback (most recent call last):
    ...
    salesproc.errors.ParameterError: The 'query' parameter of load_history must be one SELECT statement (salesproc only reads from crm.db). Got 'DELETE FROM stages' instead, which starts with DELETE. Fix: write a query that selects the events, e.g. query='SELECT deal_id, stage, changed_at FROM stage_history'; make changes to the database in your SQL client. Nothing was run.
    """
    code = _NOT_KEYWORDS.sub(" ", query)
    words = code.replace("(", " ").split()
    first = words[0].upper() if words else ""
    statements = [part for part in code.split(";") if part.strip()]
    writes = _WRITING_WORDS.search(code)
    if first not in _READING_STARTS:
        why = f"starts with {first or 'no SQL keyword'}"
    elif len(statements) > 1:
        why = f"holds {len(statements)} statements"
    elif writes:
        why = f"holds {' '.join(writes.group(1).upper().split())}, which writes"
    else:
        return
    shown = query.strip() if len(query.strip()) <= 80 else query.strip()[:77] + "..."
    raise ParameterError(
        f"The 'query' parameter of load_history must be one SELECT statement (salesproc only reads from {label}). "
        f"Got {shown!r} instead, which {why}. Fix: write a query that selects the events, e.g. "
        "query='SELECT deal_id, stage, changed_at FROM stage_history'; make changes to the database in your "
        "SQL client. Nothing was run."
    )


def _fetch(source: Any, *, query: str | None, table: str | None, cases_table: str | None) -> _Fetched:
    """Read the events (by query or table) and the case table; no event rows is an error."""
    with _connect(source) as db:
        if query is not None:
            check_reads_only(query, db.label)
            events = db.query(query)
            label = f"{db.label} (query"
        else:
            name = db.check_table(table, "table")
            events = db.select_all(name)
            label = f"{db.label} (table {name!r}"
        cases = None
        if cases_table is not None:
            cname = db.check_table(cases_table, "cases_table")
            cases = db.select_all(cname)
            label += f", cases table {cname!r}"
        label += ")"
    if len(events) == 0:
        what = "the query returned" if query is not None else "the table holds"
        raise EmptyInputError(f"{label}: {what} no rows. Fix: check the query or table.")
    # a column of the database's own named '_row' is not taken for the loader's row numbers
    return _Fetched(keep_own_row_column(events), None if cases is None else keep_own_row_column(cases), label)


def _build_events(rows: _Fetched, cols: dict[str, str], options: LoadOptions) -> History:
    """A history from event rows and case rows, each numbered from 1 for messages."""
    to_events, to_cases = _split_mapping(cols, rows.events, rows.cases, rows.label)
    ev = apply_mapping(rows.events, to_events, source=rows.label)
    ev["_row"] = np.arange(1, len(ev) + 1, dtype=np.int64)
    cs = None
    if rows.cases is not None:
        cs = apply_mapping(rows.cases, to_cases, source=rows.label, required=("case_id",))
        cs["_row"] = np.arange(1, len(cs) + 1, dtype=np.int64)
    return build_history(ev, cs, source=rows.label, decimal=".", column_names=cols, **options.build_kwargs())
