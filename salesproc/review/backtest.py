"""Backtesting deal review: would its judgement have been right on past data?

:func:`backtest` goes back to a cutoff date, derives the template from what was known then (or uses
the one given), reviews the deals open at the cutoff, and compares with what happened afterwards:
rank quality (AUC with a DeLong interval), accuracy (Brier score), calibration (expected calibration
error over 10 equal-mass bins, and the table behind a reliability plot), each flag's precision,
and a stage-only baseline (the historical win rate of the deal's current milestone).
:func:`compare_templates` asks "did version 2 of our template predict better than version 1?" on
the same cutoff and the same deals.

No leakage: the template and the review see ``history.as_of(cutoff)`` only; what happened later is
read only to score the forecasts. A template given by the caller that was derived from data after a
cutoff would leak: the result says so in its notes and a :class:`LeakageWarning` is raised.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from salesproc.derive._stats import Z95, wilson
from salesproc.errors import SalesprocError
from salesproc.history._history import History, _ts
from salesproc.review._metrics import auc, auc_ci, brier, calibration_table, delong, ece, log_loss
from salesproc.review._review import FLAGS, Review, review_deals
from salesproc.template._template import ProcessTemplate

__all__ = ["BacktestResult", "LeakageWarning", "Metrics", "TemplateComparison", "backtest", "compare_templates"]

DAY = pd.Timedelta(days=1)


class LeakageWarning(UserWarning):
    """A backtest was given a template derived from data after its cutoff: its scores flatter it."""


@dataclass(frozen=True, eq=False)
class Metrics:
    """How good a set of probability forecasts was: AUC (with DeLong 95% interval), Brier score,
    log loss, expected calibration error and the calibration table (10 equal-mass bins)."""

    name: str
    n: int
    successes: int
    auc: float
    auc_ci: tuple[float, float]
    brier: float
    log_loss: float
    ece: float
    calibration: pd.DataFrame

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.name, "n": self.n, "successes": self.successes, "auc": self.auc,
            "auc_low": self.auc_ci[0], "auc_high": self.auc_ci[1], "brier": self.brier,
            "log_loss": self.log_loss, "ece": self.ece,
        }

    def __repr__(self) -> str:
        return (
            f"<Metrics {self.name}: AUC {self.auc:.3f} [{self.auc_ci[0]:.3f}, {self.auc_ci[1]:.3f}], "
            f"Brier {self.brier:.4f}, ECE {self.ece:.3f} (n={self.n:,})>"
        )


def _metrics(name: str, p: np.ndarray, y: np.ndarray, bins: int) -> Metrics:
    return Metrics(
        name=name,
        n=len(p),
        successes=int(y.sum()),
        auc=auc(p, y),
        auc_ci=auc_ci(p, y),
        brier=brier(p, y),
        log_loss=log_loss(p, y),
        ece=ece(p, y, bins=bins),
        calibration=calibration_table(p, y, bins=bins),
    )


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """Forecasts made at the cutoff(s) against what happened; immutable.

    ``metrics`` scores the review's probabilities, ``baseline`` the stage-only win rate;
    ``flags`` gives each flag's support and precision (share of flagged deals that were not won, with
    a Wilson interval), its lift over the base rate, and its lift over what the flagged deals'
    milestones alone would predict (``lift_vs_stage``: above 1, the flag tells more than the stage);
    ``outcomes`` has one row per reviewed deal and cutoff.
    """

    cutoffs: tuple[pd.Timestamp, ...]
    end: pd.Timestamp
    horizon_days: float | None
    metrics: Metrics
    baseline: Metrics | None
    flags: pd.DataFrame
    outcomes: pd.DataFrame
    reviews: tuple[Review, ...]
    templates: tuple[ProcessTemplate, ...]
    excluded: int
    notes: tuple[str, ...]

    @property
    def cutoff(self) -> pd.Timestamp:
        return self.cutoffs[0]

    @property
    def auc(self) -> float:
        return self.metrics.auc

    @property
    def brier(self) -> float:
        return self.metrics.brier

    @property
    def ece(self) -> float:
        return self.metrics.ece

    @property
    def calibration(self) -> pd.DataFrame:
        return self.metrics.calibration.copy()

    def to_frame(self) -> pd.DataFrame:
        """Review against baseline: one row per forecast, with AUC, Brier, log loss and ECE."""
        rows = [self.metrics.to_dict()]
        if self.baseline is not None:
            rows.append(self.baseline.to_dict())
        return pd.DataFrame(rows)

    def plot_calibration(self, ax: Any = None) -> Any:
        """Reliability diagram of the review (and the baseline); see :func:`salesproc.charts.plot_calibration`."""
        from salesproc.charts import plot_calibration

        return plot_calibration(self, ax=ax)

    def __repr__(self) -> str:
        when = ", ".join(str(c.date()) for c in self.cutoffs[:3]) + (" ..." if len(self.cutoffs) > 3 else "")
        base = (
            f"; stage-only baseline AUC {self.baseline.auc:.3f}, Brier {self.baseline.brier:.4f}, "
            f"ECE {self.baseline.ece:.3f}" if self.baseline is not None else ""
        )
        return (
            f"<BacktestResult at {when}: {self.metrics.n:,} deals, AUC {self.auc:.3f}, Brier {self.brier:.4f}, "
            f"ECE {self.ece:.3f}{base}>"
        )

    def _repr_html_(self) -> str:
        m = self.to_frame()
        rows = "".join(
            f"<tr><td>{escape(str(r['model']))}</td><td>{r['n']:,}</td>"
            f"<td>{r['auc']:.3f} [{r['auc_low']:.3f}, {r['auc_high']:.3f}]</td>"
            f"<td>{r['brier']:.4f}</td><td>{r['ece']:.3f}</td></tr>"
            for r in m.to_dict("records")
        )
        fl = "".join(
            f"<tr><td>{escape(str(r['flag']))}</td><td>{r['support']:,}</td>"
            f"<td>{'' if pd.isna(r['precision']) else format(r['precision'], '.0%')}</td>"
            f"<td>{'' if pd.isna(r['lift']) else format(r['lift'], '.2f')}</td></tr>"
            for r in self.flags.to_dict("records")
        )
        notes = "".join(f"<li>{escape(n)}</li>" for n in self.notes)
        return (
            "<div class='salesproc-backtest'><h4>Backtest at "
            + escape(", ".join(str(c.date()) for c in self.cutoffs))
            + f" (outcomes to {self.end.date()})</h4>"
            "<table><tr><th>forecast</th><th>n</th><th>AUC</th><th>Brier</th><th>ECE</th></tr>"
            f"{rows}</table><table><tr><th>flag</th><th>support</th><th>precision</th><th>lift</th></tr>{fl}</table>"
            + (f"<ul>{notes}</ul>" if notes else "")
            + "</div>"
        )


def backtest(
    history: History,
    *,
    cutoff: Any,
    template: ProcessTemplate | None = None,
    horizon_days: float | None = None,
    baseline: bool = True,
    bins: int = 10,
    derive_options: dict[str, Any] | None = None,
    review_options: dict[str, Any] | None = None,
) -> BacktestResult:
    """Review the deals open at ``cutoff`` with only what was known then, and score the forecasts.

    Parameters
    ----------
    history
        The full history; events and outcomes after the cutoff are used only for scoring.
    cutoff
        The date to go back to, or several dates (a rolling-origin backtest: forecasts made at each
        are pooled, so a deal open at two cutoffs counts twice).
    template
        The template to review with; by default one is derived from ``history.as_of(cutoff)``. One
        derived from data after a cutoff (its provenance ``as_of`` or ``last_event`` is later) would
        leak the outcomes it is scored on: the result's ``notes`` say so first, and a
        :class:`LeakageWarning` is raised.
    horizon_days
        Score "won within this many days of the cutoff" (a deal still open then counts as not won).
        By default outcomes are read at the end of the data; a deal still open at the end counts as
        not won if the review model's horizon has passed since the cutoff, and is left out otherwise.
    baseline
        Also score the stage-only baseline (historical win rate at the deal's current milestone).
    bins
        Equal-mass bins for the expected calibration error and the calibration table.
    derive_options, review_options
        Extra keyword arguments for :func:`salesproc.derive_template` and :func:`salesproc.review_deals`.

    Returns
    -------
    BacktestResult

    Examples
    --------
    >>> import salesproc
    >>> h, truth = salesproc.synthetic_history(1500, seed=4)
    >>> cutoff = truth.as_of - pd.Timedelta(days=120)
    >>> bt = salesproc.backtest(h, cutoff=cutoff)
    >>> 0.5 < bt.auc <= 1 and 0 <= bt.ece < 0.2
    True
    >>> bt.flags.columns.tolist()[:3]
    ['flag', 'support', 'precision']
    """
    if not isinstance(history, History):
        raise TypeError(
            f"The 'history' parameter of backtest must be a History. Got {type(history).__name__} instead."
        )
    cut_list = _cutoffs(cutoff)
    end = _check_backtest(history, cut_list, horizon_days)
    dopts = dict(derive_options or {})
    ropts = {"case_attributes": False, **(review_options or {})}
    leak, undated = _template_dates(template, cut_list) if template is not None else (None, None)
    if leak is not None:
        warnings.warn(leak, LeakageWarning, stacklevel=2)
    from salesproc.derive._derive import derive_template

    truth = _final_outcomes(history)
    forecasts = []
    templates = []
    for c in cut_list:
        tpl = template if template is not None else derive_template(history, as_of=c, **dopts)
        forecasts.append(_forecasts_at(history, tpl, c, truth, ropts, end=end, horizon_days=horizon_days))
        templates.append(tpl)
    excluded = sum(f.excluded for f in forecasts)
    out = pd.concat([f.table for f in forecasts], ignore_index=True)
    y = out["y"].to_numpy(dtype=bool)
    if len(out) == 0 or y.all() or not y.any():
        raise ValueError(
            f"The deals open at the cutoff(s) ({len(out):,} scored) all ended the same way: nothing to score. "
            "Fix: choose an earlier cutoff, or a longer horizon."
        )
    met = _metrics("review", out["probability"].to_numpy(), y, bins)
    base = _metrics("stage-only baseline", out["stage_rate"].to_numpy(), y, bins) if baseline else None
    return BacktestResult(
        cutoffs=tuple(cut_list),
        end=end,
        horizon_days=None if horizon_days is None else float(horizon_days),
        metrics=met,
        baseline=base,
        flags=_flag_precision(out, y),
        outcomes=out,
        reviews=tuple(f.review for f in forecasts),
        templates=tuple(templates),
        excluded=excluded,
        notes=tuple(x for x in (leak, undated) if x is not None) + _notes(review_options, excluded),
    )


@dataclass(frozen=True)
class _Truth:
    """What happened to every case by the end of the data, found by case id."""

    status: np.ndarray  # "success", "failure" or "open" per case
    closed: pd.Series
    position: pd.Index  # case_id -> row


@dataclass(frozen=True)
class _CutoffForecasts:
    """The forecasts made at one cutoff that can be judged, beside what happened, and how many could not."""

    table: pd.DataFrame
    review: Review
    excluded: int


def _template_dates(tpl: ProcessTemplate, cut_list: list[pd.Timestamp]) -> tuple[str | None, str | None]:
    """Notes on a given template: one if it was derived from data after a cutoff (it would leak the
    outcomes it is scored on), one if its provenance gives no date to check."""
    label = f"template {tpl.name!r} v{tpl.version}"
    seen: dict[str, pd.Timestamp] = {}
    for name in ("as_of", "last_event"):
        value = getattr(tpl.provenance, name)
        if value:
            try:
                t = _ts(value, name)
            except SalesprocError:
                continue
            if t is not None:
                seen[name] = t
    if not seen:
        return None, (
            f"{label} does not say when it was derived (no as_of or last_event in its provenance), so whether "
            "it saw data after the cutoff cannot be checked. Fix: use derive_template(history, as_of=cutoff), "
            "or leave template= out and let the backtest derive one per cutoff."
        )
    field, last = max(seen.items(), key=lambda kv: kv[1])
    late = [c for c in cut_list if c < last]
    if not late:
        return None, None
    cuts = ", ".join(str(c.date()) for c in late[:3]) + (f" and {len(late) - 3} more" if len(late) > 3 else "")
    return (
        f"{label} was derived from data up to {last.isoformat()} (its provenance {field}), after the cutoff "
        f"{cuts}: it may have learned from the very outcomes it is scored on, so this backtest flatters it. "
        "Expected: a template derived as of the cutoff or earlier. Fix: derive_template(history, as_of=cutoff), "
        f"leave template= out (the backtest derives one per cutoff), or use cutoffs on or after {last.date()}."
    ), None


def _check_backtest(history: History, cut_list: list[pd.Timestamp], horizon_days: float | None) -> pd.Timestamp:
    """Check the horizon and that every cutoff leaves outcomes to see; return the end of the data."""
    if horizon_days is not None and (not isinstance(horizon_days, (int, float)) or horizon_days <= 0):
        raise ValueError(f"The 'horizon_days' parameter of backtest must be a positive number. Got {horizon_days!r} instead.")
    from salesproc.derive._derive import _default_as_of

    end = _default_as_of(history)
    for c in cut_list:
        if c >= end:
            raise ValueError(
                f"The 'cutoff' parameter of backtest must be before the end of the data ({end.date()}), so that "
                f"outcomes can be seen. Got {c.date()} instead."
            )
    return end


def _final_outcomes(history: History) -> _Truth:
    """Every case's status and close date at the end of the data."""
    c_all = history._cases
    return _Truth(
        status=c_all["status"].astype(str).to_numpy(), closed=c_all["closed"], position=pd.Index(c_all["case_id"])
    )


def _forecasts_at(
    history: History, tpl: ProcessTemplate, c: pd.Timestamp, truth: _Truth, ropts: dict[str, Any], *,
    end: pd.Timestamp, horizon_days: float | None,
) -> _CutoffForecasts:
    """Review the deals open at cutoff ``c`` and pair each forecast with what happened (if it can be judged yet)."""
    rev = review_deals(history, tpl, as_of=c, **ropts)
    f = rev.to_frame()
    pos = truth.position.get_indexer(pd.Index(f["case_id"]))
    st = truth.status[pos]
    cl = truth.closed.iloc[pos].reset_index(drop=True)
    if horizon_days is not None:
        until = c + pd.Timedelta(days=float(horizon_days))
        won = (st == "success") & (cl <= until).fillna(False).to_numpy(dtype=bool)
        keep = np.ones(len(f), dtype=bool)
    else:
        won = st == "success"
        still_open = st == "open"
        waited = (end - c) / DAY
        keep = ~still_open | (waited >= rev.model.horizon_days)
    part = f.loc[keep, ["case_id", "milestone", "amount", "probability", "probability_low", "probability_high",
                        "stage_rate", *FLAGS]].copy()
    part.insert(0, "cutoff", c)
    part["outcome"] = np.where(st == "success", "success", np.where(st == "open", "open", "failure"))[keep]
    part["closed"] = cl[keep].to_numpy()
    part["y"] = won[keep]
    return _CutoffForecasts(table=part, review=rev, excluded=int((~keep).sum()))


def _flag_precision(out: pd.DataFrame, y: np.ndarray) -> pd.DataFrame:
    """Each flag's support, precision (share of flagged deals not won, Wilson interval) and lift."""
    bad = ~y
    base_rate = float(bad.mean())
    stage_fail = 1.0 - out["stage_rate"].to_numpy(dtype=float)
    rows = []
    for fl in FLAGS:
        sel = out[fl].to_numpy(dtype=bool)
        n = int(sel.sum())
        k = int((bad & sel).sum())
        lo, hi = wilson(k, n) if n else (np.nan, np.nan)
        prec = k / n if n else np.nan
        expected = float(stage_fail[sel].mean()) if n else np.nan
        rows.append(
            {
                "flag": fl, "support": n, "precision": prec, "precision_low": float(lo), "precision_high": float(hi),
                "base_rate": base_rate, "lift": prec / base_rate if n and base_rate > 0 else np.nan,
                "expected_by_stage": expected, "lift_vs_stage": prec / expected if n and expected > 0 else np.nan,
            }
        )
    return pd.DataFrame(rows)


def _notes(review_options: dict[str, Any] | None, excluded: int) -> tuple[str, ...]:
    """What a reader of the backtest should know about how it was scored."""
    notes = [
        "precision = share of flagged deals that were not won (lost, or still open past the horizon)",
        "close_date_pushed is not backtested: the data hold only the final close-date attributes, which would leak",
    ]
    if "slipping" in FLAGS and not (review_options or {}).get("plans"):
        notes.append("slipping needs plans: none were given, so it never fires here")
    if excluded:
        notes.append(f"{excluded:,} deals still open at the end of the data, too soon to judge, were left out")
    return tuple(notes)

def _cutoffs(cutoff: Any) -> list[pd.Timestamp]:
    if cutoff is None:
        raise ValueError("The 'cutoff' parameter of backtest must be a date or a list of dates. Got None instead.")
    items: Iterable[Any] = cutoff if isinstance(cutoff, (list, tuple, pd.DatetimeIndex, np.ndarray, pd.Series)) else [cutoff]
    out = []
    for x in items:
        t = _ts(x, "cutoff")
        assert t is not None
        out.append(t)
    if not out:
        raise ValueError("The 'cutoff' parameter of backtest must name at least one date. Got an empty list instead.")
    return sorted(set(out))


# --- comparing two templates --------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TemplateComparison:
    """Two templates scored on the same cutoff(s) and the same deals.

    ``auc_diff`` is AUC(b) - AUC(a) with a paired DeLong 95% interval and p-value; ``brier_diff``
    is Brier(b) - Brier(a) (negative: b better) with a paired 95% interval.
    """

    a: BacktestResult
    b: BacktestResult
    names: tuple[str, str]
    auc_diff: float
    auc_diff_ci: tuple[float, float]
    auc_p: float
    brier_diff: float
    brier_diff_ci: tuple[float, float]
    ece_diff: float

    @property
    def verdict(self) -> str:
        na, nb = self.names
        lo, hi = self.auc_diff_ci
        if lo > 0:
            rank = f"{nb} ranked deals better than {na}"
        elif hi < 0:
            rank = f"{na} ranked deals better than {nb}"
        else:
            rank = f"no clear difference in ranking between {na} and {nb}"
        blo, bhi = self.brier_diff_ci
        if bhi < 0:
            acc = f"{nb} was more accurate"
        elif blo > 0:
            acc = f"{na} was more accurate"
        else:
            acc = "accuracy about the same"
        return (
            f"{rank} (AUC {self.a.auc:.3f} vs {self.b.auc:.3f}, difference {self.auc_diff:+.3f} "
            f"[{lo:+.3f}, {hi:+.3f}], p={self.auc_p:.2g}); {acc} (Brier {self.a.brier:.4f} vs {self.b.brier:.4f}); "
            f"ECE {self.a.ece:.3f} vs {self.b.ece:.3f}"
        )

    @property
    def notes(self) -> tuple[str, ...]:
        """What a reader should know: both backtests' notes (a template that leaks the future first)."""
        return tuple(dict.fromkeys((*self.a.notes, *self.b.notes)))

    def to_frame(self) -> pd.DataFrame:
        return pd.concat(
            [self.a.to_frame().assign(template=self.names[0]), self.b.to_frame().assign(template=self.names[1])],
            ignore_index=True,
        )

    def __repr__(self) -> str:
        return f"<TemplateComparison {self.names[0]} vs {self.names[1]}: {self.verdict}>"

    def __str__(self) -> str:
        return self.verdict

    def _repr_html_(self) -> str:
        notes = "".join(f"<li>{escape(n)}</li>" for n in self.notes)
        return (
            f"<div class='salesproc-compare'><p>{escape(self.verdict)}</p>{self.to_frame().to_html(index=False)}"
            + (f"<ul>{notes}</ul>" if notes else "")
            + "</div>"
        )


def compare_templates(
    history: History,
    a: ProcessTemplate,
    b: ProcessTemplate,
    *,
    cutoff: Any,
    horizon_days: float | None = None,
    names: Sequence[str] | None = None,
    review_options: dict[str, Any] | None = None,
) -> TemplateComparison:
    """Did template ``b`` predict better than template ``a``? Both review the same deals at the same
    cutoff(s); the differences come with paired intervals (DeLong for AUC, a paired normal interval for
    the Brier score). A template derived from data after a cutoff raises a :class:`LeakageWarning`
    and is named in the result's ``notes``.

    Examples
    --------
    >>> import salesproc
    >>> h, truth = salesproc.synthetic_history(1500, seed=4)
    >>> cutoff = truth.as_of - pd.Timedelta(days=120)
    >>> v2 = salesproc.derive_template(h, as_of=cutoff).model_copy(update={"version": 2})
    >>> v1 = v2.model_copy(update={"milestones": v2.milestones[:1], "activities": [], "version": 1})
    >>> cmp = salesproc.compare_templates(h, v1, v2, cutoff=cutoff)
    >>> cmp.b.auc > cmp.a.auc
    True

    """
    for arg, tpl in (("a", a), ("b", b)):
        if not isinstance(tpl, ProcessTemplate):
            raise TypeError(f"The {arg!r} parameter of compare_templates must be a ProcessTemplate. Got {type(tpl).__name__} instead.")
    cut_list = _cutoffs(cutoff)
    for tpl in (a, b):
        leak = _template_dates(tpl, cut_list)[0]
        if leak is not None:
            warnings.warn(leak, LeakageWarning, stacklevel=2)  # here, so that it points at the caller
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LeakageWarning)  # said above; the results' notes keep it
        ra = backtest(history, cutoff=cutoff, template=a, horizon_days=horizon_days, review_options=review_options)
        rb = backtest(history, cutoff=cutoff, template=b, horizon_days=horizon_days, review_options=review_options)
    nm: tuple[str, ...] = tuple(names) if names is not None else (f"{a.name} v{a.version}", f"{b.name} v{b.version}")
    if len(nm) != 2:
        raise ValueError(f"The 'names' parameter of compare_templates must hold two names. Got {names!r} instead.")
    oa, ob = ra.outcomes, rb.outcomes
    key = ["cutoff", "case_id"]
    j = oa[[*key, "probability", "y"]].merge(ob[[*key, "probability"]], on=key, suffixes=("_a", "_b"))
    y = j["y"].to_numpy(dtype=bool)
    pa, pb = j["probability_a"].to_numpy(), j["probability_b"].to_numpy()
    aucs, cov = delong([pa, pb], y)
    d = float(aucs[1] - aucs[0])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    se = np.sqrt(max(var, 0.0))
    pval = float(2 * stats.norm.sf(abs(d) / se)) if se > 0 else (1.0 if d == 0 else 0.0)
    diff_sq = (pb - y) ** 2 - (pa - y) ** 2
    bd = float(diff_sq.mean())
    bse = float(diff_sq.std(ddof=1) / np.sqrt(len(diff_sq))) if len(diff_sq) > 1 else float("nan")
    return TemplateComparison(
        a=ra,
        b=rb,
        names=(str(nm[0]), str(nm[1])),
        auc_diff=d,
        auc_diff_ci=(d - Z95 * se, d + Z95 * se),
        auc_p=pval,
        brier_diff=bd,
        brier_diff_ci=(bd - Z95 * bse, bd + Z95 * bse),
        ece_diff=rb.ece - ra.ece,
    )
