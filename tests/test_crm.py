"""CRM exports: snapshots (Maven's sales_pipeline.csv) and stage histories (Salesforce, HubSpot).

The expected values below were worked out by hand from the files in tests/data/ (each test says how).
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import salesproc
from salesproc.errors import InvalidValueError, MissingColumnError
from salesproc.load._crm import snapshot_history, stage_history
from salesproc.load._presets import detect_preset, get_preset

DATA = Path(__file__).parent / "data"
SF = DATA / "salesforce_opportunity_history.csv"
HS = DATA / "hubspot_deal_stage_history.csv"
HS_WIDE = DATA / "hubspot_deals_export.csv"


def parts(*pieces: str) -> str:
    """A regex that finds every piece, in order, anywhere in the message."""
    return "(?s)" + ".*".join(re.escape(p) for p in pieces)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def case(h: salesproc.History, case_id: str) -> pd.Series:
    return h.case(case_id)[0]


def names(h: salesproc.History, case_id: str) -> list[str]:
    return h.case(case_id)[1]["name"].astype(str).tolist()


def balanced(h: salesproc.History) -> bool:
    r = h.report
    return r.rows_read == r.rows_loaded + sum(r.skipped.values())


# --- Maven CRM snapshot (shared real-shaped data) -------------------------------------------------


@pytest.fixture(scope="module")
def maven_path(shared_data: Path) -> Path:
    return shared_data / "maven-crm" / "sales_pipeline.csv"


@pytest.fixture(scope="module")
def maven(maven_path: Path) -> salesproc.History:
    return salesproc.load_history(maven_path, mapping="crm-snapshot")


@pytest.mark.shared
def test_maven_keeps_every_opportunity_with_the_published_outcome_counts(maven: salesproc.History) -> None:
    s = maven.summary()
    assert s.cases == 8_800
    assert s.outcomes["deal"] == {"won": 4_238, "lost": 2_473, "open": 2_089}
    assert (s.rows_read, s.rows_loaded, dict(s.skipped)) == (8_800, 8_800, {})
    # Engaging at engage_date for every opportunity past Prospecting; won/lost are outcomes, not events
    assert s.milestones == {"Engaging": 8_300}
    assert s.cases_without_events == 500


@pytest.mark.shared
def test_maven_won_amounts_match_the_file(maven: salesproc.History, maven_path: Path) -> None:
    with maven_path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    won_sum = sum(float(r["close_value"]) for r in rows if r["deal_stage"] == "Won")
    won_ids = {r["opportunity_id"] for r in rows if r["deal_stage"] == "Won"}
    c = maven.cases
    won = c[c["outcome"] == "won"]
    assert set(won["case_id"]) == won_ids
    assert won["amount"].sum() == pytest.approx(won_sum, abs=1e-6)
    assert won_sum == pytest.approx(10_005_534)
    assert (c.loc[c["outcome"] == "lost", "amount"] == 0).all()  # Maven records 0 for lost deals


@pytest.mark.shared
def test_maven_dates_stages_and_attributes(maven: salesproc.History, maven_path: Path) -> None:
    with maven_path.open(newline="") as fh:
        first = next(csv.DictReader(fh))  # 1C1I7A6R, Moses Frase, GTX Plus Basic, Cancity, Won ...
    row = case(maven, first["opportunity_id"])
    assert row["outcome"] == "won" and row["stage"] == "Won"
    assert row["created"] == ts(first["engage_date"]) and row["closed"] == ts(first["close_date"])
    assert row["amount"] == float(first["close_value"])
    assert row["owner"] == first["sales_agent"]
    assert (row["product"], row["account"]) == (first["product"], first["account"])
    assert names(maven, first["opportunity_id"]) == ["Engaging"]
    c = maven.cases
    assert c["stage"].value_counts().to_dict() == {"Won": 4_238, "Lost": 2_473, "Engaging": 1_589, "Prospecting": 500}
    assert c.loc[c["outcome"] == "open", "closed"].isna().all()


@pytest.mark.shared
def test_maven_undated_prospects_get_the_snapshot_date(maven: salesproc.History) -> None:
    c = maven.cases
    undated = c[~c["created_known"]]
    assert len(undated) == 500 and set(undated["stage"]) == {"Prospecting"}
    # the latest date the file records is the last close date, 2017-12-31
    assert (undated["created"] == ts("2017-12-31")).all()
    assert any("500 opportunities have no date at all" in n and "2017-12-31" in n for n in maven.report.notes)
    # a view before the snapshot date does not know them: no leakage
    assert len(maven.as_of("2017-12-30")) == 8_300


@pytest.mark.shared
def test_maven_is_detected_without_a_mapping(maven_path: Path, maven: salesproc.History) -> None:
    h = salesproc.load_history(maven_path)
    pd.testing.assert_frame_equal(h.cases, maven.cases)
    pd.testing.assert_frame_equal(h.events, maven.events)


def test_snapshot_as_of_option_sets_the_date_of_undated_opportunities() -> None:
    df = pd.DataFrame({
        "opportunity_id": ["A", "B"], "deal_stage": ["Engaging", "Prospecting"],
        "engage_date": ["2017-03-01", None], "close_date": [None, None], "close_value": [None, None],
    })
    p = get_preset("crm-snapshot")
    opts = {k: v for k, v in p.options.items() if k != "required"}
    cols = {k: v for k, v in p.mapping.items() if v in df.columns}
    h = snapshot_history(df, cols, as_of="2017-06-30", **opts)
    assert case(h, "B")["created"] == ts("2017-06-30") and not case(h, "B")["created_known"]
    assert case(h, "A")["created"] == ts("2017-03-01") and case(h, "A")["created_known"]
    h2 = snapshot_history(df, cols, **opts)  # default: the latest date in the file
    assert case(h2, "B")["created"] == ts("2017-03-01")


def test_snapshot_leaves_its_input_unchanged() -> None:
    df = pd.DataFrame({
        "opportunity_id": ["A", "B"], "deal_stage": ["Won", "Prospecting"],
        "engage_date": ["2017-03-01", None], "close_date": ["2017-04-01", None], "close_value": [100, None],
        "product": ["GTX", "MG"],
    })
    before = df.copy(deep=True)
    h = salesproc.load_history(df, mapping="crm-snapshot")
    pd.testing.assert_frame_equal(df, before)
    assert case(h, "A")["closed"] == ts("2017-04-01")


# --- Salesforce OpportunityHistory --------------------------------------------------------------


@pytest.fixture(scope="module")
def sf() -> salesproc.History:
    return salesproc.load_history(SF, mapping="salesforce")


def test_salesforce_outcomes_close_times_and_amounts(sf: salesproc.History) -> None:
    c = sf.cases.set_index("case_id")
    assert c["outcome"].astype(str).to_dict() == {
        "0065g00000Q1aAAAA1": "won", "0065g00000Q1bBBBB2": "lost",
        "0065g00000Q1cCCCC3": "open", "0065g00000Q1dDDDD4": "won",
    }
    # closed = when the deal entered its won/lost stage (the history row's CreatedDate)
    assert c.loc["0065g00000Q1aAAAA1", "closed"] == ts("2024-04-26 15:05")
    assert c.loc["0065g00000Q1bBBBB2", "closed"] == ts("2024-06-03 17:30")
    assert c.loc["0065g00000Q1dDDDD4", "closed"] == ts("2024-02-28 12:00")  # rows out of order in the file
    assert pd.isna(c.loc["0065g00000Q1cCCCC3", "closed"])
    # amount = the latest row's Amount (42000 after the 45000 proposal; 90000 after 95000)
    assert c["amount"].to_dict() == {
        "0065g00000Q1aAAAA1": 42_000.0, "0065g00000Q1bBBBB2": 15_000.0,
        "0065g00000Q1cCCCC3": 90_000.0, "0065g00000Q1dDDDD4": 12_000.0,
    }
    assert c.loc["0065g00000Q1aAAAA1", "created"] == ts("2024-01-08 09:15")
    assert c.loc["0065g00000Q1aAAAA1", "owner"] == "0055g00000U1xAAAA1"


def test_salesforce_close_date_pushes_and_expected_close(sf: salesproc.History) -> None:
    c = sf.cases.set_index("case_id")
    # A: 03-29 -> 04-30 (pushed), 04-30 -> 04-26 (pulled in) = 1
    # B: 04-15 -> 05-31 -> 06-28 (two pushes), then 06-03 on closing = 2
    # C: 05-31 -> 06-28 -> 07-31 (two pushes), then 07-15 (pulled in) = 2
    # D: in time order 03-15, 03-15, 02-28 = 0
    assert c["close_date_changes"].to_dict() == {
        "0065g00000Q1aAAAA1": 1, "0065g00000Q1bBBBB2": 2, "0065g00000Q1cCCCC3": 2, "0065g00000Q1dDDDD4": 0,
    }
    assert c.loc["0065g00000Q1cCCCC3", "expected_close"] == ts("2024-07-15")
    assert pd.isna(c.loc["0065g00000Q1aAAAA1", "expected_close"])
    assert c.loc["0065g00000Q1aAAAA1", "close_date"] == ts("2024-04-26")


def test_salesforce_events_are_stage_entries(sf: salesproc.History) -> None:
    assert names(sf, "0065g00000Q1aAAAA1") == [
        "Prospecting", "Qualification", "Proposal/Price Quote", "Negotiation/Review",
    ]
    assert names(sf, "0065g00000Q1bBBBB2") == ["Prospecting", "Qualification"]
    assert names(sf, "0065g00000Q1cCCCC3") == ["Prospecting", "Qualification", "Needs Analysis"]
    assert names(sf, "0065g00000Q1dDDDD4") == ["Prospecting", "Value Proposition"]
    ev = sf.case("0065g00000Q1aAAAA1")[1]
    assert ev["timestamp"].tolist() == [
        ts("2024-01-08 09:15"), ts("2024-01-22 14:02"), ts("2024-02-19 10:30"), ts("2024-04-10 11:20"),
    ]
    # the stage-change row's extras are event attributes (Proposal entered at probability 75, BestCase)
    assert ev["Probability"].tolist() == [10, 20, 75, 90]
    assert ev["ForecastCategory"].tolist() == ["Pipeline", "Pipeline", "BestCase", "Commit"]
    assert ev["ExpectedRevenue"].tolist() == [4_000.0, 8_000.0, 33_750.0, 37_800.0]
    assert (ev["owner"] == "0055g00000U1xAAAA1").all()
    r = sf.report
    assert (r.rows_read, r.rows_loaded, dict(r.skipped)) == (19, 19, {})
    assert any("5 rows changed other fields" in n for n in r.notes)


def test_salesforce_is_detected_and_flags_are_optional(sf: salesproc.History) -> None:
    detected = salesproc.load_history(SF)
    pd.testing.assert_frame_equal(detected.cases, sf.cases)
    # without IsWon/IsClosed the final stage names ("Closed Won"/"Closed Lost") give the same outcomes
    df = pd.read_csv(SF, dtype={"OpportunityId": str}).drop(columns=["IsWon", "IsClosed"])
    h = salesproc.load_history(df, mapping="salesforce")
    pd.testing.assert_frame_equal(h.cases, sf.cases)
    pd.testing.assert_frame_equal(h.events, sf.events)


def test_salesforce_flags_win_over_stage_names() -> None:
    # an org with its own closed stage names: the flags on the latest row decide
    df = pd.DataFrame({
        "OpportunityId": ["X", "X", "Y", "Y"],
        "StageName": ["Discovery", "Signed", "Discovery", "No Decision"],
        "CreatedDate": ["2024-01-01", "2024-02-01", "2024-01-05", "2024-03-01"],
        "IsWon": ["false", "true", "false", "false"],
        "IsClosed": ["false", "true", "false", "true"],
    })
    h = salesproc.load_history(df, mapping="salesforce")
    assert case(h, "X")["outcome"] == "won" and case(h, "X")["closed"] == ts("2024-02-01")
    assert case(h, "Y")["outcome"] == "lost" and case(h, "Y")["closed"] == ts("2024-03-01")
    assert names(h, "X") == ["Discovery"] and names(h, "Y") == ["Discovery"]


def test_salesforce_reopened_deal_keeps_the_earlier_closed_stage_as_event() -> None:
    df = pd.DataFrame({
        "OpportunityId": ["R"] * 3,
        "StageName": ["Qualification", "Closed Lost", "Negotiation/Review"],
        "CreatedDate": ["2024-01-01", "2024-02-01", "2024-03-01"],
    })
    h = salesproc.load_history(df, mapping="salesforce")
    assert case(h, "R")["outcome"] == "open"
    assert names(h, "R") == ["Qualification", "Closed Lost", "Negotiation/Review"]
    assert any("reopened" in n for n in h.report.notes)
    # as it stood between the loss and the reopening, the deal was lost; after it, open again
    then = h.as_of("2024-02-15")
    assert case(then, "R")["outcome"] == "lost" and case(then, "R")["closed"] == ts("2024-02-01")
    assert case(h.as_of("2024-03-15"), "R")["outcome"] == "open"


# --- HubSpot -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hs() -> salesproc.History:
    return salesproc.load_history(HS, mapping="hubspot")


def test_hubspot_stage_history_outcomes_events_and_pushes(hs: salesproc.History) -> None:
    c = hs.cases.set_index("case_id")
    assert c["outcome"].astype(str).to_dict() == {
        "18273645011": "won", "18273645012": "lost", "18273645013": "open", "18273645014": "won",
    }
    assert c.loc["18273645011", "closed"] == ts("2024-04-02 16:20")
    assert c.loc["18273645012", "closed"] == ts("2024-02-27 15:45")
    assert c.loc["18273645014", "closed"] == ts("2024-03-28 17:10")
    # 03-29 -> 04-30 (1) ; none ; 04-30 -> 05-31 -> 06-28 (2) ; none
    assert c["close_date_changes"].to_dict() == {
        "18273645011": 1, "18273645012": 0, "18273645013": 2, "18273645014": 0,
    }
    assert c.loc["18273645013", "expected_close"] == ts("2024-06-28")
    assert c.loc["18273645013", "stage"] == "Decision Maker Bought-In"
    assert c["amount"].to_dict() == {
        "18273645011": 26_000.0, "18273645012": 8_000.0, "18273645013": 18_000.0, "18273645014": 5_000.0,
    }
    assert c["segment"].to_dict()["18273645014"] == "Renewals Pipeline"
    assert c.loc["18273645011", "owner"] == "Maria Lopez"
    assert c.loc["18273645011", "Deal Name"] == "Acme Corp - Annual licence"
    assert c.loc["18273645011", "created"] == ts("2024-01-08 09:15")
    assert names(hs, "18273645011") == [
        "Appointment Scheduled", "Qualified To Buy", "Presentation Scheduled", "Contract Sent",
    ]
    assert names(hs, "18273645012") == ["Appointment Scheduled", "Qualified To Buy"]
    assert names(hs, "18273645013") == ["Appointment Scheduled", "Qualified To Buy", "Decision Maker Bought-In"]
    assert names(hs, "18273645014") == ["Appointment Scheduled", "Contract Sent"]
    assert (hs.report.rows_read, hs.report.rows_loaded) == (14, 14)


def test_hubspot_internal_stage_ids_and_old_id_column() -> None:
    csv_text = (
        "Deal ID,Deal Stage,Date entered stage,Amount\n"
        "501,appointmentscheduled,2024-05-02 09:00,1000\n"
        "501,contractsent,2024-05-20 10:00,1200\n"
        "501,closedwon,2024-06-01 12:00,1200\n"
        "502,appointmentscheduled,2024-05-03 09:00,700\n"
        "502,closedlost,2024-05-09 16:00,700\n"
    )
    h = salesproc.load_history(io.StringIO(csv_text), mapping="hubspot")
    assert case(h, "501")["outcome"] == "won" and case(h, "501")["closed"] == ts("2024-06-01 12:00")
    assert case(h, "502")["outcome"] == "lost"
    assert names(h, "501") == ["Appointment Scheduled", "Contract Sent"]
    assert case(h, "501")["stage"] == "Closed Won"


def test_hubspot_wide_deal_export_is_read_as_a_snapshot() -> None:
    h = salesproc.load_history(HS_WIDE, mapping="hubspot")
    c = h.cases.set_index("case_id")
    assert c["outcome"].astype(str).to_dict() == {
        "18273645011": "won", "18273645012": "lost", "18273645013": "open", "18273645015": "open",
    }
    # closed = the 'Date entered "Closed Won/Lost"' column; open deals keep Close Date as expected close
    assert c.loc["18273645011", "closed"] == ts("2024-04-02 16:20")
    assert c.loc["18273645012", "closed"] == ts("2024-02-27 15:45")
    assert c.loc["18273645013", "expected_close"] == ts("2024-06-28")
    assert c.loc["18273645015", "expected_close"] == ts("2024-07-31")
    assert names(h, "18273645011") == ["Appointment Scheduled", "Qualified To Buy", "Contract Sent"]
    assert names(h, "18273645015") == ["Appointment Scheduled"]
    assert c.loc["18273645012", "Deal Name"] == "Globex - Pilot"
    assert h.report.rows_read == 4 and h.report.rows_loaded == 4


def test_hubspot_is_detected_without_a_mapping(hs: salesproc.History) -> None:
    assert detect_preset(pd.read_csv(HS, nrows=0).columns.tolist()).name == "hubspot"
    h = salesproc.load_history(HS)
    pd.testing.assert_frame_equal(h.cases, hs.cases)


def test_outcome_values_name_custom_closed_stages() -> None:
    df = pd.DataFrame({
        "Record ID": ["7", "7"], "Deal Stage": ["Demo", "Signed (won)"],
        "Date entered stage": ["2024-01-02", "2024-01-30"],
    })
    h = salesproc.load_history(df, mapping="hubspot", outcome_values={"Signed (won)": "won"})
    assert case(h, "7")["outcome"] == "won" and names(h, "7") == ["Demo"]
    h = salesproc.load_history(df, mapping="hubspot", outcome_events={"won": ["Signed (won)"]})
    assert case(h, "7")["outcome"] == "won"
    h = salesproc.load_history(df, mapping="hubspot")  # unnamed stages are stages of open deals
    assert case(h, "7")["outcome"] == "open" and names(h, "7") == ["Demo", "Signed (won)"]


# --- errors ------------------------------------------------------------------------------------


MAVEN_HEAD = "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value\n"


def test_missing_stage_column_lists_columns_and_suggests_the_fix(tmp_path: Path) -> None:
    p = tmp_path / "pipeline.csv"
    p.write_text(MAVEN_HEAD.replace("deal_stage", "Stage") + "A1,Ann,GTX,Acme,Won,2017-01-02,2017-02-01,1200\n")
    with pytest.raises(MissingColumnError, match=parts(
        "pipeline.csv", "no column 'deal_stage'", "needed for 'stage'",
        "Columns present: 'opportunity_id', 'sales_agent', 'product', 'account', 'Stage', 'engage_date'",
        "Fix:", "rename(columns={'Stage': 'deal_stage'})", "mapping='crm-snapshot'",
    )) as info:
        salesproc.load_history(p, mapping="crm-snapshot")
    assert info.value.canonical == "stage"


def test_missing_salesforce_stage_column(tmp_path: Path) -> None:
    p = tmp_path / "history.csv"
    p.write_text("OpportunityId,Stage Name,CreatedDate\n006X,Prospecting,2024-01-01\n")
    with pytest.raises(MissingColumnError, match=parts(
        "history.csv", "no column 'StageName'", "'OpportunityId', 'Stage Name', 'CreatedDate'",
        "rename(columns={'Stage Name': 'StageName'})", "mapping='salesforce'",
    )):
        salesproc.load_history(p, mapping="salesforce")


def test_unknown_stage_in_strict_mode_names_row_column_value_and_fix(tmp_path: Path) -> None:
    p = tmp_path / "pipeline.csv"
    p.write_text(
        MAVEN_HEAD
        + "A1,Ann,GTX,Acme,Won,2017-01-02,2017-02-01,1200\n"
        + "A2,Ann,GTX,Acme,Engaging,2017-01-03,,\n"
        + "A3,Bob,MG,,Negotiating,2017-01-04,,\n"
    )
    with pytest.raises(InvalidValueError, match=parts(
        "pipeline.csv, row 4, column 'deal_stage': found 'Negotiating'",
        "expected one of the stages 'Prospecting', 'Engaging', 'Won', 'Lost'",
        "Fix:", "outcome_values={'Negotiating': 'open'}", "errors='skip'",
    )) as info:
        salesproc.load_history(p, mapping="crm-snapshot")
    assert (info.value.row, info.value.column, info.value.value) == (4, "deal_stage", "Negotiating")

    lenient = salesproc.load_history(p, mapping="crm-snapshot", errors="skip")
    assert lenient.report.rows_read == 3 and lenient.report.rows_loaded == 2
    assert dict(lenient.report.skipped) == {"unknown stage in 'deal_stage'": 1}
    fixed = salesproc.load_history(p, mapping="crm-snapshot", outcome_values={"Negotiating": "open"})
    assert case(fixed, "A3")["outcome"] == "open" and case(fixed, "A3")["stage"] == "Negotiating"


def test_won_without_close_date_and_bad_dates(tmp_path: Path) -> None:
    p = tmp_path / "pipeline.csv"
    p.write_text(
        MAVEN_HEAD
        + "A1,Ann,GTX,Acme,Won,2017-01-02,,1200\n"
        + "A2,Ann,GTX,Acme,Engaging,not a date,,\n"
        + "A3,Ann,GTX,Acme,Lost,2017-01-02,2017-01-20,0\n"
    )
    with pytest.raises(InvalidValueError, match=parts(
        "row 3, column 'engage_date': found 'not a date'", "expected a date such as 2024-03-31",
        "dayfirst=True",
    )):
        salesproc.load_history(p, mapping="crm-snapshot")
    with pytest.raises(InvalidValueError, match=parts(
        "row 2, column 'close_date': found ''", "the stage 'Won' means the opportunity is closed",
    )):
        salesproc.load_history(io.StringIO(MAVEN_HEAD + "A1,Ann,GTX,Acme,Won,2017-01-02,,1200\n"), mapping="crm-snapshot")
    h = salesproc.load_history(p, mapping="crm-snapshot", errors="skip")
    assert dict(h.report.skipped) == {
        "unreadable date in 'engage_date'": 1, "closed opportunity without a close date": 1,
    }
    assert h.cases["case_id"].tolist() == ["A3"] and balanced(h)


def test_european_snapshot_needs_dayfirst_and_decimal_comma() -> None:
    text = (
        "opportunity_id;deal_stage;engage_date;close_date;close_value\n"
        "A1;Won;02.01.2017;20.02.2017;1.200,50\nA2;Engaging;13.01.2017;;\n"
    )
    with pytest.raises(InvalidValueError, match=parts(
        "row 3, column 'engage_date': found '13.01.2017'", "dayfirst=True",
    )):
        salesproc.load_history(io.StringIO(text), mapping="crm-snapshot")
    h = salesproc.load_history(io.StringIO(text), mapping="crm-snapshot", dayfirst=True)
    assert case(h, "A1")["created"] == ts("2017-01-02") and case(h, "A1")["closed"] == ts("2017-02-20")
    assert case(h, "A1")["amount"] == 1_200.5  # ';' files default to decimal commas
    assert case(h, "A2")["created"] == ts("2017-01-13")


def test_repeated_opportunity_in_a_snapshot(tmp_path: Path) -> None:
    p = tmp_path / "pipeline.csv"
    p.write_text(MAVEN_HEAD + "A1,Ann,GTX,Acme,Engaging,2017-01-02,,\nA1,Ann,GTX,Acme,Won,2017-01-02,2017-02-01,10\n")
    with pytest.raises(InvalidValueError, match=parts(
        "row 3, column 'opportunity_id': found 'A1'", "each opportunity once", "mapping='salesforce'",
    )):
        salesproc.load_history(p, mapping="crm-snapshot")


def test_salesforce_bad_rows_are_named_or_skipped_and_counted(tmp_path: Path) -> None:
    text = SF.read_text().splitlines()
    text[3] = text[3].replace("2024-02-19T10:30:00.000+0000", "2024-02-30T10:30:00.000+0000")  # row 4
    text[8] = text[8].replace(",false,false,", ",maybe,false,")  # row 9
    p = tmp_path / "history.csv"
    p.write_text("\n".join(text) + "\n")
    with pytest.raises(InvalidValueError, match=parts(
        "history.csv, row 4, column 'CreatedDate': found '2024-02-30T10:30:00.000+0000'", "the date and time of the change",
    )):
        salesproc.load_history(p, mapping="salesforce")
    h = salesproc.load_history(p, mapping="salesforce", errors="skip")
    assert dict(h.report.skipped) == {
        "unreadable date in 'CreatedDate'": 1, "unreadable yes/no value in 'IsWon'": 1,
    }
    assert (h.report.rows_read, h.report.rows_loaded) == (19, 17)
    assert "Proposal/Price Quote" in names(h, "0065g00000Q1aAAAA1")  # re-entered by the row after it


# --- property: stage histories against a plain-Python reading ------------------------------------


STAGES = ["Prospecting", "Qualification", "Proposal", "Closed Won", "Closed Lost"]


@settings(max_examples=25, deadline=None)
@given(
    deals=st.lists(
        st.lists(st.tuples(st.sampled_from(STAGES), st.integers(0, 40)), min_size=1, max_size=6),
        min_size=1, max_size=5,
    )
)
def test_stage_history_matches_a_plain_reading(deals: list[list[tuple[str, int]]]) -> None:
    base = pd.Timestamp("2024-01-01", tz="UTC")
    rows = []
    for i, changes in enumerate(deals):
        for j, (stage, close_offset) in enumerate(changes):
            rows.append({
                "OpportunityId": f"D{i}", "StageName": stage,
                "CreatedDate": (base + pd.Timedelta(days=j)).isoformat(),
                "CloseDate": (base + pd.Timedelta(days=30 + close_offset)).date().isoformat(),
            })
    df = pd.DataFrame(rows).iloc[::-1].reset_index(drop=True)  # file order must not matter
    h = stage_history(df, get_preset("salesforce").mapping, won_stages=["Closed Won"], lost_stages=["Closed Lost"])
    assert h.report.rows_read == len(rows) == h.report.rows_loaded
    for i, changes in enumerate(deals):
        stages = [s for s, _ in changes]
        runs = [s for j, s in enumerate(stages) if j == 0 or s != stages[j - 1]]
        final = stages[-1]
        outcome = {"Closed Won": "won", "Closed Lost": "lost"}.get(final, "open")
        expected_events = runs[:-1] if outcome != "open" else runs
        row = case(h, f"D{i}")
        assert row["outcome"] == outcome
        assert names(h, f"D{i}") == expected_events
        offsets = [o for _, o in changes]
        assert row["close_date_changes"] == sum(b > a for a, b in itertools.pairwise(offsets))
        if outcome != "open":
            entered = max(j for j, s in enumerate(stages) if j == 0 or s != stages[j - 1])
            assert row["closed"] == base + pd.Timedelta(days=entered)
        else:
            assert row["expected_close"] == base + pd.Timedelta(days=30 + offsets[-1])
        assert row["created"] == base
    assert np.isin(h.events["name"].astype(str), STAGES).all()


def test_a_preset_with_renamed_columns_loads_through_a_mapping_dict(tmp_path) -> None:
    import salesproc

    src = tmp_path / "pipeline.csv"
    src.write_text(
        "Opp,Agent,Stage,Engaged,Closed,Value\n"
        "O1,Ann,Won,2024-01-02,2024-02-01,100\n"
        "O2,Bob,Lost,2024-01-03,2024-01-20,0\n"
        "O3,Ann,Engaging,2024-01-05,,\n"
    )
    h = salesproc.load_history(
        src,
        mapping={"preset": "crm-snapshot", "case_id": "Opp", "owner": "Agent", "stage": "Stage",
                 "created": "Engaged", "closed": "Closed", "amount": "Value"},
    )
    assert h.cases.set_index("case_id")["outcome"].to_dict() == {"O1": "won", "O2": "lost", "O3": "open"}
    assert h.cases.set_index("case_id").loc["O1", "amount"] == 100.0
