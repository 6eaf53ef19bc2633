"""Vectorised statistics used across salesproc: Kaplan-Meier with intervals, Wilson and Newcombe
intervals, Fisher's exact test and Benjamini-Hochberg. Cross-checked against scipy in the tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

Z95 = 1.959963984540054
QUANTILE_LEVELS = np.round(np.arange(0.05, 0.96, 0.05), 2)


@dataclass(frozen=True)
class KM:
    """A Kaplan-Meier survival curve: at each distinct time, S(t) and its 95% log-log band."""

    times: np.ndarray
    surv: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n: int
    events: int

    def quantile(self, p: float) -> tuple[float | None, float | None, float | None]:
        """The p-quantile of the duration (first time S <= 1-p) and its 95% interval."""
        target = 1.0 - p + 1e-12
        return (
            _first_below(self.times, self.surv, target),
            _first_below(self.times, self.low, target),
            _first_below(self.times, self.high, target),
        )

    def quantiles(self, levels: np.ndarray = QUANTILE_LEVELS) -> list[float | None]:
        return [_first_below(self.times, self.surv, 1.0 - p + 1e-12) for p in levels]

    def sf(self, t: np.ndarray | float) -> np.ndarray:
        """S(t), a right-continuous step function."""
        idx = np.searchsorted(self.times, np.asarray(t, dtype=float), side="right") - 1
        out = np.where(idx >= 0, self.surv[np.maximum(idx, 0)], 1.0)
        return out


def _first_below(times: np.ndarray, curve: np.ndarray, target: float) -> float | None:
    hit = np.flatnonzero(curve <= target)
    return float(times[hit[0]]) if len(hit) else None


def kaplan_meier(durations: np.ndarray, observed: np.ndarray) -> KM:
    """Kaplan-Meier estimate for right-censored durations (``observed`` False = censored).

    Greenwood variance with the log-log transform for the 95% band (as ``scipy.stats.ecdf``'s
    ``confidence_interval(method="log-log")``).
    """
    d = np.asarray(durations, dtype=float)
    o = np.asarray(observed, dtype=bool)
    if len(d) == 0:
        empty = np.zeros(0)
        return KM(empty, empty, empty, empty, 0, 0)
    order = np.argsort(d, kind="stable")
    d, o = d[order], o[order]
    times, first_idx, _counts = np.unique(d, return_index=True, return_counts=True)
    deaths = np.add.reduceat(o.astype(np.int64), first_idx)
    at_risk = len(d) - first_idx
    keep = deaths > 0
    times, deaths, at_risk = times[keep], deaths[keep], at_risk[keep]
    frac = 1.0 - deaths / at_risk
    surv = np.cumprod(frac)
    with np.errstate(divide="ignore", invalid="ignore"):
        gw = np.cumsum(deaths / (at_risk * (at_risk - deaths)))
        logs = np.log(surv)
        se = np.sqrt(gw) / np.abs(logs)
        loglog = np.log(-logs)
        low = np.exp(-np.exp(loglog + Z95 * se))
        high = np.exp(-np.exp(loglog - Z95 * se))
    # where S is 1 or 0 the transform is undefined: the band collapses onto S
    low = np.where(np.isfinite(low), low, surv)
    high = np.where(np.isfinite(high), high, surv)
    return KM(times, surv, low, high, len(d), int(o.sum()))


def wilson(k: int | np.ndarray, n: int | np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for k successes of n (nan where n == 0)."""
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return centre - half, centre + half


def newcombe(
    k1: np.ndarray, n1: np.ndarray, k2: np.ndarray, n2: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Risk difference p1 - p2 with Newcombe's hybrid score interval (method 10)."""
    k1, n1, k2, n2 = (np.asarray(x, dtype=float) for x in (k1, n1, k2, n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        p1, p2 = k1 / n1, k2 / n2
        l1, u1 = wilson(k1, n1)
        l2, u2 = wilson(k2, n2)
        rd = p1 - p2
        lo = rd - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
        hi = rd + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return rd, lo, hi


def fisher_pvalues(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Two-sided Fisher exact p for each 2x2 table [[a, b], [c, d]].

    The sum of the hypergeometric probabilities of all tables with the same margins that are no
    more likely than the observed one (scipy's definition, same relative tolerance), computed on
    the whole support at once.
    """
    out = np.ones(len(a))
    for i in range(len(a)):
        ai, bi, ci, di = int(a[i]), int(b[i]), int(c[i]), int(d[i])
        row1, col1, total = ai + bi, ai + ci, ai + bi + ci + di
        if min(row1, col1, total - row1, total - col1) == 0:
            continue
        lo, hi = max(0, col1 - (total - row1)), min(row1, col1)
        x = np.arange(lo, hi + 1)
        logp = stats.hypergeom.logpmf(x, total, row1, col1)
        obs = logp[ai - lo]
        p = np.exp(logp[logp <= obs + np.log1p(1e-7)]).sum()
        out[i] = min(1.0, float(p))
    return out


def bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q)."""
    p = np.asarray(p, dtype=float)
    if len(p) == 0:
        return p
    return np.asarray(stats.false_discovery_control(p, method="bh"))
