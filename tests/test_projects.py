"""Project milestone tables: planned vs actual dates -> project cases, on time / late / open.

Expected values were worked out by hand from tests/data/project_milestones.csv:

========  ==========================  =============  ==============  =======
project   milestones done / total     target         closed          outcome
========  ==========================  =============  ==============  =======
P-101     4 / 4                       2024-04-02 (1) 2024-03-28      on_time
P-102     3 / 3                       2024-04-12 (1) 2024-05-03      late
P-103     2 / 4                       2024-06-28 (2) -               open
P-104     2 / 2                       2024-02-20 (2) 2024-02-20      on_time
========  ==========================  =============  ==============  =======

(1) the planned date of the last milestone; (2) the project's target_date column.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

import salesproc
from salesproc.errors import InvalidValueError, MissingColumnError

TABLE = Path(__file__).parent / "data" / "project_milestones.csv"


def parts(*pieces: str) -> str:
    return "(?s)" + ".*".join(re.escape(p) for p in pieces)


def day(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.fixture(scope="module")
def projects() -> salesproc.History:
    return salesproc.load_history(TABLE, mapping="project-milestones")


def test_outcomes_targets_and_close_dates(projects: salesproc.History) -> None:
    c = projects.cases.set_index("case_id")
    assert (c["kind"] == "project").all()
    assert c["outcome"].astype(str).to_dict() == {
        "P-101": "on_time", "P-102": "late", "P-103": "open", "P-104": "on_time",
    }
    assert c["status"].astype(str).to_dict() == {
        "P-101": "success", "P-102": "failure", "P-103": "open", "P-104": "success",
    }
    assert c["target_date"].to_dict() == {
        "P-101": day("2024-04-02"), "P-102": day("2024-04-12"),
        "P-103": day("2024-06-28"), "P-104": day("2024-02-20"),
    }
    assert c.loc["P-101", "closed"] == day("2024-03-28")  # Go-live came 5 days early
    assert c.loc["P-102", "closed"] == day("2024-05-03")  # Cutover 21 days late
    assert pd.isna(c.loc["P-103", "closed"])
    assert c.loc["P-104", "closed"] == day("2024-02-20")  # on the target day counts as on time
    # no start column: created is the earliest planned or actual date
    assert c["created"].to_dict() == {
        "P-101": day("2024-01-08"), "P-102": day("2024-02-05"),
        "P-103": day("2024-03-04"), "P-104": day("2024-01-15"),
    }
    assert c["project_name"].to_dict()["P-103"] == "Partner portal"


def test_progress_attributes_of_open_projects(projects: salesproc.History) -> None:
    c = projects.cases.set_index("case_id")
    assert c["milestones_total"].to_dict() == {"P-101": 4, "P-102": 3, "P-103": 4, "P-104": 2}
    assert c["milestones_done"].to_dict() == {"P-101": 4, "P-102": 3, "P-103": 2, "P-104": 2}
    assert c.loc["P-103", "next_milestone"] == "Beta"
    assert c.loc["P-103", "next_planned"] == day("2024-05-17")
    assert pd.isna(c.loc["P-101", "next_milestone"]) and pd.isna(c.loc["P-101", "next_planned"])


def test_achieved_milestones_are_events_with_their_plan(projects: salesproc.History) -> None:
    s = projects.summary()
    assert s.events == 11 and (s.rows_read, s.rows_loaded, dict(s.skipped)) == (13, 13, {})
    _, ev = projects.case("P-102")
    assert ev["name"].astype(str).tolist() == ["Kickoff", "Mapping approved", "Cutover"]
    assert ev["timestamp"].tolist() == [day("2024-02-05"), day("2024-03-08"), day("2024-05-03")]
    assert ev["planned"].tolist() == [day("2024-02-05"), day("2024-02-23"), day("2024-04-12")]
    assert ev["slip_days"].tolist() == [0.0, 14.0, 21.0]
    assert ev["owner"].tolist() == ["Lea Brandt", "Lea Brandt", "Raj Patel"]
    # milestones not yet achieved are not events
    _, ev3 = projects.case("P-103")
    assert ev3["name"].astype(str).tolist() == ["Kickoff", "Design sign-off"]
    assert (ev3["type"] == "milestone").all()


def test_detected_without_a_mapping(projects: salesproc.History) -> None:
    h = salesproc.load_history(TABLE)
    pd.testing.assert_frame_equal(h.cases, projects.cases)
    pd.testing.assert_frame_equal(h.events, projects.events)


def test_excel_workbook_of_the_same_table_loads_the_same(tmp_path: Path, projects: salesproc.History) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Milestones"
    with TABLE.open(newline="") as fh:
        rows = list(csv.reader(fh))
    ws.append(rows[0])
    date_cols = {rows[0].index(c) for c in ("planned_date", "actual_date", "target_date")}
    for r in rows[1:]:
        ws.append([
            (dt.datetime.fromisoformat(v) if i in date_cols else v) if v else None for i, v in enumerate(r)
        ])
    for cell in ws["D"][1:] + ws["E"][1:]:
        cell.number_format = "yyyy-mm-dd"
    path = tmp_path / "milestones.xlsx"
    wb.save(path)
    h = salesproc.load_history(path, mapping="project-milestones")
    pd.testing.assert_frame_equal(h.cases, projects.cases)
    pd.testing.assert_frame_equal(h.events, projects.events)
    assert h.report.source == str(path)


def test_explicit_start_and_outcome_columns() -> None:
    df = pd.DataFrame({
        "project_id": ["A", "A", "B"], "milestone": ["Kickoff", "Launch", "Kickoff"],
        "planned_date": ["2024-02-01", "2024-03-01", "2024-02-01"],
        "actual_date": ["2024-02-02", None, "2024-02-01"],
        "start_date": ["2024-01-15", "2024-01-15", "2024-01-20"],
        "status": [None, None, "Cancelled"],
    })
    before = df.copy(deep=True)
    cols = {"case_id": "project_id", "name": "milestone", "planned": "planned_date",
            "actual": "actual_date", "created": "start_date", "outcome": "status"}
    from salesproc.load import LoadOptions
    from salesproc.load._projects import milestone_table_history

    h = milestone_table_history(df, cols, options=LoadOptions(outcome_values={"Cancelled": "failed"}))
    pd.testing.assert_frame_equal(df, before)
    c = h.cases.set_index("case_id")
    assert c.loc["A", "created"] == day("2024-01-15") and c.loc["A", "outcome"] == "open"
    assert c.loc["B", "outcome"] == "failed" and c.loc["B", "status"] == "failure"


# --- errors ------------------------------------------------------------------------------------

HEAD = "project_id,milestone,planned_date,actual_date\n"


def test_missing_actual_column_names_the_preset_fix() -> None:
    with pytest.raises(MissingColumnError, match=parts(
        "no column 'actual_date'", "Columns present: 'project_id', 'milestone', 'planned_date', 'Actual Date'",
        "rename(columns={'Actual Date': 'actual_date'})", "mapping='project-milestones'",
    )):
        salesproc.load_history(
            io.StringIO("project_id,milestone,planned_date,Actual Date\nP,Kickoff,2024-01-01,\n"),
            mapping="project-milestones",
        )


def test_bad_cells_name_row_column_and_value() -> None:
    text = HEAD + "P1,Kickoff,2024-01-08,2024-01-09\nP1,Go-live,2024-13-45,\nP2,Kickoff,,\n"
    with pytest.raises(InvalidValueError, match=parts(
        "<stream>, row 3, column 'planned_date': found '2024-13-45'", "expected a date",
    )):
        salesproc.load_history(io.StringIO(text), mapping="project-milestones")
    h = salesproc.load_history(io.StringIO(text), mapping="project-milestones", errors="skip")
    assert dict(h.report.skipped) == {
        "unreadable date in 'planned_date'": 1, "milestone with neither planned nor actual date": 1,
    }
    assert (h.report.rows_read, h.report.rows_loaded) == (3, 1)
    assert h.cases["case_id"].tolist() == ["P1"]


def test_repeated_milestone_and_finished_project_without_plan() -> None:
    with pytest.raises(InvalidValueError, match=parts(
        "row 3, column 'milestone': found 'Kickoff'", "each milestone once per project",
    )):
        salesproc.load_history(
            io.StringIO(HEAD + "P1,Kickoff,2024-01-08,\nP1,Kickoff,2024-01-09,\n"), mapping="project-milestones"
        )
    text = HEAD + "P1,Kickoff,,2024-01-08\nP1,Go-live,,2024-02-01\nP2,Kickoff,2024-01-10,2024-01-10\n"
    with pytest.raises(InvalidValueError, match=parts(
        "row 2, column 'planned_date': found 'P1'", "to tell on time from late", "target_date",
    )):
        salesproc.load_history(io.StringIO(text), mapping="project-milestones")
    h = salesproc.load_history(io.StringIO(text), mapping="project-milestones", errors="skip")
    assert dict(h.report.skipped) == {"finished project without a planned end date": 2}
    assert (h.report.rows_read, h.report.rows_loaded) == (3, 1)
    assert h.cases["outcome"].astype(str).tolist() == ["on_time"]
