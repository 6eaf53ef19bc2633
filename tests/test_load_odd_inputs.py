"""Odd input found by an adversarial pass (issue 17): values and files a loader must turn into a
clear SalesprocError (file, row, column, the value, what was expected, the fix), or with
``errors="skip"`` into counted skips, never into another library's traceback."""

from __future__ import annotations

import codecs
import datetime as dt
import io
import re
import sqlite3
import sys
from pathlib import Path

import pandas as pd
import pytest

import salesproc
from salesproc.errors import (
    EncodingError,
    InputError,
    InvalidValueError,
    MalformedFileError,
    ParameterError,
    SalesprocError,
)
from salesproc.load import LoadOptions, _xes, _xes_fast
from salesproc.load._guards import OWN_ROW


def parts(*pieces: str) -> str:
    """A regex that finds every piece, in order, anywhere in the message."""
    return "(?s)" + ".*".join(re.escape(p) for p in pieces)


def write(folder: Path, name: str, content: str | bytes) -> Path:
    p = folder / name
    p.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return p


def balanced(h: salesproc.History) -> bool:
    r = h.report
    return r.rows_read == r.rows_loaded + sum(r.skipped.values())


# --- dates outside 1677-09-21 .. 2262-04-11 ----------------------------------------------------

OUT_OF_RANGE = "case_id,name,timestamp\nA,Qualify,2024-01-02\nA,Proposal,9999-12-31\nB,Qualify,0001-01-01\n"


@pytest.mark.parametrize("as_path", [True, False])
def test_an_out_of_range_date_in_a_csv_names_row_column_value_range_and_fix(tmp_path: Path, as_path: bool) -> None:
    source = write(tmp_path, "deals.csv", OUT_OF_RANGE) if as_path else io.StringIO(OUT_OF_RANGE)
    with pytest.raises(InvalidValueError, match=parts(
        "row 3", "column 'timestamp'", "found '9999-12-31'", "between 1677-09-21 and 2262-04-11",
        "(1 more rows like it)", "Fix:", "leave the cell empty",
    )):
        salesproc.load_history(source)


def test_out_of_range_dates_are_counted_skips(tmp_path: Path) -> None:
    h = salesproc.load_history(write(tmp_path, "deals.csv", OUT_OF_RANGE), errors="skip")
    assert h.events["timestamp"].tolist() == [pd.Timestamp("2024-01-02", tz="UTC")]
    assert h.report.skipped == {"unparseable or missing timestamp: outside 1677-09-21..2262-04-11": 2}
    assert balanced(h)


def test_an_out_of_range_case_date_is_reported_too() -> None:
    csv = "case_id,name,timestamp,closed\nA,Qualify,2024-01-02,9999-12-31\n"
    with pytest.raises(InvalidValueError, match=parts("row 2", "column 'closed'", "'9999-12-31'", "1677-09-21")):
        salesproc.load_history(io.StringIO(csv))


def test_an_out_of_range_date_in_an_excel_cell(tmp_path: Path) -> None:
    p = tmp_path / "deals.xlsx"
    pd.DataFrame({
        "case_id": ["A", "A"], "name": ["Qualify", "Proposal"],
        "timestamp": [dt.datetime(2024, 1, 2), dt.datetime(9999, 12, 31)],
    }).to_excel(p, index=False)
    with pytest.raises(InvalidValueError, match=parts("deals.xlsx, row 3", "'timestamp'", "9999-12-31", "2262-04-11")):
        salesproc.load_history(p)
    h = salesproc.load_history(p, errors="skip")
    assert len(h.events) == 1 and balanced(h)


def test_an_out_of_range_date_in_a_dataframe_of_datetimes() -> None:
    df = pd.DataFrame({"case_id": ["A", "A"], "name": ["Q", "P"],
                       "timestamp": pd.Series([dt.datetime(2024, 1, 2), dt.datetime(1, 1, 1)], dtype=object)})
    with pytest.raises(InvalidValueError, match=parts("<DataFrame>, row 3", "0001-01-01", "1677-09-21")):
        salesproc.load_history(df)


XES = """<?xml version="1.0" encoding="UTF-8"?>
<log xes.version="1.0">
<trace><string key="concept:name" value="A"/>
<event><string key="concept:name" value="Qualify"/><date key="time:timestamp" value="2024-01-02T00:00:00+00:00"/></event>
<event><string key="concept:name" value="Proposal"/><date key="time:timestamp" value="9999-12-31T00:00:00+00:00"/></event>
</trace>
</log>
"""


@pytest.mark.parametrize("fast", [True, False], ids=["r4pm", "expat"])
def test_an_out_of_range_date_in_xes_on_both_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: bool) -> None:
    p = write(tmp_path, "log.xes", XES)
    if fast:
        pytest.importorskip("r4pm")
        monkeypatch.setattr(_xes, "_FAST_FROM_BYTES", 0)  # small files may take the fast path too
        assert _xes_fast.read_fast(p, naive_ok=True) is not None  # r4pm reads the file
    else:
        monkeypatch.setitem(sys.modules, "r4pm", None)
        monkeypatch.setitem(sys.modules, "r4pm.df", None)
    with pytest.raises(InvalidValueError, match=parts(
        "log.xes, line 5", "'time:timestamp'", "found '9999-12-31T00:00:00+00:00'", "1677-09-21 and 2262-04-11",
    )):
        salesproc.load_history(p)
    h = salesproc.load_history(p, errors="skip")
    assert h.events["name"].tolist() == ["Qualify"] and balanced(h)
    assert h.report.skipped == {"unparseable or missing timestamp: outside 1677-09-21..2262-04-11": 1}


def test_an_out_of_range_date_in_an_unmapped_xes_attribute_is_kept_as_text(tmp_path: Path) -> None:
    p = write(tmp_path, "log.xes", XES.replace(
        '<string key="concept:name" value="A"/>', '<string key="concept:name" value="A"/><date key="due" value="9999-12-31T00:00:00Z"/>'
    ).replace("9999-12-31T00:00:00+00:00", "2024-02-01T00:00:00+00:00"))
    h = salesproc.load_history(p)
    assert h.cases["due"].tolist() == ["9999-12-31T00:00:00Z"]
    assert any("'due' is declared date" in n for n in h.report.notes)


# --- local times a daylight-saving change skips or repeats --------------------------------------


def test_a_local_time_that_happens_twice_says_so_and_gives_both_offsets() -> None:
    csv = "case_id,name,timestamp\nA,Qualify,2024-10-01 09:00\nA,Proposal,2024-10-27 02:30\n"
    with pytest.raises(InvalidValueError, match=parts(
        "row 3", "column 'timestamp'", "found '2024-10-27 02:30:00'", "happens once in Europe/Berlin",
        "go back", "'2024-10-27T02:30:00+02:00'", "'2024-10-27T02:30:00+01:00'", "tz='UTC'",
    )):
        salesproc.load_history(io.StringIO(csv), tz="Europe/Berlin")


def test_a_local_time_that_does_not_exist_says_so() -> None:
    csv = "case_id,name,timestamp\nA,Qualify,31.03.2024 02:30\n"
    with pytest.raises(InvalidValueError, match=parts(
        "row 2", "found '31.03.2024 02:30'", "exists in Europe/Berlin", "go forward",
        "2024-03-31T03:00:00+02:00", "UTC offset", "tz='UTC'",
    )):
        salesproc.load_history(io.StringIO(csv), tz="Europe/Berlin", dayfirst=True)


def test_daylight_saving_gaps_and_overlaps_are_counted_by_kind() -> None:
    csv = "case_id,name,timestamp\nA,Q,2024-10-27 02:30\nA,P,2024-03-31 02:30\nA,R,2024-10-27 02:30+01:00\n"
    h = salesproc.load_history(io.StringIO(csv), tz="Europe/Berlin", errors="skip")
    assert h.events["timestamp"].tolist() == [pd.Timestamp("2024-10-27 01:30", tz="UTC")]  # its offset decides
    assert h.report.skipped == {
        "unparseable or missing timestamp: local time repeated by a daylight-saving change": 1,
        "unparseable or missing timestamp: local time skipped by a daylight-saving change": 1,
    }


# --- dates written as numbers ------------------------------------------------------------------


@pytest.mark.parametrize(("value", "looks_like", "fix"), [
    ("45292", "an Excel serial day number (2024-01-01 00:00:00)", "date_format='excel'"),
    ("1704067200", "Unix time in seconds (2024-01-01 00:00:00 UTC)", "date_format='epoch_s'"),
    ("1704067200000", "Unix time in milliseconds (2024-01-01 00:00:00 UTC)", "date_format='epoch_ms'"),
])
def test_numbers_in_a_date_column_say_what_they_look_like(value: str, looks_like: str, fix: str) -> None:
    csv = f"case_id,name,timestamp\nA,Qualify,{value}\n"
    with pytest.raises(InvalidValueError, match=parts("row 2", "'timestamp'", f"found {value}", looks_like, fix)):
        salesproc.load_history(io.StringIO(csv))
    df = pd.DataFrame({"case_id": ["A"], "name": ["Q"], "timestamp": [value]})  # as text, too
    with pytest.raises(InvalidValueError, match=parts(f"found '{value}'", looks_like, fix)):
        salesproc.load_history(df)


@pytest.mark.parametrize(("date_format", "values"), [
    ("epoch_s", ["1704067200", "1704110400.5"]),
    ("epoch_ms", ["1704067200000", "1704110400500"]),
    ("excel", ["45292", "45292.5"]),
])
def test_number_date_formats_read_the_numbers(date_format: str, values: list[str]) -> None:
    csv = "case_id,name,timestamp\n" + "".join(f"A,S{i},{v}\n" for i, v in enumerate(values))
    h = salesproc.load_history(io.StringIO(csv), date_format=date_format)
    assert h.events["timestamp"].dt.strftime("%Y-%m-%d %H:%M").tolist() == ["2024-01-01 00:00", "2024-01-01 12:00"]


def test_excel_serial_days_are_local_time_and_epoch_seconds_are_utc() -> None:
    csv = "case_id,name,timestamp,created\nA,Q,45292.5,\n"
    h = salesproc.load_history(io.StringIO(csv), date_format="excel", tz="Europe/Berlin")
    assert h.events["timestamp"].tolist() == [pd.Timestamp("2024-01-01 11:00", tz="UTC")]
    h = salesproc.load_history(io.StringIO("case_id,name,timestamp\nA,Q,1704067200\n"), date_format="epoch_s", tz="Europe/Berlin")
    assert h.events["timestamp"].tolist() == [pd.Timestamp("2024-01-01", tz="UTC")]


def test_options_carry_a_number_date_format() -> None:
    opts = LoadOptions(date_format="epoch_ms")
    h = salesproc.load_history(io.StringIO("case_id,name,timestamp\nA,Q,1704067200000\n"), options=opts)
    assert h.events["timestamp"].tolist() == [pd.Timestamp("2024-01-01", tz="UTC")]


def test_every_odd_date_is_a_salesproc_error_or_a_counted_skip() -> None:
    csv = (
        "case_id,name,timestamp\nA,a,9999-12-31\nA,b,0001-01-01\nA,c,45292\nA,d,1704067200\nA,e,2024-03-31 02:30\n"
        "A,f,2024-01-05\n"
    )
    with pytest.raises(SalesprocError):
        salesproc.load_history(io.StringIO(csv), tz="Europe/Berlin")
    h = salesproc.load_history(io.StringIO(csv), tz="Europe/Berlin", errors="skip")
    assert h.events["name"].tolist() == ["f"] and balanced(h)


# --- a damaged saved history -------------------------------------------------------------------


def saved(tmp_path: Path) -> Path:
    h = salesproc.load_history(io.StringIO("case_id,name,timestamp,outcome\nA,Qualify,2024-01-02,won\nB,Qualify,2024-01-03,open\n"))
    return h.to_parquet(tmp_path / "history")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
@pytest.mark.parametrize("part", ["events.parquet", "cases.parquet"])
def test_a_damaged_parquet_file_of_a_saved_history_names_folder_file_and_fix(
    tmp_path: Path, part: str, damage: str
) -> None:
    folder = saved(tmp_path)
    data = (folder / part).read_bytes()
    (folder / part).write_bytes({"truncated": data[: len(data) // 2], "garbage": b"not parquet at all", "empty": b""}[damage])
    for read in (salesproc.load_history, salesproc.History.read_parquet):
        with pytest.raises(MalformedFileError, match=parts(
            str(folder), "damaged", part, "save the history again", "load it again from its source",
        )):
            read(folder)


@pytest.mark.parametrize("text", ['{"source": "x", "rows_read": ', "[1, 2]", '{"rows_read": "many"}'])
def test_a_broken_report_json_of_a_saved_history_names_the_file(tmp_path: Path, text: str) -> None:
    folder = saved(tmp_path)
    (folder / "report.json").write_text(text)
    with pytest.raises(MalformedFileError, match=parts(str(folder), "report.json", "Fix: save the history again")):
        salesproc.load_history(folder)


def test_a_saved_history_whose_files_are_not_a_history_names_them(tmp_path: Path) -> None:
    folder = saved(tmp_path)
    pd.DataFrame({"x": [1, 2]}).to_parquet(folder / "events.parquet")
    with pytest.raises(SalesprocError, match=parts(str(folder))):
        salesproc.load_history(folder)


# --- SQL that would change the database --------------------------------------------------------


@pytest.fixture
def crm_db(tmp_path: Path) -> Path:
    path = tmp_path / "crm.db"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE stages (case_id TEXT, name TEXT, timestamp TEXT)")
        con.executemany("INSERT INTO stages VALUES (?, ?, ?)", [("A", "Qualify", "2024-01-02"), ("A", "Won", "2024-02-01")])
    con.close()
    return path


def rows_in(path: Path) -> list[tuple[str, ...]]:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT * FROM stages ORDER BY timestamp").fetchall()
    finally:
        con.close()


@pytest.mark.parametrize(("query", "why"), [
    ("DELETE FROM stages", "starts with DELETE"),
    ("drop table stages", "starts with DROP"),
    ("UPDATE stages SET name = 'x'", "starts with UPDATE"),
    ("  -- tidy up\n INSERT INTO stages VALUES ('B', 'Q', '2024-01-01')", "starts with INSERT"),
    ("SELECT * FROM stages; DROP TABLE stages", "holds 2 statements"),
    ("WITH gone AS (DELETE FROM stages RETURNING *) SELECT * FROM gone", "holds DELETE, which writes"),
    ("CREATE TABLE copy AS SELECT * FROM stages", "starts with CREATE"),
])
@pytest.mark.parametrize("how", ["url", "sqlite3"])
def test_a_query_that_writes_is_refused_before_it_runs(crm_db: Path, query: str, why: str, how: str) -> None:
    before = rows_in(crm_db)
    con = sqlite3.connect(crm_db) if how == "sqlite3" else None
    try:
        with pytest.raises(ParameterError, match=parts(
            "'query' parameter of load_history must be one SELECT statement", why, "Fix:", "Nothing was run",
        )):
            salesproc.load_history(con if con is not None else f"sqlite:///{crm_db}", query=query)
    finally:
        if con is not None:
            con.close()
    assert rows_in(crm_db) == before
    con = sqlite3.connect(crm_db)
    try:
        assert [t for (t,) in con.execute("SELECT name FROM sqlite_master")] == ["stages"]
    finally:
        con.close()


def test_a_select_with_writing_words_in_its_text_and_names_still_runs(crm_db: Path) -> None:
    query = "SELECT case_id, name, timestamp, 'delete; drop' AS \"update\" FROM stages -- not: DELETE\n;"
    h = salesproc.load_history(f"sqlite:///{crm_db}", query=query, outcome_events={})  # ("Won" stays an event)
    assert h.events["update"].tolist() == ["delete; drop", "delete; drop"]


# --- a column named '_row' ---------------------------------------------------------------------

ROW_COLUMN = "case_id,name,timestamp,_row\nA,Qualify,2024-01-02,x\nA,Proposal,2024-01-09,y\nB,Qualify,,z\n"


@pytest.mark.parametrize("blank_line", [False, True])
def test_a_column_named_row_is_not_taken_for_row_numbers(tmp_path: Path, blank_line: bool) -> None:
    text = ROW_COLUMN.replace("\nB,", "\n\nB,") if blank_line else ROW_COLUMN
    p = write(tmp_path, "deals.csv", text)
    with pytest.raises(InvalidValueError, match=parts(f"deals.csv, row {5 if blank_line else 4}", "'timestamp'")):
        salesproc.load_history(p)
    h = salesproc.load_history(p, errors="skip")
    assert h.events[OWN_ROW].tolist() == ["x", "y"]
    assert any("'_row' is loaded as '_row (from the file)'" in n for n in h.report.notes)
    assert balanced(h)


def test_a_column_named_row_in_a_dataframe_excel_and_parquet(tmp_path: Path) -> None:
    df = pd.DataFrame({"case_id": ["A", "A"], "name": ["Q", "P"], "timestamp": ["2024-01-02", "never"], "_row": [7, 7]})
    with pytest.raises(InvalidValueError, match=parts("<DataFrame>, row 3", "found 'never'")):
        salesproc.load_history(df)
    assert "_row" in df.columns  # the caller's frame is left as it was
    df.to_excel(tmp_path / "deals.xlsx", index=False)
    df.to_parquet(tmp_path / "deals.parquet")
    for name in ("deals.xlsx", "deals.parquet"):
        with pytest.raises(InvalidValueError, match=parts(f"{name}, row 3", "found 'never'")):
            salesproc.load_history(tmp_path / name)
        h = salesproc.load_history(tmp_path / name, errors="skip")
        assert h.events[OWN_ROW].tolist() == [7] and balanced(h)


def test_a_column_named_row_in_a_sql_table(tmp_path: Path) -> None:
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE ev (case_id TEXT, name TEXT, timestamp TEXT, _row INTEGER)")
    con.executemany("INSERT INTO ev VALUES (?, ?, ?, ?)", [("A", "Q", "2024-01-02", 99), ("A", "P", "soon", 99)])
    with pytest.raises(InvalidValueError, match=parts("row 2", "found 'soon'")):
        salesproc.load_history(con, table="ev")
    con.close()


# --- text that is not UTF-8, NUL bytes, rows too long to read ----------------------------------

CSV = "case_id,name,timestamp\nA,Qualify,2024-01-02\nA,Proposal,2024-01-09\n"


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be"])
def test_utf16_with_a_byte_order_mark_is_read_and_noted(tmp_path: Path, codec: str) -> None:
    data = CSV.encode(codec) if codec == "utf-16" else codecs.BOM_UTF16_BE + CSV.encode(codec)
    for source in (write(tmp_path, "deals.csv", data), io.BytesIO(data)):
        h = salesproc.load_history(source)
        assert h.events["name"].tolist() == ["Qualify", "Proposal"]
        assert "read as UTF-16 text: the file starts with a UTF-16 byte order mark" in h.report.notes


@pytest.mark.parametrize(("codec", "order"), [("utf-16-le", "little-endian"), ("utf-16-be", "big-endian")])
def test_utf16_without_a_byte_order_mark_says_which_encoding_to_pass(tmp_path: Path, codec: str, order: str) -> None:
    p = write(tmp_path, "deals.csv", CSV.encode(codec))
    with pytest.raises(EncodingError, match=parts("deals.csv", "this file is UTF-16", order, f"encoding={codec!r}")):
        salesproc.load_history(p)
    h = salesproc.load_history(p, encoding=codec)  # and the fix works
    assert h.events["name"].tolist() == ["Qualify", "Proposal"]


@pytest.mark.parametrize("as_path", [True, False])
def test_a_nul_byte_in_a_cell_is_refused_naming_row_and_column(tmp_path: Path, as_path: bool) -> None:
    data = b"case_id,name,timestamp\nA,Qualify,2024-01-02\nA,Pro\x00posal,2024-01-09\n"
    source = write(tmp_path, "deals.csv", data) if as_path else io.BytesIO(data)
    with pytest.raises(InvalidValueError, match=parts(
        "row 3", "column 'name'", "found 'Pro\\x00posal'", "without NUL bytes", "Fix:",
    )):
        salesproc.load_history(source)


def test_a_nul_byte_in_an_unmapped_column_is_refused_too() -> None:
    data = b"case_id,name,timestamp,note\nA,Qualify,2024-01-02,ok\nA,Proposal,2024-01-09,bad\x00\n"
    with pytest.raises(InvalidValueError, match=parts("row 3", "column 'note'", "NUL")):
        salesproc.load_history(io.BytesIO(data))


def test_a_value_too_long_to_read_names_the_row_and_column(tmp_path: Path) -> None:
    p = write(tmp_path, "deals.csv", "case_id,name,timestamp\nA,Qualify,2024-01-02\nB," + "x" * (9 << 20) + ",2024-01-02\n")
    with pytest.raises(InputError, match=parts(
        "deals.csv, row 3, column 'name'", "9.0 MiB", "expected rows under 8 MiB", "Fix:", "quote",
    )):
        salesproc.load_history(p)


def test_a_quote_never_closed_that_swallows_the_file_names_its_row(tmp_path: Path) -> None:
    rows = "".join(f"C{i},Qualify,2024-01-02\n" for i in range(400_000))
    p = write(tmp_path, "deals.csv", 'case_id,name,timestamp\nA,Qualify,2024-01-02\nB,"Proposal,2024-01-03\n' + rows)
    with pytest.raises(InputError, match=parts("deals.csv, row 3, column 'name'", "MiB", "'Proposal", "quote")):
        salesproc.load_history(p)
