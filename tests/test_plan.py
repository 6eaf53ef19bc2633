"""plan_backwards: latest safe dates, honest odds, case state, exports, and calibration on synthetic data."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from icalendar import Calendar
from scipy.stats import norm

import salesproc
from salesproc.errors import OverwriteError, PlanError
from salesproc.plan import Goal, Plan, plan_backwards, plot_plan
from salesproc.template import (
    Activity,
    Dependency,
    Duration,
    Milestone,
    MilestoneEvidence,
    ProcessTemplate,
    Rate,
)

DAY = pd.Timedelta(days=1)
AS_OF = pd.Timestamp("2024-01-01", tz="UTC")


def _rate(r: float) -> Rate:
    return Rate(k=int(r * 100), n=100, rate=r, low=r, high=r)


def _fixed(name: str, order: int, days: float, *, to_next: float = 1.0, role: str = "AE") -> Milestone:
    """A milestone that always takes exactly ``days`` (p50 = p80, no quantiles)."""
    return Milestone(
        name=name, order=order, owner_role=role, p50_days=days, p80_days=days,
        evidence=MilestoneEvidence(to_next=_rate(to_next)),
    )


def _fixed_template(*, due: float = 3.0, proposal_to_next: float = 1.0, deps: list[Dependency] | None = None
                    ) -> ProcessTemplate:
    """Qualify 5 days, Proposal 10, Negotiation 8; 'Demo' is due ``due`` days before Proposal."""
    return ProcessTemplate(
        name="fixed",
        milestones=[
            _fixed("Qualify", 1, 5),
            _fixed("Proposal", 2, 10, to_next=proposal_to_next),
            _fixed("Negotiation", 3, 8, role="Manager"),
        ],
        activities=[
            Activity(name="Demo", milestone="Proposal", due_days_before=due, owner_role="SE",
                     critical=True, requirement="required"),
            Activity(name="Newsletter", requirement="none"),
        ],
        dependencies=deps or [],
    )


def _days(t: pd.Timestamp | None) -> int:
    assert t is not None
    return int((t - AS_OF) / DAY)


# --- known answers on a deterministic template -------------------------------------------------


def test_latest_safe_dates_are_the_target_minus_the_time_still_needed() -> None:
    p = plan_backwards(_fixed_template(), target_date="2024-03-01", as_of=AS_OF, n_simulations=1000)
    target = _days(pd.Timestamp("2024-03-01", tz="UTC"))
    # every milestone takes a fixed time: P50 and P80 agree; Negotiation needs 8 days, Proposal 18, Qualify 23
    for name, need in (("Negotiation", 8), ("Proposal", 18), ("Qualify", 23), ("Demo", 21)):
        it = p.item(name)
        assert _days(it.latest_p50) == target - need, name
        assert it.latest_p80 == it.latest_p50
    assert "Newsletter" not in [i.name for i in p.items]  # not critical, in no dependency
    assert p.probability == 1.0 and p.p_success == 1.0
    assert _days(p.p50_date) == 23 and p.p80_date == p.p50_date and p.earliest_date == p.p50_date
    assert p.item("Proposal").depends_on == ("Qualify", "Demo")
    assert p.item("Demo").owner == "SE" and p.item("Negotiation").owner == "Manager"
    assert [i.name for i in p.items] == ["Qualify", "Demo", "Proposal", "Negotiation"]


def test_a_target_on_the_exact_day_counts_and_a_day_less_does_not() -> None:
    t = _fixed_template()
    on_time = plan_backwards(t, target_date=AS_OF + 23 * DAY, as_of=AS_OF, n_simulations=500)
    too_soon = plan_backwards(t, target_date=AS_OF + 22 * DAY, as_of=AS_OF, n_simulations=500)
    assert on_time.probability == 1.0
    assert too_soon.probability == 0.0
    assert too_soon.message.startswith("Infeasible: the target is 22 days away; deals like this reach a win from "
                                       "Qualify in a median of 23 days; 0% chance.")
    assert "earliest realistic date is 2024-01-24" in too_soon.message


def test_losses_lower_the_odds_but_not_the_dates() -> None:
    p = plan_backwards(_fixed_template(proposal_to_next=0.4), target_date="2024-03-01", as_of=AS_OF)
    assert p.p_success == pytest.approx(0.4, abs=0.02)
    assert p.probability == pytest.approx(0.4, abs=0.02)
    assert _days(p.p50_date) == 23  # conditional on success
    assert re.search(r"(39|40|41)% of deals like this are won at all; those that do, by 2024-01-24", p.message)


def test_this_week_next_two_weeks_and_overdue_follow_the_latest_safe_dates() -> None:
    p = plan_backwards(_fixed_template(), target_date="2024-01-30", as_of=AS_OF, n_simulations=500)
    # Qualify by Jan 7, Demo by Jan 9, Proposal by Jan 12, Negotiation by Jan 22
    assert p.this_week == ("Qualify",)
    assert p.next_two_weeks == ("Demo", "Proposal")
    assert p.overdue == ()
    late = plan_backwards(_fixed_template(), target_date="2024-01-20", as_of=AS_OF, n_simulations=500)
    assert late.overdue == ("Qualify", "Demo")  # due Dec 28 and Dec 30
    assert late.item("Qualify").status == "overdue"
    assert late.probability == 0.0


def test_critical_path_is_the_milestone_chain_plus_activities_without_more_slack() -> None:
    roomy = plan_backwards(_fixed_template(due=3), target_date="2024-01-30", as_of=AS_OF, n_simulations=500)
    # the chain has 7 days of slack; Demo can start now and is due 9 days out
    assert roomy.item("Qualify").slack == pytest.approx(7.0)
    assert roomy.item("Demo").slack == pytest.approx(9.0)
    assert roomy.critical_path == ("Qualify", "Proposal", "Negotiation")
    tight = plan_backwards(_fixed_template(due=6), target_date="2024-01-30", as_of=AS_OF, n_simulations=500)
    assert tight.item("Demo").slack == pytest.approx(6.0)
    assert tight.critical_path == ("Qualify", "Demo", "Proposal", "Negotiation")


def test_explicit_dependencies_pull_predecessors_earlier() -> None:
    t = _fixed_template(deps=[Dependency(before="Newsletter", after="Demo")])
    p = plan_backwards(t, target_date="2024-03-01", as_of=AS_OF, n_simulations=500,
                       dependencies=[("Demo", "Qualify")])
    assert p.item("Newsletter").latest_p50 == p.item("Demo").latest_p50  # bound by what depends on it
    assert p.item("Demo").latest_p50 == p.item("Qualify").latest_p50  # the plan's own: Demo before Qualify
    assert p.item("Qualify").depends_on == ("Demo",)


def test_a_dependency_cycle_is_rejected_naming_it() -> None:
    with pytest.raises(PlanError, match=r"dependency cycle: Proposal -> Negotiation -> Proposal\. Fix: remove"):
        plan_backwards(_fixed_template(), target_date="2024-03-01", as_of=AS_OF,
                       dependencies=[("Negotiation", "Proposal")])
    t = _fixed_template(deps=[Dependency(before="Negotiation", after="Demo")])
    with pytest.raises(PlanError, match=r"Demo -> Proposal -> Negotiation -> Demo"):
        plan_backwards(t, target_date="2024-03-01", as_of=AS_OF)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dependencies": [("Demo", "Contract")]}, r"names 'Contract' \('Demo' -> 'Contract'\)"),
        ({"owners": {"Signature": "Dana"}}, r"'owners' parameter names \['Signature'\]"),
        ({"n_simulations": 10}, r"'n_simulations' parameter of plan_backwards must be an int >= 100"),
        ({"seed": -1}, r"'seed' parameter .* non-negative int"),
        ({"target_date": "soon"}, r"'target_date' parameter of plan_backwards must be a date .* Got 'soon'"),
        ({"target_date": None}, r"'target_date' parameter of plan_backwards is required"),
        ({"case": "D1"}, r"needs the history it comes from"),
        ({"goal": Goal("2024-02-01"), "target_date": "2024-03-01"}, r"differs from goal.target_date 2024-02-01"),
    ],
)
def test_bad_arguments_say_what_was_expected(kwargs: dict, match: str) -> None:
    args = {"target_date": "2024-03-01", **kwargs}
    with pytest.raises(PlanError, match=match):
        plan_backwards(_fixed_template(), as_of=AS_OF, **args)


def test_a_milestone_without_any_duration_cannot_be_planned() -> None:
    t = ProcessTemplate(milestones=[Milestone(name="Qualify", order=1)])
    with pytest.raises(PlanError, match=r"milestone 'Qualify' has no duration .* Fix: set p50_days and p80_days"):
        plan_backwards(t, target_date="2024-03-01", as_of=AS_OF)


def test_goal_and_owner_overrides() -> None:
    goal = Goal("2024-03-01", success="Order form signed", measure="countersigned PDF",
                seller_owner="Dana (AE)", buyer_owner="Sam (CFO)")
    p = plan_backwards(_fixed_template(), goal=goal, as_of=AS_OF, owners={"Proposal": "Dana (AE)"}, n_simulations=500)
    assert p.goal == goal and p.target_date == goal.target_date
    assert p.item("Proposal").owner == "Dana (AE)" and p.item("Qualify").owner == "AE"
    assert "Order form signed" in p.to_markdown() and "Sam (CFO)" in p.to_html()


def test_same_seed_same_plan_and_a_repr_on_one_line() -> None:
    t = _fixed_template(proposal_to_next=0.6)
    a = plan_backwards(t, target_date="2024-03-01", as_of=AS_OF, seed=3)
    b = plan_backwards(t, target_date="2024-03-01", as_of=AS_OF, seed=3)
    assert a == b
    assert "\n" not in repr(a) and repr(a).startswith("<Plan 'fixed': ")
    assert "<table" in a._repr_html_()


# --- properties ---------------------------------------------------------------------------------


@st.composite
def templates(draw: st.DrawFn) -> ProcessTemplate:
    k = draw(st.integers(1, 5))
    levels = np.round(np.arange(0.05, 0.96, 0.05), 2)
    milestones = []
    for i in range(k):
        med = draw(st.floats(0.5, 30))
        sigma = draw(st.floats(0.05, 1.5))
        reach = draw(st.floats(0.3, 1.0))  # KM quantiles stop where the data stop
        z = norm.ppf(levels)
        qs = [round(float(med * np.exp(sigma * zz)), 2) if lv <= reach else None for lv, zz in zip(levels, z)]
        milestones.append(
            Milestone(
                name=f"M{i}", order=i + 1, owner_role="AE",
                p50_days=qs[9], p80_days=qs[15],
                evidence=MilestoneEvidence(
                    to_next=_rate(draw(st.floats(0.2, 1.0))),
                    skipped_share=draw(st.floats(0.0, 0.3)) if i else 0.0,
                    revisited_share=draw(st.floats(0.0, 0.2)),
                    duration=Duration(quantiles=qs),
                ),
            )
        )
    acts = []
    for j in range(draw(st.integers(0, 3))):
        m = draw(st.integers(0, k - 1))
        acts.append(Activity(name=f"A{j}", milestone=f"M{m}", due_days_before=draw(st.floats(0, 10)),
                             critical=True, requirement="required"))
    deps = []
    for j in range(len(acts)):
        for jj in range(j + 1, len(acts)):
            if draw(st.booleans()):
                deps.append(Dependency(before=f"A{j}", after=f"A{jj}"))
        if draw(st.booleans()):
            deps.append(Dependency(before=f"M{draw(st.integers(0, k - 1))}", after=f"A{j}"))
    tpl = ProcessTemplate(name="random", milestones=milestones, activities=acts, dependencies=deps)
    # drop dependencies that would loop through the milestone order (those are tested elsewhere)
    g = nx.DiGraph([(d.before, d.after) for d in tpl.all_dependencies()])
    if not nx.is_directed_acyclic_graph(g):
        tpl = tpl.model_copy(update={"dependencies": []})
    return tpl


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tpl=templates(), offset=st.integers(-10, 200), extra=st.integers(1, 60), seed=st.integers(0, 3))
def test_plan_properties(tpl: ProcessTemplate, offset: int, extra: int, seed: int) -> None:
    target = AS_OF + offset * DAY
    p = plan_backwards(tpl, target_date=target, as_of=AS_OF, seed=seed, n_simulations=400)
    df = p.to_frame()
    todo = df[~df["done"]]
    # every latest safe date is on or before the target, and P80 dates are no later than P50 dates
    assert (todo["latest_p50"] <= target).all() and (todo["latest_p80"] <= target).all()
    assert (todo["latest_p80"] <= todo["latest_p50"]).all()
    # ...and respects every dependency
    by = df.set_index("item")
    for d in tpl.all_dependencies():
        for col in ("latest_p50", "latest_p80"):
            assert by.at[d.before, col] <= by.at[d.after, col], (d, col)
    # the chance of success never falls as the target moves later
    later = plan_backwards(tpl, target_date=target + extra * DAY, as_of=AS_OF, seed=seed, n_simulations=400)
    assert later.probability >= p.probability
    assert 0.0 <= p.probability <= p.p_success <= 1.0
    if p.p50_date is not None:
        assert p.earliest_date <= p.p50_date <= p.p80_date


# --- a case under way ---------------------------------------------------------------------------


def _clockwork_history() -> salesproc.History:
    """20 won deals: Qualify 10 days, Proposal 5, Negotiation 2 (exactly); 'OPEN' sits in Proposal."""
    rows = []
    for i in range(20):
        t0 = AS_OF - pd.Timedelta(days=200 - i)
        rows += [
            (f"W{i:02}", "Qualify", "milestone", t0, "won", t0 + 17 * DAY),
            (f"W{i:02}", "Demo", "activity", t0 + 3 * DAY, "won", t0 + 17 * DAY),
            (f"W{i:02}", "Proposal", "milestone", t0 + 10 * DAY, "won", t0 + 17 * DAY),
            (f"W{i:02}", "Negotiation", "milestone", t0 + 15 * DAY, "won", t0 + 17 * DAY),
        ]
    rows += [
        ("OPEN", "Qualify", "milestone", AS_OF - 12 * DAY, "open", pd.NaT),
        ("OPEN", "Demo", "activity", AS_OF - 11 * DAY, "open", pd.NaT),
        ("OPEN", "Proposal", "milestone", AS_OF - 2 * DAY, "open", pd.NaT),
        ("SKIP", "Negotiation", "milestone", AS_OF - 1 * DAY, "open", pd.NaT),
        ("FRESH", "Demo", "activity", AS_OF - 3 * DAY, "open", pd.NaT),
        ("LOST", "Qualify", "milestone", AS_OF - 30 * DAY, "lost", AS_OF - 20 * DAY),
    ]
    ev = pd.DataFrame(rows, columns=["case_id", "name", "type", "timestamp", "outcome", "closed"])
    return salesproc.load_history(ev)


def test_a_case_under_way_plans_only_the_rest_given_its_time_so_far() -> None:
    h = _clockwork_history()
    t = ProcessTemplate(
        name="clockwork",
        milestones=[_fixed("Qualify", 1, 10), _fixed("Proposal", 2, 5), _fixed("Negotiation", 3, 2)],
        activities=[Activity(name="Demo", milestone="Proposal", due_days_before=7, critical=True, requirement="required")],
    )
    p = plan_backwards(t, target_date=AS_OF + 10 * DAY, as_of=AS_OF, history=h, case="OPEN")
    assert p.current == "Proposal"
    assert [(i.name, i.status) for i in p.items] == [
        ("Qualify", "done"), ("Demo", "done"), ("Proposal", "current"), ("Negotiation", "planned")
    ]
    assert p.item("Qualify").done_date == AS_OF - 12 * DAY and p.item("Demo").done_date == AS_OF - 11 * DAY
    assert all(i.latest_p50 is None and i.latest_p80 is None for i in p.items if i.done)
    # 2 of Proposal's 5 days are gone: 3 left, then Negotiation's 2
    assert _days(p.p50_date) == 5 and p.probability == 1.0
    assert _days(p.item("Negotiation").latest_p50) == 10 - 2
    assert "from Proposal (there for 2 days)" in p.message
    assert p.to_frame()["done"].tolist() == [True, True, True, False]


def test_skipped_milestones_are_never_scheduled() -> None:
    h = _clockwork_history()
    t = ProcessTemplate(milestones=[_fixed("Qualify", 1, 10), _fixed("Proposal", 2, 5), _fixed("Negotiation", 3, 2)])
    p = plan_backwards(t, target_date=AS_OF + 10 * DAY, as_of=AS_OF, history=h, case="SKIP")
    assert [(i.name, i.status) for i in p.items] == [
        ("Qualify", "skipped"), ("Proposal", "skipped"), ("Negotiation", "current")
    ]
    assert not any(i.remaining for i in p.items)
    assert Calendar.from_ical(p.to_ical()).walk("VEVENT") == []


def test_a_case_that_reached_no_milestone_yet_starts_at_the_first_one() -> None:
    h = _clockwork_history()
    t = ProcessTemplate(
        milestones=[_fixed("Qualify", 1, 10), _fixed("Proposal", 2, 5), _fixed("Negotiation", 3, 2)],
        activities=[Activity(name="Demo", milestone="Proposal", due_days_before=7, critical=True, requirement="required")],
    )
    p = plan_backwards(t, target_date=AS_OF + 30 * DAY, as_of=AS_OF, history=h, case="FRESH")
    assert p.current is None
    assert [(i.name, i.status) for i in p.items] == [
        ("Qualify", "planned"), ("Demo", "done"), ("Proposal", "planned"), ("Negotiation", "planned")
    ]
    # the case is 3 days old: 7 of Qualify's 10 days left, then 5 and 2
    assert _days(p.p50_date) == 14
    assert _days(p.item("Qualify").latest_p50) == 30 - 17
    assert "| Current milestone | not started |" in p.to_markdown()


def test_closed_and_unknown_cases_are_refused() -> None:
    h = _clockwork_history()
    t = ProcessTemplate(milestones=[_fixed("Qualify", 1, 10), _fixed("Proposal", 2, 5)])
    with pytest.raises(PlanError, match=r"case 'LOST' is already closed \(lost on 2023-12-12\); plans are for open"):
        plan_backwards(t, target_date="2024-02-01", as_of=AS_OF, history=h, case="LOST")
    with pytest.raises(PlanError, match=r"no case 'NOPE' in the history as known on 2024-01-01"):
        plan_backwards(t, target_date="2024-02-01", as_of=AS_OF, history=h, case="NOPE")
    # as known before it was created, the open case does not exist yet
    with pytest.raises(PlanError, match=r"no case 'OPEN' .* pass a later as_of"):
        plan_backwards(t, target_date="2024-02-01", as_of=AS_OF - 20 * DAY, history=h, case="OPEN")


def test_planning_leaves_the_history_unchanged() -> None:
    h = _clockwork_history()
    before_c, before_e = h.cases.copy(), h.events.copy()
    t = ProcessTemplate(milestones=[_fixed("Qualify", 1, 10), _fixed("Proposal", 2, 5), _fixed("Negotiation", 3, 2)])
    plan_backwards(t, target_date=AS_OF + 10 * DAY, as_of=AS_OF, history=h, case="OPEN")
    pd.testing.assert_frame_equal(h.cases, before_c)
    pd.testing.assert_frame_equal(h.events, before_e)


@pytest.fixture(scope="module")
def synthetic() -> tuple[salesproc.History, object, ProcessTemplate, pd.Timestamp]:
    h, truth = salesproc.synthetic_history(1500, seed=5)
    cut = truth.as_of - pd.Timedelta(days=120)
    t = salesproc.derive_template(h.as_of(cut), as_of=cut)
    return h, truth, t, cut


def test_plans_for_cases_at_later_milestones_never_schedule_done_work(synthetic: tuple) -> None:
    h, _, t, cut = synthetic
    view = h.as_of(cut)
    names = t.milestone_names
    open_ids = view.cases.loc[view.cases["status"] == "open", "case_id"].tolist()
    checked = 0
    for cid in open_ids[:80]:
        p = plan_backwards(t, target_date=cut + 45 * DAY, as_of=cut, history=h, case=cid, n_simulations=500)
        ev = view.events[view.events["case_id"] == cid]
        did = set(ev["name"].astype(str))
        assert p.current in names
        at = names.index(p.current)
        checked += at >= 2
        for it in p.items:
            if it.name in did:  # reached or done before the plan: never scheduled again
                assert it.done and it.latest_p50 is None and it.latest_p80 is None and it.done_date is not None
            if it.type == "milestone" and names.index(it.name) <= at:
                assert not it.remaining
            if it.remaining and it.milestone in did:  # due before a milestone already reached: missed
                assert it.status == "overdue" and not it.critical and it.name in " ".join(p.notes)
        scheduled = set(p.this_week) | set(p.next_two_weeks) | set(p.overdue) | set(p.critical_path)
        assert set(p.critical_path) <= {i.name for i in p.items if i.remaining}
        assert not scheduled & did
        events = Calendar.from_ical(p.to_ical()).walk("VEVENT")
        assert len(events) == sum(i.remaining for i in p.items)
    assert checked >= 10  # plenty of the cases stood at a later milestone


# --- calibration ----------------------------------------------------------------------------------


def _calibration(kind: str, n: int, seed: int, back: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    h, truth = salesproc.synthetic_history(n, seed=seed, kind=kind)
    cut = truth.as_of - pd.Timedelta(days=back)
    view = h.as_of(cut)
    t = salesproc.derive_template(view, as_of=cut)
    target = cut + pd.Timedelta(days=horizon)
    final = h.cases.set_index("case_id")
    good = final["outcome"].isin(["won"] if kind == "deal" else ["on_time", "late"])
    by_target = good & (final["closed"] < target + DAY)
    probs, real = [], []
    for cid in view.cases.loc[view.cases["status"] == "open", "case_id"]:
        p = plan_backwards(t, target_date=target, as_of=cut, history=view, case=cid, n_simulations=2000)
        probs.append(p.probability)
        real.append(bool(by_target.loc[cid]))
    return np.array(probs), np.array(real)


def test_stated_odds_match_what_open_deals_really_did() -> None:
    probs, real = _calibration("deal", 3000, seed=1, back=150, horizon=60)
    assert len(probs) > 200
    assert abs(probs.mean() - real.mean()) < 0.04, (probs.mean(), real.mean())
    bins = np.digitize(probs, [0.3, 0.6])
    for b in range(3):
        m = bins == b
        if m.sum() >= 40:
            assert abs(probs[m].mean() - real[m].mean()) < 0.12, (b, probs[m].mean(), real[m].mean())


@pytest.mark.slow
def test_stated_odds_match_what_open_projects_really_did() -> None:
    probs, real = _calibration("project", 1500, seed=1, back=200, horizon=90)
    assert len(probs) > 100
    assert abs(probs.mean() - real.mean()) < 0.05, (probs.mean(), real.mean())


@pytest.mark.slow
def test_template_only_odds_match_the_truth_for_new_deals() -> None:
    h, truth = salesproc.synthetic_history(6000, seed=3)
    c = h.cases
    early = c[c["created"] < truth.as_of - pd.Timedelta(days=250)]  # all closed by as_of
    days = (early["closed"] - early["created"]) / DAY
    won = early["status"] == "success"
    t = salesproc.derive_template(h, as_of=truth.as_of)
    p = plan_backwards(t, target_date=truth.as_of + 60 * DAY, as_of=truth.as_of, n_simulations=50_000)
    assert p.p_success == pytest.approx(won.mean(), abs=0.03)
    assert p.probability == pytest.approx((won & (days < 61)).mean(), abs=0.03)


# --- exports ------------------------------------------------------------------------------------


def _check_exports(p: Plan, folder: Path) -> None:
    md = p.to_markdown(folder / "plan.md")
    html = p.to_html(folder / "plan.html")
    assert (folder / "plan.md").read_text(encoding="utf-8") == md
    assert md.startswith("# Plan: ") and "## Checklist" in md
    assert html.startswith("<!DOCTYPE html>") and "</html>" in html
    todo = [i for i in p.items if i.remaining]
    for it in p.items:
        mark = "[x]" if it.done else "[ ]"
        assert any(line.startswith(f"- {mark} ") and it.name.replace("_", "\\_") in line for line in md.splitlines())
    path = p.to_ics(folder / "plan.ics")
    cal = Calendar.from_ical(path.read_bytes())
    events = cal.walk("VEVENT")
    assert len(events) == len(todo) > 0
    by_day = {}
    for e in events:
        by_day[str(e["SUMMARY"]).split(": latest safe date")[0].removeprefix("[overdue] ")] = e.decoded("DTSTART")
        assert e.decoded("DTSTAMP") == p.as_of.to_pydatetime()
    assert by_day == {it.name: it.latest_p80.date() for it in todo}
    p50 = Calendar.from_ical(p.to_ical(level="p50")).walk("VEVENT")
    assert sorted(e.decoded("DTSTART") for e in p50) == sorted(it.latest_p50.date() for it in todo)


@pytest.mark.shared
def test_a_receipt_project_plan_renders_and_its_calendar_parses(shared_data: Path, tmp_path: Path) -> None:
    h = salesproc.load_history(
        shared_data / "receipt" / "receipt.csv",
        mapping={"case_id": "case:concept:name", "name": "concept:name", "timestamp": "time:timestamp",
                 "owner": "org:resource", "role": "org:group", "created": "case:startdate",
                 "closed": "case:enddate", "target_date": "case:enddate_planned"},
        kind="project",
    )
    as_of = pd.Timestamp("2011-12-01", tz="UTC")
    t = salesproc.derive_template(h, as_of=as_of)
    view = h.as_of(as_of)
    opened = view.cases[(view.cases["status"] == "open")]
    ev = view.events
    # an open project that has only had its confirmation of receipt: most of the plan is ahead
    first_only = ev.groupby("case_id", observed=True)["name"].nunique()
    cid = next(c for c in opened["case_id"] if first_only.get(c, 0) == 1)
    goal = Goal(as_of + 45 * DAY, success="Permit intake complete", measure="case closed",
                seller_owner="Group 1", buyer_owner="Applicant")
    p = plan_backwards(t, goal=goal, as_of=as_of, history=h, case=cid)
    assert p.kind == "project" and p.case_id == cid and p.current == "Confirmation of receipt"
    assert "projects like this finish from Confirmation of receipt" in p.message
    assert "Delivery team owner" in p.to_markdown() and "Customer owner" in p.to_markdown()
    _check_exports(p, tmp_path)


def test_a_synthetic_deal_plan_renders_and_its_calendar_parses(synthetic: tuple, tmp_path: Path) -> None:
    h, _, t, cut = synthetic
    view = h.as_of(cut)
    cid = view.cases.loc[view.cases["status"] == "open", "case_id"].iloc[0]
    p = plan_backwards(t, target_date=cut + 60 * DAY, as_of=cut, history=h, case=cid, seed=1)
    _check_exports(p, tmp_path)
    html = p._repr_html_()
    assert html.startswith('<div class="salesproc-plan">') and cid in html


def test_ics_uids_are_stable_per_case_and_item(synthetic: tuple) -> None:
    h, _, t, cut = synthetic
    view = h.as_of(cut)
    cid = view.cases.loc[view.cases["status"] == "open", "case_id"].iloc[0]
    a = plan_backwards(t, target_date=cut + 30 * DAY, as_of=cut, history=h, case=cid)
    b = plan_backwards(t, target_date=cut + 90 * DAY, as_of=cut, history=h, case=cid, seed=9)

    def uids(p: Plan) -> dict[str, str]:
        return {str(e["SUMMARY"]).split(":")[0].removeprefix("[overdue] "): str(e["UID"])
                for e in Calendar.from_ical(p.to_ical()).walk("VEVENT")}

    assert uids(a) == uids(b) and len(set(uids(a).values())) == len(uids(a))
    assert a.to_ical() == plan_backwards(t, target_date=cut + 30 * DAY, as_of=cut, history=h, case=cid).to_ical()


def test_csv_neutralises_formula_cells_and_never_overwrites(tmp_path: Path) -> None:
    t = ProcessTemplate(
        milestones=[
            Milestone(name="=HYPERLINK(\"http://x\")", order=1, owner_role="+AE", p50_days=3, p80_days=5),
            Milestone(name="@Proposal", order=2, owner_role="-SE", p50_days=3, p80_days=5),
        ],
    )
    p = plan_backwards(t, target_date="2024-03-01", as_of=AS_OF, n_simulations=200)
    out = p.to_csv(tmp_path / "plan.csv")
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [r["item"] for r in rows] == ["'=HYPERLINK(\"http://x\")", "'@Proposal"]
    assert [r["owner"] for r in rows] == ["'+AE", "'-SE"]
    assert rows[1]["depends_on"] == "'=HYPERLINK(\"http://x\")"
    assert rows[0]["latest_p80"] == f"{p.item(t.milestones[0].name).latest_p80:%Y-%m-%d}"
    assert not any(v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values() if v)
    with pytest.raises(OverwriteError):
        p.to_csv(tmp_path / "plan.csv")
    with pytest.raises(OverwriteError):
        p.to_ics(tmp_path / "plan.csv")
    p.to_csv(tmp_path / "plan.csv", overwrite=True)


def test_markdown_and_html_escape_what_people_typed() -> None:
    t = ProcessTemplate(milestones=[Milestone(name="<b>Qualify</b> | *now*", order=1, p50_days=3, p80_days=5)])
    p = plan_backwards(t, target_date="2024-03-01", as_of=AS_OF, n_simulations=200)
    assert "&lt;b&gt;Qualify&lt;/b&gt;" in p.to_html() and "<b>Qualify" not in p.to_html()
    assert r"\<b\>Qualify\</b\> \| \*now\*" in p.to_markdown()


# --- chart --------------------------------------------------------------------------------------


def test_plot_plan_draws_done_bars_planned_windows_and_the_target(synthetic: tuple) -> None:
    from matplotlib.figure import Figure

    h, _, t, cut = synthetic
    view = h.as_of(cut)
    cid = view.cases.loc[view.cases["status"] == "open", "case_id"].iloc[3]
    p = plan_backwards(t, target_date=cut + 60 * DAY, as_of=cut, history=h, case=cid)
    ax = Figure().subplots()
    assert plot_plan(p, ax=ax) is ax
    labels = [x.get_text() for x in ax.get_yticklabels()]
    assert labels == [i.name for i in p.items]
    bars = list(ax.patches)
    drawn = sum(1 for i in p.items if i.remaining) + sum(1 for i in p.items if i.done and i.type == "milestone")
    assert len(bars) == drawn
    assert len(ax.lines) >= 2  # the target and today lines
    fresh = plot_plan(p)
    assert fresh.figure is not ax.figure


# --- command line -------------------------------------------------------------------------------


def test_cli_plan_writes_the_checklist_csv_and_calendar(synthetic: tuple, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from salesproc.cli import main

    h, _, t, cut = synthetic
    view = h.as_of(cut)
    hist = tmp_path / "history"
    view.to_parquet(hist)
    tpl = salesproc.save_template(t, tmp_path / "process.yaml")
    cid = str(view.cases.loc[view.cases["status"] == "open", "case_id"].iloc[0])
    out = tmp_path / "reports"
    args = ["plan", "-t", str(tpl), "--target-date", f"{cut + 60 * DAY:%Y-%m-%d}", "--history", str(hist),
            "--case", cid, "--as-of", f"{cut:%Y-%m-%d}", "--owner", "Negotiation=Dana (AE)",
            "--success", "Order form signed", "-o", str(out)]
    runner = CliRunner()
    r = runner.invoke(main, args)
    assert r.exit_code == 0, r.output
    expected = plan_backwards(salesproc.load_template(tpl), target_date=cut + 60 * DAY, as_of=cut, history=view,
                              case=cid, owners={"Negotiation": "Dana (AE)"},
                              goal=Goal(cut + 60 * DAY, success="Order form signed"))
    assert repr(expected) in r.output and expected.message in r.output
    stem = f"plan-{cid}-{cut + 60 * DAY:%Y-%m-%d}"
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{stem}.{x}" for x in ("csv", "html", "ics", "md"))
    assert (out / f"{stem}.md").read_text(encoding="utf-8") == expected.to_markdown()
    assert len(Calendar.from_ical((out / f"{stem}.ics").read_bytes()).walk("VEVENT")) == sum(
        i.remaining for i in expected.items)
    again = runner.invoke(main, args)
    assert again.exit_code == 2 and "exists" in again.output and "overwrite" in again.output
    assert runner.invoke(main, [*args, "--overwrite", "--format", "ics"]).exit_code == 0
    no_hist = runner.invoke(main, ["plan", "-t", str(tpl), "--target-date", "2024-01-01", "--case", cid])
    assert no_hist.exit_code == 2 and "--case needs --history" in no_hist.output
    bad = runner.invoke(main, [*args[:-2], "-o", str(tmp_path / "x"), "--owner", "Nope=Me"])
    assert bad.exit_code == 2 and "error: The 'owners' parameter names ['Nope']" in bad.output


def test_plot_plan_shows_names_with_dollar_signs_as_typed() -> None:
    import io as _io

    name = "Budget $\\nocmd{$ approved"
    t = ProcessTemplate(milestones=[Milestone(name=name, order=1, p50_days=3, p80_days=5)])
    p = plan_backwards(t, target_date="2024-03-01", as_of=AS_OF, n_simulations=200,
                       goal=Goal("2024-03-01", success="$2M $\\x signed"))
    ax = plot_plan(p)
    ax.figure.savefig(_io.BytesIO(), format="png")  # mathtext would raise on these names
    assert [x.get_text() for x in ax.get_yticklabels()] == [name]


# --- a template changed without its checks (issue 17) ------------------------------------------------------


def test_a_template_changed_past_its_checks_is_refused() -> None:
    """A negative duration once made a plan look likelier (25% -> 29%); a template that model_copy
    gave one (pydantic does not check updates) is refused, naming the field and the fix."""
    from salesproc.errors import TemplateError

    t = _fixed_template()
    ms = [m.model_copy(update={"p50_days": -5.0, "p80_days": -5.0}) if m.name == "Proposal" else m
          for m in t.milestones]
    bad = t.model_copy(update={"milestones": ms})
    with pytest.raises(TemplateError, match=(
        r"(?s)The 'template' parameter of plan_backwards holds values a template cannot have:\n"
        r"  milestones\[1\]\.p50_days: found -5\.0, expected a finite number of days, 0 or more.*"
        r"Fix: change templates with salesproc\.edit"
    )):
        plan_backwards(bad, target_date="2024-03-01", as_of=AS_OF, n_simulations=1000)
    p = plan_backwards(t, target_date="2024-03-01", as_of=AS_OF, n_simulations=1000)  # the checked one plans
    assert p.item("Proposal") is not None
