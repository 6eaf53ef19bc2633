"""A small, well-regularised logistic regression (IRLS in numpy) with cluster-robust intervals and
Platt calibration on held-out folds. Used by deal review; no scikit-learn needed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from salesproc.derive._stats import Z95

__all__ = ["LogitFit", "calibrate", "fit_logit", "interval", "platt", "sigmoid"]


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=float)))


@dataclass(frozen=True)
class LogitFit:
    """Coefficients on the original feature scale, their cluster-robust covariance and the fit's data."""

    coef: np.ndarray  # (p,) including the intercept at position 0
    cov: np.ndarray  # (p, p) sandwich covariance clustered by case
    iterations: int
    converged: bool

    def linear(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X @ self.coef)

    def se(self, X: np.ndarray) -> np.ndarray:
        """Standard error of the linear predictor for each row of ``X``."""
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", X, self.cov, X), 0.0))


def fit_logit(
    X: np.ndarray,
    y: np.ndarray,
    *,
    penalty: np.ndarray | float = 1.0,
    cluster: np.ndarray | None = None,
    start: np.ndarray | None = None,
    covariance: bool = True,
    max_iter: int = 50,
    tol: float = 1e-6,
) -> LogitFit:
    """Ridge-penalised logistic regression by iteratively reweighted least squares.

    ``X`` carries its intercept in column 0 (never penalised). ``penalty`` is the ridge weight per
    column on a standardised scale (each column divided by its standard deviation), so one value
    fits features of any unit. ``cluster`` (e.g. the case of each snapshot) gives the sandwich
    covariance that respects repeated snapshots of one case. ``start`` (coefficients on the original
    scale) warm-starts the iterations; ``covariance=False`` skips the covariance (held-out fits).
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, p = X.shape
    sd = X.std(axis=0)
    sd[0] = 1.0
    sd[sd < 1e-12] = 1.0
    Z = X / sd
    lam = np.broadcast_to(np.asarray(penalty, dtype=float), (p,)).copy()
    lam[0] = 0.0
    L = np.diag(lam)
    beta = np.zeros(p)
    if start is not None:
        beta = np.asarray(start, dtype=float) * sd
    else:
        ybar = min(max(float(y.mean()) if n else 0.5, 1e-4), 1 - 1e-4)
        beta[0] = np.log(ybar / (1 - ybar))
    run = _irls(Z, y, L, beta, max_iter=max_iter, tol=tol)
    if not covariance:
        return LogitFit(coef=run.beta / sd, cov=np.full((p, p), np.nan), iterations=run.iterations,
                        converged=run.converged)
    cov_z = _sandwich(Z, y, run.beta, L, cluster)
    return LogitFit(coef=run.beta / sd, cov=cov_z / np.outer(sd, sd), iterations=run.iterations,
                    converged=run.converged)


@dataclass(frozen=True)
class _Irls:
    """Where the iterations stopped: coefficients on the standardised scale, how many, whether they converged."""

    beta: np.ndarray
    iterations: int
    converged: bool


def _irls(Z: np.ndarray, y: np.ndarray, L: np.ndarray, beta: np.ndarray, *, max_iter: int, tol: float) -> _Irls:
    """Newton steps on the penalised log-likelihood from ``beta`` until the largest step is below ``tol``."""
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        eta = Z @ beta
        mu = sigmoid(eta)
        w = np.maximum(mu * (1 - mu), 1e-9)
        H = (Z * w[:, None]).T @ Z + L
        g = Z.T @ (y - mu) - L @ beta
        try:
            step = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(H, g, rcond=None)[0]
        beta = beta + step
        if float(np.max(np.abs(step))) < tol:
            converged = True
            break
    return _Irls(beta=beta, iterations=it, converged=converged)


def _sandwich(Z: np.ndarray, y: np.ndarray, beta: np.ndarray, L: np.ndarray, cluster: np.ndarray | None) -> np.ndarray:
    """The sandwich covariance of the standardised coefficients, clustered by ``cluster`` when given."""
    n = len(Z)
    eta = Z @ beta
    mu = sigmoid(eta)
    w = np.maximum(mu * (1 - mu), 1e-9)
    H = (Z * w[:, None]).T @ Z + L
    Hinv = np.linalg.pinv(H)
    scores = Z * (y - mu)[:, None]
    if cluster is not None and n:
        cl = np.asarray(cluster)
        order = np.argsort(cl, kind="stable")
        cs = cl[order]
        starts = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1]])
        G = np.add.reduceat(scores[order], starts, axis=0)
    else:
        G = scores
    meat = G.T @ G
    return np.asarray(Hinv @ meat @ Hinv)


def platt(eta: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Platt scaling ``p = sigmoid(a * eta + b)`` fitted on held-out linear predictors."""
    X = np.column_stack([np.ones(len(eta)), np.asarray(eta, dtype=float)])
    fit = fit_logit(X, y, penalty=0.0, covariance=False)
    b, a = float(fit.coef[0]), float(fit.coef[1])
    if not np.isfinite(a) or a <= 0:
        return 1.0, 0.0
    return a, b


# no history is big enough to say "never" or "certainly": calibrated log-odds stay within +-6.9
# (probabilities between 0.1% and 99.9%)
MAX_LOGIT = 6.9


def calibrate(eta: np.ndarray, a: float, b: float) -> np.ndarray:
    """Platt-calibrated probability, kept within 0.1%..99.9%."""
    return sigmoid(np.clip(a * np.asarray(eta, dtype=float) + b, -MAX_LOGIT, MAX_LOGIT))


def interval(eta: np.ndarray, se: np.ndarray, a: float, b: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calibrated probability and its 95% interval from a linear predictor and its standard error."""
    return calibrate(eta, a, b), calibrate(eta - Z95 * se, a, b), calibrate(eta + Z95 * se, a, b)
