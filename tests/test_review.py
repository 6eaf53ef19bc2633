"""Deal review: positions, calibrated probabilities with intervals, reasons, flags on planted
situations, gaps, actions, no leakage, immutability, charts, and the Maven CRM pipeline."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes

import salesproc
from salesproc.charts import plot_risk_amount, plot_stage_ageing
from salesproc.history import History
from salesproc.review._review import FLAGS, DealReview, Review, ReviewError, review_deals

DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def synth() -> tuple[History, object, salesproc.ProcessTemplate]:
    h, truth = salesproc.synthetic_history(3000, seed=11)
    t = salesproc.derive_template(h, as_of=truth.as_of)
    return h, truth, t


@pytest.fixture(scope="module")
def review(synth) -> Review:
    h, truth, t = synth
    return review_deals(h, t, as_of=truth.as_of)


def _plant(h: History, cases: list[dict], events: list[dict]) -> History:
    """The history plus hand-made cases and events (canonical columns)."""
    c = h.cases
    e = h.events.assign(case_id=lambda d: d["case_id"].astype(str), name=lambda d: d["name"].astype(str),
                        type=lambda d: d["type"].astype(str))
    c = c.assign(kind=c["kind"].astype(str), outcome=c["outcome"].astype(str), status=c["status"].astype(str))
    if cases:
        extra_c = pd.DataFrame(cases)
        for col in ("closed", "target_date"):
            if col not in extra_c.columns:
                extra_c[col] = pd.NaT
        extra_c["kind"] = "deal"
        extra_c["status"] = extra_c["outcome"].map({"open": "open", "won": "success", "lost": "failure"})
        c = pd.concat([c, extra_c], ignore_index=True)
    cases_all = c
    ev_all = pd.concat([e, pd.DataFrame(events)], ignore_index=True)
    return History.from_frames(cases_all, ev_all)


def _case(cid: str, created: pd.Timestamp, **extra: object) -> dict:
    return {"case_id": cid, "outcome": "open", "created": created, "amount": 10_000.0, "owner": "Pat Planted",
            "segment": "SMB", **extra}


def _ev(cid: str, name: str, when: pd.Timestamp, kind: str = "milestone", owner: str = "Pat Planted",
        role: str = "AE") -> dict:
    return {"case_id": cid, "name": name, "type": kind, "timestamp": when, "owner": owner, "role": role}


# --- the pipeline table ----------------------------------------------------------------------------


def test_one_row_per_open_deal_sorted_by_expected_loss(synth, review):
    h = synth[0]
    open_ids = set(h.cases.loc[h.cases["outcome"] == "open", "case_id"])
    f = review.to_frame()
    assert len(review) == len(f) == len(open_ids)
    assert set(f["case_id"]) == open_ids
    assert f["rank"].tolist() == list(range(1, len(f) + 1))
    el = f["expected_loss"].to_numpy()
    assert np.all(np.diff(el) <= 1e-9), "most expected loss (risk x amount) first"
    np.testing.assert_allclose(el, (1 - f["probability"]) * f["amount"])


def test_probabilities_have_intervals_and_evidence(review):
    f = review.to_frame()
    assert f["probability"].between(0, 1).all()
    assert (f["probability_low"] <= f["probability"] + 1e-12).all()
    assert (f["probability"] <= f["probability_high"] + 1e-12).all()
    assert (f["comparable_n"] >= f["comparable_k"]).all()
    seen = f["comparable_n"] > 0
    assert seen.mean() > 0.9
    np.testing.assert_allclose(f.loc[seen, "comparable_rate"], f.loc[seen, "comparable_k"] / f.loc[seen, "comparable_n"])
    m = review.model
    assert m.snapshots > 1000 and m.cases > 1000 and 0 < m.successes < m.cases
    assert m.horizon_days > 0 and set(m.coefficients.columns) >= {"feature", "coef", "se", "odds_ratio"}


def test_positions_match_the_template(review, synth):
    _, _, t = synth
    f = review.to_frame()
    on = f["milestone"].notna()
    assert set(f.loc[on, "milestone"]) <= set(t.milestone_names)
    assert (f.loc[on, "milestone_order"] == f.loc[on, "milestone"].map({n: i + 1 for i, n in enumerate(t.milestone_names)})).all()
    p80 = f.loc[on, "milestone"].map({m.name: m.p80_days for m in t.milestones})
    np.testing.assert_array_equal(f.loc[on, "stalled"], f.loc[on, "days_in_milestone"] > p80)
    assert f["milestone_percentile"].between(0, 1).all()


def test_review_is_immutable_and_gives_deal_reviews(review):
    f = review.to_frame()
    f.loc[0, "probability"] = -1.0
    assert review.to_frame().loc[0, "probability"] >= 0
    first = review[f["case_id"].iloc[0]]
    assert isinstance(first, DealReview)
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.probability = 0.5  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        review.as_of = pd.Timestamp("2000-01-01", tz="UTC")  # type: ignore[misc]
    assert [d.case_id for d in review][:5] == f["case_id"].head(5).tolist()
    assert f["case_id"].iloc[3] in review and "no-such-deal" not in review
    with pytest.raises(KeyError, match="no open deal 'no-such-deal'"):
        review["no-such-deal"]


def test_every_number_of_a_deal_is_traceable(review):
    d = next(iter(review))
    assert d.probability_low <= d.probability <= d.probability_high
    assert d.reasons[0].points is None and f"{d.comparable_n:,}" in d.reasons[0].text
    for r in d.reasons[1:]:
        assert r.points is not None and "points" in r.text
    for g in d.gaps:
        assert g.n is not None and g.n > 0 and "n=" in g.evidence
    text = str(d)
    assert d.case_id in text and "probability" in text
    assert d.case_id in d._repr_html_()
    assert d.to_dict()["case_id"] == d.case_id


def test_repr_and_html(review):
    assert repr(review).startswith(f"<Review {len(review):,} open deals as of")
    html = review._repr_html_()
    assert "<table>" in html and review.to_frame()["case_id"].iloc[0] in html
    s = review.summary()
    assert s["open_deals"] == len(review) and set(FLAGS) <= set(s)


def test_input_history_is_not_mutated(synth):
    h, truth, t = synth
    cases, events = h.cases.copy(deep=True), h.events.copy(deep=True)
    review_deals(h, t, as_of=truth.as_of - 30 * DAY)
    pd.testing.assert_frame_equal(h.cases, cases)
    pd.testing.assert_frame_equal(h.events, events)


# --- flags on planted situations ----------------------------------------------------------------


@pytest.fixture(scope="module")
def planted(synth) -> tuple[Review, pd.Timestamp]:
    h, truth, t = synth
    A = truth.as_of
    cases = [
        _case("P-STALL", A - 260 * DAY),
        _case("P-REGRESS", A - 60 * DAY),
        _case("P-PUSHED", A - 10 * DAY, close_date_changes=2),
        _case("P-EXPECTED", A - 10 * DAY, expected_close=A - 3 * DAY),
        _case("P-MISSING", A - 40 * DAY),
        _case("P-FRESH", A - 1 * DAY),
        _case("P-SINGLE", A - 20 * DAY),
    ]
    ev = [
        _ev("P-STALL", "Qualify", A - 260 * DAY), _ev("P-STALL", "Champion identified", A - 255 * DAY, "activity"),
        _ev("P-STALL", "Discovery", A - 250 * DAY),
        _ev("P-REGRESS", "Qualify", A - 60 * DAY), _ev("P-REGRESS", "Champion identified", A - 58 * DAY, "activity"),
        _ev("P-REGRESS", "Discovery", A - 50 * DAY),
        _ev("P-REGRESS", "Economic buyer met", A - 45 * DAY, "activity", "Victoria Hale", "Exec"),
        _ev("P-REGRESS", "Solution", A - 40 * DAY),
        _ev("P-REGRESS", "Technical validation", A - 35 * DAY, "activity", "Tom Becker", "SE"),
        _ev("P-REGRESS", "Proposal", A - 30 * DAY), _ev("P-REGRESS", "Solution", A - 5 * DAY),
        _ev("P-PUSHED", "Qualify", A - 10 * DAY), _ev("P-EXPECTED", "Qualify", A - 10 * DAY),
        _ev("P-MISSING", "Qualify", A - 40 * DAY), _ev("P-MISSING", "Discovery", A - 30 * DAY),
        _ev("P-MISSING", "Solution", A - 20 * DAY), _ev("P-MISSING", "Proposal", A - 5 * DAY),
        _ev("P-FRESH", "Qualify", A - 1 * DAY), _ev("P-FRESH", "Champion identified", A - 1 * DAY, "activity"),
        _ev("P-SINGLE", "Qualify", A - 20 * DAY), _ev("P-SINGLE", "Champion identified", A - 19 * DAY, "activity"),
        _ev("P-SINGLE", "Discovery", A - 12 * DAY),
    ]
    hp = _plant(h, cases, ev)
    return review_deals(hp, t, as_of=A), A


def test_stalled_far_beyond_p80(planted, synth):
    r, _ = planted
    t = synth[2]
    d = r["P-STALL"]
    p80 = t.milestone("Discovery").p80_days
    assert d.milestone == "Discovery" and d.days_in_milestone == pytest.approx(250)
    assert "stalled" in d.flag_names
    reason = next(f.reason for f in d.flags if f.name == "stalled")
    assert "250 days in Discovery" in reason and f"p80 of {p80:.0f} days" in reason
    assert "regressed" not in d.flag_names
    assert d.probability < r.to_frame().query("milestone == 'Discovery' and not stalled")["probability"].median()


def test_late_stage_regression(planted):
    r, A = planted
    d = r["P-REGRESS"]
    assert d.milestone == "Solution" and "regressed" in d.flag_names
    reason = next(f.reason for f in d.flags if f.name == "regressed")
    assert reason == f"went back from Proposal to Solution on {(A - 5 * DAY).date()}"
    assert "missing_critical" not in d.flag_names


def test_close_date_pushed(planted):
    r, A = planted
    d = r["P-PUSHED"]
    assert "close_date_pushed" in d.flag_names
    assert "close date moved 2 time(s)" in next(f.reason for f in d.flags if f.name == "close_date_pushed")
    e = r["P-EXPECTED"]
    assert f"expected close {(A - 3 * DAY).date()} has passed (3 days ago)" in next(
        f.reason for f in e.flags if f.name == "close_date_pushed")
    assert any(a.source == "flag" and "close date" in a.what for a in e.actions)
    others = r.to_frame().query("case_id not in ['P-PUSHED', 'P-EXPECTED']")
    assert not others["close_date_pushed"].any()


def test_missing_critical_activities_and_their_actions(planted, synth):
    r, A = planted
    t = synth[2]
    d = r["P-MISSING"]
    crit = {a.name: a for a in t.critical_activities}
    order = {n: i for i, n in enumerate(t.milestone_names)}
    expect_overdue = {n for n, a in crit.items() if a.milestone is not None and order[a.milestone] <= order["Proposal"]}
    assert expect_overdue, "the synthetic template has critical activities due by Proposal"
    assert {g.activity for g in d.gaps if g.status == "overdue"} == expect_overdue
    assert "missing_critical" in d.flag_names
    for g in d.gaps:
        ev = crit[g.activity].evidence
        assert g.risk_difference == ev.risk_difference and g.n == ev.n
    quantified = [a for a in d.actions if a.effect is not None]
    assert [a.effect for a in quantified] == sorted((a.effect for a in quantified), reverse=True)
    for a in d.actions:
        assert a.by >= A
        name = a.what.removeprefix("Do '").removesuffix("'")
        if a.source == "template" and name in expect_overdue:
            assert a.by == A + 3 * DAY and a.owner == crit[name].owner_role
    assert all(a.effect > 0 for a in quantified)
    assert r.to_frame().set_index("case_id").loc["P-MISSING", "overdue_critical"] == len(expect_overdue)


def test_fresh_deal_has_no_flags(planted):
    r, _ = planted
    d = r["P-FRESH"]
    assert d.flags == () and d.gaps == ()
    assert d.milestone == "Qualify" and d.days_in_milestone == pytest.approx(1)


def test_single_threaded_where_the_data_has_people(planted, review):
    r, _ = planted
    d = r["P-SINGLE"]
    assert d.milestone == "Discovery"
    assert "single_threaded" in d.flag_names
    reason = next(f.reason for f in d.flags if f.name == "single_threaded")
    assert "only one person" in reason and "(owner)" in reason
    assert r.model.people_column == "owner"
    assert not any("single-threaded check skipped" in c for c in review.caveats)


def test_single_threaded_check_says_when_the_data_has_no_people(synth):
    h, truth, t = synth
    e = h.events.assign(owner=None)
    nobody = History.from_frames(h.cases, e.assign(case_id=e["case_id"].astype(str)))
    r = review_deals(nobody, t, as_of=truth.as_of)
    assert not r.to_frame()["single_threaded"].any()
    assert any("single-threaded check skipped: the events name no people" in c for c in r.caveats)
    assert r.model.people_column is None


def test_slipping_against_a_plan(synth):
    h, truth, t = synth
    A = truth.as_of
    r0 = review_deals(h, t, as_of=A)
    f = r0.to_frame()
    cid = f.loc[f["milestone"] == "Discovery", "case_id"].iloc[0]
    other = f.loc[f["milestone"] == "Discovery", "case_id"].iloc[1]
    plan = pd.DataFrame({
        "item": ["Discovery", "Solution", "Proposal"],
        "latest_p80": [A - 30 * DAY, A - 4 * DAY, A + 20 * DAY],
        "done": [False, False, False],
    })
    r = review_deals(h, t, as_of=A, plans={cid: plan, other: plan.assign(latest_p80=A + 40 * DAY)})
    d = r[cid]
    assert "slipping" in d.flag_names
    # Discovery was reached (done per the history); Solution's latest safe date passed 4 days ago
    assert [(s.item, s.slip_days) for s in d.plan_slips] == [("Solution", 4.0)]
    assert any(a.source == "plan" and "Solution" in a.what for a in d.actions)
    assert "slipping" not in r[other].flag_names
    assert r.to_frame()["slipping"].sum() == 1
    with pytest.raises(ValueError, match="needs an item column"):
        review_deals(h, t, as_of=A, plans={cid: pd.DataFrame({"when": [A]})})


def test_stalled_deals_get_what_past_stalled_winners_did_next(synth):
    h, truth, t = synth
    A = truth.as_of
    base = review_deals(h, t, as_of=A)
    rec = base.recovery_table()
    assert len(rec) > 0 and (rec["low"] > 0).all()
    row = rec.iloc[0]
    names = t.milestone_names
    k = names.index(row["milestone"])
    p80 = t.milestone(row["milestone"]).p80_days
    entered = A - (3 * p80 + 1) * DAY
    ev = [_ev("P-REC", names[i], entered - (k - i) * DAY) for i in range(k + 1)]
    hp = _plant(h, [_case("P-REC", entered - (k + 1) * DAY)], ev)
    d = review_deals(hp, t, as_of=A)["P-REC"]
    assert "stalled" in d.flag_names
    hist = [a for a in d.actions if a.source == "history"]
    assert hist and hist[0].what == f"Do '{row['activity']}'"
    why = hist[0].why
    assert why.startswith(f"of {row['won']:,} deals stalled in {row['milestone']} that went on to win, "
                          f"{row['won_did']:,} did '{row['activity']}' within 14 days")
    assert hist[0].effect == pytest.approx(row["rd"], abs=1e-4)
    assert hist[0].by == A + 7 * DAY


# --- no leakage ------------------------------------------------------------------------------------


def test_a_later_event_does_not_change_the_review(synth):
    h, truth, t = synth
    cut = truth.as_of - 90 * DAY
    r0 = review_deals(h, t, as_of=cut)
    f0 = r0.to_frame()
    # an open deal past Discovery without the critical 'Champion identified'
    crit = t.critical_activities[0].name
    cand = [d.case_id for d in r0 if d.milestone_order >= 2 and any(g.activity == crit for g in d.gaps)]
    cid = cand[0]
    later = _plant(h, [], [_ev(cid, crit, cut + 2 * DAY, "activity")])
    pd.testing.assert_frame_equal(review_deals(later, t, as_of=cut).to_frame(), f0)
    # the same event before the cutoff does change the answer: the test can see a change
    earlier = _plant(h, [], [_ev(cid, crit, cut - 2 * DAY, "activity")])
    f2 = review_deals(earlier, t, as_of=cut).to_frame().set_index("case_id")
    assert f2.loc[cid, "probability"] > f0.set_index("case_id").loc[cid, "probability"] + 0.01


# --- errors -----------------------------------------------------------------------------------------


def test_errors_name_the_problem_and_the_fix(synth):
    h, truth, t = synth
    with pytest.raises(TypeError, match="must be a History"):
        review_deals(h.cases, t, as_of=truth.as_of)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a ProcessTemplate"):
        review_deals(h, {"milestones": []}, as_of=truth.as_of)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="The 'as_of' parameter of review_deals must be a date"):
        review_deals(h, t, as_of=None)
    other = t.model_copy(update={"milestones": [m.model_copy(update={"name": f"X{m.order}"}) for m in t.milestones],
                                 "activities": []})
    with pytest.raises(ReviewError, match=r"None of the template's milestones \['X1'"):
        review_deals(h, other, as_of=truth.as_of)
    with pytest.raises(ReviewError, match="no closed cases"):
        review_deals(h, t, as_of=truth.start + 3 * DAY)
    with pytest.raises(ValueError, match="The 'recovery_days' parameter of review_deals must be a number above 0"):
        review_deals(h, t, as_of=truth.as_of, recovery_days=0)


# --- charts ---------------------------------------------------------------------------------------


def test_charts_return_their_axes_without_pyplot(review):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    ax = plot_risk_amount(review)
    assert isinstance(ax, Axes) and ax.get_ylabel() == "risk of not winning"
    assert len(ax.collections) >= 1
    ax2 = plot_stage_ageing(review)
    assert [x.get_text() for x in ax2.get_yticklabels()] == review.template.milestone_names
    from matplotlib.figure import Figure

    fig = Figure()
    mine = fig.add_subplot()
    assert plot_risk_amount(review, ax=mine) is mine
    assert plt.get_fignums() == before


# --- real data: the Maven CRM pipeline ------------------------------------------------------------------


@pytest.mark.shared
def test_maven_crm_open_pipeline(shared_data):
    path = shared_data / "maven-crm" / "sales_pipeline.csv"
    h = salesproc.load_history(path, mapping="crm-snapshot")
    last = pd.Timestamp("2017-12-31", tz="UTC")
    t = salesproc.derive_template(h, as_of=last)
    r = review_deals(h, t, as_of=last)
    f = r.to_frame()
    assert len(r) == 2089 == int((h.cases["outcome"] == "open").sum())
    assert int((f["milestone"] == "Engaging").sum()) == 1589 and int(f["milestone"].isna().sum()) == 500
    # no Maven deal was ever won after 138 days of engaging: the review knows it
    old = f[f["days_in_milestone"] > 200]
    assert len(old) > 0 and (old["probability"] < 0.05).all() and old["stalled"].all()
    assert any("no people" in c for c in r.caveats)
    assert any("500 open deals are at a position no past deal was seen in" in c for c in r.caveats)
    d = r[f["case_id"].iloc[0]]
    assert d.flags and d.reasons


# --- command line -----------------------------------------------------------------------------------


def test_cli_review_prints_the_pipeline_and_writes_csv(synth, tmp_path):
    from click.testing import CliRunner

    from salesproc.cli import main

    h, truth, t = synth
    c = h.cases
    first_open = c.index[c["outcome"] == "open"][0]
    owner = c["owner"].astype(object)
    owner.loc[first_open] = "=HYPERLINK(\"http://evil\")"
    hp = History.from_frames(c.assign(owner=owner), h.events.assign(case_id=lambda e: e["case_id"].astype(str)),
                             report=h.report)
    hp.to_parquet(tmp_path / "history")
    salesproc.save_template(t, tmp_path / "process.yaml")
    args = ["review", "-t", str(tmp_path / "process.yaml"), "--history", str(tmp_path / "history"),
            "--as-of", str(truth.as_of.date()), "-o", str(tmp_path / "reports"), "--top", "5"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    n_open = int((c["outcome"] == "open").sum())
    assert f"<Review {n_open:,} open deals as of {truth.as_of.date()}" in res.output
    assert "flags: stalled" in res.output and f"... {n_open - 5:,} more" in res.output
    csv = tmp_path / "reports" / f"pipeline-review-{truth.as_of.date()}.csv"
    assert f"saved {csv}" in res.output
    table = pd.read_csv(csv)
    assert len(table) == n_open and table["rank"].tolist() == list(range(1, n_open + 1))
    assert "'=HYPERLINK(\"http://evil\")" in set(table["owner"])
    # a second run keeps the first file
    res2 = CliRunner().invoke(main, args)
    assert res2.exit_code == 0 and (tmp_path / "reports" / f"pipeline-review-{truth.as_of.date()}.v2.csv").exists()
    bad = CliRunner().invoke(main, ["review", "-t", str(tmp_path / "process.yaml"), "--history",
                                    str(tmp_path / "history"), "--as-of", str((truth.start + 2 * DAY).date())])
    assert bad.exit_code == 2 and "error: The history holds no closed cases" in bad.output


def test_html_escapes_names_from_the_data(synth):
    h, truth, t = synth
    A = truth.as_of
    evil = "<script>alert('x')</script>"
    hp = _plant(h, [_case("P-<b>HTML</b>", A - 5 * DAY, owner=evil)],
                [_ev("P-<b>HTML</b>", "Qualify", A - 5 * DAY, owner=evil)])
    r = review_deals(hp, t, as_of=A)
    frame = r.to_frame()
    assert "P-<b>HTML</b>" in set(frame["case_id"])
    html = r._repr_html_(max_rows=len(frame))
    assert evil not in html and "&lt;script&gt;" in html
    assert "<b>HTML</b>" not in html and "P-&lt;b&gt;HTML&lt;/b&gt;" in html
    deal_html = r["P-<b>HTML</b>"]._repr_html_()
    assert "<b>HTML</b>" not in deal_html


# --- a past review sees only what was recorded by then (issue 17) -----------------------------------------


def test_a_past_review_does_not_count_close_date_pushes_it_cannot_date(synth):
    h, truth, t = synth
    A = truth.as_of
    # P-LATE's close date moved twice; the data keep only that final count, not when it moved
    cases = [_case("P-LATE", A - 40 * DAY, close_date_changes=2)]
    ev = [_ev("P-LATE", "Qualify", A - 40 * DAY), _ev("P-LATE", "Discovery", A - 5 * DAY)]
    hp = _plant(h, cases, ev)
    past = A - 20 * DAY
    for given in (hp, hp.as_of(past)):  # the whole history, or the user's own past view of it
        r = review_deals(given, t, as_of=past)
        assert "close_date_pushed" not in r["P-LATE"].flag_names
        assert any(c.startswith(f"close_date_pushed leaves out close_date_changes for the deals open on {past.date()}")
                   and "Fix: review as of that date" in c for c in r.caveats)
    # reviewed as of the data's end, the count is what was known then: the flag is raised
    now = review_deals(hp, t, as_of=A)
    assert "close_date_pushed" in now["P-LATE"].flag_names
    assert not any(c.startswith("close_date_pushed leaves out") for c in now.caveats)


def test_a_template_changed_past_its_checks_is_refused(synth):
    from salesproc.errors import TemplateError

    h, truth, t = synth
    m = t.milestones[0]
    ev = m.evidence.model_copy(update={"skipped_share": 1.7})
    bad = t.model_copy(update={"milestones": [m.model_copy(update={"evidence": ev}), *t.milestones[1:]]})
    with pytest.raises(TemplateError, match=(
        r"The 'template' parameter of review_deals holds values a template cannot have:\n"
        r"  milestones\[0\]\.evidence\.skipped_share: found 1\.7, expected a share or probability between 0 and 1"
    )):
        review_deals(h, bad, as_of=truth.as_of)
