"""Plan backwards from a goal: what must happen, by when, by whom, in what order, with honest odds.

:func:`plan_backwards` starts at the target date and works back through the template's milestones
and critical activities. For every remaining milestone it gives the *latest safe date*: the
latest date by which the milestone must be reached for a 50% (and an 80%) chance of still
finishing by the target, given how long the milestones after it take. A Monte Carlo over the
team's own, censoring-aware durations (the history's when one is given, else the template's)
gives the probability of reaching the goal by the target date, the P50/P80 completion dates and
the earliest realistic date. The result is an immutable :class:`Plan` that shows itself in a
notebook and exports a Markdown/HTML checklist, CSV and an iCalendar file (a mutual action plan).

Method, in short:

* **Durations.** Each milestone's time-in-milestone distribution comes with how visits end: moved
  on (to a later milestone or to success) or lost. From a history it is the Aalen-Johansen
  estimate of the milestone's visits (open visits censored at ``as_of``); from a template the
  Kaplan-Meier quantiles as a piecewise-linear inverse CDF with the conversion rate ``to_next``.
  Beyond the last known quantile a lognormal through p50/p80 extrapolates the tail (said in
  :attr:`Plan.notes`). See :mod:`salesproc.plan._simulate`.
* **Paths.** From where the case stands (the current milestone, with the time it has already
  spent there), every later milestone is visited in the template's order unless skipped (with the
  template's ``skipped_share``). Success = no loss on the way; for projects, finishing at all
  (failed projects are losses; late ones still finish).
* **Latest safe dates.** For a milestone: the target minus the 50th (80th) percentile of the
  simulated time from entering it to success. For a critical activity: its milestone's latest date
  minus ``due_days_before``. Then, in reverse topological order of the dependency graph
  (``template.all_dependencies()`` plus the plan's own), no item may be due later than anything
  that depends on it.
* **Critical path.** The chain of remaining milestones, plus any activity with no more slack than
  that chain (slack = latest P50 date minus the expected date).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import networkx as nx
import numpy as np
import pandas as pd

from salesproc._hooks import report_renderer
from salesproc._io import atomic_write_bytes, atomic_write_text
from salesproc.errors import PlanError
from salesproc.history._history import History, _ts
from salesproc.plan._simulate import SimResult, StageModel, simulate, stage_from_history, stage_from_template
from salesproc.template._template import Dependency, Milestone, ProcessTemplate, check_template

__all__ = ["Goal", "Plan", "PlanItem", "plan_backwards", "plot_plan"]

DAY = pd.Timedelta(days=1)
_MIN_VISITS = 10
_MIN_SUCCESS_PATHS = 50
_CSV_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


# --- the goal --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Goal:
    """What success looks like, how it is measured, by when, and who owns it on each side.

    For deals the owners are the seller and the buyer; for delivery projects the delivery team and
    the customer (the same two fields). ``target_date`` is a day: the goal is met when success
    comes before the end of that day (UTC).

    Examples
    --------
    >>> from salesproc.plan import Goal
    >>> g = Goal("2024-06-30", success="Contract signed", measure="signed order form",
    ...          seller_owner="Dana (AE)", buyer_owner="Sam (CFO)")
    >>> g.target_date
    Timestamp('2024-06-30 00:00:00+0000', tz='UTC')
    >>> print(g)
    Win by 30 June 2024: Contract signed; measured by signed order form; owned by Dana (AE, seller) and Sam (CFO, buyer)
    >>> g.sentence("project")[:40]
    'Finish by 30 June 2024: Contract signed;'
    """

    target_date: Any
    success: str = ""
    measure: str = ""
    seller_owner: str | None = None
    buyer_owner: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "target_date", _day(self.target_date, "target_date", "Goal"))

    def sentence(self, kind: str = "deal") -> str:
        """The goal as one sentence for the room: by when, what success is, how it is measured and
        who owns it on each side (seller and buyer for a deal, delivery team and customer for a
        project)."""
        deal = kind == "deal"
        sides = ("seller", "buyer") if deal else ("delivery team", "customer")
        parts = [f"{'Win' if deal else 'Finish'} by {_long_date(self.target_date)}"
                 + (f": {self.success}" if self.success else "")]
        if self.measure:
            parts.append(f"measured by {self.measure}")
        owners = [_owned(who, side) for who, side in zip((self.seller_owner, self.buyer_owner), sides) if who]
        if owners:
            parts.append("owned by " + " and ".join(owners))
        return "; ".join(parts)

    def __str__(self) -> str:
        return self.sentence()

    def __repr__(self) -> str:
        return f"<Goal {self.sentence()}>"

    def _repr_html_(self) -> str:
        from html import escape

        return f"<p class='salesproc-goal'><strong>Goal:</strong> {escape(self.sentence())}</p>"


# --- the result ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanItem:
    """One milestone or activity of a plan.

    ``status`` is ``done`` (reached or done, with ``done_date``), ``current`` (the milestone the case
    is in; reached, so done), ``skipped`` (a milestone the case went past without reaching: never
    scheduled), ``planned`` or ``overdue`` (its latest safe date at 80% has passed). Latest dates are
    ``None`` for done and skipped items; ``slack`` is in days (latest P50 date minus the expected
    date); ``expected`` is the median simulated date among paths that succeed.
    """

    name: str
    type: Literal["milestone", "activity"]
    owner: str | None
    status: Literal["done", "current", "skipped", "planned", "overdue"]
    latest_p50: pd.Timestamp | None
    latest_p80: pd.Timestamp | None
    done_date: pd.Timestamp | None
    depends_on: tuple[str, ...]
    critical: bool
    slack: float | None
    expected: pd.Timestamp | None
    milestone: str | None = None
    requirement: str | None = None

    @property
    def done(self) -> bool:
        return self.status in ("done", "current")

    @property
    def remaining(self) -> bool:
        return self.status in ("planned", "overdue")


@dataclass(frozen=True)
class Plan:
    """A backwards plan with honest odds (immutable; build it with :func:`plan_backwards`).

    ``probability`` is P(success and success by the end of ``target_date``); ``p_success`` the
    chance of success at all. ``p50_date``, ``p80_date`` and ``earliest_date`` (10th percentile) are
    completion dates *conditional on success*. ``this_week``, ``next_two_weeks`` (the 14 days after
    this week) and ``overdue`` list remaining items by their latest safe date at 80%.
    """

    template_name: str
    kind: str
    case_id: str | None
    goal: Goal
    as_of: pd.Timestamp
    target_date: pd.Timestamp
    probability: float
    p_success: float
    p50_date: pd.Timestamp | None
    p80_date: pd.Timestamp | None
    earliest_date: pd.Timestamp | None
    median_days: float | None
    current: str | None
    items: tuple[PlanItem, ...]
    critical_path: tuple[str, ...]
    this_week: tuple[str, ...]
    next_two_weeks: tuple[str, ...]
    overdue: tuple[str, ...]
    message: str
    notes: tuple[str, ...] = field(default=())
    n_simulations: int = 10_000
    seed: int = 0

    # -- tables ------------------------------------------------------------------------------
    def item(self, name: str) -> PlanItem:
        """The item called ``name``."""
        for it in self.items:
            if it.name == name:
                return it
        raise KeyError(f"no item {name!r} in this plan; items: {[i.name for i in self.items]}")

    def to_frame(self) -> pd.DataFrame:
        """One row per item: item, type, owner, latest_p50, latest_p80, done, done_date, depends_on,
        critical, slack, then status, expected, milestone (due by) and requirement."""
        cols = ["item", "type", "owner", "latest_p50", "latest_p80", "done", "done_date", "depends_on",
                "critical", "slack", "status", "expected", "milestone", "requirement"]
        rows = [
            {
                "item": it.name,
                "type": it.type,
                "owner": it.owner,
                "latest_p50": it.latest_p50,
                "latest_p80": it.latest_p80,
                "done": it.done,
                "done_date": it.done_date,
                "depends_on": "; ".join(it.depends_on),
                "critical": it.critical,
                "slack": it.slack,
                "status": it.status,
                "expected": it.expected,
                "milestone": it.milestone,
                "requirement": it.requirement,
            }
            for it in self.items
        ]
        df = pd.DataFrame(rows, columns=cols)
        for c in ("latest_p50", "latest_p80", "done_date", "expected"):
            df[c] = pd.to_datetime(df[c], utc=True)
        df["slack"] = df["slack"].astype(float)
        return df

    # -- display -----------------------------------------------------------------------------
    @property
    def headline(self) -> str:
        word = "a win" if self.kind == "deal" else "finishing"
        return f"{_pct(self.probability)} chance of {word} by {_d(self.target_date)}"

    def __repr__(self) -> str:
        who = f" case {self.case_id}" if self.case_id else ""
        todo = sum(1 for i in self.items if i.remaining)
        return (
            f"<Plan {self.template_name!r}{who}: {self.headline} (P50 {_d(self.p50_date)}, "
            f"P80 {_d(self.p80_date)}), {todo} items to do>"
        )

    def __str__(self) -> str:
        """The plan in plain sentences: the goal, the verdict with the chance, and what is next."""
        who = f" for {self.case_id}" if self.case_id else ""
        lines = [f"Plan{who}. Goal: {self.goal.sentence(self.kind)}.", self.message]
        for label, names in (("Overdue", self.overdue), ("This week", self.this_week),
                             ("Next two weeks", self.next_two_weeks)):
            if names:
                steps = [f"{n} by {_d(self.item(n).latest_p80)}" + (f" ({self.item(n).owner})" if self.item(n).owner else "")
                         for n in names]
                lines.append(f"{label}: " + "; ".join(steps) + ".")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return _render("html_fragment", self._context())

    def to_markdown(self, path: str | Path | None = None, *, overwrite: bool = False) -> str:
        """The plan as a Markdown milestone checklist (the ``plan`` report of
        :func:`salesproc.render_report`); also written to ``path`` if given (atomically)."""
        return str(report_renderer()(self, format="md", out=path, overwrite=overwrite))

    def to_html(self, path: str | Path | None = None, *, overwrite: bool = False) -> str:
        """The plan as a self-contained HTML page with its timeline chart (the ``plan`` report of
        :func:`salesproc.render_report`); also written to ``path`` if given (atomically)."""
        return str(report_renderer()(self, format="html", out=path, overwrite=overwrite))

    def to_csv(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write :meth:`to_frame` as CSV (dates as YYYY-MM-DD); text cells that a spreadsheet would
        run as a formula (starting with ``= + - @``, tab or CR) are prefixed with ``'``."""
        df = self.to_frame()
        for c in ("latest_p50", "latest_p80", "done_date", "expected"):
            df[c] = df[c].dt.strftime("%Y-%m-%d")
        for c in df.columns:
            if df[c].dtype == object or pd.api.types.is_string_dtype(df[c]):
                df[c] = df[c].map(_csv_safe)
        return atomic_write_text(path, df.to_csv(index=False), overwrite=overwrite)

    def to_ical(self, *, level: Literal["p50", "p80"] = "p80") -> bytes:
        """The iCalendar bytes of :meth:`to_ics`."""
        return _ical(self, level)

    def to_ics(self, path: str | Path, *, level: Literal["p50", "p80"] = "p80", overwrite: bool = False) -> Path:
        """Write an iCalendar file for a mutual action plan: one all-day event per remaining milestone
        or activity on its latest safe date (``level``, P80 by default). UIDs are stable per case and
        item, DTSTAMP is ``as_of``: regenerating the plan updates the same events."""
        return atomic_write_bytes(path, _ical(self, level), overwrite=overwrite)

    # -- rendering data ----------------------------------------------------------------------
    def _context(self) -> dict[str, Any]:
        deal = self.kind == "deal"
        sides = ("Seller", "Buyer") if deal else ("Delivery team", "Customer")
        def row(it: PlanItem) -> dict[str, Any]:
            return {
                "name": it.name, "type": it.type, "owner": it.owner or "", "status": it.status,
                "done": it.done, "done_date": _d(it.done_date), "latest_p50": _d(it.latest_p50),
                "latest_p80": _d(it.latest_p80), "depends_on": ", ".join(it.depends_on),
                "critical": it.critical, "slack": "" if it.slack is None else f"{it.slack:+.0f}",
                "expected": _d(it.expected), "milestone": it.milestone or "",
                "requirement": it.requirement or "",
            }
        by = {it.name: it for it in self.items}
        title = f"Plan: {self.goal.success}" + (f" ({self.case_id})" if self.case_id else "")
        return {
            "title": title,
            "goal_sentence": self.goal.sentence(self.kind),
            "headline": self.headline,
            "message": self.message,
            "template": self.template_name,
            "case_id": self.case_id or "",
            "as_of": _d(self.as_of),
            "target": _d(self.target_date),
            "goal": {
                "success": self.goal.success,
                "measure": self.goal.measure,
                "owners": [(sides[0], self.goal.seller_owner or ""), (sides[1], self.goal.buyer_owner or "")],
            },
            "summary": [
                ("Chance of success by the target", _pct(self.probability)),
                ("Chance of success at all", _pct(self.p_success)),
                ("Likely date, if it succeeds (half by / 8 in 10 by)", f"{_d(self.p50_date)} / {_d(self.p80_date)}"),
                ("Earliest realistic date (1 in 10 successes are sooner)", _d(self.earliest_date)),
                ("Current milestone", self.current or "not started"),
                ("Critical path", " > ".join(self.critical_path) or "-"),
            ],
            "windows": [
                ("Overdue", [row(by[n]) for n in self.overdue]),
                ("This week", [row(by[n]) for n in self.this_week]),
                ("Next two weeks", [row(by[n]) for n in self.next_two_weeks]),
            ],
            "items": [row(it) for it in self.items],
            "notes": list(self.notes),
            "n_simulations": self.n_simulations,
            "seed": self.seed,
        }


# --- planning --------------------------------------------------------------------------------


def plan_backwards(
    template: ProcessTemplate,
    *,
    target_date: Any = None,
    as_of: Any,
    case: str | None = None,
    history: History | None = None,
    goal: Goal | None = None,
    seed: int = 0,
    owners: Mapping[str, str] | None = None,
    dependencies: Iterable[Dependency | tuple[str, str]] = (),
    n_simulations: int = 10_000,
) -> Plan:
    """Plan backwards from a goal and its target date through the template's milestones.

    Parameters
    ----------
    template
        The process template (:func:`salesproc.derive_template` or :func:`salesproc.load_template`).
    target_date
        The day the goal is due (or give ``goal``). Success counts until the end of that day (UTC).
    as_of
        Today, for the plan: where the case stands and what counts as this week. Never the clock.
    case
        The id of an open case in ``history`` to plan from where it stands: reached milestones and
        done activities are marked done with their dates, the current milestone's remaining time is
        drawn given how long it has lasted, and only the rest is planned.
    history
        Past cases: when given, durations and conversion come from the history as known at
        ``as_of`` (censoring-aware), not from the template's summary numbers.
    goal
        What success looks like, how it is measured and the owners on both sides.
    seed
        Seed of the simulation: the same inputs and seed give the same plan.
    owners
        Owner per milestone or activity, e.g. ``{"Proposal": "Dana (AE)"}``; the others keep the
        template's ``owner_role``.
    dependencies
        The plan's own dependencies, ``(before, after)`` pairs of milestone or activity names, on top
        of ``template.all_dependencies()``.
    n_simulations
        Number of simulated paths (at least 100).

    Returns
    -------
    Plan

    Raises
    ------
    PlanError
        Dependencies that form a cycle (the message names it), unknown names, a closed or unknown
        case, no target date, or a milestone without any duration to plan with.

    Examples
    --------
    >>> import salesproc
    >>> h, truth = salesproc.synthetic_history(600, seed=7)
    >>> t = salesproc.derive_template(h, as_of=truth.as_of)
    >>> p = salesproc.plan_backwards(t, target_date=truth.as_of + pd.Timedelta(days=90),
    ...                              as_of=truth.as_of, n_simulations=2000)
    >>> 0 < p.probability < p.p_success < 1
    True
    >>> df = p.to_frame()
    >>> bool((df["latest_p80"] <= df["latest_p50"]).all())
    True
    """
    req = _checked_request(
        template, target_date=target_date, as_of=as_of, goal=goal, seed=seed, owners=owners,
        dependencies=dependencies, n_simulations=n_simulations,
    )
    model = _stage_models(template, history, case, req.now)
    state = _case_state(model, str(case), template, req.acts, req.now) if case is not None else _State()
    sim = _simulate_paths(model, state, req)
    schedule = _latest_safe_dates(model, state, req)
    path = _critical_path(sim, state, schedule, req)
    odds = _odds(sim, req)
    items = [_plan_item(node, template, req, state, schedule, path) for node in schedule.topo]
    return _assemble_plan(
        template, req, case=case, state=state, odds=odds, items=items, fixed=schedule.fixed,
        notes=[*model.notes, *schedule.notes],
    )


# --- the steps of plan_backwards -------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    """The checked arguments of :func:`plan_backwards`: today, the goal and the items to plan."""

    now: pd.Timestamp
    today: pd.Timestamp
    goal: Goal
    days_left: float  # from ``now`` to the end of the target day
    n: int
    seed: int
    names: list[str]
    ms_index: dict[str, int]
    graph: nx.DiGraph
    acts: dict[str, Any]
    owners: dict[str, str]

    def sort_key(self, node: str) -> tuple[int, int, str]:
        """Process order: milestones in the template's order, each after the activities due by it."""
        return _sort_key(node, self.ms_index, self.acts)


@dataclass(frozen=True)
class _Schedule:
    """Per item, in days from ``as_of``: when done items happened and the latest safe dates of the rest."""

    topo: list[str]  # items in dependency order, ties in process order
    status: dict[str, str]  # done, current and skipped items
    fixed: dict[str, float]  # when done items happened (skipped milestones: when they were passed)
    latest: dict[str, dict[str, float]]  # "p50" / "p80" -> item -> latest safe date
    notes: list[str]


@dataclass(frozen=True)
class _CriticalPath:
    """Expected dates (days from ``as_of``), each item's slack and the slack of the milestone chain."""

    expected: dict[str, float]
    slack: dict[str, float]
    chain: float


@dataclass(frozen=True)
class _Odds:
    """The Monte Carlo's verdict: the chance of success (by the target and at all), dates if it succeeds."""

    probability: float
    p_success: float
    earliest: pd.Timestamp | None = None
    p50_date: pd.Timestamp | None = None
    p80_date: pd.Timestamp | None = None
    median_days: float | None = None


def _checked_request(
    template: ProcessTemplate,
    *,
    target_date: Any,
    as_of: Any,
    goal: Goal | None,
    seed: int,
    owners: Mapping[str, str] | None,
    dependencies: Iterable[Dependency | tuple[str, str]],
    n_simulations: int,
) -> _Request:
    """Check the goal and dates, the dependencies (no cycles) and the owners: what to plan."""
    now = _check_arguments(template, n_simulations=n_simulations, seed=seed, as_of=as_of)
    resolved = _resolve_goal(goal, target_date, template.kind)
    graph, acts = _graph(template, dependencies)
    owner_of = dict(owners or {})
    unknown = sorted(set(owner_of) - set(graph.nodes))
    if unknown:
        raise PlanError(
            f"The 'owners' parameter names {unknown}, which are not milestones or planned activities. "
            f"Expected some of {sorted(graph.nodes)}."
        )
    names = template.milestone_names
    return _Request(
        now=now,
        today=now.floor("D"),
        goal=resolved,
        days_left=(resolved.target_date + DAY - now) / DAY,
        n=int(n_simulations),
        seed=int(seed),
        names=names,
        ms_index={m: i for i, m in enumerate(names)},
        graph=graph,
        acts=acts,
        owners=owner_of,
    )


def _check_arguments(template: Any, *, n_simulations: Any, seed: Any, as_of: Any) -> pd.Timestamp:
    """Check the template, the number of simulations, the seed and ``as_of``; ``as_of`` as a timestamp."""
    if not isinstance(template, ProcessTemplate):
        raise PlanError(
            "The 'template' parameter of plan_backwards must be a ProcessTemplate. "
            f"Got {type(template).__name__} instead. Fix: salesproc.load_template(path) or derive_template(history)."
        )
    check_template(template, where="plan_backwards")
    if not template.milestones:
        raise PlanError("The template has no milestones to plan. Fix: derive it from a history with milestones.")
    if isinstance(n_simulations, bool) or not isinstance(n_simulations, (int, np.integer)) or n_simulations < 100:
        raise PlanError(
            f"The 'n_simulations' parameter of plan_backwards must be an int >= 100. Got {n_simulations!r} instead."
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise PlanError(f"The 'seed' parameter of plan_backwards must be a non-negative int. Got {seed!r} instead.")
    if as_of is None:
        raise PlanError("The 'as_of' parameter of plan_backwards is required: the plan's today (never the clock).")
    now = _ts(as_of, "as_of")
    assert now is not None
    return now


def _stage_models(
    template: ProcessTemplate, history: History | None, case: str | None, now: pd.Timestamp
) -> _Model:
    """The milestones' duration models: from the history (under the template's names) when given, else the template."""
    if history is not None:
        history = template.align(history)  # renamed / merged milestones match their old event names
    model = _model(template, history, now)
    if case is not None and history is None:
        raise PlanError(
            f"The 'case' parameter ({case!r}) needs the history it comes from. Fix: plan_backwards(..., history=h)."
        )
    return model


def _simulate_paths(model: _Model, state: _State, req: _Request) -> SimResult:
    """The Monte Carlo: ``req.n`` paths from where the case stands (seeded by ``req.seed``)."""
    rng = np.random.default_rng([req.seed, 0])
    return simulate(model.stages, start=state.start, age=state.age, n=req.n, rng=rng)


def _latest_safe_dates(model: _Model, state: _State, req: _Request) -> _Schedule:
    """Latest safe dates at 50% and 80%, working backwards from the target through the dependency graph."""
    remaining_q, notes = model.remaining_quantiles(req.seed, req.n)
    status, fixed = _done_items(state, req)
    topo = list(nx.lexicographical_topological_sort(req.graph, key=req.sort_key))
    latest = {lvl: _latest_at(req, topo, fixed, remaining_q[:, qcol]) for lvl, qcol in (("p50", 0), ("p80", 1))}
    return _Schedule(topo=topo, status=status, fixed=fixed, latest=latest, notes=list(notes))


def _done_items(state: _State, req: _Request) -> tuple[dict[str, str], dict[str, float]]:
    """Status and date (days from ``as_of``) of the items already done, current or skipped."""
    names, now = req.names, req.now
    fixed: dict[str, float] = {}  # done / skipped items: the date they happened (or were passed)
    status: dict[str, str] = {}
    for j, m in enumerate(names):
        if m in state.reached:
            status[m] = "current" if j == state.current else "done"
            fixed[m] = (state.reached[m] - now) / DAY
        elif state.current is not None and j < state.current:
            status[m] = "skipped"
            later = [state.reached[x] for x in names[j + 1 :] if x in state.reached]
            fixed[m] = (min(later) - now) / DAY if later else 0.0
    for act_name, when in state.acts_done.items():
        status[act_name] = "done"
        fixed[act_name] = (when - now) / DAY
    return status, fixed


def _latest_at(req: _Request, topo: list[str], fixed: Mapping[str, float], remaining: np.ndarray) -> dict[str, float]:
    """One level's latest dates: the target minus the time still to go, never later than a dependent item's."""
    days_left = req.days_left
    lat: dict[str, float] = {}
    for node in reversed(topo):
        if node in fixed:
            continue
        if node in req.ms_index:
            base = days_left - float(remaining[req.ms_index[node]])
        else:
            act = req.acts[node]
            if act.milestone is not None:
                succ_ms = lat.get(act.milestone, fixed.get(act.milestone, days_left))
                base = succ_ms - float(act.due_days_before or 0.0)
            else:
                base = days_left
        for s in req.graph.successors(node):
            base = min(base, lat.get(s, fixed.get(s, days_left)))
        lat[node] = min(base, days_left)
    return lat


def _critical_path(sim: SimResult, state: _State, schedule: _Schedule, req: _Request) -> _CriticalPath:
    """Expected dates forward through the dependency graph, each item's slack and the milestone chain's."""
    expected = _expected_entries(sim, state.start, req.names)
    fixed = schedule.fixed
    for node in schedule.topo:  # activities: as soon as what they depend on is done
        if node in fixed or node in req.ms_index:
            continue
        preds = [fixed.get(p, expected.get(p, 0.0)) for p in req.graph.predecessors(node)]
        expected[node] = max([0.0, *preds])
    latest = schedule.latest["p50"]
    slack = {x: latest[x] - expected[x] for x in latest if x in expected}
    ms_slack = [slack[m] for m in req.names if m in slack and m not in fixed]
    chain = max(min(ms_slack), 0.0) if ms_slack else 0.0
    return _CriticalPath(expected=expected, slack=slack, chain=chain)


def _expected_entries(sim: SimResult, start: int, names: list[str]) -> dict[str, float]:
    """Median simulated entry (days from ``as_of``) of each milestone to come, among the paths that succeed."""
    ok = sim.success
    expected: dict[str, float] = {}
    for j in range(start, len(names)):
        col = sim.entry[:, j]
        sel = ok & ~np.isnan(col)
        if not sel.any():
            sel = ~np.isnan(col)
        if sel.any():
            expected[names[j]] = float(np.median(col[sel]))
    return expected


def _odds(sim: SimResult, req: _Request) -> _Odds:
    """The chance of success by the target and at all; the P10/P50/P80 completion dates of the successes."""
    ok = sim.success
    p_success = float(ok.mean())
    probability = float((ok & (sim.total < req.days_left)).mean())
    done_t = sim.total[ok]
    if not len(done_t):
        return _Odds(probability=probability, p_success=p_success)
    q10, q50, q80 = np.quantile(done_t, [0.1, 0.5, 0.8])
    now_ns = req.now.value
    return _Odds(
        probability=probability,
        p_success=p_success,
        earliest=_floor(now_ns, q10),
        p50_date=_floor(now_ns, q50),
        p80_date=_floor(now_ns, q80),
        median_days=float(q50),
    )


def _plan_item(
    node: str, template: ProcessTemplate, req: _Request, state: _State, schedule: _Schedule, path: _CriticalPath
) -> PlanItem:
    """One milestone or activity of the plan: its status, latest safe dates, slack and owner."""
    is_ms = node in req.ms_index
    a = None if is_ms else req.acts[node]
    fixed, slack, now_ns = schedule.fixed, path.slack, req.now.value
    st: str = schedule.status.get(node, "planned")
    l50 = l80 = None
    crit = False
    if node not in fixed:
        l50 = _floor_excl(now_ns, schedule.latest["p50"][node])
        l80 = _floor_excl(now_ns, schedule.latest["p80"][node])
        if l80 < req.today:
            st = "overdue"
        missed = a is not None and a.milestone is not None and a.milestone in fixed
        crit = is_ms or (not missed and node in slack and slack[node] <= path.chain + 0.5)
    done_date = state.reached.get(node) if is_ms else state.acts_done.get(node)
    exp = path.expected.get(node)
    role = (template.milestone(node).owner_role if is_ms else (a.owner_role if a else None))
    return PlanItem(
        name=node,
        type="milestone" if is_ms else "activity",
        owner=req.owners.get(node, role),
        status=st,  # type: ignore[arg-type]
        latest_p50=l50,
        latest_p80=l80,
        done_date=done_date,
        depends_on=tuple(sorted(req.graph.predecessors(node), key=req.sort_key)),
        critical=bool(crit),
        slack=round(slack[node], 1) if (node in slack and node not in fixed) else None,
        expected=_floor(now_ns, exp) if (exp is not None and node not in fixed) else None,
        milestone=None if is_ms else (a.milestone if a else None),
        requirement=None if is_ms else (a.requirement if a else None),
    )


def _assemble_plan(
    template: ProcessTemplate,
    req: _Request,
    *,
    case: str | None,
    state: _State,
    odds: _Odds,
    items: list[PlanItem],
    fixed: Mapping[str, float],
    notes: list[str],
) -> Plan:
    """The Plan: the items to do by window (latest safe date at 80%), the critical path, the message, the notes."""
    today, n = req.today, req.n
    missed_acts = [it.name for it in items if it.remaining and it.milestone is not None and it.milestone in fixed]
    if missed_acts:
        notes.append(
            "not done although due before a milestone already reached (listed as overdue, still worth doing): "
            + ", ".join(missed_acts)
        )
    todo = [it for it in items if it.remaining]
    assert all(it.latest_p80 is not None for it in todo)
    overdue = tuple(it.name for it in todo if it.latest_p80 < today)  # type: ignore[operator]
    week = tuple(it.name for it in todo if today <= it.latest_p80 < today + 7 * DAY)  # type: ignore[operator]
    two = tuple(
        it.name for it in todo if today + 7 * DAY <= it.latest_p80 < today + 21 * DAY  # type: ignore[operator]
    )
    position = req.names[state.start]
    message = _message(
        kind=template.kind, probability=odds.probability, p_success=odds.p_success, target=req.goal.target_date,
        today=today, position=position if state.current is None else f"{position} (there for {state.age:.0f} days)",
        median_days=odds.median_days, earliest=odds.earliest, p50=odds.p50_date, p80=odds.p80_date, n=n,
    )
    notes.append(
        "P50/P80 completion dates and the earliest realistic date are conditional on success; "
        f"'this week' and 'next two weeks' go by the latest safe date at 80% ({n:,} simulations, seed {req.seed})."
    )
    return Plan(
        template_name=template.name,
        kind=template.kind,
        case_id=str(case) if case is not None else None,
        goal=req.goal,
        as_of=req.now,
        target_date=req.goal.target_date,
        probability=odds.probability,
        p_success=odds.p_success,
        p50_date=odds.p50_date,
        p80_date=odds.p80_date,
        earliest_date=odds.earliest,
        median_days=odds.median_days,
        current=req.names[state.current] if state.current is not None else None,
        items=tuple(items),
        critical_path=tuple(it.name for it in items if it.critical),
        this_week=week,
        next_two_weeks=two,
        overdue=overdue,
        message=message,
        notes=tuple(dict.fromkeys(notes)),
        n_simulations=n,
        seed=req.seed,
    )


# --- pieces of plan_backwards ----------------------------------------------------------------


def _day(value: Any, name: str, where: str) -> pd.Timestamp:
    if value is None:
        raise PlanError(f"The {name!r} parameter of {where} is required: the day the goal is due.")
    try:
        t = _ts(value, name)
    except ValueError as exc:
        raise PlanError(
            f"The {name!r} parameter of {where} must be a date (e.g. '2024-06-30'). Got {value!r} instead."
        ) from exc
    assert t is not None
    return t.floor("D")


def _resolve_goal(goal: Goal | None, target_date: Any, kind: str) -> Goal:
    default = "Deal won" if kind == "deal" else "Project delivered"
    if goal is None:
        return Goal(_day(target_date, "target_date", "plan_backwards"), success=default)
    if not isinstance(goal, Goal):
        raise PlanError(f"The 'goal' parameter of plan_backwards must be a Goal. Got {type(goal).__name__} instead.")
    if target_date is not None:
        t = _day(target_date, "target_date", "plan_backwards")
        if t != goal.target_date:
            raise PlanError(
                f"target_date {t:%Y-%m-%d} differs from goal.target_date {goal.target_date:%Y-%m-%d}. "
                "Fix: give only one of them."
            )
    return replace(goal, success=goal.success or default)


def _graph(
    template: ProcessTemplate, extra: Iterable[Dependency | tuple[str, str]]
) -> tuple[nx.DiGraph, dict[str, Any]]:
    """Milestones and planned activities with their dependencies; a cycle is a :class:`PlanError`."""
    deps = list(template.all_dependencies())
    known = set(template.milestone_names) | {a.name for a in template.activities}
    for d in extra:
        before, after = (d.before, d.after) if isinstance(d, Dependency) else tuple(d)
        for end in (before, after):
            if end not in known:
                raise PlanError(
                    f"The 'dependencies' parameter names {end!r} ({before!r} -> {after!r}), which is neither a "
                    f"milestone nor an activity of template {template.name!r}. Expected one of {sorted(known)}."
                )
        deps.append(Dependency(before=before, after=after))
    in_deps = {x for d in deps for x in (d.before, d.after)}
    acts = {a.name: a for a in template.activities if (a.critical and a.milestone is not None) or a.name in in_deps}
    g: nx.DiGraph = nx.DiGraph()
    g.add_nodes_from(template.milestone_names)
    g.add_nodes_from(acts)
    for d in deps:
        if d.before in g and d.after in g and d.before != d.after:
            g.add_edge(d.before, d.after)
        elif d.before == d.after:
            raise PlanError(f"dependency cycle: {d.before} -> {d.after} (an item cannot depend on itself).")
    try:
        cyc = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        return g, acts
    ring = [str(e[0]) for e in cyc]
    ms_index = {m: i for i, m in enumerate(template.milestone_names)}
    first = min(range(len(ring)), key=lambda i: _sort_key(ring[i], ms_index, acts))
    ring = ring[first:] + ring[:first]  # start the cycle at its earliest item, whatever the search order
    path = " -> ".join([*ring, ring[0]])
    raise PlanError(
        f"dependency cycle: {path}. Fix: remove one of these dependencies (in template.dependencies or "
        "the 'dependencies' parameter); milestones already follow the template's order."
    )


def _sort_key(node: str, ms_index: Mapping[str, int], acts: Mapping[str, Any]) -> tuple[int, int, str]:
    if node in ms_index:
        return (ms_index[node], 1, node)
    a = acts.get(node)
    m = a.milestone if a is not None else None
    return (ms_index.get(m, len(ms_index)) if m else len(ms_index), 0, node)


@dataclass(eq=False)
class _Model:
    template: ProcessTemplate
    history: History | None
    view: History | None
    stages: list[StageModel]
    notes: list[str]
    _remaining: dict[tuple[int, int], tuple[np.ndarray, list[str]]] = field(default_factory=dict)
    _index: tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    def case(self, case_id: str) -> tuple[pd.Series, list[tuple[str, bool, int]]] | None:
        """One case of the history view: its row and its events as ``(name, is_milestone_type, ns)``."""
        assert self.view is not None
        if self._index is None:
            c, e = self.view._cases, self.view._events
            pos = {str(x): i for i, x in enumerate(c["case_id"].tolist())}
            codes = e["case_id"].cat.codes.to_numpy()
            order = np.argsort(codes, kind="stable")
            bounds = np.searchsorted(codes[order], np.arange(len(c) + 1))
            names = e["name"].astype(str).to_numpy(dtype=object)[order]
            is_ms = (e["type"].astype(str) == "milestone").to_numpy()[order]
            ns = e["timestamp"].array.asi8[order]
            self._index = (pos, bounds, names, is_ms, ns)
        pos, bounds, names, is_ms, ns = self._index
        i = pos.get(case_id)
        if i is None:
            return None
        lo, hi = int(bounds[i]), int(bounds[i + 1])
        events = [(str(names[k]), bool(is_ms[k]), int(ns[k])) for k in range(lo, hi)]
        return self.view._cases.iloc[i], events

    def remaining_quantiles(self, seed: int, n: int) -> tuple[np.ndarray, list[str]]:
        """(K, 2): the 50th and 80th percentile of the time from entering each milestone to success;
        and notes on milestones from which too few simulated paths succeed."""
        key = (seed, n)
        if key not in self._remaining:
            K = len(self.stages)
            out = np.zeros((K, 2))
            notes: list[str] = []
            for j in range(K):
                r = simulate(self.stages, start=j, age=0.0, n=n, rng=np.random.default_rng([seed, 1, j]))
                enough = int(r.success.sum()) >= _MIN_SUCCESS_PATHS
                if not enough:
                    notes.append(
                        f"{self.stages[j].name}: too few simulated successes from there; its latest dates use "
                        "all simulated paths"
                    )
                out[j] = np.quantile(r.total[r.success] if enough else r.total, [0.5, 0.8])
            self._remaining[key] = (out, notes)
        return self._remaining[key]


_MODELS: OrderedDict[tuple[int, int, int], _Model] = OrderedDict()


def _model(template: ProcessTemplate, history: History | None, as_of: pd.Timestamp) -> _Model:
    """Stage models for ``template`` (from ``history`` as known at ``as_of`` when given), memoised."""
    key = (id(template), id(history), as_of.value)
    hit = _MODELS.get(key)
    if hit is not None and hit.template is template and hit.history is history:
        _MODELS.move_to_end(key)
        return hit
    view = _history_view(template, history, as_of) if history is not None else None
    hist_stages = _history_visits(view, template, as_of) if view is not None else {}
    notes: list[str] = []
    stages: list[StageModel] = []
    ordered = sorted(template.milestones, key=lambda m: m.order)
    rates = [m.evidence.to_next.rate for m in ordered[:-1] if m.evidence.to_next and m.evidence.to_next.rate is not None]
    # projects: the last milestone's to_next counts late finishes as not converting; its failure rate
    # is taken as the other milestones' average instead
    project_last = float(np.mean(rates)) if rates else 1.0
    for m in ordered:
        from_hist = hist_stages.get(m.name)
        if from_hist is not None:
            st, note = stage_from_history(m.name, days=from_hist[0], exit_kind=from_hist[1], skip=m.evidence.skipped_share)
            stage_notes = [note] if note else []
        else:
            p_move = project_last if template.kind == "project" and m is ordered[-1] else None
            st, stage_notes = _template_stage(m, p_move, with_history=history is not None)
        notes += stage_notes
        stages.append(st)
    notes += _source_notes(template, history, as_of, last=ordered[-1].name, project_last=project_last)
    model = _Model(template=template, history=history, view=view, stages=stages, notes=notes)
    _MODELS[key] = model
    while len(_MODELS) > 4:
        _MODELS.popitem(last=False)
    return model


def _history_view(template: ProcessTemplate, history: Any, as_of: pd.Timestamp) -> History:
    """The history as known at ``as_of``, the template's kind of cases only; none is a PlanError."""
    if not isinstance(history, History):
        raise PlanError(
            f"The 'history' parameter of plan_backwards must be a History. Got {type(history).__name__} instead."
        )
    view = history.as_of(as_of)
    if set(view.kinds) - {template.kind}:
        view = view.filter(kind=template.kind)
    if len(view) == 0:
        raise PlanError(
            f"The history holds no {template.kind}s created by {as_of:%Y-%m-%d}. "
            "Fix: pass a later as_of or the matching history."
        )
    return view


def _template_stage(m: Milestone, p_move: float | None, *, with_history: bool) -> tuple[StageModel, list[str]]:
    """A milestone's stage model from the template's numbers (``p_move`` overrides its ``to_next``), with notes."""
    ev = m.evidence
    notes: list[str] = []
    if with_history:
        notes.append(f"{m.name}: under {_MIN_VISITS} visits in the history; the template's numbers are used")
    hand = bool({"p50_days", "p80_days"} & set(m.edited))
    if p_move is None:
        if ev.to_next is not None and ev.to_next.rate is not None:
            p_move = ev.to_next.rate
        else:
            p_move = 1.0
            notes.append(f"{m.name}: no evidence on how many move on; the plan assumes all do")
    try:
        st, note = stage_from_template(
            m.name, quantiles=list(ev.duration.quantiles), p50=m.p50_days, p80=m.p80_days,
            p_move=p_move, skip=ev.skipped_share, use_quantiles=not hand, revisit=ev.revisited_share,
        )
    except ValueError:
        raise PlanError(
            f"milestone {m.name!r} has no duration to plan with (no quantiles, no p50_days). "
            "Fix: set p50_days and p80_days for it in the template, or pass history=."
        ) from None
    if note:
        notes.append(note)
    return st, notes


def _source_notes(
    template: ProcessTemplate, history: History | None, as_of: pd.Timestamp, *, last: str, project_last: float
) -> list[str]:
    """Notes on where the durations and conversion come from."""
    if history is not None:
        return [
            f"durations and conversion from the history as known on {as_of:%Y-%m-%d}: Aalen-Johansen over the "
            "time from first reaching each milestone to first reaching a later one (loops included; cases "
            "still there are censored)"
        ]
    notes = ["durations and conversion from the template's evidence (pass history= for the full empirical data)"]
    if template.kind == "project":
        notes.append(
            f"projects: the template's last step counts late finishes as not converting, so the chance of "
            f"failing at {last} is taken as the other milestones' average ({1 - project_last:.0%}); "
            "pass history= to count failed projects directly"
        )
    return notes


def _history_visits(view: History, template: ProcessTemplate, as_of: pd.Timestamp) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per template milestone: days from first reaching it to first reaching a later one (or the close),
    and how that ended (1 moved on, 2 lost, 0 still there at ``as_of``: censored)."""
    from salesproc.derive._derive import NAT, NEVER, _Prepared

    rule = template.provenance.options.get("milestones")
    if not isinstance(rule, (str, list)):
        rule = None
    P = _Prepared(view, rule, as_of)
    names = template.milestone_names
    pos = {m: i for i, m in enumerate(names)}
    order = np.array([pos.get(m, -1) for m in P.ms_names], dtype=np.int64)
    ev_order = order[P.mk] if len(P.mk) else np.zeros(0, np.int64)
    closed = P.closed_case & (P.closed_ns != NAT)
    if template.kind == "project":
        finished = (view._cases["outcome"].astype(str) != "failed").to_numpy()
    else:
        finished = P.success
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for j, name in enumerate(names):
        if name not in P.ms_names:
            continue
        start = P.first[:, P.ms_names.index(name)]
        reached = start < NEVER
        if int(reached.sum()) < _MIN_VISITS:
            continue
        nxt = np.full(P.n, NEVER, dtype=np.int64)
        m = (ev_order > j) & reached[P.mc] & (P.mt >= start[P.mc])
        np.minimum.at(nxt, P.mc[m], P.mt[m])
        close_t = np.where(closed, np.maximum(P.closed_ns, start), NEVER)
        moved = nxt <= close_t
        end = np.minimum(nxt, close_t)
        kind = np.where(moved & (nxt < NEVER), 1, np.where(closed, np.where(finished, 1, 2), 0))
        end = np.where(kind == 0, max(P.as_of_ns, 0), end)
        days = np.maximum(end - start, 0)[reached] / 86_400e9
        exit_kind = kind[reached]
        if bool((exit_kind > 0).any()):
            out[name] = (days, exit_kind)
    return out


@dataclass(frozen=True)
class _State:
    """Where a case stands on ``as_of``: its current milestone, for how long, what it reached and did when."""

    current: int | None = None
    age: float = 0.0
    reached: dict[str, pd.Timestamp] = field(default_factory=dict)
    acts_done: dict[str, pd.Timestamp] = field(default_factory=dict)

    @property
    def start(self) -> int:
        """The milestone the simulated paths start from."""
        return self.current if self.current is not None else 0


def _case_state(
    model: _Model, case: str, template: ProcessTemplate, acts: Mapping[str, Any], as_of: pd.Timestamp
) -> _State:
    """Where ``case`` stands in the history on ``as_of``; an unknown or closed case is a :class:`PlanError`."""
    view = model.view
    assert view is not None
    found = model.case(case)
    if found is None:
        raise PlanError(
            f"no case {case!r} in the history as known on {as_of:%Y-%m-%d} ({len(view):,} {template.kind}s). "
            "Fix: check the id, or pass a later as_of if the case was created after it."
        )
    row, ev = found
    if str(row["status"]) != "open":
        closed = row["closed"]
        closed_on = f" on {closed:%Y-%m-%d}" if not pd.isna(closed) else ""
        raise PlanError(
            f"case {case!r} is already closed ({row['outcome']}{closed_on}); plans are for open cases. "
            "Fix: pick an open case (history.filter(status='open')) or an as_of before it closed."
        )
    names = template.milestone_names
    idx = {m: i for i, m in enumerate(names)}
    reached: dict[str, pd.Timestamp] = {}
    acts_done: dict[str, pd.Timestamp] = {}
    for name, is_ms_type, ns in ev:
        when = pd.Timestamp(ns, tz="UTC")
        if when > as_of:
            continue
        if is_ms_type or name in idx:
            if name in idx and name not in reached:
                reached[name] = when
        elif name in acts and name not in acts_done:
            acts_done[name] = when
    if reached:
        cur = max(idx[m] for m in reached)
        entered = reached[names[cur]]  # its time in milestone runs from the first reach
        return _State(current=cur, age=max((as_of - entered) / DAY, 0.0), reached=reached, acts_done=acts_done)
    created = row["created"]
    age = max((as_of - created) / DAY, 0.0) if not pd.isna(created) else 0.0
    return _State(age=age, reached=reached, acts_done=acts_done)


def _message(
    *,
    kind: str,
    probability: float,
    p_success: float,
    target: pd.Timestamp,
    today: pd.Timestamp,
    position: str,
    median_days: float | None,
    earliest: pd.Timestamp | None,
    p50: pd.Timestamp | None,
    p80: pd.Timestamp | None,
    n: int,
) -> str:
    unit, reach, at_all = ("deals", "reach a win", "are won") if kind == "deal" else ("projects", "finish", "finish")
    away = int((target - today) / DAY)
    if away > 0:
        when = f"the target is {away} day{'s' if away != 1 else ''} away"
    elif away == 0:
        when = "the target is today"
    else:
        when = f"the target date passed {-away} day{'s' if away != -1 else ''} ago"
    if median_days is None:
        pace = f"{unit} like this almost never {reach} from {position} (no success in {n:,} simulations)"
    else:
        pace = f"{unit} like this {reach} from {position} in a median of {median_days:.0f} days"
    core = f"{when}; {pace}; {_pct(probability)} chance"
    if median_days is None:
        return f"Infeasible: {core}."
    tail = (
        f" {_pct(p_success)} of {unit} like this {at_all} at all; those that do, by {_d(p50)} (50%) "
        f"or {_d(p80)} (80%)."
    )
    if probability < 0.01:
        return f"Infeasible: {core}. The earliest realistic date is {_d(earliest)}.{tail}"
    if probability < 0.2:
        return f"Unlikely: {core}. The earliest realistic date is {_d(earliest)}.{tail}"
    verdict = "Likely" if probability >= 0.8 else ("Feasible" if probability >= 0.5 else "Tight")
    return f"{verdict}: {core}.{tail}"


# --- small helpers ---------------------------------------------------------------------------


def _floor(origin_ns: int, days: float) -> pd.Timestamp:
    return (pd.Timestamp(origin_ns, tz="UTC") + pd.Timedelta(days=float(days))).floor("D")


def _floor_excl(origin_ns: int, days: float) -> pd.Timestamp:
    """The day of the instant just before ``origin + days`` (a deadline at midnight belongs to the day before)."""
    return (pd.Timestamp(origin_ns, tz="UTC") + pd.Timedelta(days=float(days)) - pd.Timedelta(1, "ns")).floor("D")


def _d(t: pd.Timestamp | None) -> str:
    return "-" if t is None or pd.isna(t) else f"{t:%Y-%m-%d}"


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


def _long_date(t: pd.Timestamp) -> str:
    """A day as people say it, in English whatever the locale: ``30 June 2024``."""
    return f"{t.day} {_MONTHS[t.month - 1]} {t.year}"


def _owned(who: str, side: str) -> str:
    """An owner with their side: ``Ana (seller)``; ``Dana (AE)`` becomes ``Dana (AE, seller)``."""
    who = who.strip()
    if who.endswith(")") and "(" in who:
        return f"{who[:-1]}, {side})"
    return f"{who} ({side})"


def _pct(p: float) -> str:
    if p <= 0:
        return "0%"
    if p < 0.01:
        return "under 1%"
    if p > 0.99 and p < 1:
        return "over 99%"
    return f"{p:.0%}"


def _csv_safe(v: Any) -> Any:
    if isinstance(v, str) and v.startswith(_CSV_DANGEROUS):
        return "'" + v
    return v


# --- iCalendar -------------------------------------------------------------------------------


def _ical(plan: Plan, level: str) -> bytes:
    from icalendar import Calendar, Event

    if level not in ("p50", "p80"):
        raise PlanError(f"The 'level' parameter must be 'p50' or 'p80'. Got {level!r} instead.")
    cal = Calendar()
    cal.add("prodid", "-//salesproc//plan_backwards//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", f"{plan.goal.success} by {_d(plan.target_date)}")
    stamp = plan.as_of.to_pydatetime()
    key = plan.case_id if plan.case_id is not None else f"template:{plan.template_name}"
    pct = "80%" if level == "p80" else "50%"
    for it in plan.items:
        if not it.remaining:
            continue
        day = it.latest_p80 if level == "p80" else it.latest_p50
        assert day is not None
        ev = Event()
        uid = hashlib.sha1(f"{key}\x1f{it.name}".encode()).hexdigest()[:24]
        ev.add("uid", f"{uid}@salesproc")
        ev.add("dtstamp", stamp)
        ev.add("dtstart", day.date())
        ev.add("dtend", (day + DAY).date())
        prefix = "[overdue] " if it.status == "overdue" else ""
        ev.add("summary", f"{prefix}{it.name}: latest safe date ({pct})")
        lines = [
            f"{'Milestone' if it.type == 'milestone' else 'Activity'} of the plan '{plan.goal.success}' "
            f"(target {_d(plan.target_date)}, {_pct(plan.probability)} chance).",
            f"Latest safe date: {_d(it.latest_p80)} (80%), {_d(it.latest_p50)} (50%).",
        ]
        if it.owner:
            lines.append(f"Owner: {it.owner}")
        if it.depends_on:
            lines.append(f"After: {', '.join(it.depends_on)}")
        if it.milestone:
            lines.append(f"Due before: {it.milestone}")
        if it.critical:
            lines.append("On the critical path.")
        ev.add("description", "\n".join(lines))
        ev.add("categories", ["salesproc", it.type])
        ev.add("transp", "TRANSPARENT")
        cal.add_component(ev)
    return bytes(cal.to_ical())


# --- minimal Markdown / HTML rendering -------------------------------------------------------

_MD = """\
# {{ title|md }}

**{{ headline|md }}**

{{ message|md }}

| | |
|---|---|
| Goal | {{ goal.success|md }} by {{ target }} |
{% if goal.measure %}
| Measured by | {{ goal.measure|md }} |
{% endif %}
{% for side, who in goal.owners if who %}
| {{ side }} owner | {{ who|md }} |
{% endfor %}
{% for k, v in summary %}
| {{ k }} | {{ v|md }} |
{% endfor %}
| As of | {{ as_of }} |
{% for label, rows in windows if rows %}

## {{ label }}

{% for r in rows %}
- [ ] **{{ r.name|md }}** by {{ r.latest_p80 }}{% if r.owner %} ({{ r.owner|md }}){% endif %}

{% endfor %}
{% endfor %}

## Checklist

{% for r in items %}
- [{{ 'x' if r.done else ' ' }}] {% if r.critical %}**{{ r.name|md }}**{% else %}{{ r.name|md }}{% endif %} \
({{ r.type }}) - {% if r.done %}done {{ r.done_date }}{% elif r.status == 'skipped' %}skipped\
{% else %}latest safe date {{ r.latest_p80 }} (80%) / {{ r.latest_p50 }} (50%)\
{% if r.status == 'overdue' %}, overdue{% endif %}{% endif %}\
{% if r.owner %} - owner {{ r.owner|md }}{% endif %}{% if r.depends_on %} - after {{ r.depends_on|md }}{% endif %}\
{% if r.critical %} - critical{% endif %}

{% endfor %}
{% if notes %}

## Notes

{% for n in notes %}
- {{ n|md }}
{% endfor %}
{% endif %}
"""

_HTML_FRAGMENT = """\
<div class="salesproc-plan">
<h3>{{ title }}</h3>
<p>Goal: {{ goal_sentence }}</p>
<p><strong>{{ headline }}</strong></p>
<p>{{ message }}</p>
<table class="salesproc-plan-summary">
<tr><th>Goal</th><td>{{ goal.success }} by {{ target }}</td></tr>
{% if goal.measure %}<tr><th>Measured by</th><td>{{ goal.measure }}</td></tr>
{% endif %}{% for side, who in goal.owners %}{% if who %}<tr><th>{{ side }} owner</th><td>{{ who }}</td></tr>
{% endif %}{% endfor %}{% for k, v in summary %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>
{% endfor %}<tr><th>As of</th><td>{{ as_of }}</td></tr>
</table>
{% for label, rows in windows %}{% if rows %}<h4>{{ label }}</h4>
<ul>
{% for r in rows %}<li><strong>{{ r.name }}</strong> by {{ r.latest_p80 }}{% if r.owner %} ({{ r.owner }}){% endif %}</li>
{% endfor %}</ul>
{% endif %}{% endfor %}<h4>Checklist</h4>
<table class="salesproc-plan-items">
<tr><th></th><th>item</th><th>type</th><th>owner</th><th>latest safe date (80%)</th><th>latest safe date (50%)</th><th>done</th><th>after</th><th>slack (days)</th></tr>
{% for r in items %}<tr class="{{ r.status }}{% if r.critical %} critical{% endif %}"><td>{{ '&#9745;'|safe if r.done else '&#9744;'|safe }}</td><td>{% if r.critical %}<strong>{{ r.name }}</strong>{% else %}{{ r.name }}{% endif %}</td><td>{{ r.type }}</td><td>{{ r.owner }}</td><td>{{ r.latest_p80 if not r.done and r.status != 'skipped' else '' }}</td><td>{{ r.latest_p50 if not r.done and r.status != 'skipped' else '' }}</td><td>{{ r.done_date if r.done else r.status }}</td><td>{{ r.depends_on }}</td><td>{{ r.slack }}</td></tr>
{% endfor %}</table>
{% if notes %}<details><summary>How this was worked out</summary><ul>
{% for n in notes %}<li>{{ n }}</li>
{% endfor %}</ul></details>
{% endif %}</div>
"""

_HTML_PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; }
tr.overdue td { color: #b00020; }
tr.done td, tr.current td, tr.skipped td { color: #666; }
</style>
</head>
<body>
{% include "html_fragment" %}
</body>
</html>
"""


def _md_escape(value: Any) -> str:
    s = "" if value is None else str(value)
    for ch in ("\\", "`", "*", "_", "[", "]", "<", ">", "|", "#"):
        s = s.replace(ch, "\\" + ch)
    return s.replace("\n", " ")


_ENV: dict[str, Any] = {}


def _render(name: str, ctx: dict[str, Any]) -> str:
    import jinja2

    if not _ENV:
        loader = jinja2.DictLoader({"markdown": _MD, "html_fragment": _HTML_FRAGMENT, "html_page": _HTML_PAGE})
        md = jinja2.Environment(loader=loader, autoescape=False, keep_trailing_newline=True,
                                trim_blocks=True, lstrip_blocks=True)
        md.filters["md"] = _md_escape
        _ENV["md"] = md
        _ENV["html"] = jinja2.Environment(loader=loader, autoescape=True, keep_trailing_newline=True)
    env = _ENV["md"] if name == "markdown" else _ENV["html"]
    return str(env.get_template(name).render(**ctx))


# --- chart -----------------------------------------------------------------------------------


def plot_plan(plan: Plan, ax: Any = None) -> Any:
    """A Gantt-style chart of ``plan``: done bars, planned windows from the P80 to the P50 latest safe
    date, the target date and today.

    Parameters
    ----------
    plan
        A :class:`Plan`.
    ax
        A matplotlib Axes to draw on; a new Figure (no pyplot state) when omitted.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import salesproc
    >>> from salesproc.template import ProcessTemplate, Milestone
    >>> t = ProcessTemplate(milestones=[Milestone(name="Qualify", order=1, p50_days=5, p80_days=9),
    ...                                 Milestone(name="Proposal", order=2, p50_days=10, p80_days=20)])
    >>> p = salesproc.plan_backwards(t, target_date="2024-03-01", as_of="2024-01-15", n_simulations=500)
    >>> ax = salesproc.plot_plan(p)
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['Qualify', 'Proposal']
    """
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    items = list(plan.items)
    if ax is None:
        fig = Figure(figsize=(9, 1.6 + 0.42 * max(len(items), 1)), layout="constrained")
        ax = fig.subplots()

    def x(t: pd.Timestamp) -> float:
        return float(mdates.date2num(t.tz_convert(None).to_pydatetime()))

    today, target = x(plan.as_of), x(plan.target_date + DAY)
    ms_done = sorted(
        [(it.done_date, it.name) for it in items if it.type == "milestone" and it.done and it.done_date is not None]
    )
    ends = {name: (ms_done[i + 1][0] if i + 1 < len(ms_done) else plan.as_of) for i, (_, name) in enumerate(ms_done)}
    for y, it in enumerate(items):
        if it.done and it.done_date is not None:
            start = x(it.done_date)
            if it.type == "milestone":
                ax.barh(y, max(x(ends[it.name]) - start, 0.3), left=start, height=0.5, color="#9e9e9e")
            else:
                ax.plot([start], [y], marker="o", color="#9e9e9e")
        elif it.remaining and it.latest_p50 is not None and it.latest_p80 is not None:
            lo, hi = x(it.latest_p80), x(it.latest_p50 + DAY)
            color = "#c62828" if it.status == "overdue" else ("#1565c0" if it.critical else "#64b5f6")
            ax.barh(y, hi - lo, left=lo, height=0.5, color=color, alpha=0.85)
            if it.expected is not None:
                ax.plot([x(it.expected)], [y], marker="|", markersize=12, color="black")
    ax.axvline(target, color="#c62828", linestyle="--", linewidth=1.2)
    ax.axvline(today, color="black", linestyle=":", linewidth=1.2)
    ax.set_yticks(range(len(items)), [it.name for it in items])
    for label in ax.get_yticklabels():
        label.set_parse_math(False)  # names are user text: '$' is a dollar, not mathtext
    ax.invert_yaxis()
    ax.xaxis_date()
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
    ax.set_title(f"{plan.goal.success}: {plan.headline}", fontsize=10).set_parse_math(False)
    handles: list[Any] = [
        Patch(color="#9e9e9e", label="done"),
        Patch(color="#1565c0", label="latest safe window (80% to 50%), critical"),
        Patch(color="#64b5f6", label="latest safe window, with slack"),
        Patch(color="#c62828", label="overdue"),
    ]
    from matplotlib.lines import Line2D

    handles += [
        Line2D([], [], color="#c62828", linestyle="--", label=f"target {_d(plan.target_date)}"),
        Line2D([], [], color="black", linestyle=":", label=f"today {_d(plan.as_of)}"),
    ]
    ax.legend(handles=handles, loc="lower left", fontsize=7, framealpha=0.9)
    return ax

