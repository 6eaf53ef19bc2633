"""Values read as the file writes them (issue 17): the decimal mark each column of numbers proves,
the text ``NA`` (North America, not a gap), Excel formulas saved without their results, and case
values that differ between a case's rows."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

import salesproc
from salesproc.errors import InputError, InvalidValueError, ParameterError


def parts(*pieces: str) -> str:
    return "(?s)" + ".*".join(re.escape(p) for p in pieces)


def load(text: str, **kwargs: object) -> salesproc.History:
    return salesproc.load_history(io.StringIO(text), **kwargs)  # type: ignore[arg-type]


def amounts(h: salesproc.History) -> dict[str, float]:
    return dict(zip(h.cases["case_id"].astype(str), h.cases["amount"]))


# --- decimal marks: decided per column from its values -------------------------------------------


def test_a_semicolon_file_with_decimal_points_keeps_them() -> None:
    h = load(
        "case_id;name;timestamp;outcome;amount\n"
        "A;Qualify;2024-01-02;won;1234.50\nB;Qualify;2024-01-03;lost;12.5\n"
    )
    assert amounts(h) == {"A": 1234.5, "B": 12.5}  # was 123450 and 125
    assert "amount: decimal point" in h.report.notes


def test_a_quoted_decimal_comma_in_a_comma_file_is_one_and_a_half() -> None:
    h = load(
        'case_id,name,timestamp,outcome,amount\nA,Qualify,2024-01-02,won,"1,5"\nB,Qualify,2024-01-03,won,"2,25"\n'
    )
    assert amounts(h) == {"A": 1.5, "B": 2.25}  # was 15 and 225
    assert "amount: decimal comma" in h.report.notes


@pytest.mark.parametrize(
    ("written", "delimiter", "expected", "note"),
    [
        (['"1,234,567.00"', '"2,500.50"'], ",", [1_234_567.0, 2_500.5], "amount: decimal point, thousands ','"),
        (["1.234.567,00", "2.500,50"], ";", [1_234_567.0, 2_500.5], "amount: decimal comma, thousands '.'"),
        (["1.234,50", "2.000", "99,9"], ";", [1_234.5, 2_000.0, 99.9], "amount: decimal comma, thousands '.'"),
        (['"1,234"', "12.5"], ",", [1_234.0, 12.5], "amount: decimal point, thousands ','"),
        (["0,500", "3"], ";", [0.5, 3.0], "amount: decimal comma"),
        (["€ 1.200,50", "-3,2"], ";", [1_200.5, -3.2], "amount: decimal comma, thousands '.'"),
    ],
)
def test_thousands_separators_are_read_where_the_pattern_proves_them(
    written: list[str], delimiter: str, expected: list[float], note: str
) -> None:
    head = delimiter.join(["case_id", "name", "timestamp", "amount"])
    body = "".join(
        delimiter.join([f"C{i}", "Qualify", "2024-01-02", w]) + "\n" for i, w in enumerate(written)
    )
    h = load(f"{head}\n{body}")
    assert [amounts(h)[f"C{i}"] for i in range(len(written))] == expected
    assert note in h.report.notes


@pytest.mark.parametrize("errors", ["raise", "skip"])
def test_a_column_that_reads_two_ways_is_an_error_naming_decimal(errors: str) -> None:
    text = 'case_id,name,timestamp,amount\nA,Qualify,2024-01-02,"1,234"\nB,Qualify,2024-01-03,"2,500"\n'
    with pytest.raises(InvalidValueError, match=parts(
        "<stream>, row 2, column 'amount': found '1,234'", "1234 with a decimal point", "1.234 with a decimal comma",
        "decimal='.'", "decimal=','",
    )):
        load(text, errors=errors)
    assert amounts(load(text, decimal=".")) == {"A": 1234.0, "B": 2500.0}
    assert amounts(load(text, decimal=",")) == {"A": 1.234, "B": 2.5}
    assert "amount: decimal comma (decimal=',')" in load(text, decimal=",").report.notes


def test_the_users_decimal_wins_over_the_values() -> None:
    h = load(
        "case_id;name;timestamp;amount\nA;Qualify;2024-01-02;1.234\nB;Qualify;2024-01-03;12.5\n",
        decimal=",", errors="skip",
    )
    assert amounts(h) == {"A": 1234.0}  # a thousand, as told; 12.5 is no number so written
    assert h.report.skipped == {"unparseable amount": 1}
    with pytest.raises(InvalidValueError, match=parts("row 3, column 'amount': found '12.5'", "decimal comma")):
        load("case_id;name;timestamp;amount\nA;Qualify;2024-01-02;1.234\nB;Qualify;2024-01-03;12.5\n", decimal=",")


def test_marks_mixed_in_one_column_name_the_odd_value() -> None:
    text = "case_id;name;timestamp;amount\nA;Q;2024-01-02;1.234,50\nB;Q;2024-01-03;99,9\nC;Q;2024-01-04;12.5\n"
    with pytest.raises(InvalidValueError, match=parts(
        "row 4, column 'amount': found '12.5'", "decimal comma, thousands '.'", "decimal=",
    )):
        load(text)
    h = load(text, errors="skip")
    assert amounts(h) == {"A": 1234.5, "B": 99.9}
    assert h.report.rows_read == h.report.rows_loaded + sum(h.report.skipped.values())


def test_other_columns_of_numbers_are_read_with_their_own_mark() -> None:
    h = load(
        "case_id;name;timestamp;amount;probability;hours\n"
        "A;Qualify;2024-01-02;1.234,50;0,25;1.5\nA;Proposal;2024-01-03;1.234,50;0,5;2.25\n"
    )
    assert amounts(h) == {"A": 1234.5}
    assert h.events["probability"].tolist() == [0.25, 0.5]
    assert h.events["hours"].tolist() == [1.5, 2.25]


def test_crm_snapshot_amounts_with_decimal_points_in_a_semicolon_file() -> None:
    text = (
        "opportunity_id;deal_stage;engage_date;close_date;close_value\n"
        "A1;Won;2017-01-02;2017-02-20;1234.50\nA2;Lost;2017-01-13;2017-02-01;12.5\n"
    )
    h = load(text, mapping="crm-snapshot")
    assert amounts(h) == {"A1": 1234.5, "A2": 12.5}
    assert "close_value: decimal point" in h.report.notes


def test_text_amounts_in_excel_and_dataframes_are_decided_the_same_way(tmp_path: Path) -> None:
    df = pd.DataFrame({
        "case_id": ["A", "B", "C"], "name": "Qualify", "timestamp": ["2024-01-02", "2024-01-03", "2024-01-04"],
        "amount": pd.Series(["1.234,50", 7.25, "12,5"], dtype=object),  # an Excel sheet mixes numbers and text
    })
    assert amounts(salesproc.load_history(df)) == {"A": 1234.5, "B": 7.25, "C": 12.5}
    p = tmp_path / "deals.xlsx"
    df.to_excel(p, index=False)
    assert amounts(salesproc.load_history(p)) == {"A": 1234.5, "B": 7.25, "C": 12.5}


# --- NA is text ---------------------------------------------------------------------------------

NA_CSV = "case_id,name,timestamp,outcome,segment\nNA,Qualify,2024-01-02,won,NA\nnull,Qualify,2024-01-03,lost,N/A\n"


def test_na_and_null_are_text_in_a_csv() -> None:
    h = load(NA_CSV)
    assert h.cases["case_id"].tolist() == ["NA", "null"]
    assert h.cases["segment"].tolist() == ["NA", "N/A"]  # North America stays


def test_na_values_says_which_texts_are_missing() -> None:
    h = load(NA_CSV.replace("NA,Qualify", "A,Qualify"), na_values=["NA", "N/A"])
    assert h.cases["segment"].isna().all()
    with pytest.raises(InvalidValueError, match=parts("row 2, column 'case_id': found ''", "not empty")):
        load(NA_CSV, na_values=["NA"])
    with pytest.raises(ParameterError, match=parts("'na_values'", "list of texts", "Got int instead")):
        load(NA_CSV, na_values=3)  # type: ignore[arg-type]


def test_na_is_text_in_excel_and_parquet(tmp_path: Path) -> None:
    df = pd.DataFrame({
        "case_id": ["NA", "B"], "name": ["Qualify", "Qualify"], "timestamp": ["2024-01-02", "2024-01-03"],
        "segment": ["NA", None],
    })
    xlsx, pq = tmp_path / "d.xlsx", tmp_path / "d.parquet"
    df.to_excel(xlsx, index=False)
    df.to_parquet(pq)
    for p in (xlsx, pq):
        h = salesproc.load_history(p)
        assert h.cases["case_id"].tolist() == ["NA", "B"]
        seg = h.cases["segment"].tolist()
        assert seg[0] == "NA" and pd.isna(seg[1])  # an empty cell, a Parquet null: missing
    assert salesproc.load_history(xlsx, na_values=["NA"], errors="skip").cases["case_id"].tolist() == ["B"]


# --- Excel formulas saved without their results -------------------------------------------------


def _workbook_with_formulas(path: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Deals"
    ws.append(["case_id", "name", "timestamp", "amount"])
    ws.append(["A", "Qualify", "2024-01-02", 10])
    for r in range(3, 8):
        ws.append([f"C{r}", "Qualify", "2024-01-03", f"=D{r - 1}*2"])
    wb.save(path)
    return path


def test_formulas_without_saved_results_name_sheet_cell_and_fix(tmp_path: Path) -> None:
    p = _workbook_with_formulas(tmp_path / "deals.xlsx")
    with pytest.raises(InvalidValueError, match=parts(
        "deals.xlsx, sheet 'Deals', row 3, column 'amount': found '=D2*2'", "cell D3", "formula saved without its result",
        "5 such cells", "4 more rows like it", "Excel or LibreOffice", "save it",
    )):
        salesproc.load_history(p, errors="skip")


def test_formulas_with_saved_results_read_as_their_values(tmp_path: Path) -> None:
    p = _workbook_with_formulas(tmp_path / "deals.xlsx")
    # what Excel writes on saving: each formula with its last result
    saved = tmp_path / "saved.xlsx"
    with zipfile.ZipFile(p) as src, zipfile.ZipFile(saved, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(
                    rb"<f>D(\d+)\*2</f><v\s*>\s*</v>|<f>D(\d+)\*2</f><v\s*/>",
                    lambda m: b"<f>D%s*2</f><v>%d</v>" % (row := m.group(1) or m.group(2), 10 * 2 ** (int(row) - 1)),
                    data,
                )
            dst.writestr(item, data)
    h = salesproc.load_history(saved)
    assert amounts(h) == {"A": 10.0, "C3": 20.0, "C4": 40.0, "C5": 80.0, "C6": 160.0, "C7": 320.0}


# --- case values that differ between a case's rows ----------------------------------------------

CONFLICTS = (
    "case_id,name,timestamp,outcome,amount,segment\n"
    "A,Qualify,2024-01-02,lost,10,EU\nA,Proposal,2024-01-03,won,20,US\n"
    "B,Qualify,2024-01-02,open,5,EU\nB,Proposal,2024-01-04,open,7,US\nB,Close,2024-01-05,Won,7,US\n"
    "C,Qualify,2024-01-02,won,1,EU\nC,Proposal,2024-01-03,open,1,EU\n"
)


def test_won_and_lost_on_one_cases_rows_is_an_error_naming_both() -> None:
    with pytest.raises(InvalidValueError, match=parts(
        "<stream>, row 2, column 'outcome': found 'lost'", "one outcome per case", "row 3", "says 'won'",
        "case 'A'", "errors='skip'",
    )):
        load(CONFLICTS)


def test_conflicting_outcomes_skip_the_case_and_changes_are_noted() -> None:
    h = load(CONFLICTS, errors="skip")
    r = h.report
    assert r.skipped == {"conflicting outcomes on a case's rows": 2}
    assert r.rows_read == r.rows_loaded + sum(r.skipped.values()) == 7
    c = h.cases.set_index("case_id")
    assert c.loc["B", "outcome"] == "won" and c.loc["B", "amount"] == 7.0 and c.loc["B", "segment"] == "US"
    assert c.loc["C", "outcome"] == "open"  # reopened: the last row says so, and the summary tells
    notes = "\n".join(r.notes)
    assert "amount: 1 case with different values on their rows (e.g. case 'B': 5, later 7)" in notes
    assert "segment: 1 case with different values" in notes and "last row in time order kept" in notes
    assert "outcome: 1 case closed on a row but open on a later one (e.g. case 'C': 'won', later 'open')" in notes
    assert "case 'A'" not in notes  # skipped, not reported twice


def test_rows_out_of_time_order_keep_the_latest_value() -> None:
    h = load("case_id,name,timestamp,amount\nA,Proposal,2024-01-05,20\nA,Qualify,2024-01-02,10\n")
    assert amounts(h) == {"A": 20.0}
    assert any("e.g. case 'A': 10, later 20" in n for n in h.report.notes)


def test_agreeing_labels_are_no_conflict() -> None:
    h = load("case_id,name,timestamp,outcome\nA,Qualify,2024-01-02,Won\nA,Proposal,2024-01-03,closed_won\n")
    assert h.cases["outcome"].tolist() == ["won"]
    assert not any("outcome" in n for n in h.report.notes)


def test_a_case_table_value_wins_and_the_events_disagreement_is_not_reported() -> None:
    from salesproc.load._build import build_history

    events = pd.DataFrame({
        "case_id": ["A", "A"], "name": ["Qualify", "Proposal"], "timestamp": ["2024-01-02", "2024-01-03"],
        "outcome": ["lost", "won"],
    })
    cases = pd.DataFrame({"case_id": ["A"], "outcome": ["won"]})
    h = build_history(events, cases)
    assert h.cases["outcome"].tolist() == ["won"]


def test_numbers_are_read_once_per_distinct_value() -> None:
    # speed: a long column of few distinct amounts (the usual event log) is not parsed row by row
    n = 200_000
    values = pd.Series(np.array(["1.234,50", "99,9", "2.000"], dtype=object)[np.arange(n) % 3])
    from salesproc.load._numbers import parse_numbers

    parsed, fmt = parse_numbers(values)
    assert fmt is not None and fmt.describe() == "decimal comma, thousands '.'"
    assert parsed[:3].tolist() == [1234.5, 99.9, 2000.0]


def test_errors_are_input_errors() -> None:
    assert issubclass(InvalidValueError, InputError)


def test_excel_error_values_are_named_unless_na_values_says_they_are_gaps(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Deals"
    for row in (["case_id", "name", "timestamp", "amount"], ["A", "Qualify", "2024-01-02", 10],
                ["B", "Qualify", "2024-01-03", "#DIV/0!"]):
        ws.append(row)
    p = tmp_path / "errors.xlsx"
    wb.save(p)
    with pytest.raises(InvalidValueError, match=parts(
        "errors.xlsx, sheet 'Deals', row 3, column 'amount': found '#DIV/0!'", "cell D3 holds the Excel error #DIV/0!",
        "na_values=['#DIV/0!']",
    )):
        salesproc.load_history(p)
    h = salesproc.load_history(p, na_values=["#DIV/0!"])
    assert amounts(h)["A"] == 10.0 and np.isnan(amounts(h)["B"])


def test_a_crm_amount_updated_over_time_is_the_last_and_noted() -> None:
    text = (
        "OpportunityId,StageName,CreatedDate,Amount,CloseDate,IsWon,IsClosed,CreatedById\n"
        "O1,Prospecting,2024-01-02,10000,2024-03-01,false,false,U1\n"
        "O1,Negotiation,2024-02-01,12000,2024-03-01,false,false,U1\n"
        "O1,Closed Won,2024-03-01,12500,2024-03-01,true,true,U1\n"
    )
    h = load(text, mapping="salesforce")
    assert amounts(h) == {"O1": 12500.0}
    assert any(n.startswith("Amount: 1 case with different values") and "12000, later 12500" in n for n in h.report.notes)
