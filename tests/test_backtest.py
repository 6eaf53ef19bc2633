"""Backtesting: calibration and ranking on planted synthetic data, metrics cross-checked with scipy,
flag precision, no leakage, horizons, comparing templates, charts."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from scipy import stats

import salesproc
from salesproc.backtest import BacktestResult, backtest, compare_templates
from salesproc.history import History
from salesproc.review._metrics import auc, auc_ci, brier, calibration_table, delong, ece
from salesproc.review._review import FLAGS, review_deals

DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def small():
    h, truth = salesproc.synthetic_history(2000, seed=5)
    cut = truth.as_of - 120 * DAY
    return h, truth, cut


@pytest.fixture(scope="module")
def small_bt(small) -> BacktestResult:
    h, _, cut = small
    return backtest(h, cutoff=cut)


def _with_event(h: History, cid: str, name: str, when: pd.Timestamp) -> History:
    e = h.events
    e = e.assign(case_id=e["case_id"].astype(str), name=e["name"].astype(str), type=e["type"].astype(str))
    row = pd.DataFrame([{"case_id": cid, "name": name, "type": "activity", "timestamp": when, "owner": "Pat",
                         "role": "AE"}])
    return History.from_frames(h.cases, pd.concat([e, row], ignore_index=True), report=h.report)


# --- the acceptance test ------------------------------------------------------------------


def test_review_is_calibrated_and_ranks_better_than_the_stage_only_baseline():
    """5,000 synthetic deals with planted activity effects. About 500 deals are open on any day, too
    few for a 10-bin ECE to mean much on its own (its noise floor is about 0.05), so the backtest
    pools five monthly cutoffs (a rolling-origin backtest): about 2,500 forecasts, each made with
    only what was known at its cutoff."""
    h, truth = salesproc.synthetic_history(5000, seed=2)
    cuts = [truth.as_of - d * DAY for d in (210, 180, 150, 120, 90)]
    bt = backtest(h, cutoff=cuts)
    assert bt.metrics.n > 2000 and len(bt.reviews) == 5
    assert bt.ece <= 0.05
    assert bt.baseline is not None
    assert bt.auc > bt.baseline.auc
    assert bt.brier < bt.baseline.brier
    # every cutoff derived its own template from what was known then
    assert [t.provenance.as_of for t in bt.templates] == [c.isoformat() for c in bt.cutoffs]


# --- metrics -----------------------------------------------------------------------------------------


def test_metrics_agree_with_scipy_and_by_hand(small_bt):
    o = small_bt.outcomes
    p = o["probability"].to_numpy()
    y = o["y"].to_numpy(dtype=bool)
    u = stats.mannwhitneyu(p[y], p[~y]).statistic / (y.sum() * (~y).sum())
    assert small_bt.auc == pytest.approx(u, abs=1e-12)
    assert small_bt.brier == pytest.approx(np.mean((p - y) ** 2))
    # ECE by hand: 10 equal-mass bins of the sorted forecasts
    order = np.argsort(p, kind="stable")
    parts = np.array_split(order, 10)
    by_hand = sum(len(b) * abs(p[b].mean() - y[b].mean()) for b in parts) / len(p)
    assert small_bt.ece == pytest.approx(by_hand, abs=1e-12)
    cal = small_bt.calibration
    assert cal["n"].sum() == len(p) and cal["n"].max() - cal["n"].min() <= 1
    lo, hi = small_bt.metrics.auc_ci
    assert lo < small_bt.auc < hi


def test_metric_helpers_on_known_answers():
    y = np.array([0, 0, 1, 1], dtype=bool)
    assert auc(np.array([0.1, 0.4, 0.35, 0.8]), y) == 0.75
    assert auc(np.array([0.5, 0.5, 0.5, 0.5]), y) == 0.5
    assert brier(np.array([0.0, 0.0, 1.0, 1.0]), y) == 0.0
    # perfectly calibrated bins: ECE 0
    p = np.repeat([0.2, 0.8], 10)
    yy = np.r_[np.arange(10) < 2, np.arange(10) < 8]
    assert ece(p, yy, bins=2) == pytest.approx(0.0)
    t = calibration_table(p, yy, bins=2)
    assert t["observed"].tolist() == pytest.approx([0.2, 0.8])
    # DeLong: the AUCs of two scores and a covariance whose diagonal is positive
    rng = np.random.default_rng(0)
    yb = rng.random(300) < 0.4
    s1 = yb + rng.normal(0, 1, 300)
    aucs, cov = delong([s1, -s1], yb)
    assert aucs[0] == pytest.approx(auc(s1, yb)) and aucs[1] == pytest.approx(1 - aucs[0])
    assert cov[0, 0] > 0 and cov[0, 1] == pytest.approx(-cov[0, 0])
    lo, hi = auc_ci(s1, yb)
    assert lo < aucs[0] < hi


def test_flag_precision_is_the_share_of_flagged_deals_not_won(small_bt):
    o = small_bt.outcomes
    fl = small_bt.flags.set_index("flag")
    assert list(fl.index) == list(FLAGS)
    for name in FLAGS:
        sel = o[name].to_numpy(dtype=bool)
        assert fl.loc[name, "support"] == sel.sum()
        if sel.any():
            assert fl.loc[name, "precision"] == pytest.approx((~o["y"][sel]).mean())
            assert fl.loc[name, "precision_low"] <= fl.loc[name, "precision"] <= fl.loc[name, "precision_high"]
    assert fl.loc["close_date_pushed", "support"] == 0  # not backtested: final-state attributes would leak
    assert any("close_date_pushed is not backtested" in n for n in small_bt.notes)


def test_backtest_leaves_the_history_unchanged(small):
    h, _, cut = small
    cases, events = h.cases.copy(deep=True), h.events.copy(deep=True)
    backtest(h, cutoff=cut, horizon_days=60)
    pd.testing.assert_frame_equal(h.cases, cases)
    pd.testing.assert_frame_equal(h.events, events)


def test_outcomes_are_read_after_the_cutoff(small, small_bt):
    h, _, cut = small
    o = small_bt.outcomes
    c = h.cases.set_index("case_id").loc[o["case_id"]]
    assert (c["created"] <= cut).all()
    assert ((c["closed"] > cut) | c["closed"].isna()).all()
    np.testing.assert_array_equal(o["y"].to_numpy(), (c["outcome"] == "won").to_numpy())


def test_horizon_counts_wins_within_it(small):
    h, _, cut = small
    bt = backtest(h, cutoff=cut, horizon_days=30)
    o = bt.outcomes
    c = h.cases.set_index("case_id").loc[o["case_id"]]
    within = (c["outcome"] == "won").to_numpy() & (c["closed"] <= cut + 30 * DAY).fillna(False).to_numpy()
    np.testing.assert_array_equal(o["y"].to_numpy(), within)
    assert bt.horizon_days == 30


# --- no leakage ----------------------------------------------------------------------------------------


def test_no_leakage_from_after_the_cutoff(small, small_bt):
    h, _, cut = small
    base = small_bt.outcomes.set_index("case_id")
    t = small_bt.templates[0]
    crit = t.critical_activities[0].name
    rev = small_bt.reviews[0]
    cid = next(d.case_id for d in rev if any(g.activity == crit for g in d.gaps) and d.milestone_order >= 2)
    # 1. a critical activity dated after the cutoff on a deal open at the cutoff: nothing changes
    later = backtest(_with_event(h, cid, crit, cut + 3 * DAY), cutoff=cut)
    pd.testing.assert_frame_equal(later.outcomes, small_bt.outcomes)
    assert later.templates[0] == t
    # ... while the same activity before the cutoff does change this deal's forecast
    earlier = backtest(_with_event(h, cid, crit, cut - 3 * DAY), cutoff=cut).outcomes.set_index("case_id")
    assert earlier.loc[cid, "probability"] > base.loc[cid, "probability"] + 0.01
    # 2. every outcome decided after the cutoff flipped: the same forecasts, scored differently
    c = h.cases
    late = (c["closed"] > cut).fillna(False).to_numpy()
    flip = c["outcome"].astype(str).where(~late, c["outcome"].astype(str).map({"won": "lost", "lost": "won"}))
    flipped = History.from_frames(
        c.drop(columns="status").assign(outcome=flip), h.events.assign(case_id=lambda e: e["case_id"].astype(str)),
        report=h.report,
    )
    bt2 = backtest(flipped, cutoff=cut)
    assert bt2.templates[0] == t
    cols = ["case_id", "probability", "probability_low", "probability_high", "stage_rate", *FLAGS]
    pd.testing.assert_frame_equal(bt2.outcomes[cols], small_bt.outcomes[cols])
    assert not np.array_equal(bt2.outcomes["y"].to_numpy(), small_bt.outcomes["y"].to_numpy())


def test_backtest_equals_a_review_of_the_cut_history(small, small_bt):
    h, _, cut = small
    t = small_bt.templates[0]
    r = review_deals(h.as_of(cut), t, as_of=cut, case_attributes=False)
    f = r.to_frame().set_index("case_id")
    o = small_bt.outcomes.set_index("case_id")
    np.testing.assert_allclose(o["probability"], f.loc[o.index, "probability"])


# --- comparing templates ------------------------------------------------------------------------------


def test_compare_templates_finds_the_better_template(small):
    """Version 1 knew only the first milestone (and no activities); version 2 is the derived
    template: it tells a deal in Negotiation from one in Qualify, so it must rank better. Four
    monthly cutoffs pool enough deals for the paired DeLong interval to see it."""
    h, truth, _ = small
    cuts = [truth.as_of - d * DAY for d in (180, 150, 120, 90)]
    v2 = salesproc.derive_template(h, as_of=cuts[0]).model_copy(update={"version": 2})
    v1 = v2.model_copy(update={"milestones": v2.milestones[:1], "activities": [], "version": 1})
    cmp = compare_templates(h, v1, v2, cutoff=cuts)
    assert cmp.a.metrics.n == cmp.b.metrics.n
    assert cmp.auc_diff == pytest.approx(cmp.b.auc - cmp.a.auc)
    assert cmp.auc_diff_ci[0] > 0 and cmp.auc_diff_ci[0] < cmp.auc_diff < cmp.auc_diff_ci[1]
    assert cmp.verdict.startswith("process v2 ranked deals better than process v1")
    assert 0 <= cmp.auc_p <= 1
    assert cmp.names == ("process v1", "process v2")
    assert "AUC" in cmp.verdict and "process v2" in str(cmp)
    assert set(cmp.to_frame()["template"]) == {"process v1", "process v2"}


# --- display, charts, errors -------------------------------------------------------------------------


def test_result_display_and_calibration_plot(small_bt):
    assert repr(small_bt).startswith("<BacktestResult at ")
    html = small_bt._repr_html_()
    assert "stage-only baseline" in html and "precision" in html
    frame = small_bt.to_frame()
    assert frame["model"].tolist() == ["review", "stage-only baseline"]
    ax = small_bt.plot_calibration()
    assert isinstance(ax, Axes) and len(ax.containers) == 2
    assert ax.get_xlabel() == "forecast probability"


def test_errors(small):
    h, truth, cut = small
    with pytest.raises(TypeError, match="must be a History"):
        backtest(h.cases, cutoff=cut)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be before the end of the data"):
        backtest(h, cutoff=truth.as_of + DAY)
    with pytest.raises(ValueError, match="at least one date"):
        backtest(h, cutoff=[])
    with pytest.raises(ValueError, match="The 'horizon_days' parameter of backtest must be a positive number"):
        backtest(h, cutoff=cut, horizon_days=0)


# --- a template that saw the future (issue 17) ---------------------------------------------------------


def test_a_template_derived_after_the_cutoff_is_flagged(small, small_bt):
    from salesproc.review.backtest import LeakageWarning

    h, truth, cut = small
    future = salesproc.derive_template(h, as_of=truth.as_of)  # has seen every outcome the backtest scores
    with pytest.warns(LeakageWarning, match=rf"template 'process' v1 was derived from data up to "
                                             rf"{truth.as_of.date()}.*after the cutoff {cut.date()}.*Fix: "):
        bt = backtest(h, cutoff=cut, template=future)
    assert bt.notes[0].startswith("template 'process' v1 was derived from data up to")
    assert "Expected: a template derived as of the cutoff or earlier" in bt.notes[0]
    assert "derived from data up to" in bt._repr_html_()
    # the backtest's own template, derived at the cutoff, raises nothing
    with warnings.catch_warnings():
        warnings.simplefilter("error", LeakageWarning)
        again = backtest(h, cutoff=cut, template=small_bt.templates[0])
    assert not any("derived from data up to" in n for n in again.notes)


def test_compare_templates_warns_about_the_template_that_saw_the_future(small, small_bt):
    from salesproc.review.backtest import LeakageWarning

    h, truth, cut = small
    fair = small_bt.templates[0]
    future = salesproc.derive_template(h, as_of=truth.as_of).model_copy(update={"version": 2})
    with pytest.warns(LeakageWarning) as caught:
        cmp = compare_templates(h, fair, future, cutoff=cut)
    assert [str(w.message)[:30] for w in caught] == ["template 'process' v2 was deri"]  # once, for v2 only
    assert caught[0].filename == __file__  # points at the caller
    assert any(n.startswith("template 'process' v2 was derived from data up to") for n in cmp.notes)
    assert "template &#x27;process&#x27; v2 was derived" in cmp._repr_html_()


def test_a_template_without_dates_gets_a_note(small):
    h, _, cut = small
    bare = salesproc.ProcessTemplate(milestones=[salesproc.template.Milestone(name="Qualify", order=1)])
    bt = backtest(h, cutoff=cut, template=bare, baseline=False)
    assert bt.notes[0].startswith("template 'process' v1 does not say when it was derived")
