"""Charts for reviews and backtests.

Every function takes ``ax=None`` (a new :class:`matplotlib.figure.Figure` is made when none is
given; pyplot's global state is never touched) and returns the Axes it drew on.

Text that comes from the data (deal ids, milestone and activity names, the success label) is drawn
as written: never read as mathtext, so ``$100k deal`` or ``a$b$c`` show their dollars.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "plot_activity_effects",
    "plot_calibration",
    "plot_cycle_time",
    "plot_funnel",
    "plot_outcomes",
    "plot_risk_amount",
    "plot_stage_ageing",
    "plot_time_in_milestone",
]

_RED = "#c0392b"
_GREY = "#7f8c8d"
_BLUE = "#2c6fbb"
_ORANGE = "#e67e22"


def _axes(ax: Axes | None, size: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    fig = Figure(figsize=size, layout="constrained")
    return fig.add_subplot()


def _plain(texts: Any) -> None:
    """Draw ``texts`` (matplotlib Text objects holding data) as written, never as mathtext."""
    for t in texts:
        t.set_parse_math(False)


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
                        textcoords="offset points", parse_math=False)
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
    ax.set_yticklabels([str(n) for n in names], parse_math=False)
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
    >>> from salesproc.review._metrics import calibration_table
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
    _plain(ax.legend(loc="upper left", fontsize=8, frameon=False).get_texts())
    return ax


# --- history and template charts (the workshop's "learn from your history") --------------------------

_GREEN = "#27ae60"
_LIGHT_GREEN = "#8fd19e"
_OUTCOME_COLOURS = {
    "won": _GREEN, "on_time": _GREEN, "lost": _RED, "failed": _RED, "late": _ORANGE, "open": "#bdc3c7",
}
_REQUIREMENT_COLOURS = {"required": _GREEN, "recommended": _LIGHT_GREEN, "warning": _RED, "none": _GREY}


def plot_outcomes(history: Any, ax: Axes | None = None, *, freq: str = "QE") -> Axes:
    """Cases opened per period (``freq``: ``"QE"`` quarters, ``"ME"`` months), stacked by outcome,
    with the success rate of the closed ones above each bar.

    Examples
    --------
    >>> import salesproc
    >>> from salesproc.charts import plot_outcomes
    >>> ax = plot_outcomes(salesproc.load_sample_deals())
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['won', 'lost', 'open']
    """
    c = history.cases
    ax = _axes(ax, (7.0, 3.6))
    kinds = c["kind"].astype(str).unique().tolist()
    order = ["won", "lost", "open"] if kinds == ["deal"] else ["won", "on_time", "late", "lost", "failed", "open"]
    created = c["created"].dt.tz_convert(None)
    period = created.dt.to_period(freq.rstrip("E") if freq.endswith("E") else freq)
    table = pd.crosstab(period, c["outcome"].astype(str)).sort_index()
    order = [o for o in order if o in table.columns]
    labels = [str(p) for p in table.index]
    x = np.arange(len(labels))
    bottom = np.zeros(len(labels))
    for o in order:
        v = table[o].to_numpy(dtype=float)
        ax.bar(x, v, bottom=bottom, color=_OUTCOME_COLOURS.get(o, _BLUE), label=o.replace("_", " "), width=0.75)
        bottom += v
    ok = table[[o for o in ("won", "on_time") if o in table.columns]].sum(axis=1).to_numpy(dtype=float)
    closed = table[[o for o in order if o != "open"]].sum(axis=1).to_numpy(dtype=float)
    for xi, top, k, n in zip(x, bottom, ok, closed):
        if n > 0:
            ax.annotate(f"{k / n:.0%}", (xi, top), ha="center", va="bottom", fontsize=8, xytext=(0, 2),
                        textcoords="offset points")
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=45 if len(labels) > 8 else 0, ha="right" if len(labels) > 8 else "center")
    unit = "deals" if kinds == ["deal"] else "cases"
    ax.set_ylabel(f"{unit} opened")
    ax.set_ylim(0, float(bottom.max()) * 1.15 if len(bottom) else 1.0)
    ax.set_title(f"Outcomes by when the {unit} were opened (%: success among the closed ones)", fontsize=10)
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax


def plot_cycle_time(history: Any, ax: Axes | None = None, *, bins: int = 30) -> Axes:
    """How long closed cases took from opening to close, successes against failures, with the
    successes' median (p50) and 80th percentile (p80) marked: what a realistic target date allows.

    Examples
    --------
    >>> import salesproc
    >>> from salesproc.charts import plot_cycle_time
    >>> ax = plot_cycle_time(salesproc.load_sample_deals())
    >>> ax.get_xlabel()
    'days from opened to closed'
    """
    c = history.cases
    ax = _axes(ax, (7.0, 3.4))
    days = ((c["closed"] - c["created"]).dt.total_seconds() / 86_400).to_numpy(dtype=float)
    status = c["status"].astype(str).to_numpy()
    ok = np.isfinite(days)
    top = float(np.nanmax(days[ok])) if ok.any() else 1.0
    edges = np.linspace(0, max(top, 1.0), bins + 1)
    for st, colour, label in (("success", _GREEN, "success"), ("failure", _RED, "failure")):
        sel = ok & (status == st)
        if sel.any():
            ax.hist(days[sel], bins=edges.tolist(), histtype="stepfilled", alpha=0.35, color=colour,
                    label=f"{label} ({int(sel.sum()):,})")
    won = days[ok & (status == "success")]
    if len(won):
        for q, style in ((0.5, "-"), (0.8, "--")):
            v = float(np.quantile(won, q))
            ax.axvline(v, color=_GREEN, ls=style, lw=1.5)
            ax.annotate(f"p{int(q * 100)} {v:.0f} d", (v, 1), xycoords=("data", "axes fraction"), fontsize=8,
                        xytext=(3, -12), textcoords="offset points")
    ax.set_xlabel("days from opened to closed")
    ax.set_ylabel("cases")
    ax.set_title("Cycle time of closed cases")
    ax.legend(frameon=False, fontsize=8, loc="upper right")
    return ax


def plot_funnel(template: Any, ax: Axes | None = None) -> Axes:
    """The funnel: cases that reached each milestone (in process order), with the share that moved on
    to a later milestone and the share of closed ones that ended in success from there.

    Examples
    --------
    >>> import salesproc
    >>> from salesproc.charts import plot_funnel
    >>> ax = plot_funnel(salesproc.derive_template(salesproc.load_sample_deals()))
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['Qualify', 'Discovery', 'Solution', 'Proposal', 'Negotiation']
    """
    ms = sorted(template.milestones, key=lambda m: m.order)
    ax = _axes(ax, (7.0, 0.5 * max(len(ms), 2) + 1.2))
    reached = np.array([m.evidence.reached for m in ms], dtype=float)
    y = np.arange(len(ms))
    top = float(reached.max()) if len(reached) else 1.0
    ax.barh(y, reached, left=(top - reached) / 2, color=_BLUE, alpha=0.8, height=0.7)
    for yi, m, r in zip(y, ms, reached):
        ev = m.evidence
        parts = [f"{int(r):,}"]
        if ev.to_next is not None and ev.to_next.rate is not None:
            parts.append(f"{ev.to_next.rate:.0%} moved on")
        if ev.to_success is not None and ev.to_success.rate is not None:
            parts.append(f"{ev.to_success.rate:.0%} {template.success.replace('_', ' ')}")
        ax.annotate(" · ".join(parts), ((top + r) / 2, yi), xytext=(4, 0), textcoords="offset points",
                    va="center", fontsize=8, parse_math=False)
    ax.set_yticks(y)
    ax.set_yticklabels([m.name for m in ms], parse_math=False)
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.6)
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_title("Funnel: cases that reached each milestone")
    return ax


def plot_time_in_milestone(template: Any, ax: Axes | None = None) -> Axes:
    """Time in each milestone: p50 (dark bar, with its 95% interval) and p80 (light bar), censoring-aware;
    an ``x`` marks the p50 one would get by dropping the cases still open (the bias avoided).

    Examples
    --------
    >>> import salesproc
    >>> from salesproc.charts import plot_time_in_milestone
    >>> ax = plot_time_in_milestone(salesproc.derive_template(salesproc.load_sample_deals()))
    >>> ax.get_xlabel()
    'days in milestone'
    """
    ms = sorted(template.milestones, key=lambda m: m.order)
    ax = _axes(ax, (7.0, 0.5 * max(len(ms), 2) + 1.4))
    y = np.arange(len(ms))
    p50 = np.array([np.nan if m.p50_days is None else m.p50_days for m in ms], dtype=float)
    p80 = np.array([np.nan if m.p80_days is None else m.p80_days for m in ms], dtype=float)
    ax.barh(y, np.nan_to_num(p80), color=_BLUE, alpha=0.3, height=0.6, label="p80")
    ax.barh(y, np.nan_to_num(p50), color=_BLUE, alpha=0.9, height=0.6, label="p50")
    for yi, m in zip(y, ms):
        lo, hi = m.evidence.duration.p50_ci
        if lo is not None and hi is not None and m.p50_days is not None:
            ax.plot([lo, hi], [yi, yi], color="black", lw=1)
        naive = m.evidence.duration.naive_p50
        if naive is not None:
            ax.plot([naive], [yi], marker="x", color=_RED, ms=6, lw=0)
        if m.p80_days is not None:
            ax.annotate(f"{m.p50_days or 0:.0f}–{m.p80_days:.0f} d", (m.p80_days, yi), xytext=(4, 0),
                        textcoords="offset points", va="center", fontsize=8)
    ax.plot([], [], marker="x", color=_RED, lw=0, label="p50 dropping open cases")
    ax.set_yticks(y)
    ax.set_yticklabels([m.name for m in ms], parse_math=False)
    ax.invert_yaxis()
    finite = p80[np.isfinite(p80)]
    ax.set_xlim(0, float(finite.max()) * 1.2 if len(finite) else 1.0)
    ax.set_xlabel("days in milestone")
    ax.set_title("Time in milestone (honest about deals still open)")
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    return ax


def plot_activity_effects(template: Any, ax: Axes | None = None, *, top: int = 12) -> Axes:
    """What separates wins from losses: for each tested activity, the difference in success rate
    between cases that did it before the milestone and those that did not, with its 95% interval.
    Colours give the template's verdict (required, recommended, warning sign, no clear effect).

    Examples
    --------
    >>> import salesproc
    >>> from salesproc.charts import plot_activity_effects
    >>> ax = plot_activity_effects(salesproc.derive_template(salesproc.load_sample_deals()), top=3)
    >>> len(ax.get_yticklabels())
    3
    """
    acts = [a for a in template.activities if a.evidence is not None and a.evidence.risk_difference is not None]
    acts.sort(key=lambda a: -abs(a.evidence.risk_difference))
    acts = sorted(acts[:top], key=lambda a: a.evidence.risk_difference)
    ax = _axes(ax, (7.0, 0.38 * max(len(acts), 2) + 1.4))
    y = np.arange(len(acts))
    for yi, a in zip(y, acts):
        e = a.evidence
        colour = _REQUIREMENT_COLOURS.get(a.requirement, _GREY)
        lo, hi = e.ci
        if lo is not None and hi is not None:
            ax.plot([lo, hi], [yi, yi], color=colour, lw=2)
        ax.plot([e.risk_difference], [yi], marker="o", color=colour, ms=6)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels([f"{a.name} (by {a.evidence.milestone})" for a in acts], parse_math=False)
    for label, colour in _REQUIREMENT_COLOURS.items():
        ax.plot([], [], marker="o", color=colour, lw=2, label="no clear effect" if label == "none" else label)
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_xlabel("success rate with minus without the activity (95% interval)")
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:+.0%}")
    ax.set_title("What separates wins from losses")
    return ax
