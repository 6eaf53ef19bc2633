"""Charts for reviews and backtests.

Every function takes ``ax=None`` (a new :class:`matplotlib.figure.Figure` is made when none is
given; pyplot's global state is never touched) and returns the Axes it drew on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["plot_calibration", "plot_risk_amount", "plot_stage_ageing"]

_RED = "#c0392b"
_GREY = "#7f8c8d"
_BLUE = "#2c6fbb"
_ORANGE = "#e67e22"


def _axes(ax: Axes | None, size: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    fig = Figure(figsize=size, layout="constrained")
    return fig.add_subplot()


def _frame(review: Any) -> pd.DataFrame:
    if isinstance(review, pd.DataFrame):
        return review
    if hasattr(review, "to_frame"):
        return review.to_frame()
    raise TypeError(f"Expected a Review or its to_frame() table. Got {type(review).__name__} instead.")


def plot_risk_amount(review: Any, ax: Axes | None = None, *, label_top: int = 5) -> Axes:
    """Each open deal as a point: amount (log scale) against the risk of not winning.

    Flagged deals are red; the ``label_top`` deals with the largest expected loss are labelled.
    Deals without an amount are left out (the axis title says how many).

    Examples
    --------
    >>> import pandas as pd
    >>> from salesproc.charts import plot_risk_amount
    >>> frame = pd.DataFrame({"case_id": ["a", "b"], "amount": [1000.0, 5000.0],
    ...                       "probability": [0.8, 0.3], "n_flags": [0, 2]})
    >>> ax = plot_risk_amount(frame)
    >>> ax.get_ylabel()
    'risk of not winning'
    """
    f = _frame(review)
    ax = _axes(ax, (6.0, 4.0))
    amt = pd.to_numeric(f["amount"], errors="coerce").to_numpy(dtype=float)
    risk = 1.0 - f["probability"].to_numpy(dtype=float)
    ok = np.isfinite(amt) & (amt > 0)
    flagged = f["n_flags"].to_numpy() > 0 if "n_flags" in f.columns else np.zeros(len(f), dtype=bool)
    for sel, colour, label in ((ok & ~flagged, _BLUE, "no flag"), (ok & flagged, _RED, "flagged")):
        if sel.any():
            ax.scatter(amt[sel], risk[sel], s=14, alpha=0.6, color=colour, label=f"{label} ({int(sel.sum()):,})",
                       linewidths=0)
    if ok.any():
        ax.set_xscale("log")
        loss = np.where(ok, amt * risk, -np.inf)
        for i in np.argsort(-loss)[: min(label_top, int(ok.sum()))]:
            ax.annotate(str(f["case_id"].iloc[i]), (amt[i], risk[i]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
        ax.legend(loc="lower right", fontsize=8, frameon=False)
    missing = int((~ok).sum())
    ax.set_xlabel("amount" + (f" ({missing:,} deals without an amount not shown)" if missing else ""))
    ax.set_ylabel("risk of not winning")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Risk against amount")
    return ax


def plot_stage_ageing(review: Any, ax: Axes | None = None) -> Axes:
    """Days each open deal has spent in its current milestone, one row per milestone, against the
    template's p50 (grey tick) and p80 (orange tick); stalled deals (beyond p80) in red.

    Examples
    --------
    >>> import salesproc
    >>> from salesproc.charts import plot_stage_ageing
    >>> h, truth = salesproc.synthetic_history(600, seed=5)
    >>> t = salesproc.derive_template(h, as_of=truth.as_of)
    >>> ax = plot_stage_ageing(salesproc.review_deals(h, t, as_of=truth.as_of))
    >>> [x.get_text() for x in ax.get_yticklabels()][:2]
    ['Qualify', 'Discovery']
    """
    f = _frame(review)
    tpl = getattr(review, "template", None)
    names = tpl.milestone_names if tpl is not None else [m for m in pd.unique(f["milestone"].dropna())]
    ax = _axes(ax, (6.5, 0.55 * max(len(names), 2) + 1.2))
    days = f["days_in_milestone"].to_numpy(dtype=float)
    stalled = f["stalled"].to_numpy(dtype=bool) if "stalled" in f.columns else np.zeros(len(f), dtype=bool)
    ms = f["milestone"].to_numpy(dtype=object)
    # deterministic jitter from the row position
    jitter = ((np.arange(len(f)) * 0.618034) % 1.0 - 0.5) * 0.5
    for i, name in enumerate(names):
        sel = ms == name
        y = np.full(int(sel.sum()), float(i)) + jitter[sel]
        d = days[sel]
        s = stalled[sel]
        ax.scatter(d[~s], y[~s], s=9, alpha=0.5, color=_BLUE, linewidths=0)
        ax.scatter(d[s], y[s], s=9, alpha=0.7, color=_RED, linewidths=0)
        if tpl is not None:
            m = tpl.milestone(name)
            for val, colour in ((m.p50_days, _GREY), (m.p80_days, _ORANGE)):
                if val is not None:
                    ax.plot([val, val], [i - 0.4, i + 0.4], color=colour, lw=2)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    ax.set_xlabel("days in current milestone (grey: template p50, orange: p80, red: stalled)")
    ax.set_title("Stage ageing")
    return ax


def plot_calibration(result: Any, ax: Axes | None = None, *, baseline: bool = True) -> Axes:
    """Reliability diagram: mean forecast against the observed rate per equal-mass bin, with Wilson
    95% intervals; the diagonal is perfect calibration. Takes a :class:`~salesproc.BacktestResult`
    (review and stage-only baseline), a :class:`~salesproc.backtest.Metrics` or a calibration table.

    Examples
    --------
    >>> import numpy as np
    >>> from salesproc._metrics import calibration_table
    >>> from salesproc.charts import plot_calibration
    >>> p = np.linspace(0.05, 0.95, 200)
    >>> y = (np.arange(200) % 10) < p * 10
    >>> ax = plot_calibration(calibration_table(p, y))
    >>> ax.get_xlabel()
    'forecast probability'
    """
    ax = _axes(ax, (4.5, 4.5))
    series: list[tuple[str, pd.DataFrame, str]] = []
    if isinstance(result, pd.DataFrame):
        series.append(("forecast", result, _BLUE))
    elif hasattr(result, "metrics"):
        m = result.metrics
        series.append((f"review (ECE {m.ece:.3f})", m.calibration, _BLUE))
        if baseline and getattr(result, "baseline", None) is not None:
            b = result.baseline
            series.append((f"stage-only (ECE {b.ece:.3f})", b.calibration, _GREY))
    elif hasattr(result, "calibration"):
        series.append((f"{result.name} (ECE {result.ece:.3f})", result.calibration, _BLUE))
    else:
        raise TypeError(
            "The 'result' parameter of plot_calibration must be a BacktestResult, Metrics or a calibration table. "
            f"Got {type(result).__name__} instead."
        )
    ax.plot([0, 1], [0, 1], color="#bbbbbb", lw=1, ls="--", zorder=0)
    for label, t, colour in series:
        x = t["predicted"].to_numpy(dtype=float)
        y = t["observed"].to_numpy(dtype=float)
        err = np.vstack([y - t["observed_low"].to_numpy(dtype=float), t["observed_high"].to_numpy(dtype=float) - y])
        ax.errorbar(x, y, yerr=np.maximum(err, 0), fmt="o-", ms=4, lw=1, capsize=2, color=colour, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("forecast probability")
    ax.set_ylabel("observed rate")
    ax.set_title("Calibration")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    return ax
