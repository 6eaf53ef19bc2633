"""Bad input to the tabular loader: every problem is a SalesprocError that names file, row, column,
value, what was expected and how to fix it; ``errors="skip"`` skips and counts instead."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import salesproc
from salesproc.errors import (
    EmptyInputError,
    EncodingError,
    InputError,
    InvalidValueError,
    MalformedFileError,
    MissingColumnError,
    ParameterError,
    SalesprocError,
)


def parts(*pieces: str) -> str:
    """A regex that finds every piece, in order, anywhere in the message."""
    return "(?s)" + ".*".join(re.escape(p) for p in pieces)


def write(folder: Path, name: str, content: str | bytes) -> Path:
    p = folder / name
    p.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return p


# --- missing columns ---------------------------------------------------------------------------


def test_missing_columns_without_mapping_lists_columns_and_suggests_a_mapping(tmp_path: Path) -> None:
    p = write(tmp_path, "deals.csv", "Deal ID,Stage,Date\nD1,Qualify,2024-01-02\n")
    with pytest.raises(MissingColumnError, match=parts(
        "deals.csv", "no column 'case_id'",
        "Columns present: 'Deal ID', 'Stage', 'Date'",
        "mapping={'case_id': 'Deal ID', 'name': 'Stage', 'timestamp': 'Date'}",
    )) as info:
        salesproc.load_history(p)
    assert info.value.column == "case_id"
    assert info.value.present == ["Deal ID", "Stage", "Date"]


def test_missing_columns_without_a_guess_shows_placeholders(tmp_path: Path) -> None:
    p = write(tmp_path, "odd.csv", "alpha,beta,gamma\n1,2,3\n")
    with pytest.raises(MissingColumnError, match=parts(
        "odd.csv", "no column 'case_id'", "Columns present: 'alpha', 'beta', 'gamma'",
        "mapping={'case_id': '<your column>', 'name': '<your column>', 'timestamp': '<your column>'}",
    )):
        salesproc.load_history(p)


def test_mapping_naming_an_absent_column_shows_the_corrected_mapping(tmp_path: Path) -> None:
    p = write(tmp_path, "deals.csv", "id,activity,when\nD1,Qualify,2024-01-02\n")
    mapping = {"case_id": "ID ", "name": "activity", "timestamp": "when"}
    with pytest.raises(MissingColumnError, match=parts(
        "deals.csv", "no column 'ID '", "needed for 'case_id'",
        "Columns present: 'id', 'activity', 'when'",
        "mapping={'case_id': 'id', 'name': 'activity', 'timestamp': 'when'}",
    )) as info:
        salesproc.load_history(p, mapping=mapping)
    assert info.value.canonical == "case_id"
    assert mapping == {"case_id": "ID ", "name": "activity", "timestamp": "when"}


# --- bad cells: strict ---------------------------------------------------------------------------

EVENTS = (
    "case_id,name,timestamp,outcome\n"
    "A,Qualify,2024-01-02,won\n"
    "A,Proposal,2024-01-10,won\n"
    "B,Qualify,2024-01-03,lost\n"
)


def test_unparseable_date_names_file_row_column_value_and_fix(tmp_path: Path) -> None:
    p = write(tmp_path, "log.csv", EVENTS + "B,Proposal,next tuesday,lost\n")
    with pytest.raises(InvalidValueError, match=parts(
        "log.csv", "row 5", "column 'timestamp'", "found 'next tuesday'",
        "expected a date or timestamp", "Fix: correct the cell", "errors='skip'",
    )) as info:
        salesproc.load_history(p)
    assert (info.value.row, info.value.column, info.value.value) == (5, "timestamp", "next tuesday")


def test_unknown_outcome_names_the_label_and_the_mapping_to_fix_it(tmp_path: Path) -> None:
    p = write(tmp_path, "log.csv", EVENTS + "C,Qualify,2024-01-04,Maybe Later\n")
    with pytest.raises(InvalidValueError, match=parts(
        "log.csv", "row 5", "column 'outcome'", "found 'Maybe Later'",
        "expected one of won, lost, open",
        "outcome_values={'Maybe Later': ",
    )) as info:
        salesproc.load_history(p)
    assert "on_time" not in str(info.value)  # a deal file is not told about project outcomes


def test_unknown_outcome_points_at_the_row_that_holds_it(tmp_path: Path) -> None:
    # the label sits on the case's third row, not its first
    text = (
        "case_id,name,timestamp,outcome\n"
        "A,Qualify,2024-01-02,\n"
        "A,Proposal,2024-01-05,\n"
        "A,Close,2024-01-09,Gewonnen\n"
    )
    p = write(tmp_path, "log.csv", text)
    with pytest.raises(InvalidValueError, match=parts("row 4", "column 'outcome'", "found 'Gewonnen'")):
        salesproc.load_history(p)


def test_empty_case_id_names_the_row(tmp_path: Path) -> None:
    p = write(tmp_path, "log.csv", EVENTS + ",Proposal,2024-01-12,lost\n")
    with pytest.raises(InvalidValueError, match=parts(
        "log.csv", "row 5", "column 'case_id'", "found ''", "expected a case id (not empty)",
        "Fix: fill the id",
    )):
        salesproc.load_history(p)


def test_day_first_dates_without_dayfirst_say_so(tmp_path: Path) -> None:
    text = "case_id;name;timestamp\nA;Qualify;01.12.2023\nA;Proposal;31.12.2023\n"
    p = write(tmp_path, "de.csv", text)
    with pytest.raises(InvalidValueError, match=parts(
        "de.csv", "row 3", "column 'timestamp'", "found '31.12.2023'",
        "day-first", "dayfirst=True",
    )):
        salesproc.load_history(p)


def test_month_first_dates_with_dayfirst_say_so(tmp_path: Path) -> None:
    p = write(tmp_path, "us.csv", "case_id,name,timestamp\nA,Qualify,12/01/2023\nA,Proposal,12/31/2023\n")
    with pytest.raises(InvalidValueError, match=parts(
        "us.csv", "row 3", "found '12/31/2023'", "month-first", "dayfirst=False",
    )):
        salesproc.load_history(p, dayfirst=True)


def test_blank_lines_keep_spreadsheet_row_numbers(tmp_path: Path) -> None:
    # a spreadsheet shows the blank line as row 3, so the bad date sits on row 4
    p = write(tmp_path, "log.csv", "case_id,name,timestamp\nA,Qualify,2024-01-02\n\nA,Proposal,soon\n")
    with pytest.raises(InvalidValueError, match=parts("log.csv", "row 4", "found 'soon'")):
        salesproc.load_history(p)
    h = salesproc.load_history(p, errors="skip")
    assert h.report.rows_read == 2
    assert len(h.events) == 1


# --- bad cells: skip ---------------------------------------------------------------------------


def test_skip_counts_each_reason_and_keeps_the_books_balanced(tmp_path: Path) -> None:
    text = (
        "case_id,name,timestamp,outcome\n"
        "A,Qualify,2024-01-02,won\n"  # good
        "A,Proposal,not a date,won\n"  # bad date
        ",Qualify,2024-01-03,lost\n"  # empty id
        "C,Qualify,2024-01-04,Maybe\n"  # unknown outcome (case C: 2 rows)
        "C,Proposal,2024-01-05,Maybe\n"
        "A,Qualify,2024-01-02,won\n"  # duplicate of row 2
        "B,Qualify,2024-01-06,lost\n"  # good
    )
    p = write(tmp_path, "log.csv", text)
    h = salesproc.load_history(p, errors="skip")
    s = h.summary()
    assert s.skipped == {
        "unparseable or missing timestamp": 1,
        "empty case id": 1,
        "duplicate event (same case, name, type and time): kept once": 1,
        "unknown outcome value": 2,
    }
    assert s.rows_read == 7
    assert s.rows_loaded == 2 == s.events
    assert s.rows_read == s.rows_loaded + sum(s.skipped.values())
    assert h.cases["case_id"].tolist() == ["A", "B"]
    assert h.cases["outcome"].tolist() == ["won", "lost"]
    assert "skipped 2: unknown outcome value" in str(s)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"errors": "ignore"}, ("The 'errors' parameter must be 'raise' or 'skip'", "Got 'ignore' instead")),
        ({"kind": "lead"}, ("The 'kind' parameter must be one of ['deal', 'project']", "Got 'lead' instead")),
        ({"mapping": "no-such-preset"}, ("The 'mapping' parameter must be", "presets", "Got 'no-such-preset'")),
        ({"outcome_values": {"W": "winner"}}, ("The 'outcome_values' parameter", "Got ['winner'] instead")),
        ({"outcome_events": {"victory": ["x"]}}, ("The 'outcome_events' parameter", "Got key 'victory'")),
    ],
)
def test_bad_parameters_are_parameter_errors(kwargs: dict, message: tuple[str, ...]) -> None:
    df = pd.DataFrame({"case_id": ["A"], "name": ["x"], "timestamp": ["2024-01-01"], "outcome": ["W"]})
    with pytest.raises(ParameterError, match=parts(*message)) as info:
        salesproc.load_history(df, **kwargs)
    assert isinstance(info.value, SalesprocError) and isinstance(info.value, ValueError)


# --- property: the books always balance --------------------------------------------------------

GOOD_OUTCOMES = ["won", "lost", "open", "Won", " lost "]
BAD_OUTCOMES = ["maybe", "Pending Review?"]
BAD_DATES = ["31/31/2023", "someday", "2023-13-01"]

row_strategy = st.tuples(
    st.sampled_from(["c1", "c2", "c3", "c4", ""]),  # case id ("" is bad)
    st.sampled_from(["Qualify", "Proposal", "Negotiate"]),
    st.one_of(
        st.dates(min_value=pd.Timestamp("2023-01-01").date(), max_value=pd.Timestamp("2023-01-20").date()).map(
            lambda d: d.isoformat()
        ),
        st.sampled_from(BAD_DATES),
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(row_strategy, min_size=1, max_size=25),
    outcome_of=st.fixed_dictionaries(
        {c: st.sampled_from(GOOD_OUTCOMES + BAD_OUTCOMES) for c in ["c1", "c2", "c3", "c4", ""]}
    ),
)
def test_skip_property_rows_balance_and_events_are_good_unique_rows(
    tmp_path: Path, rows: list[tuple[str, str, str]], outcome_of: dict[str, str]
) -> None:
    lines = ["case_id,name,timestamp,outcome"]
    lines += [f"{c},{n},{t},{outcome_of[c]}" for c, n, t in rows]
    p = write(tmp_path, "prop.csv", "\n".join(lines) + "\n")

    # the expectation, computed without salesproc: good rows of good cases, duplicates once
    good_rows = {
        (c, n, t)
        for c, n, t in rows
        if c != "" and t not in BAD_DATES and outcome_of[c].strip().lower() in ("won", "lost", "open")
    }

    h = salesproc.load_history(p, errors="skip")
    s = h.summary()
    assert s.rows_read == len(rows)
    assert s.rows_read == s.rows_loaded + sum(s.skipped.values())
    assert s.events == len(good_rows) == s.rows_loaded
    got = {
        (c, n, t.strftime("%Y-%m-%d"))
        for c, n, t in zip(h.events["case_id"], h.events["name"], h.events["timestamp"])
    }
    assert got == good_rows
    assert set(h.cases["case_id"]) == {c for c, _, _ in good_rows}


# --- whole-file problems -------------------------------------------------------------------------


def test_empty_file_is_an_empty_input_error_with_a_fix(tmp_path: Path) -> None:
    p = write(tmp_path, "empty.csv", b"")
    with pytest.raises(EmptyInputError, match=parts("empty.csv", "empty (0 bytes)", "Fix:")):
        salesproc.load_history(p)


def test_header_only_file_is_an_empty_input_error_with_a_fix(tmp_path: Path) -> None:
    p = write(tmp_path, "header.csv", "case_id,name,timestamp\n")
    with pytest.raises(EmptyInputError, match=parts("header.csv", "header but no rows", "Fix:")):
        salesproc.load_history(p)


def test_non_utf8_bytes_name_row_and_byte_and_suggest_cp1252(tmp_path: Path) -> None:
    text = "case_id,name,timestamp\nA,Qualify,2024-01-02\nA,Angebot für Café,2024-01-05\n"
    p = write(tmp_path, "win.csv", text.encode("cp1252"))
    with pytest.raises(EncodingError, match=parts("win.csv", "row 3", r"b'\xfc'", "not UTF-8", "encoding='cp1252'")):
        salesproc.load_history(p)
    h = salesproc.load_history(p, encoding="cp1252")
    assert h.events["name"].tolist() == ["Qualify", "Angebot für Café"]


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(SalesprocError, match=parts("nope.csv", "no such file")):
        salesproc.load_history(tmp_path / "nope.csv")


def test_ragged_row_names_the_row(tmp_path: Path) -> None:
    p = write(tmp_path, "ragged.csv", "case_id,name,timestamp\nA,Qualify,2024-01-02\nA,Offer, final,2024-01-05\n")
    with pytest.raises(SalesprocError, match=parts("ragged.csv", "row 3", "expected 3 fields", "found 4", "quote")):
        salesproc.load_history(p)


@pytest.mark.parametrize(
    ("content", "kwargs"),
    [
        ("id,activity,when\nA,x,2024-01-01\n", {}),
        ("case_id,name,timestamp\nA,x,2024-01-01\n", {"mapping": {"case_id": "nope"}}),
        ("case_id,name,timestamp\nA,x,never\n", {}),
        ("case_id,name,timestamp,outcome\nA,x,2024-01-01,hmm\n", {}),
        ("case_id,name,timestamp\n,x,2024-01-01\n", {}),
        ("case_id,name,timestamp\n", {}),
        ("", {}),
        (b"case_id,name,timestamp\nA,\xe9,2024-01-01\n", {}),
        ("case_id,name,timestamp,type\nA,x,2024-01-01,meeting-ish\n", {}),
        ("case_id,name,timestamp,amount\nA,x,2024-01-01,lots\n", {}),
    ],
)
def test_every_loader_error_is_a_salesproc_error(tmp_path: Path, content: str | bytes, kwargs: dict) -> None:
    p = write(tmp_path, "bad.csv", content)
    with pytest.raises(SalesprocError, match=r"bad\.csv"):
        salesproc.load_history(p, **kwargs)


def test_the_input_dataframe_is_left_unchanged() -> None:
    df = pd.DataFrame(
        {
            "Deal": ["A", "A", "B", "", "B"],
            "Stage": ["Qualify", "Proposal", "Qualify", "Qualify", "Qualify"],
            "When": ["2024-01-02", "2024-01-05T10:00:00+02:00", "2024-01-03", "2024-01-03", "2024-01-03"],
            "Result": ["won", "won", "lost", "lost", "lost"],
            "Value": ["1,200", "1,200", "3", "3", "3"],
        },
        index=[10, 11, 12, 13, 14],
    )
    before = df.copy(deep=True)
    mapping = {"case_id": "Deal", "name": "Stage", "timestamp": "When", "outcome": "Result", "amount": "Value"}
    # '1,200' alone could be 1.2 too: the decimal mark is said (else an error asks for it)
    h = salesproc.load_history(df, mapping=mapping, errors="skip", decimal=".")
    pd.testing.assert_frame_equal(df, before)
    assert h.cases["amount"].tolist() == [1200.0, 3.0]
    assert h.summary().skipped == {
        "empty case id": 1,
        "duplicate event (same case, name, type and time): kept once": 1,
    }


def test_bytes_that_are_not_the_given_encoding_name_row_and_byte(tmp_path: Path) -> None:
    # 0x81 is undefined in cp1252
    p = write(tmp_path, "odd.csv", b"case_id,name,timestamp\nA,Qualify,2024-01-02\nA,x\x81y,2024-01-05\n")
    with pytest.raises(EncodingError, match=parts("odd.csv", "row 3", r"b'\x81'", "not cp1252", "Fix:")):
        salesproc.load_history(p, encoding="cp1252")
    with pytest.raises(EncodingError, match=parts("odd.csv", "'klingon' is not a text encoding", "Fix:")):
        salesproc.load_history(p, encoding="klingon")


# --- odd sources and parameters: still one exception tree -----------------------------------------

SMALL = pd.DataFrame({"case_id": ["A", "A"], "name": ["x", "y"], "timestamp": ["2024-01-01 10:00", "2024-01-02"]})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tz": "Mars/Olympus"}, ("The 'tz' parameter", "time zone", "Got 'Mars/Olympus'")),
        ({"milestones": "(Qualify"}, ("The 'milestones' parameter", "regular expression", "Got '(Qualify'")),
        ({"date_format": "%Q"}, ("The 'date_format' parameter", "'%Q'")),
        ({"decimal": ";"}, ("The 'decimal' parameter must be '.' or ','", "Got ';'")),
    ],
)
def test_bad_reading_parameters_are_parameter_errors(kwargs: dict, message: tuple[str, ...]) -> None:
    with pytest.raises(ParameterError, match=parts(*message)):
        salesproc.load_history(SMALL, **kwargs)


def test_an_unsupported_source_type_is_a_parameter_error() -> None:
    with pytest.raises(ParameterError, match=parts("The 'source' parameter of load_history", "Got list")):
        salesproc.load_history([("A", "x", "2024-01-01")])


def test_a_column_named_twice_is_an_input_error(tmp_path: Path) -> None:
    p = write(tmp_path, "twice.csv", "case_id,name,timestamp,name\nA,x,2024-01-01,y\n")
    with pytest.raises(InputError, match=parts("twice.csv", "'name' appears 2 times", "Fix: rename")):
        salesproc.load_history(p)


def test_a_file_that_is_not_really_xlsx_is_a_malformed_file_error(tmp_path: Path) -> None:
    p = write(tmp_path, "fake.xlsx", b"case_id,name,timestamp\nA,x,2024-01-01\n")
    with pytest.raises(MalformedFileError, match=parts("fake.xlsx", "not an Excel .xlsx workbook", "Fix:")):
        salesproc.load_history(p)


def test_a_missing_excel_sheet_lists_the_sheets(tmp_path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.title = "Deals"
    wb.active.append(["case_id", "name", "timestamp"])
    wb.active.append(["A", "x", "2024-01-01"])
    wb.create_sheet("Notes")
    wb.save(tmp_path / "book.xlsx")
    with pytest.raises(InputError, match=parts("book.xlsx", "no sheet 'Summary'", "'Deals', 'Notes'", "sheet=")):
        salesproc.load_history(tmp_path / "book.xlsx", sheet="Summary")
    assert len(salesproc.load_history(tmp_path / "book.xlsx", sheet="Deals").events) == 1


def test_a_damaged_parquet_file_is_a_malformed_file_error(tmp_path: Path) -> None:
    p = write(tmp_path, "broken.parquet", b"PAR1 this is not parquet")
    with pytest.raises(MalformedFileError, match=parts("broken.parquet", "not a readable Parquet file", "Fix:")):
        salesproc.load_history(p)
