"""The History API on a small history whose answers are known by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import salesproc
from salesproc import History

#   case  kind     outcome  created     closed      segment
#   A     deal     won      2024-01-01  2024-02-01  SMB
#   B     deal     lost     2024-01-15  2024-03-10  ENT
#   C     deal     open     2024-02-20  -           SMB
#   P     project  on_time  2024-01-05  2024-01-25  ENT  (planned end 2024-01-31: on time)
ROWS = [
    ("A", "Qualify", "2024-01-01", "won", "deal", "SMB", None, None),
    ("A", "Proposal", "2024-01-10", "won", "deal", "SMB", None, None),
    ("A", "Close", "2024-02-01", "won", "deal", "SMB", None, None),
    ("B", "Qualify", "2024-01-15", "lost", "deal", "ENT", None, None),
    ("B", "Proposal", "2024-02-10", "lost", "deal", "ENT", None, None),
    ("B", "Close", "2024-03-10", "lost", "deal", "ENT", None, None),
    ("C", "Qualify", "2024-02-20", "open", "deal", "SMB", None, None),
    ("C", "Proposal", "2024-03-05", "open", "deal", "SMB", None, None),
    ("P", "Kickoff", "2024-01-05", None, "project", "ENT", "2024-01-31", "2024-01-25"),
    ("P", "Delivery", "2024-01-25", None, "project", "ENT", "2024-01-31", "2024-01-25"),
]


@pytest.fixture
def history() -> History:
    df = pd.DataFrame(
        ROWS, columns=["case_id", "name", "timestamp", "outcome", "kind", "segment", "target_date", "closed"],
    )
    return salesproc.load_history(df)


def ids(h: History) -> list[str]:
    return h.cases["case_id"].tolist()


def test_the_fixture_is_what_the_table_says(history: History) -> None:
    c = history.cases.set_index("case_id")
    assert c["outcome"].tolist() == ["won", "lost", "open", "on_time"]
    assert c.loc["P", "closed"] == pd.Timestamp("2024-01-25", tz="UTC")
    assert pd.isna(c.loc["C", "closed"])


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"start": "2024-01-10", "end": "2024-02-01"}, ["B"]),
        ({"start": "2024-01-10", "end": "2024-02-01", "by": "created"}, ["B"]),
        ({"start": "2024-01-20", "end": "2024-02-15", "by": "closed"}, ["A", "P"]),
        ({"start": "2024-02-15", "end": "2024-03-01", "by": "active"}, ["B", "C"]),
        ({"start": "2024-03-11", "by": "active"}, ["C"]),
        ({"end": "2024-01-02", "by": "active"}, ["A"]),
        ({"kind": "project"}, ["P"]),
        ({"segment": "SMB"}, ["A", "C"]),
        ({"status": "failure"}, ["B"]),
        ({"status": ["success", "open"]}, ["A", "C", "P"]),
        ({"kind": "deal", "segment": "ENT"}, ["B"]),
        ({"start": pd.Timestamp("2024-01-15T00:30:00+01:00")}, ["B", "C"]),  # 2024-01-14 23:30 UTC
    ],
)
def test_filter(history: History, kwargs: dict, expected: list[str]) -> None:
    out = history.filter(**kwargs)
    assert ids(out) == expected
    ev = out.events
    assert list(ev["case_id"].cat.categories) == expected
    assert set(ev["case_id"].astype(str)) == set(expected)
    # each kept case keeps all its events
    assert len(ev) == sum(1 for r in ROWS if r[0] in expected)


def test_filter_rejects_an_unknown_by(history: History) -> None:
    with pytest.raises(ValueError, match=r"'by' parameter of History\.filter must be 'created', 'closed' or 'active'"):
        history.filter(by="updated")


def test_as_of_removes_later_events_and_reopens_cases_closed_later(history: History) -> None:
    t = "2024-02-05"
    past = history.as_of(t)
    assert ids(past) == ["A", "B", "P"]  # C was created later
    c = past.cases.set_index("case_id")
    assert c.loc["A", "outcome"] == "won"  # closed before t
    assert c.loc["B", "outcome"] == "open" and c.loc["B", "status"] == "open"
    assert pd.isna(c.loc["B", "closed"])
    assert c.loc["P", "outcome"] == "on_time"
    ev = past.events
    assert (ev["timestamp"] <= pd.Timestamp(t, tz="UTC")).all()
    assert ev.groupby("case_id", observed=True).size().to_dict() == {"A": 3, "B": 1, "P": 2}
    # the original is untouched
    assert history.cases.set_index("case_id").loc["B", "outcome"] == "lost"
    assert len(history.events) == len(ROWS)


def test_as_of_before_everything_is_empty(history: History) -> None:
    past = history.as_of("2023-12-31")
    assert len(past.cases) == 0 and len(past.events) == 0


def test_cases_and_events_are_copies(history: History) -> None:
    cases = history.cases
    cases.loc[0, "outcome"] = "lost"
    cases["amount"] = 1.0
    del cases["kind"]
    events = history.events
    events.loc[0, "name"] = "Close"
    events["timestamp"] = pd.Timestamp("2030-01-01", tz="UTC")
    again = history.cases
    assert again["outcome"].tolist() == ["won", "lost", "open", "on_time"]
    assert again["amount"].isna().all()
    assert "kind" in again.columns
    assert history.events["name"].tolist()[0] == "Qualify"
    assert history.events["timestamp"].max() == pd.Timestamp("2024-03-10", tz="UTC")


def test_repr_html_escapes_names() -> None:
    df = pd.DataFrame(
        {
            "case_id": ["<b>A</b>", "<b>A</b>"],
            "name": ["<script>alert(1)</script>", "Q&A call"],
            "timestamp": ["2024-01-01", "2024-01-02"],
            "type": ["milestone", "activity"],
            "outcome": ["won", "won"],
        }
    )
    h = salesproc.load_history(df)
    html = h._repr_html_()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Q&amp;A call" in html
    assert "&lt;DataFrame&gt;" in html  # the source name is escaped too
    assert html.count("<div") == html.count("</div>") == 1


def test_select_needs_one_entry_per_case(history: History) -> None:
    with pytest.raises(ValueError, match=r"one entry per case \(4\)"):
        history.select(np.array([True, False]))
    assert ids(history.select(history.cases["outcome"].eq("won"))) == ["A"]


# --- past views: each case as it stood then (issue 17) ---------------------------------------------------


def day(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.fixture
def reopened() -> History:
    """R: lost on 02-01 (a 'Closed Lost' stage it later left), reopened 03-01, won 04-01.
    S: open throughout, its close date pushed twice at some unknown time; Q: won 01-20, settled early."""
    cases = pd.DataFrame({
        "case_id": ["R", "S", "Q"], "kind": "deal", "outcome": ["won", "open", "won"],
        "created": [day("2024-01-01"), day("2024-01-10"), day("2024-01-02")],
        "closed": [day("2024-04-01"), pd.NaT, day("2024-01-20")],
        "stage": ["Closed Won", "Proposal", "Closed Won"],
        "close_date_changes": [1, 2, 3],
        "expected_close": [pd.NaT, day("2024-05-31"), pd.NaT],
    })
    events = pd.DataFrame({
        "case_id": ["R", "R", "R", "S", "S", "Q"],
        "name": ["Qualify", "Closed Lost", "Proposal", "Qualify", "Proposal", "Qualify"],
        "type": "milestone",
        "timestamp": [day("2024-01-01"), day("2024-02-01"), day("2024-03-01"),
                      day("2024-01-10"), day("2024-03-05"), day("2024-01-02")],
        "closes": [None, "lost", None, None, None, None],
    })
    return History.from_frames(cases, events)


def test_as_of_shows_a_reopened_deal_as_it_was_then(reopened: History) -> None:
    c = reopened.as_of("2024-02-15").cases.set_index("case_id")
    # R was lost on 02-01: an export taken on 02-15 shows it lost, in its Closed Lost stage
    assert (c.loc["R", "outcome"], c.loc["R", "status"]) == ("lost", "failure")
    assert c.loc["R", "closed"] == day("2024-02-01")
    assert c.loc["R", "stage"] == "Closed Lost"
    # S had only qualified by then: its stage is the one it was in, not its final one
    assert c.loc["S", "outcome"] == "open" and c.loc["S", "stage"] == "Qualify"
    assert c.loc["Q", "stage"] == "Closed Won"  # settled before: unchanged
    ev = reopened.as_of("2024-02-15").events
    # the closing stage is the case's outcome, not one of its events (as the CRM loaders do)
    assert ev.loc[ev["case_id"] == "R", "name"].astype(str).tolist() == ["Qualify"]


def test_as_of_after_the_reopening_shows_the_deal_open(reopened: History) -> None:
    past = reopened.as_of("2024-03-15")
    c = past.cases.set_index("case_id")
    assert c.loc["R", "outcome"] == "open" and pd.isna(c.loc["R", "closed"])
    assert c.loc["R", "stage"] == "Proposal"
    ev = past.events
    assert ev.loc[ev["case_id"] == "R", "name"].astype(str).tolist() == ["Qualify", "Closed Lost", "Proposal"]
    assert reopened.as_of("2024-06-01") is reopened  # nothing after: the history itself


def test_as_of_clears_final_values_that_have_no_dates(reopened: History) -> None:
    past = reopened.as_of("2024-02-15")
    c = past.cases.set_index("case_id")
    # S's two pushes and its expected close may have been recorded after 02-15: unknown then
    assert pd.isna(c.loc["S", "close_date_changes"]) and pd.isna(c.loc["S", "expected_close"])
    assert pd.isna(c.loc["R", "close_date_changes"])  # R's final count includes its life after reopening
    assert c.loc["Q", "close_date_changes"] == 3  # Q closed on 01-20: its count was final by then
    note = past.report.notes[-1]
    assert note.startswith("as of 2024-02-15") and "close_date_changes, expected_close cleared on 2 cases" in note
    # the original is untouched
    assert reopened.cases.set_index("case_id").loc["S", "close_date_changes"] == 2


def test_as_of_without_closing_marks_still_puts_the_stage_back(history: History) -> None:
    cases = history.cases.assign(stage=["Closed Won", "Closed Lost", "Proposal", "Delivered"])
    h = History.from_frames(cases, history.events)
    c = h.as_of("2024-02-05").cases.set_index("case_id")
    assert c.loc["B", "outcome"] == "open" and c.loc["B", "stage"] == "Qualify"  # not its final Closed Lost
    assert c.loc["A", "stage"] == "Closed Won"


# --- saving into an existing folder (issue 17) -------------------------------------------------------------


def test_overwrite_replaces_only_the_saved_files(history: History, tmp_path) -> None:
    folder = tmp_path / "history"
    history.to_parquet(folder)
    (folder / "notes.txt").write_text("call Pat on Monday")
    (folder / "charts").mkdir()
    smaller = history.filter(kind="deal")
    assert smaller.to_parquet(folder, overwrite=True) == folder
    assert (folder / "notes.txt").read_text() == "call Pat on Monday"
    assert (folder / "charts").is_dir()
    assert ids(History.read_parquet(folder)) == ["A", "B", "C"]
    assert not list(tmp_path.glob(".*tmp"))  # no temporary folder left behind


def test_overwrite_refuses_a_folder_that_is_not_a_saved_history(history: History, tmp_path) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    (folder / "data.csv").write_text("a,b\n")
    with pytest.raises(salesproc.errors.OverwriteError,
                       match=r"project is not a history saved by History\.to_parquet: found data\.csv, notes\.txt, "
                             r"expected events\.parquet.*Fix: choose a new or empty folder"):
        history.to_parquet(folder, overwrite=True)
    assert sorted(x.name for x in folder.iterdir()) == ["data.csv", "notes.txt"]
    with pytest.raises(salesproc.errors.OverwriteError, match=r"exists\. Fix: .*overwrite=True"):
        history.to_parquet(folder)
    a_file = tmp_path / "history.parquet"
    a_file.write_text("x")
    with pytest.raises(salesproc.errors.OverwriteError, match=r"exists and is not a folder.*Fix: choose another path"):
        history.to_parquet(a_file, overwrite=True)
    assert a_file.read_text() == "x"


def test_overwrite_into_an_empty_folder_saves_there(history: History, tmp_path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    history.to_parquet(folder, overwrite=True)
    assert sorted(x.name for x in folder.iterdir()) == ["cases.parquet", "events.parquet", "report.json"]
