"""synthetic_history: the planted truth is what the data shows.

Later steps test themselves against this generator, so these tests pin down its contract: counts,
open share, path rules, time-in-stage medians (Kaplan-Meier), base loss rates, and that a simple
landmark comparison finds every planted effect while decoys and null activities stay null.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats as ss

from salesproc.datasets import PlantedEffect, PlantedTruth, synthetic_history
from salesproc.errors import ParameterError
from salesproc.history import History

BIG = np.iinfo(np.int64).max
LOST, WON, OPEN = -11, -12, -13  # how a stage visit ended, besides moving to a stage


@pytest.fixture(scope="module")
def deals() -> tuple[History, PlantedTruth]:
    return synthetic_history(5000, seed=11)


@pytest.fixture(scope="module")
def projects() -> tuple[History, PlantedTruth]:
    return synthetic_history(3000, seed=11, kind="project")


# --- helpers written here, independent of the package ------------------------------------------

def first_times(h: History) -> dict[str, np.ndarray]:
    """Per event name, each case's first timestamp (int ns; BIG if never)."""
    e = h.events
    codes = e["case_id"].cat.codes.to_numpy()
    names = e["name"].cat.codes.to_numpy()
    cats = list(e["name"].cat.categories)
    ts = e["timestamp"].array.asi8
    out = np.full((len(cats), len(h)), BIG, dtype=np.int64)
    np.minimum.at(out, (names, codes), ts)
    return {str(n): out[i] for i, n in enumerate(cats)}


def landmark_table(h: History, truth: PlantedTruth) -> pd.DataFrame:
    """Among closed cases that reached milestone m: success rate of cases that did activity A before m
    against those that did not; Fisher exact test per (A, m), Benjamini-Hochberg over all of them."""
    c = h.cases
    first = first_times(h)
    closed = (c["status"] != "open").to_numpy()
    success = (c["status"] == "success").to_numpy()
    rows = []
    for m in truth.stages[1:]:
        reach = first[m]
        base = closed & (reach < BIG)
        for a in truth.activities:
            did = base & (first.get(a, np.full(len(c), BIG)) < reach)
            not_did = base & ~did
            table = [
                [int((did & success).sum()), int((did & ~success).sum())],
                [int((not_did & success).sum()), int((not_did & ~success).sum())],
            ]
            n1, n0 = sum(table[0]), sum(table[1])
            p = float(ss.fisher_exact(table).pvalue) if n1 and n0 else 1.0
            r1 = table[0][0] / n1 if n1 else np.nan
            r0 = table[1][0] / n0 if n0 else np.nan
            # z of the difference in rates (for "how far from zero" checks)
            pool = (table[0][0] + table[1][0]) / (n1 + n0) if n1 and n0 else np.nan
            se = np.sqrt(pool * (1 - pool) * (1 / n1 + 1 / n0)) if n1 and n0 else np.nan
            rows.append((a, m, n1, n0, r1 - r0, (r1 - r0) / se if se else np.nan, p))
    df = pd.DataFrame(rows, columns=["activity", "milestone", "n_did", "n_not", "diff", "z", "p"])
    df["q"] = ss.false_discovery_control(df["p"].to_numpy())
    df["flag"] = df["q"] < 0.05
    return df


def stage_visits(h: History, truth: PlantedTruth) -> pd.DataFrame:
    """One row per milestone event (a stage visit): stage index, duration in days, ended or censored,
    and how it ended (the next stage's index, or LOST / WON / OPEN: still running at as_of)."""
    e = h.events
    ms = e[e["type"] == "milestone"]
    codes = ms["case_id"].cat.codes.to_numpy()
    stage = ms["name"].astype("str").map({s: i for i, s in enumerate(truth.stages)}).to_numpy()
    ts = ms["timestamp"].array.asi8
    c = h.cases
    same_next = np.r_[codes[1:] == codes[:-1], False]
    nxt_ts = np.r_[ts[1:], 0]
    closed = c["closed"].array.asi8[codes]
    status = c["status"].to_numpy()[codes]
    is_open = status == "open"
    end = np.where(same_next, nxt_ts, np.where(is_open, truth.as_of.value, closed))
    nxt_stage = np.r_[stage[1:], -9]
    how = np.where(same_next, nxt_stage, np.where(is_open, OPEN, np.where(status == "success", WON, LOST)))
    return pd.DataFrame(
        {
            "case": codes,
            "stage": stage,
            "days": (end - ts) / 86_400e9,
            "observed": ~(~same_next & is_open),
            "how": how,
        }
    )


# --- determinism and shape ---------------------------------------------------------------------

def test_same_seed_same_history_and_truth() -> None:
    h1, t1 = synthetic_history(300, seed=5)
    h2, t2 = synthetic_history(300, seed=5)
    pd.testing.assert_frame_equal(h1.cases, h2.cases)
    pd.testing.assert_frame_equal(h1.events, h2.events)
    assert t1 == t2
    h3, _ = synthetic_history(300, seed=6)
    assert not h3.events["timestamp"].equals(h1.events["timestamp"])


def test_cases_and_events_follow_the_history_schema(deals: tuple[History, PlantedTruth]) -> None:
    h, truth = deals
    c, e = h.cases, h.events
    assert len(c) == truth.n_cases == 5000
    assert c["case_id"].iloc[0] == "D0001" and c["case_id"].iloc[-1] == "D5000"
    assert c["case_id"].is_unique and c["created"].is_monotonic_increasing  # numbered by creation
    assert set(c["kind"]) == {"deal"}
    assert set(c["owner"]) <= set(truth.roles["AE"]) and c["owner"].nunique() == 12
    assert set(c["segment"]) == {"SMB", "Mid-Market", "Enterprise"}
    assert (c["amount"] % 100 == 0).all() and (c["amount"] > 0).all()
    med = c.groupby("segment")["amount"].median()
    assert med["SMB"] < med["Mid-Market"] < med["Enterprise"]
    assert c["target_date"].isna().all()
    # events: sorted by case then time, typed, nothing after as_of, nothing after a case closed
    codes = e["case_id"].cat.codes.to_numpy()
    ts = e["timestamp"].array.asi8
    assert (np.diff(codes) >= 0).all()
    assert (np.diff(ts)[np.diff(codes) == 0] >= 0).all()
    assert set(e.loc[e["type"] == "milestone", "name"].astype(str)) == set(truth.stages)
    assert set(e.loc[e["type"] == "activity", "name"].astype(str)) == set(truth.activities)
    assert (e["timestamp"] <= truth.as_of).all() and (c["created"] <= truth.as_of).all()
    assert (c["created"] >= truth.start).all()
    closed = c["closed"].array.asi8[codes]
    assert (ts[closed != np.iinfo(np.int64).min] <= closed[closed != np.iinfo(np.int64).min]).all()
    assert not e.duplicated(["case_id", "name", "timestamp"]).any()
    # every case starts with the first stage at created, owned by the case owner
    first = e.groupby("case_id", observed=True).head(1)
    assert (first["name"] == "Qualify").all()
    assert (first["timestamp"].to_numpy() == c["created"].to_numpy()).all()
    ms = e[e["type"] == "milestone"]
    assert (ms["owner"].to_numpy() == c["owner"].to_numpy()[ms["case_id"].cat.codes]).all()
    assert set(ms["role"]) == {"AE"}
    # closed cases have a close date, open ones none; outcomes are won / lost / open
    assert set(c["outcome"]) == {"won", "lost", "open"}
    assert c.loc[c["outcome"] != "open", "closed"].notna().all()
    assert c.loc[c["outcome"] == "open", "closed"].isna().all()
    assert h.summary().events_after_close == 0


def test_roles_and_owners_of_activities(deals: tuple[History, PlantedTruth]) -> None:
    h, truth = deals
    e = h.events
    acts = e[e["type"] == "activity"]
    role_of = {n: a.role for n, a in truth.activities.items()}
    assert (acts["role"].to_numpy() == acts["name"].astype(str).map(role_of).to_numpy()).all()
    case_owner = h.cases["owner"].to_numpy()[acts["case_id"].cat.codes]
    ae = acts["role"].to_numpy() == "AE"
    assert (acts["owner"].to_numpy()[ae] == case_owner[ae]).all()
    for role in ("SE", "Manager", "Exec"):
        sel = acts["role"].to_numpy() == role
        assert sel.any()
        assert set(acts["owner"].to_numpy()[sel]) <= set(truth.roles[role])
    # each rep has one manager
    mgr = acts["role"].to_numpy() == "Manager"
    per_rep = pd.DataFrame({"rep": case_owner[mgr], "manager": acts["owner"].to_numpy()[mgr]})
    assert (per_rep.groupby("rep")["manager"].nunique() == 1).all()


def test_truth_records_the_process(deals: tuple[History, PlantedTruth]) -> None:
    _, truth = deals
    assert truth.kind == "deal"
    assert truth.stages == ["Qualify", "Discovery", "Solution", "Proposal", "Negotiation"]
    assert truth.median_days == {"Qualify": 6.0, "Discovery": 12.0, "Solution": 15.0, "Proposal": 10.0,
                                 "Negotiation": 8.0}
    assert truth.effect_names("+") == ["Champion identified", "Economic buyer met", "Technical validation",
                                       "Mutual action plan agreed"]
    assert truth.effect_names("-") == ["Discount offered unprompted", "Single-threaded contact"]
    assert len(truth.effect_names()) == 6 and len(truth.nulls) == 3 and len(truth.decoys) == 3
    eb = truth.effects["Economic buyer met"]
    assert (eb.stage, eb.odds_ratio, eb.direction, eb.duration_factor) == ("Discovery", 2.0, "+", None)
    assert all(0.3 <= e.probability <= 0.6 for e in truth.effects.values())
    assert truth.expected_flag_milestone("Champion identified") == "Discovery"
    assert truth.expected_flag_milestone("Mutual action plan agreed") == "Negotiation"
    assert truth.expected_flag_milestone("Case study sent") == "Solution"
    with pytest.raises(ValueError, match="decoy"):
        truth.expected_flag_milestone("Follow-up email")
    with pytest.raises(KeyError, match="no activity 'Cold call'"):
        truth.expected_flag_milestone("Cold call")
    with pytest.raises(ValueError, match="'direction' parameter"):
        truth.effect_names("up")  # type: ignore[arg-type]
    assert truth.as_of == truth.start + pd.Timedelta(days=truth.span_days)
    assert truth.as_of.tz is not None and str(truth.as_of.tz) == "UTC"
    assert truth.regression_from == ["Solution", "Proposal", "Negotiation"]


# --- paths: open share, stage order, skips, regressions, losses ----------------------------------

@pytest.mark.parametrize("share", [0.10, 0.30])
def test_open_share_is_near_the_target(share: float) -> None:
    h, truth = synthetic_history(4000, seed=3, open_share=share)
    got = float((h.cases["outcome"] == "open").mean())
    assert abs(got - share) < 0.03
    assert truth.open_share == share


def test_first_visits_follow_the_stage_order(deals: tuple[History, PlantedTruth]) -> None:
    h, truth = deals
    first = first_times(h)
    t = np.vstack([first[s] for s in truth.stages]).astype(float)
    t[t == BIG] = np.nan
    # stages sorted by their mean first-visit time after creation: the planted order
    created = h.cases["created"].array.asi8.astype(float)
    mean_age = np.nanmean(t - created, axis=1)
    assert [truth.stages[i] for i in np.argsort(mean_age)] == truth.stages
    # without a regression, a case's first visits are strictly in stage order
    v = stage_visits(h, truth)
    back = (v["how"] >= 0) & (v["how"] < v["stage"])
    regressed = np.bincount(v["case"], weights=back, minlength=len(h)) > 0
    assert 0 < regressed.mean() < 0.05
    for i in range(len(truth.stages) - 1):
        both = ~np.isnan(t[i]) & ~np.isnan(t[i + 1]) & ~regressed
        assert (t[i][both] < t[i + 1][both]).all()


def test_skips_and_regressions_at_the_planted_rates(deals: tuple[History, PlantedTruth]) -> None:
    h, truth = deals
    v = stage_visits(h, truth)
    k = len(truth.stages)
    case, st, how = v["case"].to_numpy(), v["stage"].to_numpy(), v["how"].to_numpy()
    same_case_prev = np.r_[False, case[1:] == case[:-1]]
    entered_by_regression = same_case_prev & (st == np.r_[-9, st[:-1]] - 1)
    is_reg = how == st - 1
    regressed_before = pd.Series(is_reg).groupby(case).cumsum().to_numpy() - is_reg
    # skip: among forward moves out of a stage that has a stage two ahead (not out of a revisit)
    fwd = ((how == st + 1) | (how == st + 2)) & (st <= k - 3) & ~entered_by_regression
    skip_rate = float(np.mean(how[fwd] == st[fwd] + 2))
    assert abs(skip_rate - truth.skip_prob) < 0.015
    # regression: among visits of Solution or later that were survived, before any regression
    survived = (how >= 0) | (how == WON)
    can = survived & (st >= 2) & (regressed_before == 0)
    reg_rate = float(np.mean(how[can] == st[can] - 1))
    assert abs(reg_rate - truth.regression_prob) < 0.01
    assert not ((how == st - 1) & (st < 2)).any()  # never back to Qualify
    assert (pd.Series(how == st - 1).groupby(v["case"]).sum() <= 1).all()  # at most once per case
    # skipping never jumps two stages, and the first stage is never skipped
    assert not (how > st + 2).any()


def test_without_effects_loss_rates_are_the_planted_base() -> None:
    h, truth = synthetic_history(8000, seed=2, effects="none")
    assert truth.effects == {} and len(truth.nulls) == 9
    v = stage_visits(h, truth)
    ended = v[v["observed"]]
    for i, stage in enumerate(truth.stages):
        lost = float((ended.loc[ended["stage"] == i, "how"] == LOST).mean())
        assert abs(lost - truth.loss_prob[stage]) < 0.025, stage


def test_kaplan_meier_recovers_time_in_stage_medians(deals: tuple[History, PlantedTruth]) -> None:
    h, truth = deals
    v = stage_visits(h, truth)
    assert (~v["observed"]).sum() > 100  # open visits exist and are censored, not dropped
    for i, stage in enumerate(truth.stages):
        s = v[v["stage"] == i]
        data = ss.CensoredData(
            uncensored=s.loc[s["observed"], "days"].to_numpy(), right=s.loc[~s["observed"], "days"].to_numpy()
        )
        sf = ss.ecdf(data).sf
        median = float(sf.quantiles[np.argmax(sf.probabilities <= 0.5)])
        assert median == pytest.approx(truth.median_days[stage], rel=0.07), stage


# --- activities: planted effects found, decoys and nulls not --------------------------------------

def test_landmark_finds_every_planted_effect(deals: tuple[History, PlantedTruth]) -> None:
    h, truth = deals
    lm = landmark_table(h, truth).set_index(["activity", "milestone"])
    for name, eff in truth.effects.items():
        row = lm.loc[(name, truth.expected_flag_milestone(name))]
        assert row["flag"], name
        assert np.sign(row["diff"]) == (1 if eff.direction == "+" else -1), name
    # decoys: nowhere near an effect at any milestone
    decoys = lm.loc[lm.index.get_level_values("activity").isin(truth.decoys)]
    assert (decoys["z"].abs() < 4).all()
    # an activity happens during its stage, so never before that stage's milestone
    for name, eff in truth.effects.items():
        if eff.stage != truth.stages[0]:
            assert lm.loc[(name, eff.stage), "n_did"] == 0, name


def test_decoys_look_good_naively_but_are_null_under_a_landmark(deals: tuple[History, PlantedTruth]) -> None:
    h, truth = deals
    first = first_times(h)
    c = h.cases
    won = (c["outcome"] == "won").to_numpy()
    lost = (c["outcome"] == "lost").to_numpy()
    lm = landmark_table(h, truth)
    for d in truth.decoys:
        ever = first[d] < BIG
        # naive "ever did it": far more common in won deals (they live longer)
        assert ever[won].mean() > ever[lost].mean() + 0.15
        table = [[int((ever & won).sum()), int((~ever & won).sum())],
                 [int((ever & lost).sum()), int((~ever & lost).sum())]]
        assert ss.fisher_exact(table).pvalue < 1e-10
        # landmark: at every milestone the difference is within sampling noise (|z| < 4), where
        # the naive comparison is far outside it
        naive_z = (ever[won].mean() - ever[lost].mean()) / np.sqrt(
            ever[won | lost].mean() * (1 - ever[won | lost].mean()) * (1 / won.sum() + 1 / lost.sum())
        )
        assert naive_z > 10
        assert (lm.loc[lm["activity"] == d, "z"].abs() < 4).all(), d
    # decoys really are time-driven: more events in longer-lived cases
    life = (c["closed"] - c["created"]).dt.total_seconds().to_numpy()
    n_decoy = np.bincount(
        h.events.loc[h.events["name"].isin(truth.decoys), "case_id"].cat.codes, minlength=len(c)
    )
    ok = ~np.isnan(life)
    assert ss.spearmanr(life[ok], n_decoy[ok]).statistic > 0.5


@pytest.mark.slow
def test_landmark_power_and_false_flags_over_seeds() -> None:
    """At 5,000 deals each planted effect is flagged at its milestone in >= 90 % of seeds, decoy /
    null tests are flagged at most at the nominal 5 % rate, and decoys show no systematic sign."""
    n_seeds = 10
    hits: dict[str, int] = {}
    null_flags = null_tests = 0
    decoy_z: list[pd.Series] = []
    for seed in range(100, 100 + n_seeds):
        h, truth = synthetic_history(5000, seed=seed)
        lm = landmark_table(h, truth).set_index(["activity", "milestone"])
        for name, eff in truth.effects.items():
            row = lm.loc[(name, truth.expected_flag_milestone(name))]
            good = bool(row["flag"]) and np.sign(row["diff"]) == (1 if eff.direction == "+" else -1)
            hits[name] = hits.get(name, 0) + good
        null = lm.loc[~lm.index.get_level_values("activity").isin(list(truth.effects))]
        null_flags += int(null["flag"].sum())
        null_tests += len(null)
        decoy_z.append(lm.loc[lm.index.get_level_values("activity").isin(truth.decoys), "z"])
    assert all(k >= 0.9 * n_seeds for k in hits.values()), hits
    assert null_flags / null_tests <= 0.05
    # decoys carry no systematic landmark difference: per (decoy, milestone) the mean z over the
    # seeds stays within 3 standard errors (1 / sqrt(n_seeds)) of zero
    mean_z = pd.concat(decoy_z, axis=1).mean(axis=1)
    assert (mean_z.abs() < 3 / np.sqrt(n_seeds)).all(), mean_z


def test_events_per_deal_and_activity_rates(deals: tuple[History, PlantedTruth]) -> None:
    h, truth = deals
    assert 10 <= len(h.events) / len(h) <= 14
    first = first_times(h)
    stage_reached = {s: first[s] < BIG for s in truth.stages}
    for name, act in truth.activities.items():
        if act.kind == "decoy":
            continue
        did = first[name] < BIG
        # done by about `probability` of the cases that visited its stage (open cases may not have yet)
        closed = (h.cases["status"] != "open").to_numpy()
        visited = closed & stage_reached[act.stage]
        share = did[visited].mean()
        assert abs(share - act.probability) < 0.04, name


# --- projects -------------------------------------------------------------------------------------

def test_projects_outcomes_and_targets(projects: tuple[History, PlantedTruth]) -> None:
    h, truth = projects
    c = h.cases
    assert truth.kind == "project"
    assert truth.stages == ["Kickoff", "Requirements", "Design", "Build", "Test", "Go-live"]
    assert c["case_id"].iloc[0] == "P0001"
    assert set(c["outcome"]) == {"on_time", "late", "failed", "open"}
    assert truth.planned_days == pytest.approx(1.15 * sum(truth.median_days.values()))
    assert ((c["target_date"] - c["created"]).dt.total_seconds() == round(truth.planned_days * 86400)).all()
    done = c[c["outcome"].isin(["on_time", "late"])]
    assert ((done["closed"] <= done["target_date"]) == (done["outcome"] == "on_time")).all()
    assert truth.fail_prob == truth.loss_prob
    failed_share = float((c["outcome"] == "failed").sum() / (c["outcome"] != "open").sum())
    expected = 1 - (1 - 0.02) ** 6
    assert abs(failed_share - expected) < 0.03
    for eff in truth.effects.values():
        assert eff.odds_ratio is None and eff.duration_factor is not None
        assert eff.direction == ("+" if eff.duration_factor < 1 else "-")


def test_project_effects_shorten_or_lengthen_later_stages(projects: tuple[History, PlantedTruth]) -> None:
    h, truth = projects
    first = first_times(h)
    v = stage_visits(h, truth)
    v = v[v["observed"]]
    for name, eff in truth.effects.items():
        s = truth.stages.index(eff.stage)
        # the visit right after the activity's stage (first visit of the next stage)
        nxt = v[v["stage"] == s + 1].drop_duplicates("case")
        did = first[name][nxt["case"].to_numpy()] < first[truth.stages[s + 1]][nxt["case"].to_numpy()]
        ratio = np.median(nxt["days"].to_numpy()[did]) / np.median(nxt["days"].to_numpy()[~did])
        assert ratio == pytest.approx(eff.duration_factor, rel=0.15), name
    lm = landmark_table(h, truth).set_index(["activity", "milestone"])
    for name, eff in truth.effects.items():
        row = lm.loc[(name, truth.expected_flag_milestone(name))]
        assert np.sign(row["diff"]) == (1 if eff.direction == "+" else -1), name


# --- options and errors ---------------------------------------------------------------------------

def test_custom_effects_and_start() -> None:
    eff = {"Reference call": PlantedEffect("Reference call", "Solution", 0.5, "+", "AE", odds_ratio=3.0)}
    h, truth = synthetic_history(400, seed=1, effects=eff, start="2024-06-01")
    assert list(truth.effects) == ["Reference call"]
    assert "Reference call" in set(h.events["name"].astype(str))
    assert truth.start == pd.Timestamp("2024-06-01", tz="UTC")
    assert h.cases["created"].min() >= truth.start


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_cases": 0}, "'n_cases' parameter of synthetic_history must be a positive integer. Got 0"),
        ({"n_cases": 10, "seed": -1}, "'seed' parameter"),
        ({"n_cases": 10, "kind": "lead"}, "'kind' parameter .* Got 'lead' instead"),
        ({"n_cases": 10, "open_share": 1.0}, "'open_share' parameter .* Got 1.0 instead"),
        ({"n_cases": 10, "effects": "strong"}, "'effects' parameter .* Got 'strong' instead"),
        ({"n_cases": 10, "start": "not a date"}, "'start' parameter"),
        ({"n_cases": 10, "effects": {"X": PlantedEffect("X", "Pitch", 0.5, "+", "AE", odds_ratio=2.0)}},
         "stage of effect 'X' must be one of"),
        ({"n_cases": 10, "kind": "project",
          "effects": {"X": PlantedEffect("X", "Build", 0.5, "+", "PM", odds_ratio=2.0)}},
         "must set duration_factor"),
        ({"n_cases": 10, "effects": {"Demo recorded": PlantedEffect("Demo recorded", "Solution", 0.5, "+", "AE",
                                                                    odds_ratio=2.0)}},
         "already used"),
    ],
)
def test_parameter_errors(kwargs: dict[str, object], match: str) -> None:
    kwargs.setdefault("seed", 0)
    with pytest.raises(ParameterError, match=match):
        synthetic_history(**kwargs)  # type: ignore[arg-type]


def test_planted_effect_checks_itself() -> None:
    with pytest.raises(ParameterError, match="exactly one of odds_ratio"):
        PlantedEffect("X", "Solution", 0.5, "+", "AE")
    with pytest.raises(ValueError, match="direction of PlantedEffect 'X' must be '-'"):
        PlantedEffect("X", "Solution", 0.5, "+", "AE", odds_ratio=0.5)
    with pytest.raises(ValueError, match="must be '\\+' for duration_factor"):
        PlantedEffect("X", "Build", 0.5, "-", "PM", duration_factor=0.8)
    with pytest.raises(ValueError, match="probability"):
        PlantedEffect("X", "Build", 1.5, "+", "PM", duration_factor=0.8)
