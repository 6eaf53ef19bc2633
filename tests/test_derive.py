"""derive_template on small histories whose right answers are worked out by hand."""

from __future__ import annotations

import pandas as pd
import pytest

import salesproc
from salesproc.derive import milestone_order
from salesproc.errors import DeriveError, NoMilestonesError

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def _history(rows: list[tuple[str, str, int, str]], closes: dict[str, int], kind: str = "deal") -> salesproc.History:
    ev = pd.DataFrame(rows, columns=["case_id", "name", "day", "outcome"])
    ev["timestamp"] = T0 + pd.to_timedelta(ev["day"], unit="D")
    ev["closed"] = ev["case_id"].map(lambda c: T0 + pd.Timedelta(days=closes[c]) if c in closes else None)
    ev["type"] = "milestone"
    return salesproc.load_history(ev.drop(columns=["day"]), kind=kind)


@pytest.fixture
def small() -> salesproc.History:
    rows = [
        ("A", "Qualify", 0, "won"), ("A", "Proposal", 10, "won"), ("A", "Negotiation", 20, "won"),
        ("B", "Qualify", 0, "lost"), ("B", "Proposal", 5, "lost"),
        ("C", "Qualify", 0, "won"), ("C", "Negotiation", 4, "won"),
        ("D", "Qualify", 0, "open"),
        ("E", "Qualify", 0, "lost"), ("E", "Proposal", 2, "lost"), ("E", "Qualify", 6, "lost"),
        ("E", "Proposal", 9, "lost"),
    ]
    return _history(rows, {"A": 30, "B": 8, "C": 10, "E": 12})


def test_order_reach_skip_and_revisit(small: salesproc.History) -> None:
    t = salesproc.derive_template(small, as_of=T0 + pd.Timedelta(days=50))
    assert t.milestone_names == ["Qualify", "Proposal", "Negotiation"]
    q, p, n = (t.milestone(x).evidence for x in t.milestone_names)
    assert (q.reached, p.reached, n.reached) == (5, 3, 2)
    assert p.skipped_share == 0.5  # of A and C (which reached Negotiation), C skipped Proposal
    assert q.revisited_share == pytest.approx(1 / 5, abs=1e-4) and p.revisited_share == pytest.approx(1 / 3, abs=1e-4)
    assert q.to_success is not None and (q.to_success.k, q.to_success.n) == (2, 4)  # D is open
    assert p.to_next is not None and (p.to_next.k, p.to_next.n) == (1, 3)
    assert n.to_next is not None and (n.to_next.k, n.to_next.n) == (2, 2)  # last milestone: on to success
    assert p.success_if_furthest is not None and p.success_if_furthest.n == 2  # B and E stopped there


def test_time_in_milestone_is_kaplan_meier_with_open_cases_censored(small: salesproc.History) -> None:
    t = salesproc.derive_template(small, as_of=T0 + pd.Timedelta(days=50))
    q = t.milestone("Qualify").evidence.duration
    # Qualify visits: A 10, B 5, C 4, E 2 and 3 (a revisit), D still there after 50 days (censored)
    assert (q.n, q.events, q.censored) == (6, 5, 1)
    assert q.p50 == 4.0
    assert q.naive_p50 == 4.0
    p = t.milestone("Proposal").evidence.duration
    assert p.n == 4 and p.p50 == 3.0  # 10, 3, 4, 3
    assert t.milestone("Negotiation").evidence.duration.p50 == 6.0  # 10 and 6
    assert t.cycle_time is not None and t.cycle_time.n == 2


def test_censoring_matters_and_is_reported() -> None:
    # nine closed deals spent 2 days in Qualify; eleven open ones have been there for 40 days already
    rows = [(f"c{i}", "Qualify", 0, "lost") for i in range(9)]
    rows += [(f"o{i}", "Qualify", 0, "open") for i in range(11)]
    rows += [(f"o{i}", "Demo", -5, "open") for i in range(11)]
    h = _history(rows, {f"c{i}": 2 for i in range(9)})
    t = salesproc.derive_template(h, as_of=T0 + pd.Timedelta(days=40))
    d = t.milestone("Qualify").evidence.duration
    assert d.naive_p50 == 2.0
    assert d.p50 is None  # most visits are still running at 40 days: the median is unknown
    assert (d.events, d.censored) == (9, 11)
    assert any("p80 time is unknown" in c for c in t.caveats)


def test_as_of_cuts_later_information(small: salesproc.History) -> None:
    t = salesproc.derive_template(small, as_of=T0 + pd.Timedelta(days=9))
    # at day 9, A is open in Proposal and B was lost on day 8
    ev = t.milestone("Qualify").evidence
    assert ev.to_success is not None and ev.to_success.n == 1  # only B had closed
    assert t.provenance.as_of == "2024-01-10T00:00:00+00:00"
    assert "Negotiation" in t.milestone_names  # C reached it on day 4


def test_terminal_outcome_events_are_not_milestones() -> None:
    rows = [("A", "Qualify", 0, "won"), ("A", "Closed Won", 5, "won"), ("B", "Qualify", 0, "lost"),
            ("B", "Closed Lost", 3, "lost")]
    h = _history(rows, {"A": 5, "B": 3})
    assert salesproc.derive_template(h).milestone_names == ["Qualify"]


def test_untyped_logs_take_a_milestone_rule() -> None:
    ev = pd.DataFrame(
        {
            "case_id": ["A", "A", "A", "B", "B"],
            "name": ["M1 start", "call", "M2 offer", "M1 start", "email"],
            "timestamp": pd.date_range("2024-01-01", periods=5, freq="D", tz="UTC"),
            "outcome": ["won", "won", "won", "lost", "lost"],
        }
    )
    h = salesproc.load_history(ev)
    t = salesproc.derive_template(h, milestones=r"M\d")
    assert t.milestone_names == ["M1 start", "M2 offer"]
    assert {a.name for a in t.activities} == {"call", "email"}
    assert milestone_order(h, milestones=["M2 offer", "M1 start"]) == ["M1 start", "M2 offer"]


def test_small_data_still_gives_a_template_with_caveats(small: salesproc.History) -> None:
    t = salesproc.derive_template(small)
    assert len(t.milestones) == 3
    assert any("Built from only 4 closed deals" in c for c in t.caveats)
    assert any("lost deals reached Proposal" in c for c in t.caveats)
    q = t.milestone("Qualify").evidence.to_success
    assert q is not None and q.low is not None and q.high is not None and q.high - q.low > 0.5


def test_mixed_kinds_are_refused(small: salesproc.History) -> None:
    proj = _history([("P1", "Kickoff", 0, "on_time")], {"P1": 3}, kind="project")
    both = salesproc.History.from_frames(
        pd.concat([small.cases, proj.cases], ignore_index=True),
        pd.concat([small.events.astype({"case_id": str}), proj.events.astype({"case_id": str})], ignore_index=True),
    )
    with pytest.raises(DeriveError, match=r"one kind of case\. Got \['deal', 'project'\] instead \(deal 5, project 1\)"):
        salesproc.derive_template(both)


def test_no_milestone_events_names_what_was_found_and_the_fix(small: salesproc.History) -> None:
    # issue 17: every event an activity used to end in a bare ValueError (a traceback on the command line)
    acts = salesproc.load_history(small.events.assign(type="activity")[["case_id", "name", "timestamp", "type"]])
    with pytest.raises(NoMilestonesError) as info:
        salesproc.derive_template(acts)
    msg = str(info.value)
    assert "found 12 events, none of them a milestone: 'Qualify' (6), 'Proposal' (4), 'Negotiation' (2)" in msg
    assert "Expected: events marked as milestones" in msg
    assert "derive_template(history, milestones='Qualify|Proposal')" in msg and "'type' column" in msg
    assert info.value.names == {"Qualify": 6, "Proposal": 4, "Negotiation": 2}
    assert isinstance(info.value, salesproc.SalesprocError) and isinstance(info.value, ValueError)


def test_a_milestones_rule_that_matches_nothing_is_named(small: salesproc.History) -> None:
    with pytest.raises(NoMilestonesError, match=r"The milestones rule 'Nope' matches none of the names\."):
        salesproc.derive_template(small, milestones="Nope")


def test_input_history_is_not_changed(small: salesproc.History) -> None:
    before_c, before_e = small.cases.copy(), small.events.copy()
    salesproc.derive_template(small, as_of=T0 + pd.Timedelta(days=9))
    pd.testing.assert_frame_equal(small.cases, before_c)
    pd.testing.assert_frame_equal(small.events, before_e)
