"""Scoring rules for probability forecasts: rank AUC with DeLong intervals, Brier score, expected
calibration error over equal-mass bins, and the calibration table behind a reliability plot."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from salesproc.derive._stats import Z95, wilson

__all__ = ["auc", "brier", "calibration_table", "delong", "ece", "log_loss"]


def auc(score: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a success > score of a failure), ties count half.

    Equals ``scipy.stats.mannwhitneyu(pos, neg).statistic / (n_pos * n_neg)``.
    """
    s = np.asarray(score, dtype=float)
    yy = np.asarray(y, dtype=bool)
    n1 = int(yy.sum())
    n0 = len(yy) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = stats.rankdata(s)
    return float((r[yy].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _placements(s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n1 = int(y.sum())
    n0 = len(y) - n1
    r_all = stats.rankdata(s)
    r_pos = stats.rankdata(s[y])
    r_neg = stats.rankdata(s[~y])
    v10 = (r_all[y] - r_pos) / n0  # for each success: share of failures scored below it
    v01 = 1.0 - (r_all[~y] - r_neg) / n1  # for each failure: share of successes scored above it
    return v10, v01


def delong(scores: list[np.ndarray], y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of several scores on the same cases and their DeLong covariance matrix."""
    yy = np.asarray(y, dtype=bool)
    n1 = int(yy.sum())
    n0 = len(yy) - n1
    k = len(scores)
    if n1 < 2 or n0 < 2:
        return np.full(k, np.nan), np.full((k, k), np.nan)
    V10 = np.empty((k, n1))
    V01 = np.empty((k, n0))
    for i, s in enumerate(scores):
        V10[i], V01[i] = _placements(np.asarray(s, dtype=float), yy)
    aucs = V10.mean(axis=1)
    cov = np.atleast_2d(np.cov(V10)) / n1 + np.atleast_2d(np.cov(V01)) / n0
    return aucs, cov


def auc_ci(score: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """95% DeLong interval of the AUC (on the logit scale, so it stays within 0..1)."""
    aucs, cov = delong([score], y)
    a, v = float(aucs[0]), float(cov[0, 0])
    if not np.isfinite(a) or not np.isfinite(v) or a <= 0 or a >= 1:
        return (float("nan"), float("nan"))
    lg = np.log(a / (1 - a))
    se = np.sqrt(v) / (a * (1 - a))
    lo, hi = lg - Z95 * se, lg + Z95 * se
    return float(1 / (1 + np.exp(-lo))), float(1 / (1 + np.exp(-hi)))


def brier(p: np.ndarray, y: np.ndarray) -> float:
    p = np.asarray(p, dtype=float)
    return float(np.mean((p - np.asarray(y, dtype=float)) ** 2)) if len(p) else float("nan")


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(np.asarray(p, dtype=float), 1e-12, 1 - 1e-12)
    yy = np.asarray(y, dtype=float)
    return float(-np.mean(yy * np.log(p) + (1 - yy) * np.log(1 - p))) if len(p) else float("nan")


def _bins(p: np.ndarray, bins: int) -> np.ndarray:
    """Equal-mass bin of each forecast: sorted by p (ties in input order) and cut into ``bins`` groups
    whose sizes differ by at most one, the larger ones first (as ``numpy.array_split``)."""
    order = np.argsort(p, kind="stable")
    n = len(p)
    q, r = divmod(n, bins)
    sizes = np.full(bins, q, dtype=np.int64)
    sizes[:r] += 1
    out = np.empty(n, dtype=np.int64)
    out[order] = np.repeat(np.arange(bins), sizes)
    return out


def calibration_table(p: np.ndarray, y: np.ndarray, *, bins: int = 10) -> pd.DataFrame:
    """Forecasts in ``bins`` equal-mass bins: count, mean forecast, observed rate with Wilson 95%."""
    p = np.asarray(p, dtype=float)
    yy = np.asarray(y, dtype=float)
    nb = min(bins, max(len(p), 1))
    b = _bins(p, nb)
    n = np.bincount(b, minlength=nb)
    sp = np.bincount(b, weights=p, minlength=nb)
    sy = np.bincount(b, weights=yy, minlength=nb)
    lo, hi = wilson(sy, n)
    pmin = np.full(nb, np.nan)
    pmax = np.full(nb, np.nan)
    if len(p):
        np.fmin.at(pmin, b, p)
        np.fmax.at(pmax, b, p)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame(
            {
                "bin": np.arange(1, nb + 1),
                "n": n,
                "p_min": pmin,
                "p_max": pmax,
                "predicted": sp / np.maximum(n, 1),
                "observed": sy / np.maximum(n, 1),
                "observed_low": lo,
                "observed_high": hi,
            }
        )


def ece(p: np.ndarray, y: np.ndarray, *, bins: int = 10) -> float:
    """Expected calibration error: the count-weighted mean of |mean forecast - observed rate| over
    ``bins`` equal-mass bins."""
    if len(p) == 0:
        return float("nan")
    t = calibration_table(p, y, bins=bins)
    return float(np.sum(t["n"] * np.abs(t["predicted"] - t["observed"])) / t["n"].sum())
