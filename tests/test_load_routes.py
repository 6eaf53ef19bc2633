"""One event log, four ways in: the same history whichever way it is read.

A CSV and a Parquet file are read with their identifying text (case id, name, type, outcome,
segment) dictionary-encoded and built from codes; a DataFrame of plain text takes the hashing
route. These tests hold the fast routes to the plain one on logs with the awkward parts planted:
ids and names that differ only by spaces, rows out of order, duplicates, blanks (skipped and
counted), case values given on some rows only, several Parquet row groups (one dictionary each)
and CSV blocks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import salesproc
from salesproc._arrow import dictionary_to_categorical
from salesproc.load._build import build_history

IDS = ["A", " A", "B ", "C", "D", "E", ""]
NAMES = ["Qualify", " Qualify", "Demo", "Call ", "Proposal", ""]
TYPES = ["milestone", "activity", "Stage", "task"]
OUTCOMES = ["won", "lost", "open", None]
OWNERS = ["ann", "bob", None]


@st.composite
def event_logs(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(1, 40))
    ints = st.integers
    return pd.DataFrame({
        "case_id": [IDS[draw(ints(0, len(IDS) - 1))] for _ in range(n)],
        "name": [NAMES[draw(ints(0, len(NAMES) - 1))] for _ in range(n)],
        "type": [TYPES[draw(ints(0, len(TYPES) - 1))] for _ in range(n)],
        "timestamp": pd.to_datetime([draw(ints(0, 20)) for _ in range(n)], unit="D", origin="2024-01-01", utc=True),
        "outcome": [OUTCOMES[draw(ints(0, len(OUTCOMES) - 1))] for _ in range(n)],
        "owner": [OWNERS[draw(ints(0, len(OWNERS) - 1))] for _ in range(n)],
    })


def _same(a: salesproc.History, b: salesproc.History) -> None:
    pd.testing.assert_frame_equal(a.cases, b.cases)
    pd.testing.assert_frame_equal(a.events, b.events)
    assert (a.report.rows_read, a.report.rows_loaded, a.report.skipped) == (
        b.report.rows_read, b.report.rows_loaded, b.report.skipped,
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(log=event_logs())
def test_csv_parquet_and_categorical_frames_load_like_plain_text(log: pd.DataFrame, tmp_path: Path) -> None:
    # a case's outcome is a case value: the last one given, in time, on its rows
    plain = salesproc.load_history(log, errors="skip")
    assert plain.events["name"].isin(["Qualify", "Demo", "Call", "Proposal"]).all()

    csv = tmp_path / "log.csv"
    log.to_csv(csv, index=False)
    _same(salesproc.load_history(csv, errors="skip"), plain)

    parquet = tmp_path / "log.parquet"
    pq.write_table(pa.Table.from_pandas(log, preserve_index=False), parquet, row_group_size=7)
    assert pq.ParquetFile(parquet).metadata.num_row_groups == -(-len(log) // 7)
    _same(salesproc.load_history(parquet, errors="skip"), plain)

    as_categories = log.astype({"case_id": "category", "name": "category", "type": "category", "outcome": "category"})
    _same(salesproc.load_history(as_categories, errors="skip"), plain)


def test_row_groups_with_their_own_dictionaries_become_one_set_of_codes() -> None:
    # two row groups: the second's dictionary repeats one id and adds one, in another order
    col = pa.chunked_array([
        pa.array(["b", "a", "b", None]).dictionary_encode(),
        pa.array(["c", "a", "c"]).dictionary_encode(),
        pa.array(["a"]).dictionary_encode(),
    ])
    cat = dictionary_to_categorical(col)
    assert cat.categories.tolist() == ["b", "a", "c"]
    assert cat.codes.tolist() == [0, 1, 0, -1, 2, 1, 2, 1]
    assert list(cat.astype(object)) == ["b", "a", "b", np.nan, "c", "a", "c", "a"]


def test_events_follow_the_case_table_order_not_their_own() -> None:
    # events name B before A; the case table lists A first: events are grouped in the cases' order
    events = pd.DataFrame({
        "case_id": ["B", "B", "A"], "name": ["Qualify", "Demo", "Qualify"],
        "timestamp": ["2024-01-01", "2024-01-02", "2024-01-03"],
    })
    cases = pd.DataFrame({"case_id": ["A", "B"], "outcome": ["won", "open"], "created": ["2024-01-01", "2024-01-01"]})
    h = build_history(events, cases)
    assert h.cases["case_id"].tolist() == ["A", "B"]
    assert h.events["case_id"].astype(str).tolist() == ["A", "B", "B"]
    assert h.events["case_id"].cat.codes.tolist() == [0, 1, 1]


def test_a_quoted_line_break_after_the_first_mebibyte_still_reads(tmp_path: Path) -> None:
    # the reader allows quoted line breaks when the file's head shows quotes; here they come later
    rows = [f"C{i},Qualify,2024-01-01,open,padding padding padding padding" for i in range(25_000)]
    text = "case_id,name,timestamp,outcome,note\n" + "\n".join(rows) + '\nZ,Qualify,2024-01-02,open,"two\nlines"\n'
    assert text.index('"') > 1 << 20
    p = tmp_path / "late-quotes.csv"
    p.write_text(text)
    h = salesproc.load_history(p)
    assert len(h.cases) == 25_001
    assert h.events["note"].iloc[-1] == "two\nlines"


def test_bytes_that_are_not_utf8_far_into_a_file_name_their_row(tmp_path: Path) -> None:
    rows = [f"C{i},Qualify,2024-01-01,open" for i in range(40_000)]
    data = ("case_id,name,timestamp,outcome\n" + "\n".join(rows)).encode() + b"\nZ,Qualif\xe9,2024-01-02,open\n"
    p = tmp_path / "latin1-tail.csv"
    p.write_bytes(data)
    with pytest.raises(salesproc.errors.EncodingError, match=r"row 40002: byte b'\\xe9'.*encoding='cp1252'"):
        salesproc.load_history(p)


def test_a_saved_history_with_several_row_groups_reads_back_equal(tmp_path: Path) -> None:
    # History.read_parquet reads the events' text as codes; row groups each carry a dictionary
    h, _ = salesproc.datasets.synthetic_history(60, seed=3)
    saved = h.to_parquet(tmp_path / "saved")
    h.events.to_parquet(saved / "events.parquet", index=False, row_group_size=50)
    assert pq.ParquetFile(saved / "events.parquet").metadata.num_row_groups > 5
    back = salesproc.load_history(saved)
    pd.testing.assert_frame_equal(back.cases, h.cases)
    pd.testing.assert_frame_equal(back.events, h.events)
    assert back.events["name"].cat.categories.is_monotonic_increasing


def test_date_only_columns_are_read_as_datetimes_not_date_objects(tmp_path: Path) -> None:
    # pyarrow reads 2024-01-02 as a date; the loader wants datetimes (never Python date objects,
    # which would send a million timestamps through the text parser)
    p = tmp_path / "dates.csv"
    p.write_text("case_id,name,timestamp,created\nA,Qualify,2024-01-02,2024-01-01\nA,Demo,2024-01-05,2024-01-01\n")
    df, _ = salesproc.load.read_table(p)
    assert pd.api.types.is_datetime64_dtype(df["timestamp"]) and pd.api.types.is_datetime64_dtype(df["created"])
    h = salesproc.load_history(p)
    assert h.events["timestamp"].tolist() == [pd.Timestamp("2024-01-02", tz="UTC"), pd.Timestamp("2024-01-05", tz="UTC")]
