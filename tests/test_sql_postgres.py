"""PostgreSQL for real: a throwaway server (Debian's PostgreSQL, started for this module) read
through a SQLAlchemy URL with the psycopg driver.

What a database adds over a file: ``timestamptz`` values come back as aware datetimes (whatever
offset they were written with, they are instants), ``timestamp`` values come back naive (read in
``tz=``), numbers come back as ``Decimal``; tables live in schemas. SQLite has none of that, so these
pin it on the database teams use. ``.ci/run`` installs PostgreSQL when it is missing; without it the
module fails with that fix (never skips).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

import salesproc
from salesproc.errors import InputError


def _server_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_postgres(cmd: list[str]) -> list[str]:
    # the server refuses to run as root: run its tools as the postgres user the package creates
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    bindir = _server_bin()
    if bindir is None:  # a prerequisite, like the shared data: missing is a failure, never a skip
        pytest.fail(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb). Fix: run .ci/run, which "
            "installs it, or apt-get install postgresql."
        )
    data = Path(tempfile.mkdtemp(prefix="salesproc-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(
        _as_postgres([str(bindir / "initdb"), "-D", str(data / "db"), "-A", "trust", "-U", "postgres", "--no-sync"]),
        check=True, capture_output=True,
    )
    opts = f"-F -p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_postgres([str(bindir / "pg_ctl"), "-D", str(data / "db"), "-o", opts, "-l", str(data / "log"), "-w", "start"]),
        check=True, capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="module")
def crm(pg_url: str) -> Iterator[sa.Engine]:
    eng = sa.create_engine(pg_url)
    with eng.begin() as con:
        con.exec_driver_sql("CREATE SCHEMA sales")
        con.exec_driver_sql(
            "CREATE TABLE sales.deal_events (deal text, step text, happened_at timestamptz, rep text, logged timestamp)"
        )
        con.exec_driver_sql(
            "INSERT INTO sales.deal_events VALUES "
            # one instant written with three offsets: 08:00 UTC each time
            "('D1', 'Qualify',  '2024-01-02 09:00:00+01:00', 'ann', '2024-01-02 09:00:00'),"
            "('D1', 'Proposal', '2024-01-09 03:00:00-05:00', 'ann', '2024-01-09 09:00:00'),"
            "('D1', 'Negotiate','2024-01-20 08:00:00Z',      'ann', '2024-01-20 09:00:00'),"
            "('D2', 'Qualify',  '2024-01-04 11:00:00+00:00', 'bob', '2024-07-04 11:00:00')"
        )
        con.exec_driver_sql(
            "CREATE TABLE sales.deals (deal text PRIMARY KEY, result text, value numeric(12, 2), opened date)"
        )
        con.exec_driver_sql(
            "INSERT INTO sales.deals VALUES ('D1', 'won', 12000.50, '2024-01-01'), ('D2', NULL, 8000, '2024-01-03')"
        )
    yield eng
    eng.dispose()


MAPPING = {"case_id": "deal", "name": "step", "timestamp": "happened_at", "owner": "rep",
           "outcome": "result", "amount": "value", "created": "opened"}


def test_timestamptz_values_are_instants_whatever_offset_they_were_written_with(crm: sa.Engine) -> None:
    h = salesproc.load_history(crm, table="sales.deal_events", cases_table="sales.deals", mapping=MAPPING)
    e = h.events[h.events["case_id"] == "D1"]
    assert e["timestamp"].tolist() == [
        pd.Timestamp("2024-01-02 08:00", tz="UTC"),
        pd.Timestamp("2024-01-09 08:00", tz="UTC"),
        pd.Timestamp("2024-01-20 08:00", tz="UTC"),
    ]
    c = h.cases.set_index("case_id")
    assert c["outcome"].tolist() == ["won", "open"]
    assert c["amount"].tolist() == [12000.5, 8000.0]  # numeric (Decimal) read as numbers
    assert c.loc["D1", "closed"] == pd.Timestamp("2024-01-20 08:00", tz="UTC")
    assert c["created"].tolist() == [pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-01-03", tz="UTC")]
    assert (h.report.rows_read, h.report.rows_loaded) == (6, 6)


def test_naive_timestamps_are_read_in_the_time_zone_given(crm: sa.Engine) -> None:
    # "logged" is a timestamp without time zone: wall-clock times in Amsterdam (CET in winter,
    # CEST in summer), stored as UTC instants
    h = salesproc.load_history(
        crm, query="SELECT deal, step, logged FROM sales.deal_events",
        mapping={"case_id": "deal", "name": "step", "timestamp": "logged"}, tz="Europe/Amsterdam",
    )
    t = dict(zip(zip(h.events["case_id"].astype(str), h.events["name"].astype(str)), h.events["timestamp"]))
    assert t[("D1", "Qualify")] == pd.Timestamp("2024-01-02 08:00", tz="UTC")
    assert t[("D2", "Qualify")] == pd.Timestamp("2024-07-04 09:00", tz="UTC")


def test_the_same_history_as_from_a_file(crm: sa.Engine, tmp_path: Path) -> None:
    mapping = {"case_id": "deal", "name": "step", "timestamp": "happened_at", "owner": "rep"}
    query = "SELECT deal, step, happened_at, rep FROM sales.deal_events"
    from_db = salesproc.load_history(crm, query=query, mapping=mapping)
    csv = tmp_path / "events.csv"
    pd.read_sql_query(query, crm).to_csv(csv, index=False)  # times written with their +00:00 offset
    from_csv = salesproc.load_history(csv, mapping=mapping)
    pd.testing.assert_frame_equal(from_db.cases, from_csv.cases)
    pd.testing.assert_frame_equal(from_db.events, from_csv.events)


def test_an_unknown_table_names_the_schemas_tables(crm: sa.Engine) -> None:
    with pytest.raises(InputError, match=r"no table 'sales\.deal_evnts'\. Tables present: 'sales\.deal_events', 'sales\.deals'\. Fix: load_history\(\.\.\., table='sales\.deal_events'\)"):
        salesproc.load_history(crm, table="sales.deal_evnts", mapping=MAPPING)
