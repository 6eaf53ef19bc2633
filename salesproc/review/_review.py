"""Deal review: where each open deal stands, what is missing, the risk, and what to do about it.

:func:`review_deals` reviews every case open at ``as_of`` against the team's own template and
history, and explains every number.

Method, in short:

* **Position**: the milestone each deal is in (its last template milestone event), how long it has
  been there against the template's censoring-aware distribution (a percentile), and its age
  against the cycle time of won deals.
* **Probability of success** from the team's own history at the same position and age. Past cases
  are seen open at regular moments (landmark snapshots, as many per case as it was open long), each
  with where it stood then: milestone, time in it, age, which of the template's critical activities
  and warning signs had happened, whether it had gone backwards, how many people were involved.
  A ridge-penalised logistic regression on those few features gives the win probability, Platt
  scaling on held-out folds calibrates it, and a case-clustered sandwich covariance gives its 95%
  interval. As in :func:`salesproc.derive_template`, a snapshot keeps its case's outcome only if the
  outcome had time to show (the snapshot is at least the horizon H before ``as_of``; cases still
  open then count as failures). Only what was known at ``as_of`` is used (``history.as_of``).
* **Reasons** are each feature's contribution against a typical deal in the same milestone, in
  probability points, with the history's evidence (n, effect, interval).
* **Flags**: stalled (time in milestone above the template's p80), slipping (a plan's latest safe
  date passed), missing critical activity (due by a milestone already reached), single-threaded
  (one person where the data has people), late-stage regression (a milestone revisited after a
  later one), close date pushed (``close_date_changes > 0`` or ``expected_close`` passed).
* **Actions**: missing critical activities ordered by what doing them would add to this deal's
  probability (the model's estimate), and for stalled deals what past deals stalled in the same
  milestone that still won did next (a landmark comparison at stall + window).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from html import escape
from typing import Any, Literal

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from salesproc.errors import NoClosedCasesError, SalesprocError
from salesproc.history._history import AS_OF_NOTE, History, _ts
from salesproc.load._outcome_names import outcome_like_names
from salesproc.review._model import (
    Fitted,
    KeyActivity,
    Recovery,
    cell_rates,
    fit_model,
    percentile_from_quantiles,
    recovery_table,
    stage_rates,
    wilson_arrays,
    won_visit_days,
)
from salesproc.review._positions import (
    DAY_NS,
    NAT,
    NEVER,
    PEOPLE_COLUMNS,
    CaseArrays,
    Snapshots,
    State,
    training_snapshots,
)
from salesproc.template._template import ProcessTemplate, check_template

__all__ = [
    "Action",
    "DealReview",
    "Flag",
    "Gap",
    "PlanSlip",
    "Reason",
    "Review",
    "ReviewError",
    "ReviewModel",
    "review_deals",
]

FLAGS = ("stalled", "slipping", "missing_critical", "single_threaded", "regressed", "close_date_pushed")
#: What each flag is called where people read it (the ids stay in tables, CSVs and code).
FLAG_LABELS = {
    "stalled": "Stalled",
    "slipping": "Behind its plan",
    "missing_critical": "Critical step missing",
    "single_threaded": "Single-threaded",
    "regressed": "Went backwards",
    "close_date_pushed": "Close date pushed",
}
#: Case columns that hold a deal's name and its account, first present wins (compared lower-case,
#: spaces and dashes as underscores: 'Opportunity Name' is opportunity_name).
NAME_COLUMNS = ("deal_name", "opportunity_name", "project_name", "name", "title")
ACCOUNT_COLUMNS = ("account", "account_name", "company", "customer", "client", "organisation", "organization")
OVERDUE_DAYS = 3  # an overdue critical activity is due within this many days of the review
STALL_ACTION_DAYS = 7  # a recovery step for a stalled deal is due within a week
# plan columns read for the slipping flag, first present wins: the 80% latest safe date first
DATE_COLUMNS = ("latest_p80", "latest_safe_80", "latest_safe", "latest_p50", "latest_safe_50", "due")


class ReviewError(SalesprocError, ValueError):
    """A review cannot be made from this history and template."""


class NoClosedCasesToReview(NoClosedCasesError, ReviewError):
    """No deal closed before the review date: no win rates to learn (a :class:`NoClosedCasesError`)."""


# --- result objects ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Flag:
    """A risk flag: ``text`` says why it fired in plain words, ``reason`` with the numbers behind it
    (for the analyst); ``label`` is its name for people (``Critical step missing``)."""

    name: str
    reason: str
    text: str = ""

    @property
    def label(self) -> str:
        return FLAG_LABELS.get(self.name, self.name.replace("_", " ").capitalize())

    @property
    def plain(self) -> str:
        """The plain sentence (``reason`` for a flag made without one)."""
        return self.text or self.reason


@dataclass(frozen=True)
class Gap:
    """A critical activity the deal has not done: ``overdue`` (due by a milestone it already
    reached) or ``due`` (to do before its next milestone), with the history's evidence."""

    activity: str
    due_by: str | None
    status: Literal["overdue", "due"]
    owner_role: str | None
    risk_difference: float | None
    ci: tuple[float | None, float | None]
    n: int | None
    q: float | None
    evidence: str
    #: why it matters, in plain words (``evidence`` holds the numbers: effect, interval, n, q)
    text: str = ""


@dataclass(frozen=True)
class Reason:
    """One reason the probability is high or low: ``points`` is its effect on this deal's
    probability (0.05 = 5 points), against a typical deal in the same milestone. ``text`` is in
    plain words; ``detail`` holds the history's evidence behind it (counts, intervals)."""

    text: str
    points: float | None
    detail: str = ""


@dataclass(frozen=True)
class Action:
    """A concrete step: what, who (a role), by when, and what it is expected to add."""

    what: str
    owner: str | None
    by: pd.Timestamp
    effect: float | None
    why: str
    source: Literal["template", "history", "flag", "plan"]
    #: the evidence behind ``why`` (counts, intervals), for the analyst
    detail: str = ""


@dataclass(frozen=True)
class PlanSlip:
    """A plan item not done whose latest safe date has passed."""

    item: str
    latest_safe: pd.Timestamp
    slip_days: float


@dataclass(frozen=True)
class DealReview:
    """One open deal, reviewed: position, probability with interval, reasons, flags, gaps, actions."""

    case_id: str
    as_of: pd.Timestamp
    rank: int
    amount: float | None
    owner: str | None
    milestone: str | None
    milestone_order: int
    days_in_milestone: float
    milestone_percentile: float | None
    milestone_p50: float | None
    milestone_p80: float | None
    age_days: float
    age_percentile: float | None
    probability: float
    probability_low: float
    probability_high: float
    stage_rate: float
    comparable_n: int
    comparable_won: int
    comparable_low: float | None
    comparable_high: float | None
    comparable_text: str
    expected_loss: float | None
    reasons: tuple[Reason, ...]
    flags: tuple[Flag, ...]
    gaps: tuple[Gap, ...]
    actions: tuple[Action, ...]
    plan_slips: tuple[PlanSlip, ...] = ()
    #: template milestones reached (first date, template order) and template activities done (first date)
    reached: tuple[tuple[str, pd.Timestamp], ...] = ()
    done: tuple[tuple[str, pd.Timestamp], ...] = ()
    #: the deal's name and account, from the history's case columns when it has them (NAME_COLUMNS,
    #: ACCOUNT_COLUMNS)
    name: str | None = None
    account: str | None = None
    #: the process template the deal was reviewed against (reports draw its checklist from it)
    template: ProcessTemplate | None = field(default=None, repr=False, compare=False)
    #: what the probabilities were fitted on (reports show it to the analyst)
    model: ReviewModel | None = field(default=None, repr=False, compare=False)

    @property
    def flag_names(self) -> list[str]:
        return [f.name for f in self.flags]

    @property
    def label(self) -> str:
        """The deal as people know it: its id, then its name and account when the data has them."""
        return " · ".join(x for x in (self.case_id, self.name, self.account) if x)

    @property
    def chance_text(self) -> str:
        """The chance with its likely range, in words: ``61% (likely between 34% and 83%)``."""
        return chance_words(self.probability, self.probability_low, self.probability_high)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        out = asdict(replace(self, template=None, model=None))
        out.pop("template")
        out.pop("model")
        return out

    def __repr__(self) -> str:
        return (
            f"<DealReview {self.label}: {self.milestone or 'no milestone yet'} for "
            f"{self.days_in_milestone:.0f} days, chance {self.probability:.0%} "
            f"[{self.probability_low:.0%}, {self.probability_high:.0%}], "
            f"flags: {', '.join(f.label for f in self.flags) or 'none'}>"
        )

    def __str__(self) -> str:
        """The review in plain words; the numbers behind it last, under 'For the analyst'."""
        owner = f", owner {self.owner}" if self.owner else ""
        deal = self.template is None or self.template.kind == "deal"
        lines = [
            f"{'Deal' if deal else 'Project'} {self.label}{owner} (rank {self.rank}) as of {self.as_of.date()}",
            f"  where: {self.milestone or 'before the first milestone'} for {self.days_in_milestone:.0f} days; "
            f"{self.age_days:.0f} days old",
            f"  chance to {'win' if deal else 'finish on time'}: {self.chance_text}",
        ]
        lines += [f"  why: {r.text}" for r in self.reasons]
        lines += [f"  {f.label}: {f.plain}" for f in self.flags]
        lines += [f"  to do: {a.what} ({self._who(a)}, by {a.by.date()}"
                  + (f", {_fmt_pts(a.effect)}" if a.effect is not None else "") + f"): {a.why}" for a in self.actions]
        lines.append("  For the analyst:")
        lines += [f"    {line}" for line in self.analyst_notes()]
        return "\n".join(lines)

    def _who(self, a: Action) -> str:
        """Who does an action: its role, or the deal's owner by name."""
        if a.owner and a.owner != "deal owner":
            return a.owner
        return self.owner or "deal owner"

    def analyst_notes(self) -> list[str]:
        """The numbers behind the plain words: the chance's interval and model, the evidence of each
        reason, flag, gap and action (counts, intervals, q-values)."""
        out = [f"probability {self.probability:.1%}, 95% interval [{self.probability_low:.1%}, {self.probability_high:.1%}]"]
        if self.model is not None:
            out.append(self.model.method())
        if self.milestone_percentile is not None:
            out.append(f"time in {self.milestone}: longer than {self.milestone_percentile:.0%} of visits there "
                       f"(median {_num(self.milestone_p50)} days, p80 {_num(self.milestone_p80)} days)")
        if self.age_percentile is not None:
            out.append(f"age {self.age_days:.0f} days: older than {self.age_percentile:.0%} of won deals were "
                       "when they closed")
        out += [f"{r.text}: {r.detail}" for r in self.reasons if r.detail]
        out += [f"flag {f.name}: {f.reason}" for f in self.flags]
        out += [f"gap {g.activity} ({g.status}): {g.evidence}" for g in self.gaps]
        shown = {g.evidence for g in self.gaps}
        out += [f"{a.what}: {a.detail}" for a in self.actions if a.detail and a.detail not in shown]
        return out

    def _repr_html_(self) -> str:
        def ul(items: list[str]) -> str:
            return "<ul>" + "".join(f"<li>{escape(x)}</li>" for x in items) + "</ul>" if items else "<p>none</p>"

        acts = [
            f"{a.what} — {self._who(a)}, by {a.by.date()}"
            + (f" ({_fmt_pts(a.effect)})" if a.effect is not None else "")
            + f": {a.why}"
            for a in self.actions
        ]
        owner = f"; owner {self.owner}" if self.owner else ""
        return (
            f"<div class='salesproc-deal'><h4>{escape(self.label)}</h4>"
            f"<p>{escape(self.milestone or 'before the first milestone')} for {self.days_in_milestone:.0f} days"
            f"{escape(owner)}; chance to {'win' if self.template is None or self.template.kind == 'deal' else 'finish on time'} "
            f"{escape(self.chance_text)}</p>"
            f"<p><em>Why</em></p>{ul([r.text for r in self.reasons])}"
            f"<p><em>Flags</em></p>{ul([f'{f.label}: {f.plain}' for f in self.flags])}"
            f"<p><em>What to do</em></p>{ul(acts)}"
            f"<details><summary>How this was worked out</summary>{ul(self.analyst_notes())}</details></div>"
        )


def chance_words(p: float, low: float | None, high: float | None) -> str:
    """A chance with its likely range, in words.

    >>> chance_words(0.35, 0.28, 0.42), chance_words(0.35, None, None)
    ('35% (likely between 28% and 42%)', '35%')
    """
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return f"{p:.0%}"
    lo, hi = f"{low:.0%}", f"{high:.0%}"
    return f"{p:.0%}" if lo == hi else f"{p:.0%} (likely between {lo} and {hi})"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0f}"


@dataclass(frozen=True, eq=False)
class ReviewModel:
    """What the probabilities were fitted on, for traceability."""

    snapshots: int
    cases: int
    successes: int
    horizon_days: float
    step_days: float
    platt: tuple[float, float]
    heldout_auc: float | None
    coefficients: pd.DataFrame
    people_column: str | None
    relaxed_horizon: bool

    def __repr__(self) -> str:
        return (
            f"<ReviewModel fitted on {self.snapshots:,} snapshots of {self.cases:,} cases "
            f"(horizon {self.horizon_days:.0f} days, every {self.step_days:.1f} days)>"
        )

    def method(self) -> str:
        """How the chances were worked out, with what they were fitted on (one sentence, for the analyst)."""
        auc = f"; held-out AUC {self.heldout_auc:.2f}" if self.heldout_auc is not None else ""
        return (
            f"chances from a ridge-penalised logistic regression on n={self.snapshots:,} snapshots of "
            f"{self.cases:,} past cases ({self.successes:,} successes), seen open every {self.step_days:.1f} days "
            f"with outcomes counted over {self.horizon_days:.0f} days"
            + (" (closed cases only: the history is short)" if self.relaxed_horizon else "")
            + f"; Platt-calibrated on held-out folds{auc}; 95% intervals from a case-clustered sandwich covariance"
        )


@dataclass(frozen=True)
class _Context:
    """Arrays behind the pipeline table, kept to build each deal's review on demand."""

    arrays: CaseArrays
    fitted: Fitted
    key: list[KeyActivity]
    crit: list[KeyActivity]
    open_idx: np.ndarray
    state: State
    contrib: np.ndarray  # (m, G) probability points per reason group
    groups: list[str]
    gap_status: np.ndarray  # (m, C) 0 none, 1 due, 2 overdue (critical activities)
    act_gain: np.ndarray  # (m, C) probability gain from doing each critical activity
    people_gain: np.ndarray  # (m,)
    won_days: list[np.ndarray]
    recovery: dict[int, list[Recovery]]
    p50: np.ndarray
    p80: np.ndarray
    stage_n: np.ndarray
    stage_k: np.ndarray
    people_share: np.ndarray  # per stage+1: share of successful snapshots with >= 2 people
    people_share_n: np.ndarray
    kind: str
    slips: dict[int, tuple[PlanSlip, ...]]
    close_changes: np.ndarray
    expected_close: np.ndarray


@dataclass(frozen=True, eq=False)
class Review:
    """The review of every open deal at ``as_of``: immutable, one row per deal.

    ``to_frame()`` is the pipeline table (sorted by expected loss: risk times amount);
    ``review[case_id]`` gives a :class:`DealReview`; iterating yields them in pipeline order.
    """

    as_of: pd.Timestamp
    template: ProcessTemplate
    model: ReviewModel
    caveats: tuple[str, ...]
    _frame: pd.DataFrame = field(repr=False)
    _ctx: _Context = field(repr=False)
    _rows: dict[str, int] = field(repr=False)
    _cache: dict[str, DealReview] = field(default_factory=dict, repr=False, compare=False)

    def to_frame(self) -> pd.DataFrame:
        """The pipeline table: one row per open deal, most at risk (risk x amount) first."""
        return self._frame.copy()

    def __len__(self) -> int:
        return len(self._frame)

    def __iter__(self) -> Iterator[DealReview]:
        for cid in self._frame["case_id"]:
            yield self[cid]

    def __contains__(self, case_id: object) -> bool:
        return str(case_id) in self._row_of

    @property
    def case_ids(self) -> list[str]:
        return self._frame["case_id"].tolist()

    @property
    def _row_of(self) -> dict[str, int]:
        return self._rows

    def __getitem__(self, case_id: str) -> DealReview:
        cid = str(case_id)
        hit = self._cache.get(cid)
        if hit is not None:
            return hit
        row = self._row_of.get(cid)
        if row is None:
            raise KeyError(
                f"no open deal {cid!r} in this review ({len(self):,} open deals as of {self.as_of.date()}); "
                "closed or later deals are not reviewed"
            )
        dr = _deal_review(self, row)
        self._cache[cid] = dr
        return dr

    def flagged(self, flag: str) -> pd.DataFrame:
        """Rows of the pipeline table with ``flag`` set (one of :data:`FLAGS`)."""
        if flag not in FLAGS:
            raise ValueError(f"The 'flag' parameter of Review.flagged must be one of {list(FLAGS)}. Got {flag!r} instead.")
        f = self._frame
        return f[f[flag]].copy()

    def recovery_table(self) -> pd.DataFrame:
        """What past deals stalled in each milestone (beyond its p80) did next, with the evidence:
        of ``stalled`` deals still open ``window_days`` after the stall, ``won`` succeeded; ``won_did`` of
        those did the activity in the window; success with it ``k_did``/``n_did`` against without it
        ``k_not``/``n_not``, risk difference ``rd`` with Newcombe 95% interval (only those above zero)."""
        from dataclasses import asdict

        rows = [asdict(r) for k in sorted(self._ctx.recovery) for r in self._ctx.recovery[k]]
        cols = ["milestone", "activity", "stalled", "won", "won_did", "n_did", "k_did", "n_not", "k_not", "rd",
                "low", "high", "window_days", "role"]
        return pd.DataFrame(rows, columns=cols)

    def summary(self) -> dict[str, Any]:
        """Counts and sums of the pipeline; ``expected_value``/``expected_loss`` are None when no
        open deal has an amount (``with_amount`` counts those that do)."""
        f = self._frame
        with_amount = int(f["amount"].notna().sum())
        return {
            "as_of": self.as_of.isoformat(),
            "open_deals": len(f),
            "flagged": int((f["n_flags"] > 0).sum()),
            **{flag: int(f[flag].sum()) for flag in FLAGS},
            # with no amount in the data there is no value to sum: None, not 0 (pages say so)
            "with_amount": with_amount,
            "expected_value": float(np.nansum(f["probability"] * f["amount"])) if with_amount else None,
            "expected_loss": float(np.nansum(f["expected_loss"])) if with_amount else None,
            "mean_probability": float(f["probability"].mean()) if len(f) else float("nan"),
        }

    def __repr__(self) -> str:
        s = self.summary()
        return (
            f"<Review {s['open_deals']:,} open deals as of {self.as_of.date()} "
            f"(template {self.template.name!r} v{self.template.version}): {s['flagged']:,} flagged, "
            + (f"expected loss {s['expected_loss']:,.0f}>" if s["with_amount"] else "no amounts in the data>")
        )

    def _repr_html_(self, max_rows: int = 20) -> str:
        f = self._frame.head(max_rows)
        rows = "".join(_pipeline_row({str(k): v for k, v in x.items()}) for x in f.to_dict("records"))
        s = self.summary()
        cav = "".join(f"<li>{escape(c)}</li>" for c in self.caveats)
        more = f"<p>... {len(self) - max_rows:,} more deals: review.to_frame()</p>" if len(self) > max_rows else ""
        how = f"<li>{escape(self.model.method())}</li>{cav}"
        return (
            f"<div class='salesproc-review'><h4>Pipeline review as of {self.as_of.date()}: "
            f"{s['open_deals']:,} open deals, {s['flagged']:,} flagged</h4>"
            "<table><tr><th>#</th><th>deal</th><th>owner</th><th>amount</th><th>milestone</th>"
            "<th>days</th><th>chance to win</th><th>flags</th><th>next action</th></tr>"
            f"{rows}</table>{more}"
            + (f"<p>{len(self.caveats)} caveat{'s' if len(self.caveats) > 1 else ''} on these numbers: "
               "see How this was worked out.</p>" if self.caveats else "")
            + f"<details><summary>How this was worked out</summary><ul>{how}</ul></details></div>"
        )


def _pipeline_row(x: dict[str, Any]) -> str:
    amount = x["amount"]
    deal = " · ".join(str(v) for v in (x["case_id"], x.get("name"), x.get("account")) if isinstance(v, str) and v)
    flags = ", ".join(FLAG_LABELS.get(n.strip(), n.strip()) for n in str(x["flags"] or "").split(",") if n.strip())
    chance = chance_words(x["probability"], x["probability_low"], x["probability_high"])
    return (
        f"<tr><td>{int(x['rank'])}</td><td>{escape(deal)}</td>"
        f"<td>{escape(x['owner']) if isinstance(x['owner'], str) else ''}</td>"
        f"<td>{'' if pd.isna(amount) else f'{amount:,.0f}'}</td>"
        f"<td>{escape(x['milestone']) if isinstance(x['milestone'], str) else '-'}</td>"
        f"<td>{x['days_in_milestone']:.0f}</td>"
        f"<td>{escape(chance)}</td>"
        f"<td>{escape(flags)}</td>"
        f"<td>{escape(x['next_action']) if isinstance(x['next_action'], str) else ''}</td></tr>"
    )


# --- the review ----------------------------------------------------------------------------------


def review_deals(
    history: History,
    template: ProcessTemplate,
    *,
    as_of: Any,
    plans: Mapping[str, Any] | pd.DataFrame | None = None,
    people: Sequence[str] = PEOPLE_COLUMNS,
    recovery_days: float = 14.0,
    case_attributes: bool = True,
    max_snapshots: int = 30_000,
    horizon_quantile: float = 0.95,
    penalty: float = 1.0,
    folds: int = 3,
    seed: int = 0,
) -> Review:
    """Review every case open at ``as_of`` against the template and the history known then.

    Parameters
    ----------
    history
        Cases and events (:func:`salesproc.load_history`). Only what was known at ``as_of`` is used.
    template
        The process template (:func:`salesproc.derive_template` or :func:`salesproc.load_template`);
        cases of other kinds are left out.
    as_of
        The review date. Deals open then are reviewed; the model learns from the history before it.
    plans
        Optional plans per deal, for the slipping flag: a mapping ``case_id -> plan`` (a
        :class:`~salesproc.plan.Plan` or any object with ``to_frame()``, or a DataFrame) or one
        DataFrame with a ``case_id`` column. Each plan table needs an item column (``item``,
        ``name``, ``milestone`` or ``activity``) and a date column (``latest_p80`` as
        :meth:`Plan.to_frame` gives, ``latest_safe``, ``latest_p50`` or ``due``); an optional boolean
        ``done`` column. An item not done whose date has passed makes the deal slip.
    people
        Event columns naming the people on a deal, first present wins (contacts, else owners), for
        the single-threaded flag.
    recovery_days
        Window after a stall in which past deals' next activities are counted.
    case_attributes
        Use case attributes that carry no history (``close_date_changes``, ``expected_close``) for
        the close-date flag. Backtests turn this off: such columns hold the data's final state. When
        the data go on after ``as_of`` they are left out for the deals open then, with a caveat (only
        pushes recorded by ``as_of`` may count, and these columns have no dates).
    max_snapshots
        Most training snapshots (the snapshot spacing grows to fit).
    horizon_quantile
        A snapshot is used only if this quantile of the time to close has passed by ``as_of``.
    penalty
        Ridge penalty of the logistic regression (on standardised features).
    folds
        Held-out folds for Platt calibration (0 or 1: no calibration step).
    seed
        Seed for the snapshot phases and the folds.

    Returns
    -------
    Review

    Examples
    --------
    >>> import salesproc
    >>> h, truth = salesproc.synthetic_history(800, seed=2)
    >>> t = salesproc.derive_template(h, as_of=truth.as_of)
    >>> r = salesproc.review_deals(h, t, as_of=truth.as_of)
    >>> len(r) == int((h.cases["outcome"] == "open").sum())
    True
    >>> frame = r.to_frame()
    >>> bool(frame["probability"].between(0, 1).all())
    True
    >>> deal = r[frame["case_id"].iloc[0]]
    >>> deal.probability_low <= deal.probability <= deal.probability_high
    True
    """
    t = _check_inputs(
        history, template, as_of, recovery_days=recovery_days, max_snapshots=max_snapshots,
        horizon_quantile=horizon_quantile,
    )
    known = _known_history(history, template, t, people=people, case_attributes=case_attributes)
    acts = _template_activities(known.arrays, template)
    deals = _open_positions(known, acts)
    training = _training(known, max_snapshots=int(max_snapshots), horizon_quantile=horizon_quantile, seed=seed)
    # small dense products: one BLAS thread is faster, and immune to a busy machine
    with threadpool_limits(limits=1, user_api="blas"):
        fitted, past = fit_model(known.arrays, training.snaps, acts.key, penalty=penalty, folds=folds, seed=seed)
        scores = _score(fitted, known, deals)
    reasons = _reason_points(fitted, deals, scores)
    timing = _timing(template, known, deals)
    evidence = _evidence(template, known.arrays, training.snaps, past, deals, timing)
    gaps = _critical_gaps(acts, known.arrays, deals, fitted, scores)
    team = _people_check(known.arrays, training.snaps, past, deals, fitted, scores, people=people)
    flags = _flags(known, acts, deals, timing, gaps, team, plans=plans, case_attributes=case_attributes)
    # what past deals stalled in the same milestone that still won did next
    K = len(known.arrays.milestones)
    rec = recovery_table(known.arrays, template, timing.p80[:K], known.as_of_ns, window_days=float(recovery_days))
    nxt = _next_actions(acts, deals, timing, gaps, rec, as_of_ns=known.as_of_ns)
    table = _pipeline_table(known, deals, scores, timing, evidence, gaps, flags, nxt)
    caveats = (*known.caveats, *acts.caveats, *training.caveats, *scores.caveats, *team.caveats)
    return Review(
        as_of=t,
        template=template,
        model=_review_model(fitted, training.snaps, known.arrays),
        caveats=tuple(dict.fromkeys(caveats)),
        _frame=table.frame,
        _ctx=_context(known, acts, fitted, deals, reasons, timing, evidence, gaps, team, flags, rec, table.order),
        _rows={c: i for i, c in enumerate(table.frame["case_id"])},
    )


# --- the review's steps, and what they hand on -----------------------------------------------------


@dataclass(frozen=True)
class _Known:
    """The history known at the review date, of the template's kind, coded against the template."""

    t: pd.Timestamp
    cases: pd.DataFrame
    arrays: CaseArrays
    kind: str
    words: _Words
    caveats: tuple[str, ...]

    @property
    def as_of_ns(self) -> int:
        return int(self.t.value)


@dataclass(frozen=True)
class _Activities:
    """The template's activities the model and the gaps use: critical ones and warning signs."""

    key: list[KeyActivity]
    crit: list[KeyActivity]
    caveats: tuple[str, ...]


@dataclass(frozen=True)
class _Deals:
    """Where each deal open at the review date stands (one entry per open deal)."""

    open_idx: np.ndarray  # case index in the coded history
    state: State


@dataclass(frozen=True)
class _Training:
    """Past cases seen open at regular moments, with their outcomes: what the model learns from."""

    snaps: Snapshots
    caveats: tuple[str, ...]


@dataclass(frozen=True)
class _Scores:
    """The model's view of each open deal: features, linear predictor, probability and its interval."""

    X: np.ndarray
    eta: np.ndarray
    p: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    caveats: tuple[str, ...]


@dataclass(frozen=True)
class _ReasonPoints:
    """Each reason group's effect on each open deal's probability, in probability points."""

    groups: list[str]
    points: np.ndarray  # (m, G)


@dataclass(frozen=True)
class _Timing:
    """How long each open deal has been in its milestone and alive, against the template."""

    p50: np.ndarray  # per milestone, with nan appended (index -1: before the first milestone)
    p80: np.ndarray
    days_in: np.ndarray
    pct: np.ndarray  # time in milestone as a percentile of the template's visits
    age: np.ndarray
    age_pct: np.ndarray
    stage_p80: np.ndarray
    stalled: np.ndarray


@dataclass(frozen=True)
class _Evidence:
    """What past deals did: per milestone (stage_*, index stage + 1), and per open deal among those in
    the same milestone and time bucket (comp_*)."""

    stage_rate: np.ndarray
    stage_n: np.ndarray
    stage_k: np.ndarray
    comp_n: np.ndarray
    comp_k: np.ndarray
    comp_rate: np.ndarray
    comp_lo: np.ndarray
    comp_hi: np.ndarray


@dataclass(frozen=True)
class _Gaps:
    """Critical activities not done by each open deal, and what doing each would add."""

    status: np.ndarray  # (m, C) 0 none, 1 due, 2 overdue
    gain: np.ndarray  # (m, C) probability gain
    n_overdue: np.ndarray
    n_due: np.ndarray


@dataclass(frozen=True)
class _Team:
    """People on each open deal, against how many past winners had by the same milestone."""

    share: np.ndarray  # per stage + 1: share of successful snapshots with >= 2 people
    share_n: np.ndarray
    gain: np.ndarray  # (m,) probability gain of a second person
    single: np.ndarray
    caveats: tuple[str, ...]


@dataclass(frozen=True)
class _Flags:
    """The risk flags of each open deal (columns in FLAGS order) and the facts behind slipping and pushed."""

    matrix: np.ndarray
    slips: dict[int, tuple[PlanSlip, ...]]
    close_changes: np.ndarray
    expected_close: np.ndarray


@dataclass(frozen=True)
class _NextActions:
    """Each open deal's best quantified next step: what, its effect, by when (NAT where none)."""

    what: np.ndarray
    effect: np.ndarray
    by: np.ndarray


@dataclass(frozen=True)
class _Table:
    """The pipeline table, most at risk first, and the open deal behind each of its rows."""

    frame: pd.DataFrame
    order: np.ndarray  # frame row i -> open deal order[i]


def _check_inputs(
    history: History, template: ProcessTemplate, as_of: Any, *, recovery_days: float, max_snapshots: int,
    horizon_quantile: float,
) -> pd.Timestamp:
    """Check review_deals' arguments; return the review date."""
    if not isinstance(history, History):
        raise TypeError(
            f"The 'history' parameter of review_deals must be a History. Got {type(history).__name__} instead. "
            "Fix: load it with salesproc.load_history(...)."
        )
    if not isinstance(template, ProcessTemplate):
        raise TypeError(
            f"The 'template' parameter of review_deals must be a ProcessTemplate. Got {type(template).__name__} "
            "instead. Fix: salesproc.derive_template(history) or salesproc.load_template(path)."
        )
    check_template(template, where="review_deals")
    if as_of is None:
        raise ValueError("The 'as_of' parameter of review_deals must be a date. Got None instead.")
    t = _ts(as_of, "as_of")
    assert t is not None
    if not template.milestones:
        raise ReviewError("The template has no milestones. Fix: derive it from a history with milestone events.")
    for pname, val, floor in (("recovery_days", recovery_days, 0.0), ("max_snapshots", max_snapshots, 1)):
        if isinstance(val, bool) or not isinstance(val, (int, float)) or val <= floor:
            raise ValueError(
                f"The {pname!r} parameter of review_deals must be a number above {floor}. Got {val!r} instead."
            )
    if not 0 < horizon_quantile <= 1:
        raise ValueError(
            f"The 'horizon_quantile' parameter of review_deals must be in (0, 1]. Got {horizon_quantile!r} instead."
        )
    return t


def _known_history(
    history: History, template: ProcessTemplate, t: pd.Timestamp, *, people: Sequence[str], case_attributes: bool
) -> _Known:
    """The history known at ``t``, of the template's kind, coded against the template (or why it cannot be)."""
    caveats: list[str] = []
    known = template.align(history.as_of(t))  # renamed / merged milestones match their old event names
    if case_attributes:
        caveats += _undated_close_dates(known, t)
    kinds = known._cases["kind"].astype(str)
    if (kinds != template.kind).any():
        n_other = int((kinds != template.kind).sum())
        known = known.select((kinds == template.kind).to_numpy())
        caveats.append(f"{n_other:,} cases of another kind than the template's ({template.kind}) left out")
    A = CaseArrays(known, template, people=people)
    if len(A.mc) == 0:
        found = sorted(set(known._events.loc[known._events["type"] == "milestone", "name"].astype(str)))[:10]
        raise ReviewError(
            f"None of the template's milestones {A.milestones} occur in the history before {t.date()} "
            f"(its milestone events: {found or 'none'}). Fix: use a template derived from this history, "
            "or rename the milestones to match."
        )
    if not (A.status != 2).any():
        raise NoClosedCasesToReview(
            source=known._report.source, kind=template.kind, cases=len(known._cases), caller="review_deals",
            as_of=t.date(), outcome_like=outcome_like_names(known._events["name"].astype(str).value_counts().to_dict()),
        )
    return _Known(
        t=t, cases=known._cases, arrays=A, kind=template.kind, words=_Words(template.kind), caveats=tuple(caveats)
    )


def _undated_close_dates(known: History, t: pd.Timestamp) -> list[str]:
    """Why the close-date flag leaves out the close-date attributes of a history that goes on after ``t``.

    ``close_date_changes`` and ``expected_close`` hold each deal's final value without the dates of the
    changes: :meth:`History.as_of` clears them on the deals still open at ``t`` (a push recorded later
    would leak into a past review) and says so in the report's notes.
    """
    cols = [x for x in ("close_date_changes", "expected_close") if x in known._cases.columns]
    if not cols or not any(n.startswith(AS_OF_NOTE) for n in known.report.notes):
        return []
    return [
        f"close_date_pushed leaves out {' and '.join(cols)} for the deals open on {t.date()}: the data go on "
        "after that date and these columns hold only each deal's final value, without the dates of the "
        "changes, so a push recorded later would count. Expected: a review as of the data's last date to "
        "use them. Fix: review as of that date, or load the close-date changes with their dates."
    ]


def _template_activities(A: CaseArrays, template: ProcessTemplate) -> _Activities:
    """The template's critical activities and warning signs that occur in the history."""
    col_of = {a: i for i, a in enumerate(A.activities)}
    ms_index = {m: i for i, m in enumerate(A.milestones)}
    key: list[KeyActivity] = []
    missing_acts: list[str] = []
    for act in template.activities:
        if act.requirement == "none":
            continue
        if act.name not in col_of:
            missing_acts.append(act.name)
            continue
        key.append(KeyActivity(act.name, col_of[act.name], act, ms_index.get(act.milestone) if act.milestone else None))
    caveats: tuple[str, ...] = ()
    if missing_acts:
        caveats = (
            f"{len(missing_acts)} template activit{'y' if len(missing_acts) == 1 else 'ies'} never occur in the "
            f"history: {', '.join(missing_acts[:6])}",
        )
    return _Activities(key=key, crit=[k for k in key if k.activity.critical], caveats=caveats)


def _open_positions(known: _Known, acts: _Activities) -> _Deals:
    """Where each deal open at the review date stands: milestone, since when, activities done, people."""
    A = known.arrays
    open_idx = np.flatnonzero(A.status == 2)
    m = len(open_idx)
    st = A.state_at(open_idx, np.full(m, known.as_of_ns, dtype=np.int64), [k.col for k in acts.key])
    return _Deals(open_idx=open_idx, state=st)


def _training(known: _Known, *, max_snapshots: int, horizon_quantile: float, seed: int) -> _Training:
    """The snapshots of past cases the model learns from (or why none can teach it)."""
    snaps = training_snapshots(
        known.arrays, known.as_of_ns, max_snapshots=max_snapshots, horizon_quantile=horizon_quantile, seed=seed
    )
    caveats: tuple[str, ...] = ()
    if snaps.relaxed:
        caveats = (
            "the history is short against the time deals take to close: probabilities were learnt from closed "
            f"{known.words.units} only and lean towards fast outcomes",
        )
    if len(snaps.case) == 0 or snaps.y.all() or not snaps.y.any():
        raise ReviewError(
            f"Past {known.words.units} before {known.t.date()} are all of one outcome: no win probability can be "
            "learnt. Fix: review at a later date or load both won and lost deals."
        )
    return _Training(snaps=snaps, caveats=caveats)


def _score(fitted: Fitted, known: _Known, deals: _Deals) -> _Scores:
    """Each open deal's calibrated win probability and its 95% interval."""
    A = known.arrays
    st = deals.state
    design = fitted.design
    X = design.matrix(st, A)
    # a position the history never saw (e.g. before the first milestone when every past deal
    # started with one): no basis for time or activity effects, so the deal gets the average
    unseen = ~np.isin(st.stage, design.stages)
    caveats: tuple[str, ...] = ()
    if unseen.any():
        X[unseen] = fitted.ref[st.stage[unseen] + 1]
        where = sorted({A.milestones[k] if k >= 0 else "before the first milestone" for k in st.stage[unseen]})
        units = known.words.units
        caveats = (
            f"{int(unseen.sum()):,} open {units} are at a position no past {units[:-1]} was seen in "
            f"({', '.join(where)}): their probability is the average over all past {units}",
        )
    eta, p, lo, hi = fitted.predict(X)
    return _Scores(X=X, eta=eta, p=p, lo=lo, hi=hi, caveats=caveats)


def _reason_points(fitted: Fitted, deals: _Deals, scores: _Scores) -> _ReasonPoints:
    """Each reason group's contribution, against a typical deal in the same milestone, in probability points."""
    st = deals.state
    design = fitted.design
    groups = list(dict.fromkeys(g for g in design.groups if g not in ("base", "stage")))
    diff = (scores.X - fitted.ref[st.stage + 1]) * fitted.fit.coef[None, :]
    contrib = np.zeros((len(st.case), len(groups)))
    garr = np.array(design.groups)
    for gi, g in enumerate(groups):
        contrib[:, gi] = diff[:, garr == g].sum(axis=1)
    # each factor alone, on a typical deal in the same milestone (robust to correlated factors)
    eta_ref = scores.eta - contrib.sum(axis=1)
    points = fitted.calibrated(eta_ref[:, None] + contrib) - fitted.calibrated(eta_ref)[:, None]
    return _ReasonPoints(groups=groups, points=points)


def _timing(template: ProcessTemplate, known: _Known, deals: _Deals) -> _Timing:
    """Time in milestone and age of each open deal against the template's distributions; which are stalled."""
    A = known.arrays
    st = deals.state
    m = len(deals.open_idx)
    tms = {mm.name: mm for mm in template.milestones}
    p50 = np.array([_nan(tms[n].p50_days) for n in A.milestones] + [np.nan])  # index -1 -> nan
    p80 = np.array([_nan(tms[n].p80_days) for n in A.milestones] + [np.nan])
    days_in = st.days_in
    age = np.maximum(known.as_of_ns - A.created[deals.open_idx], 0) / DAY_NS
    pct = _time_percentile(st.stage, days_in, template, A.milestones)
    age_pct = (
        percentile_from_quantiles(age, template.cycle_time.quantiles) if template.cycle_time is not None else np.full(m, np.nan)
    )
    stage_p80 = p80[st.stage]
    stalled = (st.stage >= 0) & np.isfinite(stage_p80) & (days_in > stage_p80)
    return _Timing(
        p50=p50, p80=p80, days_in=days_in, pct=pct, age=age, age_pct=age_pct, stage_p80=stage_p80, stalled=stalled
    )


def _time_percentile(stage: np.ndarray, days: np.ndarray, template: ProcessTemplate, milestones: list[str]) -> np.ndarray:
    """Time in milestone as a percentile of the template's visit durations there (nan before the first)."""
    tms = {mm.name: mm for mm in template.milestones}
    out = np.full(len(stage), np.nan)
    for k, name in enumerate(milestones):
        sel = stage == k
        if sel.any():
            out[sel] = percentile_from_quantiles(days[sel], tms[name].evidence.duration.quantiles)
    return out


def _evidence(
    template: ProcessTemplate, A: CaseArrays, snaps: Snapshots, past: State, deals: _Deals, timing: _Timing
) -> _Evidence:
    """Win rates of past snapshots per milestone, and of those in each open deal's milestone and time bucket."""
    K = len(A.milestones)
    st = deals.state
    srate, sn, sk = stage_rates(past.stage, snaps.case, snaps.y, K)
    tpct = _time_percentile(past.stage, past.days_in, template, A.milestones)
    cn, ck = cell_rates(past.stage, _bucket(tpct), snaps.case, snaps.y, K)
    obucket = _bucket(timing.pct)
    comp_n = cn[st.stage + 1, obucket]
    comp_k = ck[st.stage + 1, obucket]
    comp_rate, comp_lo, comp_hi = wilson_arrays(comp_k, comp_n)
    return _Evidence(
        stage_rate=srate, stage_n=sn, stage_k=sk, comp_n=comp_n, comp_k=comp_k, comp_rate=comp_rate,
        comp_lo=comp_lo, comp_hi=comp_hi,
    )


def _critical_gaps(acts: _Activities, A: CaseArrays, deals: _Deals, fitted: Fitted, scores: _Scores) -> _Gaps:
    """Critical activities each open deal has not done (due or overdue), and the gain of doing each."""
    st = deals.state
    m = len(deals.open_idx)
    crit = acts.crit
    C = len(crit)
    gap = np.zeros((m, C), dtype=np.int8)
    gain = np.zeros((m, C))
    kpos = {k.name: j for j, k in enumerate(acts.key)}
    for j, ca in enumerate(crit):
        done = st.done[:, kpos[ca.name]]
        d = ca.due_index
        if d is None:
            due = ~done
            overdue = np.zeros(m, dtype=bool)
        else:
            overdue = ~done & (st.furthest >= d)
            due = ~done & ~overdue & (st.stage + 1 >= d)
        gap[:, j] = np.where(overdue, 2, np.where(due, 1, 0))
        cf_done = st.done.copy()
        cf_done[:, kpos[ca.name]] = True
        eta_cf = fitted.fit.linear(fitted.design.matrix(replace(st, done=cf_done), A))
        gain[:, j] = np.where(~done, fitted.calibrated(eta_cf) - scores.p, 0.0)
    return _Gaps(status=gap, gain=gain, n_overdue=(gap == 2).sum(axis=1), n_due=(gap == 1).sum(axis=1))


def _people_check(
    A: CaseArrays, snaps: Snapshots, past: State, deals: _Deals, fitted: Fitted, scores: _Scores, *,
    people: Sequence[str],
) -> _Team:
    """Single-threaded deals (one person where past winners mostly had two), and the gain of a second person."""
    K = len(A.milestones)
    st = deals.state
    m = len(deals.open_idx)
    if not A.people_data:
        return _Team(
            share=np.full(K + 1, np.nan),
            share_n=np.zeros(K + 1, dtype=np.int64),
            gain=np.zeros(m),
            single=np.zeros(m, dtype=bool),
            caveats=(
                "single-threaded check skipped: the events name no people (no "
                + " / ".join(f"'{c}'" for c in people)
                + " column with values)",
            ),
        )
    won_s = snaps.y
    idx = past.stage + 1
    nw = np.bincount(idx[won_s], minlength=K + 1)
    multi = np.bincount(idx[won_s & (past.people >= 2)], minlength=K + 1)
    share = np.where(nw > 0, multi / np.maximum(nw, 1), np.nan)
    single = (st.people <= 1) & (st.stage >= 0) & (share[st.stage + 1] >= 0.5)
    eta_cf = fitted.fit.linear(fitted.design.matrix(replace(st, people=np.maximum(st.people, 2)), A))
    gain = np.where(st.people <= 1, fitted.calibrated(eta_cf) - scores.p, 0.0)
    return _Team(share=share, share_n=nw, gain=gain, single=single, caveats=())


def _flags(
    known: _Known, acts: _Activities, deals: _Deals, timing: _Timing, gaps: _Gaps, team: _Team, *,
    plans: Mapping[str, Any] | pd.DataFrame | None, case_attributes: bool,
) -> _Flags:
    """The risk flags of each open deal, with the plan slips and close-date facts behind them."""
    m = len(deals.open_idx)
    close_changes, expected_close = _close_date_facts(known.cases, deals.open_idx, case_attributes=case_attributes)
    pushed = (close_changes > 0) | ((expected_close != NAT) & (expected_close < known.as_of_ns))
    slips = (
        _plan_slips(plans, known.arrays, deals.open_idx, deals.state, acts.key, known.t) if plans is not None else {}
    )
    slipping = np.zeros(m, dtype=bool)
    if slips:
        slipping[list(slips)] = True
    matrix = np.column_stack([timing.stalled, slipping, gaps.n_overdue > 0, team.single, deals.state.regressed, pushed])
    return _Flags(matrix=matrix, slips=slips, close_changes=close_changes, expected_close=expected_close)


def _close_date_facts(
    cases: pd.DataFrame, open_idx: np.ndarray, *, case_attributes: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Each open deal's close-date changes and expected close (ns, NAT where none) from its case attributes."""
    m = len(open_idx)
    close_changes = np.zeros(m)
    expected_close = np.full(m, NAT, dtype=np.int64)
    if case_attributes:
        if "close_date_changes" in cases.columns:
            close_changes = pd.to_numeric(cases["close_date_changes"], errors="coerce").to_numpy(dtype=float)[open_idx]
            close_changes = np.nan_to_num(close_changes, nan=0.0)
        if "expected_close" in cases.columns:
            ec = pd.DatetimeIndex(pd.to_datetime(cases["expected_close"], utc=True, errors="coerce"))
            expected_close = ec.asi8[open_idx]
    return close_changes, expected_close


def _next_actions(
    acts: _Activities, deals: _Deals, timing: _Timing, gaps: _Gaps, rec: dict[int, list[Recovery]], *,
    as_of_ns: int,
) -> _NextActions:
    """Each open deal's best quantified next step (vectorised): a critical activity, or what stalled winners did."""
    crit = acts.crit
    st = deals.state
    m = len(deals.open_idx)
    K = len(timing.p80) - 1  # one entry per milestone, and nan
    C = len(crit)
    gap, gain = gaps.status, gaps.gain
    cand = np.where(gap > 0, gain, -np.inf) if C else np.full((m, 0), -np.inf)
    best_j = np.argmax(cand, axis=1) if C else np.zeros(m, dtype=np.int64)
    best_gain = cand[np.arange(m), best_j] if C else np.full(m, -np.inf)
    next_action = np.full(m, None, dtype=object)
    next_effect = np.full(m, np.nan)
    next_by = np.full(m, NAT, dtype=np.int64)
    has_gap = np.isfinite(best_gain)
    if C:
        names = np.array([c.name for c in crit], dtype=object)
        next_action[has_gap] = names[best_j[has_gap]]
        next_effect[has_gap] = best_gain[has_gap]
        due_ns = _due_ns(crit, gap, st, timing.p50, as_of_ns)
        next_by[has_gap] = due_ns[np.flatnonzero(has_gap), best_j[has_gap]]
    rec_gain = np.full(K + 1, -np.inf)
    rec_name = np.full(K + 1, None, dtype=object)
    for k, items in rec.items():
        rec_gain[k + 1] = items[0].rd
        rec_name[k + 1] = items[0].activity
    use_rec = timing.stalled & (rec_gain[st.stage + 1] > np.where(has_gap, best_gain, -np.inf))
    next_action[use_rec] = rec_name[st.stage + 1][use_rec]
    next_effect[use_rec] = rec_gain[st.stage + 1][use_rec]
    next_by[use_rec] = as_of_ns + STALL_ACTION_DAYS * DAY_NS
    return _NextActions(what=next_action, effect=next_effect, by=next_by)


def _pipeline_table(
    known: _Known, deals: _Deals, scores: _Scores, timing: _Timing, evidence: _Evidence, gaps: _Gaps,
    flags: _Flags, nxt: _NextActions,
) -> _Table:
    """The pipeline table: one row per open deal, sorted by expected loss (risk times amount)."""
    A = known.arrays
    cases = known.cases
    open_idx = deals.open_idx
    st = deals.state
    m = len(open_idx)
    K = len(A.milestones)
    p = scores.p
    amount = cases["amount"].to_numpy(dtype=float)[open_idx]
    ms_name = np.array([*A.milestones, None], dtype=object)[np.where(st.stage >= 0, st.stage, K)]
    names, accounts = _case_labels(cases, open_idx)
    frame = pd.DataFrame(
        {
            "case_id": A.case_ids[open_idx].astype(str),
            "name": names,
            "account": accounts,
            "owner": cases["owner"].to_numpy(dtype=object)[open_idx],
            "segment": cases["segment"].to_numpy(dtype=object)[open_idx],
            "amount": amount,
            "milestone": ms_name,
            "milestone_order": st.stage + 1,
            "days_in_milestone": np.round(timing.days_in, 2),
            "milestone_percentile": timing.pct,
            "milestone_p80": timing.stage_p80,
            "age_days": np.round(timing.age, 2),
            "age_percentile": timing.age_pct,
            "probability": p,
            "probability_low": scores.lo,
            "probability_high": scores.hi,
            "stage_rate": evidence.stage_rate[st.stage + 1],
            "comparable_n": evidence.comp_n,
            "comparable_rate": evidence.comp_rate,
            "risk": 1 - p,
            "expected_loss": (1 - p) * amount,
            "flags": _flag_text(flags.matrix),
            "n_flags": flags.matrix.sum(axis=1),
            **{f: flags.matrix[:, i] for i, f in enumerate(FLAGS)},
            "overdue_critical": gaps.n_overdue,
            "due_critical": gaps.n_due,
            "next_action": nxt.what,
            "next_action_effect": nxt.effect,
            "next_action_by": pd.to_datetime(np.where(nxt.by == NAT, NAT, nxt.by), utc=True),
        }
    )
    frame["next_action_by"] = frame["next_action_by"].where(nxt.by != NAT)
    el = frame["expected_loss"].to_numpy()
    order = np.lexsort((frame["case_id"].to_numpy(), -frame["risk"].to_numpy(), -np.nan_to_num(el, nan=-1.0)))
    frame = frame.iloc[order].reset_index(drop=True)
    frame.insert(0, "rank", np.arange(1, m + 1))
    frame = frame.assign(
        comparable_k=evidence.comp_k[order], comparable_low=evidence.comp_lo[order],
        comparable_high=evidence.comp_hi[order],
    )
    return _Table(frame=frame, order=order)


def _case_labels(cases: pd.DataFrame, open_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each open deal's name and account from the first case column of NAME_COLUMNS and of
    ACCOUNT_COLUMNS the history has (None where it has none, or the value is blank)."""
    norm = {str(c).strip().lower().replace(" ", "_").replace("-", "_"): c for c in cases.columns}
    out = []
    for wanted in (NAME_COLUMNS, ACCOUNT_COLUMNS):
        col = next((norm[w] for w in wanted if w in norm), None)
        vals = np.full(len(open_idx), None, dtype=object)
        if col is not None:
            raw = cases[col].to_numpy(dtype=object)[open_idx]
            vals = np.array([(str(v).strip() or None) if _s_or_none(v) else None for v in raw], dtype=object)
        out.append(vals)
    return out[0], out[1]


def _s_or_none(v: Any) -> bool:
    """Whether a case attribute holds a value (not missing)."""
    try:
        return not bool(pd.isna(v))
    except (TypeError, ValueError):
        return v is not None


def _review_model(fitted: Fitted, snaps: Snapshots, A: CaseArrays) -> ReviewModel:
    """What the probabilities were fitted on, for traceability."""
    return ReviewModel(
        snapshots=len(snaps.case),
        cases=snaps.eligible_cases,
        successes=len(np.unique(snaps.case[snaps.y])),
        horizon_days=round(snaps.horizon_days, 2),
        step_days=round(snaps.step_days, 3),
        platt=(round(fitted.a, 4), round(fitted.b, 4)),
        heldout_auc=None if fitted.oof_auc is None else round(fitted.oof_auc, 4),
        coefficients=fitted.coefficients(),
        people_column=A.people_column,
        relaxed_horizon=snaps.relaxed,
    )


def _context(
    known: _Known, acts: _Activities, fitted: Fitted, deals: _Deals, reasons: _ReasonPoints, timing: _Timing,
    evidence: _Evidence, gaps: _Gaps, team: _Team, flags: _Flags, rec: dict[int, list[Recovery]], order: np.ndarray,
) -> _Context:
    """The arrays each deal's review is built from on demand, in pipeline-table order."""
    m = len(order)
    inv_perm = np.empty(m, dtype=np.int64)
    inv_perm[order] = np.arange(m)
    return _Context(
        arrays=known.arrays,
        fitted=fitted,
        key=acts.key,
        crit=acts.crit,
        open_idx=deals.open_idx[order],
        state=_take(deals.state, order),
        contrib=reasons.points[order],
        groups=reasons.groups,
        gap_status=gaps.status[order],
        act_gain=gaps.gain[order],
        people_gain=team.gain[order],
        won_days=won_visit_days(known.arrays, known.as_of_ns),
        recovery=rec,
        p50=timing.p50,
        p80=timing.p80,
        stage_n=evidence.stage_n,
        stage_k=evidence.stage_k,
        people_share=team.share,
        people_share_n=team.share_n,
        kind=known.kind,
        slips={int(inv_perm[i]): v for i, v in flags.slips.items()},
        close_changes=flags.close_changes[order],
        expected_close=flags.expected_close[order],
    )


# --- helpers -------------------------------------------------------------------------------------


class _Words:
    def __init__(self, kind: str) -> None:
        self.units = "deals" if kind == "deal" else "projects"
        self.won = "won" if kind == "deal" else "finished on time"
        self.win_rate = "win rate" if kind == "deal" else "on-time rate"


def _nan(x: float | None) -> float:
    return float("nan") if x is None else float(x)


def _bucket(pct: np.ndarray) -> np.ndarray:
    """Time-in-milestone bucket: 0 below the median, 1 up to p80, 2 beyond (nan -> 0)."""
    return np.where(pct >= 0.8, 2, np.where(pct >= 0.5, 1, 0)).astype(np.int64)


def _flag_text(flags: np.ndarray) -> np.ndarray:
    """Each row's set flags as one comma-separated string (built once per distinct combination)."""
    bits = (flags.astype(np.int64) << np.arange(flags.shape[1])).sum(axis=1) if len(flags) else np.zeros(0, np.int64)
    combos, inv = np.unique(bits, return_inverse=True)
    text = np.array([", ".join(f for i, f in enumerate(FLAGS) if (c >> i) & 1) for c in combos], dtype=object)
    return text[inv.reshape(-1)] if len(flags) else np.zeros(0, dtype=object)


def _take(st: State, idx: np.ndarray) -> State:
    """The states at positions ``idx``."""
    return State(
        st.case[idx], st.t[idx], st.stage[idx], st.entered[idx], st.furthest[idx], st.regressed[idx],
        st.people[idx], st.done[idx],
    )


def _due_ns(crit: list[KeyActivity], gap: np.ndarray, st: State, p50: np.ndarray, as_of_ns: int) -> np.ndarray:
    """When each critical activity should be done: overdue ones within a few days; ones due before
    the next milestone by when the deal would usually reach it, less the usual lead time."""
    m = len(st.case)
    out = np.full((m, len(crit)), NAT, dtype=np.int64)
    left = np.nan_to_num(p50[st.stage] - st.days_in, nan=0.0)
    for j, ca in enumerate(crit):
        lead = ca.activity.due_days_before or 0.0
        days = np.where(gap[:, j] == 2, OVERDUE_DAYS, np.maximum(OVERDUE_DAYS, left - lead))
        out[:, j] = as_of_ns + np.ceil(days).astype(np.int64) * DAY_NS
    return out


def _plan_frames(plans: Mapping[str, Any] | pd.DataFrame) -> pd.DataFrame:
    """The plans as one table with a ``case_id`` column."""
    if isinstance(plans, pd.DataFrame):
        if "case_id" not in plans.columns:
            raise ValueError(
                "The 'plans' parameter of review_deals, given as one DataFrame, needs a 'case_id' column. "
                f"Got columns {list(plans.columns)} instead."
            )
        return plans
    parts = []
    for cid, plan in plans.items():
        tab = plan if isinstance(plan, pd.DataFrame) else plan.to_frame() if hasattr(plan, "to_frame") else None
        if tab is None:
            raise ValueError(
                "The 'plans' parameter of review_deals must map case ids to plans (objects with to_frame()) "
                f"or DataFrames. Got {type(plan).__name__} for {cid!r} instead."
            )
        parts.append(tab.assign(case_id=str(cid)))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"case_id": []})


def _plan_slips(
    plans: Mapping[str, Any] | pd.DataFrame,
    A: CaseArrays,
    open_idx: np.ndarray,
    st: State,
    key: list[KeyActivity],
    t: pd.Timestamp,
) -> dict[int, tuple[PlanSlip, ...]]:
    """Plan items not done whose latest safe date has passed, per open deal (worst first)."""
    tab = _plan_frames(plans)
    if tab.empty:
        return {}
    item_col = next((c for c in ("item", "name", "milestone", "activity") if c in tab.columns), None)
    date_col = next((c for c in DATE_COLUMNS if c in tab.columns), None)
    if item_col is None or date_col is None:
        raise ValueError(
            "The 'plans' parameter of review_deals needs an item column (item, name, milestone or activity) and "
            f"a date column ({', '.join(DATE_COLUMNS)}). Got columns {list(tab.columns)} instead."
        )
    row_of = {str(c): i for i, c in enumerate(A.case_ids[open_idx])}
    rows = tab["case_id"].astype(str).map(row_of)
    tab = tab.assign(_row=rows).dropna(subset=["_row"])
    if tab.empty:
        return {}
    r = tab["_row"].to_numpy(dtype=np.int64)
    when = pd.to_datetime(tab[date_col], utc=True, errors="coerce")
    item = tab[item_col].astype(str).to_numpy()
    done = (
        tab["done"].astype("boolean").fillna(False).to_numpy(dtype=bool)
        if "done" in tab.columns
        else np.zeros(len(tab), dtype=bool)
    )
    # done per the history: milestone reached, or activity done, by the review date
    ms_pos = {mname: i for i, mname in enumerate(A.milestones)}
    mi = np.array([ms_pos.get(x, -1) for x in item])
    done |= (mi >= 0) & (st.furthest[r] >= mi)
    acol = {a: i for i, a in enumerate(A.activities)}
    ai = np.array([acol.get(x, -1) for x in item])
    has_a = ai >= 0
    if has_a.any():
        done[has_a] |= A.first_done[open_idx[r[has_a]], ai[has_a]] <= int(t.value)
    late = ~done & when.notna().to_numpy() & (when < t).fillna(False).to_numpy(dtype=bool)
    out: dict[int, list[PlanSlip]] = {}
    for i in np.flatnonzero(late):
        w = when.iloc[i]
        out.setdefault(int(r[i]), []).append(PlanSlip(item[i], w, round((t - w).total_seconds() / 86_400, 1)))
    return {k: tuple(sorted(v, key=lambda s: -s.slip_days)) for k, v in out.items()}


# --- one deal, in words (built on demand) -----------------------------------------------------------


def _fmt_pts(x: float) -> str:
    return f"{x * 100:+.0f} points"


def _deal_review(review: Review, row: int) -> DealReview:
    """One open deal's review in words: the base, reasons, flags, gaps and actions."""
    ctx = review._ctx
    f = review._frame.iloc[row]
    w = _Words(ctx.kind)
    k = int(ctx.state.stage[row])
    ms = ctx.arrays.milestones[k] if k >= 0 else None
    days = float(ctx.state.days_in[row])
    p = float(f["probability"])
    n_c, k_c = int(f["comparable_n"]), int(f["comparable_k"])
    comp_text = _comparable_text(ctx, f, k, ms, w)
    reasons = _reasons(review, row, comp_text, ms, days, w)
    gaps = _gaps(ctx, row, w)
    flags = _flag_reasons(review, row, f, gaps, ms, days, w)
    actions = _actions(ctx, row, review, gaps, flags, ms, days, w)
    reached, done_acts = _timeline(ctx.arrays, int(ctx.open_idx[row]), review.template)
    p80 = ctx.p80[k] if k >= 0 else float("nan")
    amount = f["amount"]
    el = f["expected_loss"]
    return DealReview(
        case_id=str(f["case_id"]),
        as_of=review.as_of,
        rank=int(f["rank"]),
        amount=None if pd.isna(amount) else float(amount),
        owner=f["owner"] if isinstance(f["owner"], str) else None,
        milestone=ms,
        milestone_order=k + 1,
        days_in_milestone=round(days, 2),
        milestone_percentile=None if pd.isna(f["milestone_percentile"]) else round(float(f["milestone_percentile"]), 4),
        milestone_p50=None if k < 0 or not math.isfinite(ctx.p50[k]) else float(ctx.p50[k]),
        milestone_p80=None if k < 0 or not math.isfinite(p80) else float(p80),
        age_days=float(f["age_days"]),
        age_percentile=None if pd.isna(f["age_percentile"]) else round(float(f["age_percentile"]), 4),
        probability=round(p, 4),
        probability_low=round(float(f["probability_low"]), 4),
        probability_high=round(float(f["probability_high"]), 4),
        stage_rate=round(float(f["stage_rate"]), 4),
        comparable_n=n_c,
        comparable_won=k_c,
        comparable_low=None if not n_c else round(float(f["comparable_low"]), 4),
        comparable_high=None if not n_c else round(float(f["comparable_high"]), 4),
        comparable_text=comp_text,
        expected_loss=None if pd.isna(el) else round(float(el), 2),
        reasons=tuple(reasons),
        flags=tuple(flags),
        gaps=tuple(gaps),
        actions=tuple(actions),
        plan_slips=tuple(ctx.slips.get(row, ())),
        reached=reached,
        done=done_acts,
        name=f["name"] if isinstance(f["name"], str) else None,
        account=f["account"] if isinstance(f["account"], str) else None,
        template=review.template,
        model=review.model,
    )


def _comparable_text(ctx: _Context, f: pd.Series, k: int, ms: str | None, w: _Words) -> str:
    """The base of the probability in plain words: what past deals in the same spot did."""
    n_c, k_c = int(f["comparable_n"]), int(f["comparable_k"])
    bucket = _bucket(np.array([f["milestone_percentile"]]))[0]
    where = f"in {ms}" if ms else "still before their first milestone"
    spot = ["for no longer than usual", "for longer than usual", "for much longer than usual"][bucket] if ms else ""
    if k not in set(ctx.fitted.design.stages.tolist()):
        return f"no past {w.units} were seen {where}, so the chance is the average over all past {w.units}"
    if n_c:
        return f"of {n_c:,} past {w.units} that were {where} {spot}".rstrip() + f", {k_c:,} {w.won} ({k_c / n_c:.0%})"
    return f"no past {w.units} were {where} this long, so the chance leans on {w.units} at other points"


def _comparable_detail(f: pd.Series, ms: str | None, w: _Words) -> str:
    """The base's numbers for the analyst: successes of n, the rate and its Wilson interval."""
    n_c, k_c = int(f["comparable_n"]), int(f["comparable_k"])
    if not n_c:
        return ""
    bucket = _bucket(np.array([f["milestone_percentile"]]))[0]
    spot = ["within their median time", "past their median time", "past their p80 time"][bucket]
    where = f"in {ms} {spot}" if ms else "before the first milestone"
    return (
        f"{k_c:,} of n={n_c:,} past {w.units} {where} {w.won}: {k_c / n_c:.0%} "
        f"[{f['comparable_low']:.0%}, {f['comparable_high']:.0%}] (Wilson 95% interval)"
    )


def _reasons(review: Review, row: int, comp_text: str, ms: str | None, days: float, w: _Words) -> list[Reason]:
    """The base, then the (up to five) factors that move this deal's probability most."""
    ctx = review._ctx
    contrib = ctx.contrib[row]
    items = []
    for gi, g in enumerate(ctx.groups):
        pts = float(contrib[gi])
        if abs(pts) < 0.01:
            continue
        text = _reason_text(g, pts, row, ctx, review, ms, days, w)
        if text:
            items.append(Reason(text[0], round(pts, 4), text[1]))
    items.sort(key=lambda r: -abs(r.points or 0))
    base = Reason(comp_text[0].upper() + comp_text[1:], None, _comparable_detail(review._frame.iloc[row], ms, w))
    return [base, *items[:5]]


def _flag_reasons(
    review: Review, row: int, f: pd.Series, gaps: list[Gap], ms: str | None, days: float, w: _Words
) -> list[Flag]:
    """The deal's flags, each with why it fired: in plain words (``text``) and with the numbers (``reason``)."""
    ctx = review._ctx
    k = int(ctx.state.stage[row])
    flags: list[Flag] = []
    if f["stalled"]:
        p80 = ctx.p80[k] if k >= 0 else float("nan")
        mp = float(f["milestone_percentile"])
        share = f"at least {mp:.0%}" if mp <= 0.8 + 1e-9 else f"{mp:.0%}"
        flags.append(
            Flag("stalled", f"{days:.0f} days in {ms}, beyond the template's p80 of {p80:.0f} days "
                 f"(longer than {share} of visits there)",
                 f"{days:.0f} days in {ms}, where 8 in 10 {w.units} move on within {p80:.0f} days")
        )
    slips = ctx.slips.get(row, ())
    if slips:
        worst = slips[0]
        text = (f"{_count(len(slips), 'plan step')} past {'its' if len(slips) == 1 else 'their'} latest safe date; "
                f"{'' if len(slips) == 1 else 'the worst, '}{worst.item}, was due by {worst.latest_safe.date()} "
                f"({worst.slip_days:.0f} days ago)")
        flags.append(
            Flag("slipping", f"{len(slips)} plan item(s) past their latest safe date; worst: {worst.item} "
                 f"was due by {worst.latest_safe.date()} ({worst.slip_days:.0f} days ago)", text)
        )
    overdue = [g for g in gaps if g.status == "overdue"]
    if overdue:
        flags.append(_missing_flag(overdue))
    if f["single_threaded"]:
        share = ctx.people_share[k + 1]
        flags.append(
            Flag("single_threaded", f"only one person on this {w.units[:-1]} so far ({ctx.arrays.people_column}); "
                 f"{share:.0%} of {w.units} that {w.won} had two or more by {ms} (n={int(ctx.people_share_n[k + 1]):,} snapshots)",
                 f"only one person on this {w.units[:-1]} so far; most {w.units} that {w.won} had two or more "
                 f"people involved by {ms}")
        )
    if f["regressed"]:
        text = _regression_text(ctx.arrays, int(ctx.open_idx[row]), int(review.as_of.value))
        flags.append(Flag("regressed", text, text))
    if f["close_date_pushed"]:
        flags.append(Flag("close_date_pushed", _close_date_text(ctx, row, review.as_of),
                          _close_date_text(ctx, row, review.as_of, plain=True)))
    return flags


def _count(n: int, what: str) -> str:
    """``1 plan step``, ``2 plan steps``."""
    return f"{n} {what}{'' if n == 1 else 's'}"


def _missing_flag(overdue: list[Gap]) -> Flag:
    """The missing-critical flag: the critical activities due by a milestone the deal has reached, not done."""
    names = [f"'{g.activity}'" for g in overdue]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    due = list(dict.fromkeys(g.due_by for g in overdue if g.due_by))
    if len(due) == 1:
        by = f" (due by {due[0]}, which it has reached)"
    else:
        by = f" (due by milestones it has reached: {', '.join(due)})" if due else ""
    text = f"{listed} should have been done by now{by}"
    return Flag(
        "missing_critical",
        f"{len(overdue)} critical activit{'y' if len(overdue) == 1 else 'ies'} due by a milestone already reached "
        "not done: " + ", ".join(names),
        text,
    )


def _close_date_text(ctx: _Context, row: int, t: pd.Timestamp, *, plain: bool = False) -> str:
    """Why the close date counts as pushed: how often it moved, or that the expected close has passed."""
    parts = []
    n = int(ctx.close_changes[row])
    if ctx.close_changes[row] > 0:
        parts.append(f"the close date moved {_count(n, 'time')}" if plain else f"close date moved {n} time(s)")
    if ctx.expected_close[row] != NAT and ctx.expected_close[row] < int(t.value):
        ec = pd.Timestamp(int(ctx.expected_close[row]), tz="UTC")
        days = (t - ec).days
        parts.append(f"the expected close date, {ec.date()}, passed {days} day{'' if days == 1 else 's'} ago"
                     if plain else f"expected close {ec.date()} has passed ({days} days ago)")
    return "; ".join(parts)


def _timeline(
    A: CaseArrays, ci: int, tpl: ProcessTemplate
) -> tuple[tuple[tuple[str, pd.Timestamp], ...], tuple[tuple[str, pd.Timestamp], ...]]:
    """The template milestones case ``ci`` reached (first date, template order) and the template's
    activities it did (first date, by date), from what was known at the review date."""
    lo, hi = np.searchsorted(A.mc, [ci, ci + 1])
    first: dict[int, int] = {}
    for k, ts in zip(A.mk[lo:hi].tolist(), A.mt[lo:hi].tolist()):
        first.setdefault(k, ts)
    reached = tuple((A.milestones[k], pd.Timestamp(first[k], tz="UTC")) for k in sorted(first))
    col = {a: j for j, a in enumerate(A.activities)}
    done = []
    for act in tpl.activities:
        j = col.get(act.name)
        if j is not None and A.first_done[ci, j] != NEVER:
            done.append((act.name, pd.Timestamp(int(A.first_done[ci, j]), tz="UTC")))
    return reached, tuple(sorted(done, key=lambda x: x[1]))


def _reason_text(
    g: str, pts: float, row: int, ctx: _Context, review: Review, ms: str | None, days: float, w: _Words
) -> tuple[str, str] | None:
    """One reason group's effect on this deal: in plain words, and the evidence behind it for the
    analyst ("" when there is nothing more to say); None for a group that has no effect."""
    if g == "time":
        return _time_reason(pts, row, ctx, ms, days, w)
    if g == "age":
        return _age_reason(pts, row, review, w)
    if g == "target":
        return _target_reason(pts, row, ctx, review), ""
    if g == "regressed":
        return f"went back to an earlier milestone: {_fmt_pts(pts)}", ""
    if g == "people":
        n = int(ctx.state.people[row])
        return f"{n} {'person' if n == 1 else 'people'} involved so far: {_fmt_pts(pts)}", ""
    if g.startswith("act:"):
        return _activity_reason(g[4:], pts, row, ctx, w)
    return None


def _time_reason(pts: float, row: int, ctx: _Context, ms: str | None, days: float, w: _Words) -> tuple[str, str]:
    """Time in the milestone, against the time deals that won spent there."""
    k = int(ctx.state.stage[row])
    if k < 0:
        return f"{days:.0f} days since it was created, with no milestone reached yet: {_fmt_pts(pts)}", ""
    won = ctx.won_days[k]
    if not len(won):
        return f"{days:.0f} days in {ms}: {_fmt_pts(pts)}", ""
    share = float(np.searchsorted(won, days, side="right")) / len(won)
    med = float(np.median(won))
    if share >= 1.0:
        than = f"longer than any of the n={len(won):,} {w.units} that {w.won} spent there"
    elif share <= 0.0:
        than = f"shorter than any of the n={len(won):,} {w.units} that {w.won} spent there"
    elif share >= 0.5:
        than = f"longer than {share:.0%} of the n={len(won):,} {w.units} that {w.won} spent there"
    else:
        than = f"shorter than {1 - share:.0%} of the n={len(won):,} {w.units} that {w.won} spent there"
    text = f"{days:.0f} days in {ms}, where {w.units} that {w.won} usually spent about {med:.0f} days: {_fmt_pts(pts)}"
    return text, f"{than} (median {med:.1f} days)"


def _age_reason(pts: float, row: int, review: Review, w: _Words) -> tuple[str, str]:
    """The deal's age, against the age of deals that won when they closed."""
    age = float(review._frame.iloc[row]["age_days"])
    ap = review._frame.iloc[row]["age_percentile"]
    ct = review.template.cycle_time
    if ct is None or ct.p50 is None or pd.isna(ap):
        return f"{age:.0f} days old: {_fmt_pts(pts)}", ""
    usual = f"{w.units} that {w.won} usually took about {ct.p50:.0f} days from start to close"
    if ap <= 0.1:
        text = f"just started ({age:.0f} days old); {usual}"
    elif ap >= 0.9:
        text = f"{age:.0f} days old, older than 9 in 10 {w.units} that {w.won} were when they closed"
    else:
        text = f"{age:.0f} days old; {usual}"
    detail = (f"older than {ap:.0%} of the {w.units} that {w.won} were when they closed (their median time "
              f"to close {ct.p50:.0f} days)")
    return f"{text}: {_fmt_pts(pts)}", detail


def _target_reason(pts: float, row: int, ctx: _Context, review: Review) -> str:
    """The days left to (or past) the deal's target date."""
    tgt = int(ctx.arrays.target[int(ctx.open_idx[row])])
    if tgt == NAT:
        return f"no target date: {_fmt_pts(pts)}"
    when = pd.Timestamp(tgt, tz="UTC")
    gap = (when - review.as_of) / pd.Timedelta(days=1)
    if gap < 0:
        return f"{-gap:.0f} days past its target date {when.date()}: {_fmt_pts(pts)}"
    return f"{gap:.0f} days left to its target date {when.date()}: {_fmt_pts(pts)}"


def _activity_reason(name: str, pts: float, row: int, ctx: _Context, w: _Words) -> tuple[str, str]:
    """A critical activity done or missing, or a warning sign seen or not; the history's evidence for the analyst."""
    ka = next(x for x in ctx.key if x.name == name)
    j = next(i for i, x in enumerate(ctx.key) if x.name == name)
    done = bool(ctx.state.done[row, j])
    ev = ka.activity.evidence
    detail = ""
    if ev is not None and ev.risk_difference is not None:
        lo, hi = ev.ci
        ci = f" [{lo * 100:+.0f}, {hi * 100:+.0f}]" if lo is not None and hi is not None else ""
        detail = (f"'{name}' goes with {_fmt_pts(ev.risk_difference)}{ci} of {w.win_rate} at {ev.milestone} "
                  f"(n={ev.n:,})")
    if ka.activity.critical:
        state = f"'{name}' is done" if done else f"'{name}' is not done yet"
    else:
        state = f"warning sign: '{name}' happened" if done else f"no sign of '{name}' (a warning sign)"
    return f"{state}: {_fmt_pts(pts)} for this {w.units[:-1]}", detail


def _gaps(ctx: _Context, row: int, w: _Words) -> list[Gap]:
    """The critical activities this deal has not done, overdue first, with the history's evidence."""
    out = []
    for j, ca in enumerate(ctx.crit):
        s = int(ctx.gap_status[row, j])
        if s == 0:
            continue
        ev = ca.activity.evidence
        if ev is not None and ev.risk_difference is not None:
            lo, hi = ev.ci
            ci = f" [{lo * 100:+.0f}, {hi * 100:+.0f}]" if lo is not None and hi is not None else ""
            sw = f"{ev.success_with:.0%}" if ev.success_with is not None else "n/a"
            so = f"{ev.success_without:.0%}" if ev.success_without is not None else "n/a"
            text = (
                f"{_fmt_pts(ev.risk_difference)}{ci} of {w.win_rate} at {ev.milestone}: {sw} with it "
                f"(n={ev.n_with:,}) vs {so} without (n={ev.n_without:,})"
                + (f", q={ev.q:.2g}" if ev.q is not None else "")
            )
            plain = _gap_plain(ev.success_with, ev.success_without, ev.milestone, w)
        else:
            text = plain = ca.activity.note or "marked critical in the template"
        out.append(
            Gap(
                activity=ca.name,
                due_by=ca.activity.milestone,
                status="overdue" if s == 2 else "due",
                owner_role=ca.activity.owner_role,
                risk_difference=None if ev is None else ev.risk_difference,
                ci=(None, None) if ev is None else ev.ci,
                n=None if ev is None else ev.n,
                q=None if ev is None else ev.q,
                evidence=text,
                text=plain,
            )
        )
    out.sort(key=lambda g: (g.status != "overdue", -(g.risk_difference or 0)))
    return out


def _gap_plain(with_: float | None, without: float | None, milestone: str | None, w: _Words) -> str:
    """Why a critical activity matters, in plain words: how often deals that did it won, and those that did not."""
    by = f" by {milestone}" if milestone else ""
    if with_ is None or without is None:
        return f"{w.units} that did it{by} {w.won} more often"
    return f"{w.units} that did it{by} {w.won} {with_:.0%} of the time, against {without:.0%} without"


def _regression_text(A: CaseArrays, case: int, as_of_ns: int) -> str:
    """The deal's last step back, in words: from which milestone to which, and when."""
    lo = np.searchsorted(A.mc, case, side="left")
    hi = np.searchsorted(A.mc, case, side="right")
    back = np.flatnonzero(A.m_back[lo:hi] & (A.mt[lo:hi] <= as_of_ns))
    if len(back) == 0:
        return "a milestone was revisited after a later one"
    i = lo + int(back[-1])
    frm = A.milestones[int(A.m_furthest[i - 1])] if i > lo else "a later milestone"
    to = A.milestones[int(A.mk[i])]
    when = pd.Timestamp(int(A.mt[i]), tz="UTC").date()
    return f"went back from {frm} to {to} on {when}"


def _actions(
    ctx: _Context, row: int, review: Review, gaps: list[Gap], flags: list[Flag], ms: str | None, days: float,
    w: _Words,
) -> list[Action]:
    """The deal's next steps, quantified ones first: its gaps, what stalled winners did, the flags' and the plan's."""
    t = review.as_of
    k = int(ctx.state.stage[row])
    names = {f.name for f in flags}
    out = _gap_actions(ctx, row, review.template, gaps, days, t)
    if "stalled" in names and k in ctx.recovery:
        out += _recovery_actions(ctx.recovery[k], t, w)
    out += _flag_actions(ctx, row, review.template, flags, ms, t)
    out += _plan_actions(ctx.slips.get(row, ()), t)
    # by expected effect, quantified first; then the flag and plan steps by date
    out.sort(key=lambda a: (a.effect is None, -(a.effect or 0), a.by))
    # the same activity may come from the template and from history: keep the first
    seen: set[str] = set()
    uniq = []
    for a in out:
        if a.what in seen:
            continue
        seen.add(a.what)
        uniq.append(a)
    return uniq


def _gap_actions(
    ctx: _Context, row: int, tpl: ProcessTemplate, gaps: list[Gap], days: float, t: pd.Timestamp
) -> list[Action]:
    """Do each missing critical activity: overdue ones within days, due ones before the next milestone."""
    k = int(ctx.state.stage[row])
    crit_pos = {c.name: j for j, c in enumerate(ctx.crit)}
    p50 = ctx.p50[k] if k >= 0 else float("nan")
    left = (p50 - days) if math.isfinite(p50) else 0.0
    out: list[Action] = []
    for g in gaps:
        j = crit_pos[g.activity]
        ca = ctx.crit[j]
        lead = ca.activity.due_days_before or 0.0
        due_days = OVERDUE_DAYS if g.status == "overdue" else max(OVERDUE_DAYS, math.ceil(left - lead))
        owner = ca.activity.owner_role or _ms_owner(tpl, ca.activity.milestone)
        gain = float(ctx.act_gain[row, j])
        when = "overdue: it was due by " if g.status == "overdue" else "due before "
        out.append(
            Action(
                what=f"Do '{g.activity}'",
                owner=owner,
                by=t + pd.Timedelta(days=due_days),
                effect=round(gain, 4),
                why=f"{when}{g.due_by or 'the next milestone'}; {g.text or g.evidence}",
                source="template",
                detail=g.evidence,
            )
        )
    return out


def _recovery_actions(recovery: list[Recovery], t: pd.Timestamp, w: _Words) -> list[Action]:
    """For a stalled deal: what past deals stalled in the same milestone that still won did next."""
    return [
        Action(
            what=f"Do '{r.activity}'",
            owner=r.role,
            by=t + pd.Timedelta(days=STALL_ACTION_DAYS),
            effect=round(r.rd, 4),
            why=(
                f"of {r.won:,} {w.units} stalled in {r.milestone} that went on to {'win' if w.units == 'deals' else 'finish on time'}, "
                f"{r.won_did:,} did '{r.activity}' within {r.window_days:.0f} days; stalled {w.units} that did it "
                f"{w.won} {r.k_did / r.n_did:.0%} of the time, against {r.k_not / r.n_not:.0%} that did not"
            ),
            source="history",
            detail=(
                f"stalled {w.units} that did '{r.activity}' {w.won} {r.k_did / r.n_did:.0%} (n={r.n_did:,}) vs "
                f"{r.k_not / r.n_not:.0%} that did not (n={r.n_not:,}): {_fmt_pts(r.rd)} "
                f"[{r.low * 100:+.0f}, {r.high * 100:+.0f}] (Newcombe 95% interval)"
            ),
        )
        for r in recovery
    ]


def _flag_actions(
    ctx: _Context, row: int, tpl: ProcessTemplate, flags: list[Flag], ms: str | None, t: pd.Timestamp
) -> list[Action]:
    """The steps the single-threaded, regressed and close-date flags call for."""
    names = {f.name: f for f in flags}
    out: list[Action] = []
    if "single_threaded" in names:
        gain = float(ctx.people_gain[row])
        out.append(
            Action(
                what=f"Bring a second person into the {'deal' if ctx.kind == 'deal' else 'project'} "
                "(a manager, specialist or executive sponsor)",
                owner="deal owner",
                by=t + pd.Timedelta(days=STALL_ACTION_DAYS),
                effect=round(gain, 4) if gain > 0 else None,
                why=names["single_threaded"].plain,
                source="flag",
                detail=_flag_detail(names["single_threaded"]),
            )
        )
    if "regressed" in names:
        out.append(
            Action(
                what=f"Re-confirm with the {'buyer' if ctx.kind == 'deal' else 'customer'} what it takes to pass {ms} "
                "again, and write it down",
                owner=_ms_owner(tpl, ms),
                by=t + pd.Timedelta(days=OVERDUE_DAYS),
                effect=None,
                why=names["regressed"].plain,
                source="flag",
                detail=_flag_detail(names["regressed"]),
            )
        )
    if "close_date_pushed" in names:
        out.append(
            Action(
                what="Re-qualify the close date with the buyer and agree a mutual plan to it",
                owner="deal owner",
                by=t + pd.Timedelta(days=OVERDUE_DAYS),
                effect=None,
                why=names["close_date_pushed"].plain,
                source="flag",
                detail=_flag_detail(names["close_date_pushed"]),
            )
        )
    return out


def _flag_detail(flag: Flag) -> str:
    """A flag's numbers for the analyst, when they say more than its plain sentence."""
    return flag.reason if flag.reason != flag.plain else ""


def _plan_actions(slips: tuple[PlanSlip, ...], t: pd.Timestamp) -> list[Action]:
    """Re-plan each plan item whose latest safe date has passed."""
    return [
        Action(
            what=f"Re-plan '{s.item}': agree a new date or escalate",
            owner="deal owner",
            by=t + pd.Timedelta(days=OVERDUE_DAYS),
            effect=None,
            why=f"its latest safe date {s.latest_safe.date()} passed {s.slip_days:.0f} days ago",
            source="plan",
        )
        for s in slips
    ]


def _ms_owner(tpl: ProcessTemplate, ms: str | None) -> str | None:
    """The role that owns milestone ``ms`` in the template (None if none is named)."""
    if ms is None:
        return None
    for m in tpl.milestones:
        if m.name == ms:
            return m.owner_role
    return None
