"""The probability model behind deal review: landmark snapshots -> features -> ridge logistic
regression -> Platt calibration on held-out folds, plus the empirical evidence the review quotes.

Everything here is vectorised over deals and snapshots; loops run over milestones, activities or
folds only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from salesproc.derive._stats import QUANTILE_LEVELS, newcombe, wilson
from salesproc.derive._visits import milestone_visits
from salesproc.review._logit import LogitFit, calibrate, fit_logit, interval, platt
from salesproc.review._positions import DAY_NS, NAT, CaseArrays, Snapshots, State
from salesproc.template._template import Activity, ProcessTemplate

__all__ = ["Fitted", "KeyActivity", "fit_model", "percentile_from_quantiles", "recovery_table", "won_visit_days"]


@dataclass(frozen=True)
class KeyActivity:
    """A template activity the model uses: critical (helps) or a warning sign (hurts)."""

    name: str
    col: int  # column in CaseArrays.activities
    activity: Activity
    due_index: int | None  # template milestone index it is due by


KNOTS = (0.5, 0.8, 0.95)  # hinge knots of the time and age splines, as quantiles of the training snapshots


@dataclass(frozen=True)
class Design:
    """How features are built, fixed on the training snapshots and reused for open deals.

    Time in milestone and age enter as linear splines of log(1 + days) with knots at the 50th, 80th
    and 95th percentiles of the training snapshots (per milestone for time in milestone), so that
    "far longer than any deal that won" can weigh more than a straight line would allow.
    """

    K: int
    stages: np.ndarray  # stage values (-1..K-1) with a dummy column
    time_mean: np.ndarray  # (K+1,) mean log1p(days in milestone) per stage (index stage+1)
    time_knots: np.ndarray  # (K+1, len(KNOTS))
    age_mean: float
    age_knots: np.ndarray  # (len(KNOTS),)
    use_age: bool  # False when age equals time in milestone (one-milestone processes)
    use_target: bool  # most cases have a target date (projects): days to it, and past it
    n_acts: int
    people: bool
    interactions: bool
    names: list[str]
    groups: list[str]  # per column: the reason group ("stage", "time", "age", "act:<name>", ...)

    def matrix(self, st: State, arrays: CaseArrays) -> np.ndarray:
        m = len(st.case)
        z = np.log1p(st.days_in)
        age = np.log1p(np.maximum(st.t - arrays.created[st.case], 0) / DAY_NS)
        idx = st.stage + 1
        cols = [np.ones(m)]
        for k in self.stages:
            cols.append((st.stage == k).astype(float))
        centred = z - self.time_mean[idx]
        for k in self.stages:
            cols.append(np.where(st.stage == k, centred, 0.0))
        for q in range(len(KNOTS)):
            hinge = np.maximum(z - self.time_knots[idx, q], 0.0)
            for k in self.stages:
                cols.append(np.where(st.stage == k, hinge, 0.0))
        if self.use_age:
            cols.append(age - self.age_mean)
            for q in range(len(KNOTS)):
                cols.append(np.maximum(age - self.age_knots[q], 0.0))
        for j in range(self.n_acts):
            d = st.done[:, j].astype(float)
            cols.append(d)
            if self.interactions:
                for k in self.stages:
                    cols.append(d * (st.stage == k))
        if self.use_target:
            tgt = arrays.target[st.case]
            has = tgt != NAT
            cols.append((~has).astype(float))
            cols.append((has & (st.t > tgt)).astype(float))
            cols.append(np.where(has, np.log1p(np.maximum(tgt - st.t, 0) / DAY_NS), 0.0))
        cols.append(st.regressed.astype(float))
        if self.people:
            cols.append((st.people >= 2).astype(float))
        return np.column_stack(cols)


def _design(
    st: State, arrays: CaseArrays, K: int, acts: list[KeyActivity], people: bool, interactions: bool
) -> Design:
    created = arrays.created
    stages = np.unique(st.stage)
    z = np.log1p(st.days_in)
    idx = st.stage + 1
    cnt = np.bincount(idx, minlength=K + 1).astype(float)
    tm = np.bincount(idx, weights=z, minlength=K + 1) / np.maximum(cnt, 1)
    knots = np.full((K + 1, len(KNOTS)), np.inf)
    for k in stages:
        knots[k + 1] = np.quantile(z[st.stage == k], KNOTS)
    age = np.log1p(np.maximum(st.t - created[st.case], 0) / DAY_NS)
    age_knots = np.quantile(age, KNOTS) if len(age) else np.full(len(KNOTS), np.inf)
    use_age = not (len(age) and float(np.mean(np.abs(age - z) < 1e-9)) > 0.99)
    names = ["intercept"] + [f"stage[{k}]" for k in stages] + [f"time[{k}]" for k in stages]
    groups = ["base"] + ["stage"] * len(stages) + ["time"] * len(stages)
    for q in KNOTS:
        names += [f"time[{k}]>p{round(q * 100)}" for k in stages]
        groups += ["time"] * len(stages)
    if use_age:
        names += ["age"] + [f"age>p{round(q * 100)}" for q in KNOTS]
        groups += ["age"] * (1 + len(KNOTS))
    for a in acts:
        names.append(f"done[{a.name}]")
        groups.append(f"act:{a.name}")
        if interactions:
            names += [f"done[{a.name}]*stage[{k}]" for k in stages]
            groups += [f"act:{a.name}"] * len(stages)
    use_target = bool(len(st.case)) and float(np.mean(arrays.target[st.case] != NAT)) >= 0.5
    if use_target:
        names += ["no target date", "past target date", "days to target"]
        groups += ["target"] * 3
    names.append("regressed")
    groups.append("regressed")
    if people:
        names.append("people>=2")
        groups.append("people")
    return Design(
        K, stages, tm, knots, float(age.mean()) if len(age) else 0.0, age_knots, use_age, use_target, len(acts), people,
        interactions, names, groups,
    )


@dataclass(frozen=True)
class Fitted:
    """A fitted, calibrated win-probability model and what it was fitted on."""

    design: Design
    fit: LogitFit
    a: float
    b: float
    ref: np.ndarray  # (K+1, p) mean feature row of the training snapshots at each stage
    snapshots: Snapshots
    train_stage: np.ndarray
    train_people: np.ndarray
    oof_auc: float | None

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        eta = self.fit.linear(X)
        p, lo, hi = interval(eta, self.fit.se(X), self.a, self.b)
        return eta, p, lo, hi

    def calibrated(self, eta: np.ndarray) -> np.ndarray:
        return calibrate(eta, self.a, self.b)

    def coefficients(self) -> pd.DataFrame:
        se = np.sqrt(np.maximum(np.diag(self.fit.cov), 0))
        return pd.DataFrame(
            {
                "feature": self.design.names,
                "group": self.design.groups,
                "coef": self.fit.coef,
                "se": se,
                "odds_ratio": np.exp(self.fit.coef),
            }
        )


def fit_model(
    arrays: CaseArrays,
    snaps: Snapshots,
    acts: list[KeyActivity],
    *,
    penalty: float,
    folds: int,
    seed: int,
    interactions: bool = False,
) -> tuple[Fitted, State]:
    K = len(arrays.milestones)
    cols = [a.col for a in acts]
    st = arrays.state_at(snaps.case, snaps.t, cols)
    design = _design(st, arrays, K, acts, arrays.people_data, interactions)
    X = design.matrix(st, arrays)
    y = snaps.y.astype(float)
    fit = fit_logit(X, y, penalty=penalty, cluster=snaps.case)
    a, b = 1.0, 0.0
    oof_auc = None
    cases = np.unique(snaps.case)
    if folds >= 2 and len(cases) >= 20 * folds and 0 < y.sum() < len(y):
        rng = np.random.default_rng(seed + 1)
        fold_of = np.zeros(arrays.n, dtype=np.int64)
        fold_of[cases] = rng.permutation(len(cases)) % folds
        f = fold_of[snaps.case]
        eta = np.zeros(len(y))
        for k in range(folds):
            tr = f != k
            fk = fit_logit(X[tr], y[tr], penalty=penalty, start=fit.coef, covariance=False)
            eta[~tr] = fk.linear(X[~tr])
        a, b = platt(eta, y)
        from salesproc.review._metrics import auc as _auc

        oof_auc = _auc(eta, y.astype(bool))
    idx = st.stage + 1
    cnt = np.bincount(idx, minlength=K + 1).astype(float)
    ref = np.zeros((K + 1, X.shape[1]))
    np.add.at(ref, idx, X)
    ref = ref / np.maximum(cnt, 1)[:, None]
    # stages never seen in training: compare against the overall mean
    ref[cnt == 0] = X.mean(axis=0) if len(X) else 0.0
    return (
        Fitted(design, fit, a, b, ref, snaps, st.stage, st.people, oof_auc),
        st,
    )


def percentile_from_quantiles(days: np.ndarray, quantiles: list[float | None]) -> np.ndarray:
    """Share of the distribution below ``days``, read off KM quantiles at 5%..95% (nan if none)."""
    q = np.array([np.nan if x is None else float(x) for x in quantiles], dtype=float)
    lv = QUANTILE_LEVELS[: len(q)]
    ok = np.isfinite(q)
    if not ok.any():
        return np.full(len(days), np.nan)
    xp = np.r_[0.0, np.maximum.accumulate(q[ok])]
    fp = np.r_[0.0, lv[ok]]
    return np.interp(days, xp, fp)


def won_visit_days(arrays: CaseArrays, as_of_ns: int) -> list[np.ndarray]:
    """Per template milestone, the sorted durations (days) of completed visits in successful cases."""
    K = len(arrays.milestones)
    mc, mk, mt = arrays.mc, arrays.mk, arrays.mt
    out = [np.zeros(0) for _ in range(K)]
    if len(mc) == 0:
        return out
    vc, vk, vt, end, _ = milestone_visits(mc, mk, mt, arrays.closed, as_of_ns)
    won = arrays.status[vc] == 0
    days = (end - vt) / DAY_NS
    for k in range(K):
        out[k] = np.sort(days[won & (vk == k)])
    return out


@dataclass(frozen=True)
class Recovery:
    """What cases stalled in one milestone did next, and how those that did it fared."""

    milestone: str
    activity: str
    stalled: int  # stalled cases still open at the landmark
    won: int  # of them, successful
    won_did: int  # successful ones that did the activity within the window
    n_did: int
    k_did: int
    n_not: int
    k_not: int
    rd: float
    low: float
    high: float
    window_days: float
    role: str | None


def recovery_table(
    arrays: CaseArrays,
    template: ProcessTemplate,
    p80: np.ndarray,
    as_of_ns: int,
    *,
    window_days: float,
    min_support: int = 10,
) -> dict[int, list[Recovery]]:
    """For each milestone: cases that stayed longer than its p80 (a stall) and were still open
    ``window_days`` later; which activities they did in that window, and the success rate of those
    that did each one against those that did not (a landmark comparison at stall + window).

    Only activities whose risk difference has a 95% interval above zero are kept, best first (at
    most three per milestone).
    """
    K = len(arrays.milestones)
    mc, mk, mt = arrays.mc, arrays.mk, arrays.mt
    result: dict[int, list[Recovery]] = {}
    if len(mc) == 0 or len(arrays.ac) == 0:
        return result
    closed_ns = np.where(arrays.status != 2, arrays.closed, NAT)  # open cases' visits run to as_of
    vc, vk, vt, end, _ = milestone_visits(mc, mk, mt, closed_ns, as_of_ns)
    closed = arrays.closed[vc]
    is_closed = arrays.status[vc] != 2
    thr = np.where(np.isfinite(p80[vk]), p80[vk], np.inf) * DAY_NS
    stall_at = vt + np.where(np.isfinite(thr), thr, 0).astype(np.int64)
    win = int(window_days * DAY_NS)
    landmark = stall_at + win
    # stalled visits of closed cases still open at the landmark, whose landmark is before as_of
    keep = (
        np.isfinite(thr)
        & ((end - vt) > thr)
        & is_closed
        & (closed > landmark)
        & (landmark <= as_of_ns)
    )
    # first stalled visit per (case, milestone)
    idx = np.flatnonzero(keep)
    if len(idx) == 0:
        return result
    pair = vc[idx] * (K + 1) + vk[idx]
    _, first = np.unique(pair, return_index=True)
    idx = idx[first]
    sc, sk, s0, s1 = vc[idx], vk[idx], stall_at[idx], landmark[idx]
    won = arrays.status[sc] == 0
    # activity events in (s0, s1] of the same case
    akey = arrays._key(arrays.ac, arrays.at)
    lo = np.searchsorted(akey, arrays._key(sc, s0), side="right")
    hi = np.searchsorted(akey, arrays._key(sc, s1), side="right")
    cnt = np.maximum(hi - lo, 0)
    vis = np.repeat(np.arange(len(idx)), cnt)
    ev = np.repeat(lo, cnt) + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))
    J = len(arrays.activities)
    did = np.zeros((len(idx), J), dtype=bool)
    if len(ev):
        did[vis, arrays.ak[ev]] = True
    for k in range(K):
        mk_ = sk == k
        n_st = int(mk_.sum())
        if n_st < 2 * min_support:
            continue
        D = did[mk_]
        w = won[mk_]
        n_did = D.sum(axis=0)
        k_did = (D & w[:, None]).sum(axis=0)
        n_not = n_st - n_did
        k_not = int(w.sum()) - k_did
        rd, lo_, hi_ = newcombe(k_did, n_did, k_not, n_not)
        # only what the stalled deals' outcomes support: the interval of the difference above zero
        ok = (n_did >= min_support) & (n_not >= min_support) & np.isfinite(lo_) & (lo_ > 0)
        items = []
        for j in np.flatnonzero(ok)[np.argsort(-rd[ok], kind="stable")][:3]:
            name = arrays.activities[j]
            items.append(
                Recovery(
                    milestone=arrays.milestones[k], activity=name, stalled=n_st, won=int(w.sum()),
                    won_did=int(k_did[j]), n_did=int(n_did[j]), k_did=int(k_did[j]), n_not=int(n_not[j]),
                    k_not=int(k_not[j]), rd=float(rd[j]), low=float(lo_[j]), high=float(hi_[j]),
                    window_days=window_days, role=arrays.act_role.get(name),
                )
            )
        if items:
            result[k] = items
    return result


def cell_rates(
    stage: np.ndarray, bucket: np.ndarray, case: np.ndarray, y: np.ndarray, K: int
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct cases and successes per (stage, bucket) cell: arrays of shape (K+1, 3)."""
    cell = (stage + 1) * 3 + bucket
    ncell = (K + 1) * 3
    key = cell.astype(np.int64) * (int(case.max()) + 1 if len(case) else 1) + case
    _, first = np.unique(key, return_index=True)
    n = np.bincount(cell[first], minlength=ncell).reshape(K + 1, 3)
    k = np.bincount(cell[first], weights=y[first].astype(float), minlength=ncell).reshape(K + 1, 3)
    return n, k.astype(np.int64)


def stage_rates(stage: np.ndarray, case: np.ndarray, y: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stage-only win rate per stage (snapshot-weighted) and distinct cases/successes per stage."""
    idx = stage + 1
    cnt = np.bincount(idx, minlength=K + 1).astype(float)
    wins = np.bincount(idx, weights=y.astype(float), minlength=K + 1)
    overall = float(y.mean()) if len(y) else np.nan
    rate = np.where(cnt > 0, wins / np.maximum(cnt, 1), overall)
    key = idx.astype(np.int64) * (int(case.max()) + 1 if len(case) else 1) + case
    _, first = np.unique(key, return_index=True)
    n_cases = np.bincount(idx[first], minlength=K + 1)
    k_cases = np.bincount(idx[first], weights=y[first].astype(float), minlength=K + 1).astype(np.int64)
    return rate, n_cases, k_cases


def wilson_arrays(k: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lo, hi = wilson(k, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(n > 0, k / np.maximum(n, 1), np.nan)
    return rate, np.where(n > 0, lo, np.nan), np.where(n > 0, hi, np.nan)
