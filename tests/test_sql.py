"""Databases: a real SQLite file read by table, by query, through a URL, an Engine, a SQLAlchemy
Connection and a sqlite3 connection, all giving the same history; table names are checked and
quoted; messages never show a password."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

import salesproc
from salesproc.errors import (
    EmptyInputError,
    InputError,
    InvalidValueError,
    MissingColumnError,
    ParameterError,
    SalesprocError,
)
from salesproc.load import LoadOptions
from salesproc.load._sql import read_sql_history, safe_url

MAPPING = {
    "case_id": "deal",
    "name": "step",
    "timestamp": "happened_at",
    "owner": "rep",
    "outcome": "result",
    "amount": "value",
    "created": "opened",
    "segment": "region",
}
EVENTS = [
    ("D1", "Qualify", "2024-01-02 09:00:00", "ann"),
    ("D1", "Proposal", "2024-01-09 10:30:00", "ann"),
    ("D1", "Negotiate", "2024-01-20 16:00:00", "ann"),
    ("D2", "Qualify", "2024-01-04 11:00:00", "bob"),
    ("D2", "Proposal", "2024-01-15 09:00:00", "bob"),
    ("D3", "Qualify", "2024-02-01 08:00:00", "cy"),
]
CASES = [
    ("D1", "won", 12000.0, "2024-01-01", "EMEA"),
    ("D2", "lost", 8000.0, "2024-01-03", "US"),
    ("D3", None, 5000.0, "2024-01-30", "EMEA"),
]


def parts(*pieces: str) -> str:
    """A regex that finds every piece, in order, anywhere in the message."""
    return "(?s)" + ".*".join(re.escape(p) for p in pieces)


@pytest.fixture
def crm(tmp_path: Path) -> Path:
    """A SQLite file with an events table and a cases table."""
    path = tmp_path / "crm.db"
    con = sqlite3.connect(path)
    with con:
        con.execute("CREATE TABLE deal_events (deal TEXT, step TEXT, happened_at TEXT, rep TEXT)")
        con.executemany("INSERT INTO deal_events VALUES (?, ?, ?, ?)", EVENTS)
        con.execute("CREATE TABLE deals (deal TEXT PRIMARY KEY, result TEXT, value REAL, opened TEXT, region TEXT)")
        con.executemany("INSERT INTO deals VALUES (?, ?, ?, ?, ?)", CASES)
    con.close()
    return path


@pytest.fixture
def engine(crm: Path) -> Iterator[sa.Engine]:
    eng = sa.create_engine(f"sqlite:///{crm}")
    yield eng
    eng.dispose()


def check_expected(h: salesproc.History, rows: int = len(EVENTS) + len(CASES)) -> None:
    """The history the fixture database holds, read from ``rows`` rows (in any case order)."""
    c = h.cases.set_index("case_id").sort_index()
    assert c.index.tolist() == ["D1", "D2", "D3"]
    assert c["outcome"].tolist() == ["won", "lost", "open"]
    assert c["amount"].tolist() == [12000.0, 8000.0, 5000.0]
    assert c["segment"].tolist() == ["EMEA", "US", "EMEA"]
    assert c["created"].tolist() == [pd.Timestamp(d, tz="UTC") for d in ("2024-01-01", "2024-01-03", "2024-01-30")]
    # a won or lost deal closes at its last event; an open one has no close date
    assert c.loc["D1", "closed"] == pd.Timestamp("2024-01-20 16:00", tz="UTC")
    assert c["closed"].isna().tolist() == [False, False, True]
    assert c["owner"].tolist() == ["ann", "bob", "cy"]
    e = h.events
    got = sorted(zip(e["case_id"].astype(str), e["timestamp"], e["name"].astype(str), strict=True))
    assert got == sorted((d, pd.Timestamp(t, tz="UTC"), n) for d, n, t, _ in EVENTS)
    assert (h.report.rows_read, h.report.rows_loaded) == (rows, rows)


# --- the four kinds of source, by table and by query ------------------------------------------


def test_by_table_with_a_cases_table_through_a_url(crm: Path) -> None:
    h = salesproc.load_history(f"sqlite:///{crm}", table="deal_events", cases_table="deals", mapping=MAPPING)
    check_expected(h)
    assert h.report.source == f"sqlite:///{crm} (table 'deal_events', cases table 'deals')"


def test_by_query_through_an_engine_that_stays_usable(engine: sa.Engine) -> None:
    query = (
        "SELECT e.deal, e.step, e.happened_at, e.rep, d.result, d.value, d.opened, d.region "
        "FROM deal_events e JOIN deals d ON d.deal = e.deal ORDER BY e.happened_at DESC"
    )
    h = salesproc.load_history(engine, query=query, mapping=MAPPING)
    check_expected(h, rows=len(EVENTS))  # the joined rows carry the case columns: no case-table rows
    assert h.report.source.endswith("(query)")
    with engine.connect() as conn:  # not disposed by the loader
        assert conn.execute(sa.text("SELECT count(*) FROM deals")).scalar_one() == 3


def test_through_a_sqlalchemy_connection_left_open(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        h = read_sql_history(conn, table="deal_events", cases_table="deals", options=LoadOptions(mapping=MAPPING))
        check_expected(h)
        assert not conn.closed
        assert conn.execute(sa.text("SELECT count(*) FROM deal_events")).scalar_one() == 6


def test_through_a_sqlite3_connection_left_open(crm: Path) -> None:
    con = sqlite3.connect(crm)
    try:
        h = salesproc.load_history(con, table="deal_events", cases_table="deals", mapping=MAPPING)
        check_expected(h)
        assert h.report.source == f"sqlite:///{crm} (table 'deal_events', cases table 'deals')"
        assert con.execute("SELECT count(*) FROM deals").fetchone() == (3,)
    finally:
        con.close()


def test_all_sources_give_the_same_history(crm: Path, engine: sa.Engine) -> None:
    con = sqlite3.connect(crm)
    try:
        with engine.connect() as conn:
            loads = [
                salesproc.load_history(src, table="deal_events", cases_table="deals", mapping=MAPPING)
                for src in (f"sqlite:///{crm}", engine, conn, con)
            ]
    finally:
        con.close()
    for other in loads[1:]:
        pd.testing.assert_frame_equal(other.cases, loads[0].cases)
        pd.testing.assert_frame_equal(other.events, loads[0].events)


def test_canonical_column_names_need_no_mapping() -> None:
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE events (case_id TEXT, name TEXT, timestamp TEXT, outcome TEXT)")
    con.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", [
        ("A", "Qualify", "2024-01-02", "won"), ("A", "Proposal", "2024-01-05", "won"),
        ("B", "Qualify", "2024-01-03", "open"),
    ])
    h = salesproc.load_history(con, table="events")
    assert h.cases[["case_id", "outcome"]].values.tolist() == [["A", "won"], ["B", "open"]]
    assert h.report.source == "sqlite3 connection (in memory) (table 'events')"


def test_table_names_that_need_quoting(tmp_path: Path) -> None:
    path = tmp_path / "odd.db"
    con = sqlite3.connect(path)
    with con:
        con.execute('CREATE TABLE "Deal Events" (case_id TEXT, name TEXT, timestamp TEXT)')
        con.execute('CREATE TABLE "order" (case_id TEXT, outcome TEXT)')
        con.execute("INSERT INTO \"Deal Events\" VALUES ('A', 'Qualify', '2024-01-02')")
        con.execute("INSERT INTO \"order\" VALUES ('A', 'lost')")
    for src in (f"sqlite:///{path}", con):
        h = salesproc.load_history(src, table="Deal Events", cases_table="order")
        assert h.cases[["case_id", "outcome"]].values.tolist() == [["A", "lost"]]
    con.close()


@pytest.mark.shared
def test_the_receipt_log_from_a_database_matches_its_csv(shared_data: Path, tmp_path: Path) -> None:
    mapping = {
        "case_id": "case:concept:name", "name": "concept:name", "timestamp": "time:timestamp",
        "owner": "org:resource", "target_date": "case:enddate_planned", "closed": "case:enddate",
    }
    csv_path = shared_data / "receipt" / "receipt.csv"
    con = sqlite3.connect(tmp_path / "receipt.db")
    pd.read_csv(csv_path, dtype=str).to_sql("receipt", con, index=False)
    h = salesproc.load_history(con, table="receipt", kind="project", mapping=mapping)
    con.close()
    s = h.summary()
    assert (s.cases, s.events) == (1434, 8577)
    assert s.outcomes == {"project": {"on_time": 940, "late": 389, "failed": 0, "open": 105}}
    csv = salesproc.load_history(csv_path, kind="project", mapping=mapping)
    pd.testing.assert_series_equal(
        h.cases.set_index("case_id")["outcome"].sort_index(), csv.cases.set_index("case_id")["outcome"].sort_index()
    )


# --- parameters and table names -----------------------------------------------------------------


def test_exactly_one_of_query_and_table(crm: Path) -> None:
    url = f"sqlite:///{crm}"
    with pytest.raises(ParameterError, match=parts(
        "The 'query' parameter of load_history must be a SQL query", "Got None instead.",
    )):
        salesproc.load_history(url, mapping=MAPPING)
    with pytest.raises(ParameterError, match=parts(
        "The 'query' and 'table' parameters of load_history are exclusive", "Got both instead.",
    )):
        salesproc.load_history(url, table="deal_events", query="SELECT * FROM deal_events", mapping=MAPPING)
    with pytest.raises(ParameterError, match=r"The 'query' parameter of load_history must be a SQL query \(a non-empty str\)\. Got '  ' instead"):
        salesproc.load_history(url, query="  ", mapping=MAPPING)


def test_an_unknown_table_lists_the_tables_and_suggests_the_closest(crm: Path, engine: sa.Engine) -> None:
    for src in (f"sqlite:///{crm}", engine):
        with pytest.raises(InputError, match=parts(
            f"sqlite:///{crm}: no table 'deal_event'.", "Tables present: 'deal_events', 'deals'.",
            "Fix: load_history(..., table='deal_events')",
        )):
            salesproc.load_history(src, table="deal_event", mapping=MAPPING)
    with pytest.raises(InputError, match=parts("no table 'dealz'", "cases_table='deals'")):
        salesproc.load_history(engine, table="deal_events", cases_table="dealz", mapping=MAPPING)


def test_a_table_name_cannot_inject_sql(crm: Path) -> None:
    con = sqlite3.connect(crm)
    try:
        with pytest.raises(InputError, match=parts("no table 'deal_events; DROP TABLE deals'", "Tables present")):
            salesproc.load_history(con, table="deal_events; DROP TABLE deals", mapping=MAPPING)
        assert con.execute("SELECT count(*) FROM deals").fetchone() == (3,)
    finally:
        con.close()


def test_a_failing_query_gives_the_database_reason_and_the_tables(crm: Path, engine: sa.Engine) -> None:
    con = sqlite3.connect(crm)
    try:
        for src in (engine, con):
            with pytest.raises(InputError, match=parts(
                "the query failed: no such table: deal_event.", "the tables present are 'deal_events', 'deals'",
            )):
                salesproc.load_history(src, query="SELECT * FROM deal_event", mapping=MAPPING)
    finally:
        con.close()


def test_an_empty_result_is_an_error(engine: sa.Engine) -> None:
    with pytest.raises(EmptyInputError, match=r"\(query\): the query returned no rows"):
        salesproc.load_history(engine, query="SELECT * FROM deal_events WHERE 0", mapping=MAPPING)


def test_a_missing_sqlite_file_is_reported_not_created(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=parts("no such database file", "typo.db")):
        salesproc.load_history(f"sqlite:///{tmp_path / 'typo.db'}", table="deals")
    assert not (tmp_path / "typo.db").exists()


# --- mapping -------------------------------------------------------------------------------------


def test_mapping_names_columns_of_either_table(crm: Path) -> None:
    # case-level columns only in the case table; a mapped column in neither is reported with both
    with pytest.raises(MissingColumnError, match=parts(
        "no column 'territory' (needed for 'segment')",
        "Columns present: 'deal', 'step', 'happened_at', 'rep', 'result', 'value', 'opened', 'region'",
    )):
        salesproc.load_history(
            f"sqlite:///{crm}", table="deal_events", cases_table="deals", mapping={**MAPPING, "segment": "territory"}
        )
    h = salesproc.load_history(
        f"sqlite:///{crm}", table="deal_events", mapping={k: MAPPING[k] for k in ("case_id", "name", "timestamp")}
    )
    # without the case table the events' own columns are all there is
    assert h.cases["outcome"].tolist() == ["open", "open", "open"]
    assert "rep" in h.events.columns


def test_bad_values_name_the_result_row_and_the_source_column(crm: Path) -> None:
    con = sqlite3.connect(crm)
    with con:
        con.execute("UPDATE deal_events SET happened_at = 'next Tuesday' WHERE deal = 'D2' AND step = 'Proposal'")
    try:
        with pytest.raises(InvalidValueError, match=parts(
            "(table 'deal_events', cases table 'deals'), row 5, column 'happened_at': found 'next Tuesday'",
        )):
            salesproc.load_history(con, table="deal_events", cases_table="deals", mapping=MAPPING)
        h = salesproc.load_history(con, table="deal_events", cases_table="deals", mapping=MAPPING, errors="skip")
    finally:
        con.close()
    assert dict(h.report.skipped) == {"unparseable or missing timestamp": 1}
    assert (h.report.rows_read, h.report.rows_loaded) == (9, 8)


# --- passwords stay out of messages ----------------------------------------------------------------


def test_safe_url_hides_the_password() -> None:
    assert safe_url("postgresql://sales:s3cret@db.example.com:5432/crm") == "postgresql://sales:***@db.example.com:5432/crm"
    assert safe_url(sa.engine.make_url("mysql+pymysql://u:p%40ss@h/db")) == "mysql+pymysql://u:***@h/db"
    assert safe_url("sqlite:///deals.db") == "sqlite:///deals.db"
    # not a URL SQLAlchemy reads: still masked
    assert safe_url("weird://user:pw@host:port:x/db") == "weird://user:***@host:port:x/db"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://sales:s3cret@127.0.0.1:1/crm",  # driver missing, or nothing listening on port 1
        "nosuchdialect://sales:s3cret@127.0.0.1:1/crm",
        "sqlite://sales:s3cret@/crm.db",  # SQLite takes no credentials
    ],
)
def test_connection_errors_never_show_the_password(url: str) -> None:
    with pytest.raises(SalesprocError) as info:
        salesproc.load_history(url, table="deals")
    message = str(info.value)
    assert "s3cret" not in message
    assert "sales:***@" in message
