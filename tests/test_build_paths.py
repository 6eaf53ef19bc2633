"""build_history works on codes and positions for speed; these pin the answers that must not move.

Each case has a hand-worked answer: case order, merging of ids and names that differ only by
spaces, type synonyms, duplicates, sorting, terminal events, case-level values given on some rows
only, long columns (labels worked out per distinct value) and categorical frames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from salesproc.history import History
from salesproc.history._finalize import _case_time_order
from salesproc.load._build import build_history


def test_cases_follow_first_appearance_among_kept_rows() -> None:
    ev = pd.DataFrame({
        "case_id": ["B", "A", "B", "C"],
        "name": ["Qualify", "Qualify", "Proposal", "Qualify"],
        "timestamp": ["not a date", "2024-01-02", "2024-01-03", "2024-01-04"],
    })
    h = build_history(ev, errors="skip")
    # B's first row was skipped, so A appears first
    assert h.cases["case_id"].tolist() == ["A", "B", "C"]
    assert h.report.skipped == {"unparseable or missing timestamp": 1}
    assert h.events["case_id"].astype(str).tolist() == ["A", "B", "C"]


def test_ids_names_and_types_differing_only_in_spacing_or_case_are_one() -> None:
    ev = pd.DataFrame({
        "case_id": [" A", "A ", "A", "B"],
        "name": [" Qualify", "Qualify", "Call ", "Qualify"],
        "type": ["Stage", " milestone", " Task ", "phase"],
        "timestamp": ["2024-01-01", "2024-01-01", "2024-01-02", "2024-01-03"],
    })
    h = build_history(ev)
    assert h.cases["case_id"].tolist() == ["A", "B"]
    e = h.events
    assert e["name"].cat.categories.tolist() == ["Call", "Qualify"]
    assert e["type"].astype(str).tolist() == ["milestone", "activity", "milestone"]
    # " Qualify" and "Qualify" at the same time in the same case: one event, counted as skipped
    assert h.report.skipped == {"duplicate event (same case, name, type and time): kept once": 1}
    assert h.report.rows_read == 4 and h.report.rows_loaded == 3


def test_unsorted_rows_are_sorted_and_ties_keep_file_order() -> None:
    ev = pd.DataFrame({
        "case_id": ["A", "B", "A", "A", "A"],
        "name": ["Proposal", "Qualify", "Qualify", "Call", "Demo"],
        "type": ["milestone", "milestone", "milestone", "activity", "activity"],
        "timestamp": ["2024-01-05", "2024-01-01", "2024-01-02", "2024-01-03", "2024-01-03"],
    })
    h = build_history(ev)
    e = h.events
    assert list(zip(e["case_id"].astype(str), e["name"].astype(str))) == [
        ("A", "Qualify"), ("A", "Call"), ("A", "Demo"), ("A", "Proposal"), ("B", "Qualify"),
    ]


def test_terminal_events_leave_and_the_owner_is_the_first_remaining_events() -> None:
    ev = pd.DataFrame({
        "case_id": ["A", "A", "A", "B", "B"],
        "name": ["Won", "Qualify", "Proposal", "Qualify", "Lost"],
        "timestamp": ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-02", "2024-01-09"],
        "owner": ["Zoe", "Ann", "Bob", "Cy", "Dee"],
    })
    h = build_history(ev, outcome_events={"won": ["Won"], "lost": ["Lost"]})
    c = h.cases.set_index("case_id")
    assert c.loc["A", "outcome"] == "won" and c.loc["B", "outcome"] == "lost"
    assert c.loc["A", "owner"] == "Ann"  # the terminal event (Zoe's) left the table first
    assert c.loc["B", "owner"] == "Cy"
    assert c.loc["B", "closed"] == pd.Timestamp("2024-01-09", tz="UTC")
    assert set(h.events["name"].astype(str)) == {"Qualify", "Proposal"}


def test_a_case_value_given_on_some_rows_is_the_last_given_in_time() -> None:
    ev = pd.DataFrame({
        "case_id": ["A", "A", "A", "B"],
        "name": ["Qualify", "Proposal", "Negotiation", "Qualify"],
        "timestamp": ["2024-01-03", "2024-01-01", "2024-01-02", "2024-01-01"],
        "segment": [None, "SMB", "Enterprise", None],
        "amount": ["1,500", None, "2,000", None],
        "created": pd.to_datetime(["2023-12-30", None, "2023-12-31", None], utc=True),
    })
    h = build_history(ev)
    c = h.cases.set_index("case_id")
    # A's rows in time order: Proposal (SMB), Negotiation (Enterprise, 2,000, 31 Dec), Qualify
    # (1,500, 30 Dec, no segment)
    assert c.loc["A", "segment"] == "Enterprise"
    assert c.loc["A", "amount"] == 1500.0
    assert c.loc["A", "created"] == pd.Timestamp("2023-12-30", tz="UTC")
    assert pd.isna(c.loc["B", "segment"]) and np.isnan(c.loc["B", "amount"])
    assert c.loc["B", "created"] == pd.Timestamp("2024-01-01", tz="UTC")  # its first event


def test_long_columns_map_each_row_by_its_own_label() -> None:
    n = 300
    labels = np.array(["Won", "closed lost", "OPEN", "win", "Lost"])[np.arange(n) % 5]
    ev = pd.DataFrame({
        "case_id": [f"C{i:03d}" for i in range(n)],
        "name": ["Qualify"] * n,
        "type": np.array(["Milestone", "stage"])[np.arange(n) % 2],
        "timestamp": ["2024-01-01"] * n,
        "outcome": labels,
    })
    h = build_history(ev)
    want = {"Won": "won", "closed lost": "lost", "OPEN": "open", "win": "won", "Lost": "lost"}
    assert h.cases["outcome"].astype(str).tolist() == [want[x] for x in labels]
    assert (h.events["type"] == "milestone").all()


def test_categorical_frames_finalize_like_text_ones() -> None:
    cases = pd.DataFrame({
        "case_id": ["B", "A"], "kind": "deal", "outcome": ["won", "open"],
        "created": pd.to_datetime(["2024-01-01", "2024-01-02"], utc=True),
    })
    ts = pd.to_datetime(["2024-01-03", "2024-01-02", "2024-01-05"], utc=True)
    text = pd.DataFrame({"case_id": ["A", "B", "A"], "name": ["x", "Zed", "é"],
                         "type": ["milestone", "activity", "milestone"], "timestamp": ts})
    cat = text.assign(
        case_id=pd.Categorical(text["case_id"], categories=["A", "B", "unused"]),
        name=pd.Categorical(text["name"], categories=["é", "unused", "x", "Zed"]),
    )
    a, b = History.from_frames(cases, text), History.from_frames(cases, cat)
    pd.testing.assert_frame_equal(a.events, b.events)
    assert b.events["name"].cat.categories.tolist() == ["Zed", "x", "é"]  # used ones, sorted
    assert b.events["case_id"].cat.categories.tolist() == ["B", "A"]  # the cases' order
    assert b.events["case_id"].astype(str).tolist() == ["B", "A", "A"]


@settings(max_examples=200, deadline=None)
@given(
    n_cases=st.sampled_from([1, 3, 255, 256, 70_000, 200_000, 40_000_000]),
    n=st.integers(0, 400),
    time_sorted=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_case_time_order_is_lexsort(n_cases: int, n: int, time_sorted: bool, seed: int) -> None:
    # the radix sort by case code must order exactly as numpy's lexsort, ties in row order,
    # whatever the number of cases (one, two or more digit passes) and whether times are sorted
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, n_cases, size=n)
    codes[:1] = n_cases - 1  # the widest code is present
    ts = rng.integers(0, 30, size=n)
    if time_sorted:
        ts = np.sort(ts)
    assert _case_time_order(codes[:n], ts).tolist() == np.lexsort((ts, codes[:n])).tolist()
