"""Outcomes a new user's stage history states by its stage names (issue 14, items 1 and 3): ``Closed Won``
and ``Closed Lost`` (and their kin in the presets and other languages) close their deals without any
option; ``outcome_events={}`` keeps them milestones; an outcome column wins. A history with no closed
case stops ``derive_template`` and ``review_deals`` with one error naming the options that fix it."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

import salesproc
from salesproc.errors import NoClosedCasesError
from salesproc.load._outcome_names import OUTCOME_EVENT_NAMES, recognised_outcome_events
from salesproc.review import ReviewError

MAPPING = {"case_id": "deal_id", "name": "stage", "timestamp": "date"}
STAGES = ["Lead", "Qualified", "Demo", "Proposal", "Negotiation"]


def stage_history(won: str, lost: str, *, n_won: int = 3, n_lost: int = 2, n_open: int = 4) -> str:
    """A CRM stage history in the commonest shape, with its own words for won and lost."""
    rows = ["deal_id,stage,date,owner,amount,close_date"]
    day = 0
    for i, end in enumerate([won] * n_won + [lost] * n_lost + [None] * n_open):
        steps = STAGES[: 2 + i % 4] + ([end] if end else [])
        for s in steps:
            day += 1
            rows.append(f"D{i:02d},{s},2024-{1 + day // 28:02d}-{1 + day % 28:02d},Ana,{1000 * (i + 1)},2024-06-30")
    return "\n".join(rows) + "\n"


def load(text: str, **kwargs: object) -> salesproc.History:
    return salesproc.load_history(io.StringIO(text), **{"mapping": MAPPING, **kwargs})  # type: ignore[arg-type]


def counts(h: salesproc.History) -> dict[str, int]:
    return {k: int(v) for k, v in h.cases["outcome"].astype(str).value_counts().items() if v}


@pytest.mark.parametrize(("won", "lost"), [
    ("Closed Won", "Closed Lost"),  # Salesforce
    ("closedwon", "closedlost"),  # HubSpot's stage ids
    ("Won", "Lost"),  # Maven's snapshot
    ("Closed-Won", "closed_lost"),
    ("Deal won", "Deal lost"),
    ("Gewonnen", "Verloren"),  # German, Dutch
    ("Ganado", "Perdido"),  # Spanish
    ("Gagné", "Perdu"),  # French
    ("Vinto", "Perso"),  # Italian
    ("Ganho", "Perdido"),  # Portuguese
])
def test_won_and_lost_stages_close_their_deals_without_any_option(won: str, lost: str) -> None:
    h = load(stage_history(won, lost))
    assert counts(h) == {"won": 3, "lost": 2, "open": 4}
    assert not ({won, lost} & set(h.events["name"].astype(str)))  # they left the events
    note = f"{won!r} and {lost!r} read as outcomes (won 3, lost 2); to keep them as milestones pass outcome_events={{}}"
    assert note in h.report.notes
    closed = h.cases[h.cases["outcome"] != "open"]
    assert closed["closed"].notna().all()


def test_names_are_compared_without_case_accents_or_punctuation_but_only_as_whole_names() -> None:
    found = recognised_outcome_events(["CLOSED WON", "gagne", "Closed - Lost", "Lost opportunity review", "Won't fix"])
    assert found == {"won": ["CLOSED WON", "gagne"], "lost": ["Closed - Lost"]}
    assert all(recognised_outcome_events([n]) == {o: [n]} for o, names in OUTCOME_EVENT_NAMES.items() for n in names)


def test_outcome_events_empty_keeps_them_milestones_and_the_summary_says_how_to_close_deals() -> None:
    h = load(stage_history("Closed Won", "Closed Lost"), outcome_events={})
    assert counts(h) == {"open": 9}
    assert {"Closed Won", "Closed Lost"} <= set(h.events["name"].astype(str))
    assert any("deals are all open. Fix: map the outcome column" in n for n in h.report.notes)


def test_a_rule_of_ones_own_replaces_the_names_read_by_default() -> None:
    h = load(stage_history("Closed Won", "Closed Lost"), outcome_events={"won": ["Closed Won"]})
    assert counts(h) == {"won": 3, "open": 6}
    assert "Closed Lost" in set(h.events["name"].astype(str))


def test_an_outcome_column_wins_and_the_stages_stay_events() -> None:
    text = stage_history("Closed Won", "Closed Lost").replace("close_date\n", "close_date,result\n", 1)
    lines = text.splitlines()
    text = "\n".join([lines[0], *(f"{line},open" for line in lines[1:])]) + "\n"
    h = load(text, mapping={**MAPPING, "outcome": "result"})
    assert counts(h) == {"open": 9}
    assert {"Closed Won", "Closed Lost"} <= set(h.events["name"].astype(str))


def test_projects_and_files_with_a_kind_column_are_left_as_they_were() -> None:
    h = load(stage_history("Won", "Lost").replace("Won", "Done").replace("Lost", "Cancelled"), kind="project",
             errors="skip")
    assert "Done" in set(h.events["name"].astype(str))
    text = "case_id,name,timestamp,kind\nA,Lead,2024-01-01,deal\nA,Won,2024-01-05,deal\n"
    h = salesproc.load_history(io.StringIO(text))
    assert counts(h) == {"open": 1} and "Won" in set(h.events["name"].astype(str))


def test_the_presets_still_read_their_own_stages() -> None:
    # HubSpot's stage history names closedwon / closedlost, which its preset maps itself
    data = Path(__file__).parent / "data"
    h = salesproc.load_history(data / "hubspot_deal_stage_history.csv", mapping="hubspot")
    assert {"won", "lost"} & set(h.cases["outcome"].astype(str))
    h = salesproc.load_history(data / "salesforce_opportunity_history.csv", mapping="salesforce")
    assert {"won", "lost"} & set(h.cases["outcome"].astype(str))


# --- no closed case: one error naming the fix ----------------------------------------------------


def test_derive_template_without_closed_deals_is_one_error_naming_the_fix() -> None:
    h = load(stage_history("Closed Won", "Closed Lost"), outcome_events={})
    with pytest.raises(NoClosedCasesError) as err:
        salesproc.derive_template(h)
    msg = str(err.value)
    assert msg.startswith("The history holds no closed cases (<stream>: 9 deals, all open): derive_template")
    for fix in ("-m outcome=<column>", "outcome_values=", "outcome_events={'won': ['Closed Won']"):
        assert fix in msg
    assert "Event names that look like outcomes: 'Closed Lost' (2), 'Closed Won' (3)" not in msg  # most frequent first
    assert "Event names that look like outcomes: 'Closed Won' (3), 'Closed Lost' (2)" in msg


def test_derive_template_for_projects_without_closed_ones_names_the_due_date() -> None:
    text = "case_id,name,timestamp\nP1,Kick-off,2024-01-02\nP1,Build,2024-01-09\nP2,Kick-off,2024-01-03\n"
    h = salesproc.load_history(io.StringIO(text), kind="project")
    with pytest.raises(NoClosedCasesError, match=r"2 projects, all open.*-m target_date=<column>") as err:
        salesproc.derive_template(h)
    assert "look like outcomes" not in str(err.value)


def test_review_deals_without_closed_deals_before_the_date_is_the_same_error() -> None:
    h = load(stage_history("Closed Won", "Closed Lost", n_won=12, n_lost=12, n_open=6))
    t = salesproc.derive_template(h)
    first = pd.Timestamp(h.events["timestamp"].min()).date()
    with pytest.raises(NoClosedCasesError, match=f"no closed cases before {first}.*Or choose a later date") as err:
        salesproc.review_deals(h, t, as_of=str(first))
    assert isinstance(err.value, ReviewError)


def test_an_expected_close_column_is_the_open_deals_expected_close_and_leaves_closed_dates_alone() -> None:
    # `-m expected_close=close_date` used to be accepted and do nothing; `-m closed=...` was wrong for closed deals
    from salesproc.datasets import example_path

    m = {"case_id": "deal_id", "name": "stage", "timestamp": "date", "amount": "amount", "expected_close": "close_date"}
    c = salesproc.load_history(example_path(), mapping=m).cases.set_index("case_id")
    raw = pd.read_csv(example_path()).groupby("deal_id").last()
    open_ = c[c["outcome"] == "open"]
    assert len(open_) == 16 and open_["closed"].isna().all()
    assert (open_["expected_close"].dt.strftime("%Y-%m-%d") == raw.loc[open_.index, "close_date"]).all()
    won = c[c["outcome"] == "won"]  # closed on their Closed Won event, whatever the column says
    last_event = pd.read_csv(example_path()).groupby("deal_id")["date"].max()
    assert (won["closed"].dt.strftime("%Y-%m-%d") == last_event.loc[won.index]).all()
