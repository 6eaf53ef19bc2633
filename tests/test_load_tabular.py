"""Tabular sources as teams really have them: BOMs, semicolons and decimal commas, day-first dates,
mixed time zones, duplicates, wide exports, Excel, and saved histories."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import salesproc
from salesproc.errors import InvalidValueError, OverwriteError
from salesproc.load._build import build_history


def parts(*pieces: str) -> str:
    return "(?s)" + ".*".join(re.escape(p) for p in pieces)


def write(folder: Path, name: str, content: str | bytes) -> Path:
    p = folder / name
    p.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return p


def utc(*stamps: str) -> list[pd.Timestamp]:
    return [pd.Timestamp(s, tz="UTC") for s in stamps]


def test_utf8_bom_is_not_part_of_the_first_column_name(tmp_path: Path) -> None:
    p = write(tmp_path, "bom.csv", b"\xef\xbb\xbfcase_id,name,timestamp\nA,Qualify,2024-01-02\n")
    h = salesproc.load_history(p)
    assert h.cases["case_id"].tolist() == ["A"]
    assert h.events["timestamp"].tolist() == utc("2024-01-02")


def test_semicolon_file_with_decimal_commas_and_day_first_dates(tmp_path: Path) -> None:
    text = (
        "case_id;name;timestamp;amount;outcome\n"
        "A;Qualify;01.12.2023;1.234,50;won\n"
        "A;Proposal;31.12.2023;1.234,50;won\n"
        "B;Qualify;05.01.2024;2.000;lost\n"
        "C;Qualify;06.01.2024;99,9;open\n"
    )
    p = write(tmp_path, "de.csv", text)
    h = salesproc.load_history(p, dayfirst=True)
    assert h.cases["amount"].tolist() == [1234.5, 2000.0, 99.9]
    assert h.events["timestamp"].tolist() == utc("2023-12-01", "2023-12-31", "2024-01-05", "2024-01-06")
    assert h.cases["closed"].tolist()[:2] == utc("2023-12-31", "2024-01-05")


def test_day_first_dates_with_an_explicit_format(tmp_path: Path) -> None:
    p = write(tmp_path, "de.csv", "case_id;name;timestamp\nA;Qualify;01.12.2023\nA;Proposal;31.12.2023\n")
    h = salesproc.load_history(p, date_format="%d.%m.%Y")
    assert h.events["timestamp"].tolist() == utc("2023-12-01", "2023-12-31")


def test_dayfirst_is_needed_message_in_skip_mode_is_counted(tmp_path: Path) -> None:
    p = write(tmp_path, "de.csv", "case_id;name;timestamp\nA;Qualify;01.12.2023\nA;Proposal;31.12.2023\n")
    h = salesproc.load_history(p, errors="skip")
    # month-first as asked: 01.12 is 12 January; 31.12 cannot be month-first and is skipped
    assert h.events["timestamp"].tolist() == utc("2023-01-12")
    assert h.summary().skipped == {"day-first date while dayfirst=False": 1}


def test_duplicate_events_are_kept_once_and_counted(tmp_path: Path) -> None:
    text = (
        "case_id,name,timestamp\n"
        "A,Qualify,2024-01-02T09:00:00Z\n"
        "A,Qualify,2024-01-02T09:00:00Z\n"
        "A,Qualify,2024-01-02T10:00:00+01:00\n"  # the same instant written another way
        "A,Qualify,2024-01-03T09:00:00Z\n"  # a real second occurrence
    )
    h = salesproc.load_history(write(tmp_path, "dup.csv", text))
    assert h.events["timestamp"].tolist() == utc("2024-01-02 09:00", "2024-01-03 09:00")
    s = h.summary()
    assert s.skipped == {"duplicate event (same case, name, type and time): kept once": 2}
    assert (s.rows_read, s.rows_loaded) == (4, 2)


def test_events_after_close_are_kept_and_counted(tmp_path: Path) -> None:
    text = (
        "case_id,name,timestamp,outcome,closed\n"
        "A,Qualify,2024-01-02,won,2024-01-05\n"
        "A,Handover,2024-01-09,won,2024-01-05\n"
        "A,Invoice,2024-01-20,won,2024-01-05\n"
        "B,Qualify,2024-01-02,lost,2024-01-30\n"
    )
    h = salesproc.load_history(write(tmp_path, "late.csv", text))
    assert len(h.events) == 4
    assert h.summary().events_after_close == 2
    assert "events after their case closed (kept): 2" in str(h.summary())


def test_cases_without_events_come_from_a_case_table() -> None:
    events = pd.DataFrame(
        {
            "case_id": ["A", "A", "B"],
            "name": ["Qualify", "Proposal", "Qualify"],
            "timestamp": ["2024-01-02", "2024-01-04", "2024-01-03"],
        }
    )
    cases = pd.DataFrame(
        {
            "case_id": ["A", "B", "C", "D"],
            "outcome": ["won", "lost", "lost", "open"],
            "created": ["2024-01-01", "2024-01-02", "2024-01-05", "2024-01-06"],
            "closed": ["2024-01-04", "2024-01-09", "2024-01-07", None],
            "amount": [100.0, 50.0, 10.0, 5.0],
        }
    )
    h = build_history(events, cases, source="tables")
    assert h.cases["case_id"].tolist() == ["A", "B", "C", "D"]
    assert h.cases["outcome"].tolist() == ["won", "lost", "lost", "open"]
    assert h.cases["closed"].tolist()[:3] == utc("2024-01-04", "2024-01-09", "2024-01-07")
    s = h.summary()
    assert (s.cases, s.events, s.cases_without_events) == (4, 3, 2)
    assert s.rows_read == 7 == s.rows_loaded
    assert list(h.events["case_id"].cat.categories) == ["A", "B", "C", "D"]


def test_case_table_errors_name_the_case_table_row() -> None:
    events = pd.DataFrame({"case_id": ["A"], "name": ["Qualify"], "timestamp": ["2024-01-02"]})
    cases = pd.DataFrame({"case_id": ["A", "B"], "outcome": ["won", "gone"], "created": ["2024-01-01"] * 2})
    with pytest.raises(InvalidValueError, match=parts("cases", "row 3", "column 'outcome'", "found 'gone'")):
        build_history(events, cases, source="cases")


def test_event_only_cases_beside_a_case_table_name_the_event_row() -> None:
    events = pd.DataFrame(
        {
            "case_id": ["A", "Z"],
            "name": ["Qualify", "Qualify"],
            "timestamp": ["2024-01-02", "2024-01-03"],
            "outcome": [None, "nah"],
        }
    )
    cases = pd.DataFrame({"case_id": ["A"], "outcome": ["won"], "created": ["2024-01-01"]})
    with pytest.raises(InvalidValueError, match=parts("row 3", "column 'outcome'", "found 'nah'")):
        build_history(events, cases, source="events")


def test_skipping_a_case_from_a_case_table_counts_its_row_and_its_events() -> None:
    events = pd.DataFrame(
        {"case_id": ["A", "B", "B"], "name": ["Q", "Q", "P"], "timestamp": ["2024-01-02", "2024-01-03", "2024-01-04"]}
    )
    cases = pd.DataFrame({"case_id": ["A", "B"], "outcome": ["won", "gone"], "created": ["2024-01-01"] * 2})
    h = build_history(events, cases, source="t", errors="skip")
    s = h.summary()
    assert s.skipped == {"unknown outcome value": 3}
    assert (s.rows_read, s.rows_loaded, s.cases, s.events) == (5, 2, 1, 1)


def test_mixed_time_zones_in_one_column_land_on_the_right_utc_instants(tmp_path: Path) -> None:
    text = (
        "case_id,name,timestamp\n"
        "A,a,2024-01-15T09:00:00Z\n"
        "A,b,2024-01-15T12:00:00+02:00\n"
        "A,c,2024-01-15 14:00:00\n"  # Amsterdam winter time: +01:00
        "A,d,2024-07-15 14:00:00\n"  # Amsterdam summer time: +02:00
        "A,e,2024-07-15T14:00:00-04:00\n"
    )
    h = salesproc.load_history(write(tmp_path, "tz.csv", text), tz="Europe/Amsterdam")
    got = dict(zip(h.events["name"].astype(str), h.events["timestamp"]))
    assert got == dict(
        zip("abcde", utc("2024-01-15 09:00", "2024-01-15 10:00", "2024-01-15 13:00", "2024-07-15 12:00",
                         "2024-07-15 18:00"))
    )
    assert str(h.events["timestamp"].dtype) == "datetime64[ns, UTC]"


def test_naive_timestamps_are_utc_by_default(tmp_path: Path) -> None:
    h = salesproc.load_history(write(tmp_path, "n.csv", "case_id,name,timestamp\nA,a,2024-01-15 14:00:00\n"))
    assert h.events["timestamp"].tolist() == utc("2024-01-15 14:00")


def test_wide_file_keeps_extra_columns_as_event_attributes(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    n = 30
    df = pd.DataFrame({f"field_{i:03d}": rng.integers(0, 1000, n) for i in range(200)})
    df.insert(0, "Opportunity", [f"OPP-{i % 6}" for i in range(n)])
    df.insert(1, "Step", [f"step {i % 4}" for i in range(n)])
    df.insert(2, "When", pd.date_range("2024-01-01", periods=n, freq="D").strftime("%Y-%m-%d"))
    p = tmp_path / "wide.csv"
    df.to_csv(p, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no PerformanceWarning from a fragmented frame
        h = salesproc.load_history(p, mapping={"case_id": "Opportunity", "name": "Step", "timestamp": "When"})
    ev = h.events
    assert len(ev) == n and len(h.cases) == 6
    assert [c for c in ev.columns if c.startswith("field_")] == [f"field_{i:03d}" for i in range(200)]
    # attributes travel with their event: the first event of OPP-0 is the first row of the file
    first = ev[ev["case_id"] == "OPP-0"].iloc[0]
    assert first["field_000"] == df.loc[0, "field_000"]
    assert first["field_199"] == df.loc[0, "field_199"]


def _xlsx(path: Path, rows: list[list[object]]) -> Path:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


XLSX_MAPPING = {"case_id": "Deal", "name": "Stage", "timestamp": "Entered", "outcome": "Result"}


def test_excel_loads_with_a_mapping(tmp_path: Path) -> None:
    import datetime as dt

    p = _xlsx(
        tmp_path / "deals.xlsx",
        [
            ["Deal", "Stage", "Entered", "Result", "Value"],
            [1001, "Qualify", dt.datetime(2024, 1, 2, 9, 30), "Won", 1200.5],
            [1001, "Proposal", dt.datetime(2024, 1, 9), "Won", 1200.5],
            [1002, "Qualify", dt.datetime(2024, 1, 3), "Lost", 300],
        ],
    )
    h = salesproc.load_history(p, mapping={**XLSX_MAPPING, "amount": "Value"})
    assert h.cases["case_id"].tolist() == ["1001", "1002"]
    assert h.cases["outcome"].tolist() == ["won", "lost"]
    assert h.cases["amount"].tolist() == [1200.5, 300.0]
    assert h.events["timestamp"].tolist() == utc("2024-01-02 09:30", "2024-01-09", "2024-01-03")


def test_excel_errors_use_excel_row_numbers(tmp_path: Path) -> None:
    import datetime as dt

    p = _xlsx(
        tmp_path / "deals.xlsx",
        [
            ["Deal", "Stage", "Entered", "Result"],
            ["D1", "Qualify", dt.datetime(2024, 1, 2), "won"],
            [None, None, None, None],  # a blank row stays row 3 in Excel
            ["D2", "Qualify", "soon", "lost"],
        ],
    )
    with pytest.raises(InvalidValueError, match=parts("deals.xlsx", "row 4", "column 'Entered'", "found 'soon'")):
        salesproc.load_history(p, mapping=XLSX_MAPPING)
    h = salesproc.load_history(p, mapping=XLSX_MAPPING, errors="skip")
    assert h.summary().rows_read == 2 and h.summary().events == 1


def test_errors_name_the_source_column_not_the_canonical_one(tmp_path: Path) -> None:
    p = write(tmp_path, "crm.csv", "Deal,Stage,Entered\nD1,Qualify,yesterday\n")
    with pytest.raises(InvalidValueError, match=parts("crm.csv", "row 2", "column 'Entered'", "found 'yesterday'")):
        salesproc.load_history(p, mapping={"case_id": "Deal", "name": "Stage", "timestamp": "Entered"})


def test_parquet_round_trip_preserves_cases_and_events(tmp_path: Path) -> None:
    text = (
        "case_id,name,timestamp,outcome,amount,owner,segment,region\n"
        "A,Qualify,2024-01-02T09:00:00+01:00,won,100.5,ann,SMB,north\n"
        "A,Proposal,2024-01-09,won,100.5,ann,SMB,north\n"
        "B,Qualify,2024-01-03,open,,bob,ENT,south\n"
    )
    h = salesproc.load_history(write(tmp_path, "h.csv", text))
    out = h.to_parquet(tmp_path / "saved")
    back = salesproc.load_history(out)
    pd.testing.assert_frame_equal(back.cases, h.cases)
    pd.testing.assert_frame_equal(back.events, h.events)
    assert back.report == h.report
    with pytest.raises(OverwriteError, match=parts("saved", "exists", "overwrite=True")):
        h.to_parquet(tmp_path / "saved")
    smaller = h.filter(status="open")
    smaller.to_parquet(tmp_path / "saved", overwrite=True)
    assert salesproc.load_history(tmp_path / "saved").cases["case_id"].tolist() == ["B"]
