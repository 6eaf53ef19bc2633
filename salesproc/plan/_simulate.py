"""Vectorised Monte Carlo of the rest of a case's path through its milestones.

Each milestone is a :class:`StageModel`: the distribution of the time spent in it (days) together
with how the visit ends: the case *moves on* (to a later milestone or, from the last one, to
success) or is *lost*. A simulated path starts in one milestone (possibly one it has been in for
a while: the time left is drawn from the distribution truncated at that age), then visits every
later milestone in the template's order, each with its skip probability. Success = the path never
ended in a loss; its completion time = the sum of the visits' durations.

Two ways to build a stage:

* :func:`stage_from_history`: the Aalen-Johansen estimate from the history's times in the
  milestone (from first reaching it to first reaching any later milestone, or to the close; loops
  back and forth on the way count), with exits of two kinds (moved on / lost) and cases still in it
  censored. Each observed exit becomes an atom ``(days, moved_on, mass)``; the mass the data never
  reach (the longest stays were still running) goes to a lognormal tail.
* :func:`stage_from_template`: the template's Kaplan-Meier quantiles at 5%, ..., 95% as a
  piecewise-linear inverse CDF, a lognormal tail beyond the last quantile, and the template's
  conversion rate (``to_next``) as the chance of moving on, independent of the time. The
  template's times are per visit, so a second visit is added with the ``revisited_share``.

The tail is a lognormal fitted through the median and the 80th percentile (or, where those are
unknown, the two highest quantiles the data reach), conditioned on exceeding the last known value
so the inverse CDF stays continuous and increasing.

Every function takes a ``numpy.random.Generator`` and draws a fixed number of variates per stage,
whatever the path, so that results are reproducible from a seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from salesproc.derive._stats import QUANTILE_LEVELS

__all__ = [
    "SimResult",
    "StageModel",
    "fit_lognormal",
    "simulate",
    "stage_from_history",
    "stage_from_template",
]

_U_MAX = 1.0 - 1e-12


@dataclass(frozen=True, eq=False)
class StageModel:
    """Time in one milestone and how visits end.

    ``step`` stages (from a history) are atoms: ``values[i]`` days with cumulative mass
    ``levels[i]`` and exit kind ``moves[i]``. Linear stages (from template quantiles) interpolate
    ``values`` over ``levels`` (starting at ``(0, 0)``) and move on with probability ``p_move``.
    Beyond ``levels[-1]`` (the body's mass) lies the lognormal tail ``(mu, sigma)``, whose exits
    move on with probability ``tail_move``. With probability ``revisit`` a path spends a second,
    independently drawn visit in the milestone (template stages: the time lost to going back).
    """

    name: str
    skip: float
    step: bool
    levels: np.ndarray
    values: np.ndarray
    moves: np.ndarray
    p_move: float
    tail_move: float
    mu: float
    sigma: float
    source: str
    revisit: float = 0.0

    @property
    def body(self) -> float:
        return float(self.levels[-1]) if len(self.levels) else 0.0

    @property
    def last_value(self) -> float:
        return float(self.values[-1]) if len(self.values) else 0.0

    # -- the tail ----------------------------------------------------------------------------
    def _ln_cdf(self, x: float) -> float:
        if x <= 0 or not math.isfinite(self.mu):
            return 0.0 if x <= 0 else 1.0
        if self.sigma <= 0:
            return 1.0 if math.log(x) >= self.mu else 0.0
        return float(ndtr((math.log(x) - self.mu) / self.sigma))

    def _tail(self, w: np.ndarray) -> np.ndarray:
        """Tail quantiles for ``w`` in (0, 1): the lognormal conditioned on exceeding ``last_value``."""
        x0 = self.last_value
        if not math.isfinite(self.mu):
            return np.full(w.shape, x0)
        if self.sigma <= 0:
            return np.full(w.shape, max(x0, math.exp(self.mu)))
        f0 = min(self._ln_cdf(x0), _U_MAX)
        p = np.minimum(f0 + w * (1.0 - f0), _U_MAX)
        return np.maximum(np.exp(self.mu + self.sigma * ndtri(p)), x0)

    # -- distribution ------------------------------------------------------------------------
    def cdf(self, age: float) -> float:
        """P(visit ends by ``age`` days)."""
        if age <= 0:
            return 0.0
        B = self.body
        if len(self.values) and age < self.last_value:
            if self.step:
                k = int(np.searchsorted(self.values, age, side="right"))
                return float(self.levels[k - 1]) if k > 0 else 0.0
            i = int(np.searchsorted(self.values, age, side="right")) - 1
            v0, v1 = float(self.values[i]), float(self.values[i + 1])
            l0, l1 = float(self.levels[i]), float(self.levels[i + 1])
            return l0 + (age - v0) / (v1 - v0) * (l1 - l0)
        if B >= 1.0:
            return 1.0
        f0 = self._ln_cdf(self.last_value)
        if f0 >= _U_MAX:
            return B
        return B + (1.0 - B) * max(self._ln_cdf(age) - f0, 0.0) / (1.0 - f0)

    def quantile(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Durations at levels ``u`` and, for step stages, whether that exit moves on (else NaN)."""
        u = np.asarray(u, dtype=float)
        B = self.body
        x = np.empty(u.shape)
        mv = np.full(u.shape, np.nan)
        in_body = u <= B
        if in_body.any():
            ub = u[in_body]
            if self.step:
                idx = np.minimum(np.searchsorted(self.levels, ub, side="left"), len(self.levels) - 1)
                x[in_body] = self.values[idx]
                mv[in_body] = self.moves[idx]
            else:
                x[in_body] = np.interp(ub, self.levels, self.values)
        tail = ~in_body
        if tail.any():
            w = (u[tail] - B) / max(1.0 - B, 1e-300)
            x[tail] = self._tail(np.clip(w, 0.0, _U_MAX))
        return x, mv

    def sample(self, n: int, rng: np.random.Generator, *, age: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """``n`` remaining times (days) for visits that already lasted ``age``, and move-on flags."""
        lo = min(self.cdf(age), 1.0 - 1e-9) if age > 0 else 0.0
        u = lo + (1.0 - lo) * rng.random(n)
        coin = rng.random(n)
        x, mv = self.quantile(u)
        if self.step:
            moves = np.where(np.isnan(mv), coin < self.tail_move, mv > 0.5)
        else:
            moves = coin < np.where(u <= self.body, self.p_move, self.tail_move)
        return np.maximum(x - age, 0.0), moves


def fit_lognormal(points: list[tuple[float, float]]) -> tuple[float, float, str]:
    """A lognormal ``(mu, sigma)`` through known ``(level, days)`` quantiles, and how it was fitted.

    Through the median and the 80th percentile where both are known and positive, else through
    the two highest positive quantiles that differ; one positive point gives ``sigma = 1``.

    Examples
    --------
    >>> mu, sigma, how = fit_lognormal([(0.5, 10.0), (0.8, 20.0)])
    >>> round(math.exp(mu), 6), round(sigma, 4), how
    (10.0, 0.8236, 'p50/p80')
    """
    pts = {round(float(lv), 6): float(v) for lv, v in points if v is not None and v > 0 and 0 < lv < 1}
    if 0.5 in pts and 0.8 in pts and pts[0.8] > pts[0.5]:
        a, b = (0.5, pts[0.5]), (0.8, pts[0.8])
        how = "p50/p80"
    else:
        ordered = sorted(pts.items())
        pair = None
        for i in range(len(ordered) - 1, 0, -1):
            for j in range(i - 1, -1, -1):
                if ordered[i][1] > ordered[j][1]:
                    pair = (ordered[j], ordered[i])
                    break
            if pair:
                break
        if pair is None:
            if not ordered:
                return -math.inf, 0.0, "none"
            lv, v = ordered[-1]
            return math.log(v) - float(ndtri(lv)), 1.0, f"p{round(lv * 100)} with sigma=1"
        a, b = pair
        how = f"p{round(a[0] * 100)}/p{round(b[0] * 100)}"
    za, zb = float(ndtri(a[0])), float(ndtri(b[0]))
    sigma = (math.log(b[1]) - math.log(a[1])) / (zb - za)
    mu = math.log(a[1]) - sigma * za
    return mu, sigma, how


def stage_from_template(
    name: str,
    *,
    quantiles: list[float | None],
    p50: float | None,
    p80: float | None,
    p_move: float,
    skip: float,
    use_quantiles: bool = True,
    revisit: float = 0.0,
) -> tuple[StageModel, str | None]:
    """A stage from template numbers; returns the model and a note on any extrapolation.

    With ``use_quantiles`` and known quantiles, the body is the piecewise-linear inverse CDF through
    ``(0, 0)`` and the known quantiles; otherwise the whole distribution is a lognormal through
    ``p50``/``p80``; a ``ValueError`` when neither is known. ``revisit`` is the chance of a second
    visit (the template's ``revisited_share``): the template's times are per visit.
    """
    known = [(float(lv), float(q)) for lv, q in zip(QUANTILE_LEVELS, quantiles) if q is not None]
    if use_quantiles and known:
        levels = np.array([0.0] + [lv for lv, _ in known])
        values = np.maximum.accumulate(np.array([0.0] + [q for _, q in known]))
        pts: list[tuple[float, float]] = list(known)
        if p50 is not None and all(abs(lv - 0.5) > 1e-9 for lv, _ in known):
            pts.append((0.5, p50))
        if p80 is not None and all(abs(lv - 0.8) > 1e-9 for lv, _ in known):
            pts.append((0.8, p80))
        mu, sigma, how = fit_lognormal(pts)
        note = None
        if levels[-1] < 1.0:
            note = (
                f"{name}: beyond its {levels[-1]:.0%} quantile ({values[-1]:.1f} days) the time is "
                f"extrapolated with a lognormal through {how}"
            )
        src = "template quantiles"
    else:
        pts = [(lv, float(v)) for lv, v in ((0.5, p50), (0.8, p80)) if v is not None and p50 is not None]
        if not pts:
            raise ValueError(f"milestone {name!r} has no duration")
        levels = np.array([0.0])
        values = np.array([0.0])
        if p50 is not None and p50 <= 0:
            mu, sigma = -math.inf, 0.0
        elif p50 is not None and (p80 is None or p80 <= p50):
            mu, sigma = math.log(p50), 0.0 if p80 is not None else 1.0
        else:
            mu, sigma, _ = fit_lognormal(pts)
        note = f"{name}: time in milestone is a lognormal through the template's p50/p80 days"
        src = "template p50/p80"
    empty = np.zeros(len(levels), dtype=bool)
    model = StageModel(
        name=name, skip=float(skip), step=False, levels=levels, values=values, moves=empty,
        p_move=float(p_move), tail_move=float(p_move), mu=mu, sigma=sigma, source=src, revisit=float(revisit),
    )
    return model, note


def stage_from_history(
    name: str,
    *,
    days: np.ndarray,
    exit_kind: np.ndarray,
    skip: float,
) -> tuple[StageModel, str | None]:
    """A stage from observed times in a milestone: ``exit_kind`` 1 = moved on, 2 = lost, 0 = still
    running (censored).

    The Aalen-Johansen estimator: at each distinct time with exits, the chance of still being in the
    milestone just before it times the share of those at risk that exit then, per kind of exit.

    Examples
    --------
    >>> import numpy as np
    >>> st, note = stage_from_history("Demo", days=np.array([1.0, 2.0, 3.0, 4.0]),
    ...                               exit_kind=np.array([1, 2, 1, 0]), skip=0.0)
    >>> st.levels.round(3).tolist(), st.moves.tolist()
    ([0.25, 0.5, 0.75], [True, False, True])
    """
    d = np.asarray(days, dtype=float)
    k = np.asarray(exit_kind, dtype=np.int64)
    order = np.argsort(d, kind="stable")
    d, k = d[order], k[order]
    times, first, _counts = np.unique(d, return_index=True, return_counts=True)
    at_risk = len(d) - first
    n_move = np.add.reduceat((k == 1).astype(np.int64), first) if len(d) else np.zeros(0, np.int64)
    n_lost = np.add.reduceat((k == 2).astype(np.int64), first) if len(d) else np.zeros(0, np.int64)
    ends = n_move + n_lost
    surv_after = np.cumprod(1.0 - ends / at_risk)
    surv_before = np.concatenate([[1.0], surv_after[:-1]])
    m_move = surv_before * n_move / at_risk
    m_lost = surv_before * n_lost / at_risk
    # atoms in time order; at a time with both kinds, the move atom first
    t2 = np.repeat(times, 2)
    mass = np.column_stack([m_move, m_lost]).ravel()
    mv = np.tile(np.array([True, False]), len(times))
    keep = mass > 0
    t2, mass, mv = t2[keep], mass[keep], mv[keep]
    levels = np.cumsum(mass)
    B = float(levels[-1]) if len(levels) else 0.0
    total_move = float(mass[mv].sum())
    p_move_all = total_move / B if B > 0 else 1.0
    # exits late in the visit say most about visits that run longer still
    late = levels >= 0.75 * B if B > 0 else np.zeros(0, bool)
    tail_move = float(mass[late & mv].sum() / mass[late].sum()) if late.any() else p_move_all
    note = None
    mu, sigma = -math.inf, 0.0
    if B < 1.0 - 1e-12:
        pts = []
        for lv in QUANTILE_LEVELS:
            if lv <= B + 1e-12:
                i = int(np.searchsorted(levels, lv - 1e-12, side="left"))
                pts.append((float(lv), float(t2[min(i, len(t2) - 1)])))
        mu, sigma, how = fit_lognormal(pts)
        if how == "none":
            # nothing ever observed to end: the censored times are all we know
            longest = float(d.max()) if len(d) else 1.0
            mu, sigma, how = math.log(max(longest, 1.0)), 1.0, "the longest running visit, sigma=1"
        last = float(t2[-1]) if len(t2) else 0.0
        share = f"{1 - B:.0%}" if 1 - B >= 0.01 else "under 1%"
        note = (
            f"{name}: {share} of stays outlast the longest observed exit ({last:.1f} days); "
            f"that tail is extrapolated with a lognormal through {how}"
        )
    model = StageModel(
        name=name, skip=float(skip), step=True, levels=levels, values=t2, moves=mv,
        p_move=p_move_all, tail_move=tail_move, mu=mu, sigma=sigma,
        source=f"history ({len(d)} visits, {int((k == 0).sum())} still running)",
    )
    return model, note


@dataclass(frozen=True, eq=False)
class SimResult:
    """Simulated paths: completion time (days from the start), success, and entry times per stage."""

    total: np.ndarray
    success: np.ndarray
    entry: np.ndarray  # (n, K) days from the start at which each stage was entered; NaN = not visited


def simulate(
    stages: list[StageModel],
    *,
    start: int,
    age: float,
    n: int,
    rng: np.random.Generator,
) -> SimResult:
    """``n`` paths from stage ``start`` (already ``age`` days in it) to the end of the process.

    Examples
    --------
    >>> import numpy as np
    >>> st, _ = stage_from_template("A", quantiles=[], p50=10.0, p80=10.0, p_move=0.5, skip=0.0,
    ...                             use_quantiles=False)
    >>> r = simulate([st, st], start=0, age=0.0, n=20_000, rng=np.random.default_rng(0))
    >>> bool(abs(r.success.mean() - 0.25) < 0.01), round(float(np.median(r.total[r.success])), 6)
    (True, 20.0)
    """
    K = len(stages)
    t = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    entry = np.full((n, K), np.nan)
    for j in range(start, K):
        st = stages[j]
        skip_draw = rng.random(n)
        visit = alive if j == start else alive & (skip_draw >= st.skip)
        d, moves = st.sample(n, rng, age=age if j == start else 0.0)
        again = rng.random(n) < st.revisit
        d2, _ = st.sample(n, rng)
        d = np.where(again, d + d2, d)
        entry[visit, j] = t[visit]
        t = np.where(visit, t + d, t)
        alive = alive & (~visit | moves)
    return SimResult(total=t, success=alive, entry=entry)
