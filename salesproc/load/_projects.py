"""Project milestone tables -> History: one row per milestone with its planned and actual dates.

A delivery team's plan-versus-actual table is the project counterpart of a CRM export. Each
project becomes a case of kind ``project``:

* events are the milestones achieved, at their actual dates (planned date kept as ``planned``,
  the slip in days as ``slip_days``); milestones not yet achieved are not events;
* ``target_date`` is the project's target column when mapped, else the planned date of its last
  milestone (the latest planned date);
* a project whose milestones are all done ``closed`` at the latest actual date and is
  ``on_time`` when that is on or before ``target_date``, ``late`` after it; other projects are open.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from salesproc.history._finalize import i8
from salesproc.history._history import TS_DTYPE, History
from salesproc.load._options import LoadOptions
from salesproc.load._tabular import (
    CaseRows,
    SourceRows,
    ensure_frame,
    extra_columns,
    group_dates,
    milestone_events,
)

__all__ = ["milestone_table_history"]

_DAY_NS = 86_400 * 10**9


def milestone_table_history(
    df: pd.DataFrame,
    cols: Mapping[str, str],
    *,
    source: str = "<data>",
    options: LoadOptions | None = None,
    case_columns: Sequence[str] = (),
    aliases: Mapping[str, Sequence[str]] | None = None,
    preset: str | None = None,
) -> History:
    """A history of projects from a milestone table (one row per planned/actual milestone).

    Parameters
    ----------
    df
        The table, one row per milestone of a project, any order.
    cols
        Canonical name -> column: ``case_id`` (project), ``name`` (milestone), ``planned`` and
        ``actual`` (dates; ``actual`` empty until achieved) are required. Optional: ``owner``
        (of the milestone), ``case_owner`` (of the project), ``target_date`` (the project's
        planned end), ``created`` (its start), ``segment``, ``amount`` (budget) and ``outcome``
        (an explicit project outcome, e.g. ``failed`` for a cancelled project). Other columns
        become attributes of the achieved milestones' events, except ``case_columns``.
    options
        How dates are read and rows checked (``errors``, ``tz``, ``dayfirst``, ``date_format``,
        ``decimal``, ``milestones``); ``outcome_values`` labels the optional ``outcome`` column, e.g.
        ``{"Cancelled": "failed"}``. Its ``kind`` is not used: every case is a ``project``.
        Default: :class:`LoadOptions`' defaults.
    case_columns
        Columns that describe the project, not the milestone (e.g. ``project_name``): kept as
        case attributes (the last value given for the project).

    Returns
    -------
    History
        Project cases with ``target_date``, ``closed`` (when all milestones are done), outcome
        ``on_time`` | ``late`` | ``open`` (or the mapped outcome), and attributes
        ``milestones_total``, ``milestones_done``, ``next_milestone`` and ``next_planned``.

    Examples
    --------
    >>> import io, salesproc
    >>> csv = io.StringIO(
    ...     "project_id,milestone,planned_date,actual_date\\n"
    ...     "P1,Kickoff,2024-01-08,2024-01-08\\nP1,Go-live,2024-03-01,2024-03-04\\n"
    ...     "P2,Kickoff,2024-02-01,2024-02-02\\nP2,Go-live,2024-04-30,\\n"
    ... )
    >>> h = salesproc.load_history(csv, mapping="project-milestones")
    >>> h.cases[["case_id", "kind", "outcome", "milestones_done"]].to_dict("records")
    [{'case_id': 'P1', 'kind': 'project', 'outcome': 'late', 'milestones_done': 2}, {'case_id': 'P2', 'kind': 'project', 'outcome': 'open', 'milestones_done': 1}]
    >>> h.events[["name", "slip_days"]].astype(str).values.tolist()
    [['Kickoff', '0.0'], ['Go-live', '3.0'], ['Kickoff', '1.0']]
    """
    t = SourceRows.read(
        ensure_frame(df, source), cols, required=("case_id", "name", "planned", "actual"), aliases=aliases,
        preset=preset, source=source, options=options,
    )
    checked = _check_milestones(t)
    projects = _Projects.of(t, checked)
    target, closed = _targets(projects, checked)
    keep = _check_targets(t, projects, target)
    created, notes = _project_starts(projects, checked)
    case_attr = [c for c in case_columns if c in t.df.columns and c not in t.use.values()]
    cases = _project_cases(t, projects, checked, _ProjectDates(created, target, closed), keep, case_attr)
    events = _achieved_milestones(t, projects, keep, case_attr)
    out_vals = {str(a): str(b) for a, b in (t.options.outcome_values or {}).items()} or None
    return t.build(events, cases, notes, kind="project", outcome_values=out_vals)


@dataclass(frozen=True)
class _MilestoneRows:
    """A milestone table's checked rows: project ids, milestone names, planned and actual dates, the
    projects' own dates (``target_date``, ``created``), amounts, and the rows kept."""

    cid: pd.Series
    name: pd.Series
    planned: pd.Series
    actual: pd.Series
    dates: dict[str, pd.Series]
    amount: pd.Series | None
    keep: np.ndarray


def _check_milestones(t: SourceRows) -> _MilestoneRows:
    """Skip rows without a project, a milestone name or any date, with unreadable cells, or repeated."""
    cid = t.text("case_id")
    keep = t.filled(
        "case_id", cid, t.keep_all(), expected="a project id (not empty)", fix="fill the id, or delete the row.",
        reason="empty case id",
    )
    name = t.text("name")
    keep = t.filled(
        "name", name, keep, expected="a milestone name (not empty)", fix="fill the milestone name, or delete the row.",
        reason="empty milestone name",
    )
    plan_col, name_col = t.use["planned"], t.use["name"]
    planned, keep = t.dates(plan_col, keep)
    actual, keep = t.dates(t.use["actual"], keep)
    keep = keep & t.sk.bad(
        (planned.isna() & actual.isna()).to_numpy() & keep, rows=t.rows, column=plan_col,
        values=t.df[plan_col], expected="a planned date (or an actual date) for the milestone",
        fix="fill the planned date, or delete the row.", reason="milestone with neither planned nor actual date",
    )
    proj_dates: dict[str, pd.Series] = {}
    for canon in ("target_date", "created"):
        if canon in t.use:
            proj_dates[canon], keep = t.dates(t.use[canon], keep)
    amount, keep = t.amounts(keep)
    dup = pd.DataFrame({"p": cid, "m": name}).duplicated(keep="first").to_numpy() & keep
    keep = keep & t.sk.bad(
        dup, rows=t.rows, column=name_col, values=t.df[name_col],
        expected="each milestone once per project", fix="delete the repeated row, or rename the milestone.",
        reason="repeated milestone of a project",
    )
    return _MilestoneRows(cid, name, planned, actual, proj_dates, amount, keep)


@dataclass(frozen=True)
class _Projects:
    """The kept milestones grouped by project: their names, planned and actual dates, row numbers,
    which are done, and per project how many there are and how many are done."""

    cases: CaseRows
    name: np.ndarray
    planned: pd.Series
    actual: pd.Series
    rows: np.ndarray
    done: np.ndarray
    total: np.ndarray
    n_done: np.ndarray

    @property
    def all_done(self) -> np.ndarray:
        """Which projects have achieved every milestone."""
        return (self.n_done == self.total) & (self.total > 0)

    @classmethod
    def of(cls, t: SourceRows, r: _MilestoneRows) -> _Projects:
        """Group the kept rows by project (in order of first appearance)."""
        k = np.flatnonzero(r.keep)
        codes, uniq = pd.factorize(r.cid.to_numpy()[k], sort=False)
        m = len(uniq)
        act_k = r.actual.iloc[k].reset_index(drop=True)
        done = act_k.notna().to_numpy()
        return cls(
            CaseRows(k, codes, np.asarray(uniq, dtype=object)), r.name.to_numpy()[k],
            r.planned.iloc[k].reset_index(drop=True), act_k, t.rows[k], done,
            np.bincount(codes, minlength=m), np.bincount(codes[done], minlength=m),
        )


def _targets(p: _Projects, r: _MilestoneRows) -> tuple[pd.Series, pd.Series]:
    """Each project's target (its target column, else its latest planned date) and, when all its
    milestones are done, its close date (the latest actual date)."""
    g = p.cases
    target = group_dates(g.codes, p.planned, g.m, "max")
    if "target_date" in r.dates:
        given = group_dates(g.codes, r.dates["target_date"].iloc[g.k].reset_index(drop=True), g.m, "last")
        target = given.where(given.notna(), target)
    closed = group_dates(g.codes, p.actual, g.m, "max").where(p.all_done)
    return target, closed


def _check_targets(t: SourceRows, p: _Projects, target: pd.Series) -> np.ndarray:
    """Skip finished projects without a target (needed to tell on time from late); the projects kept.

    Checked per project, so that every row of such a project is counted once when skipped.
    """
    g = p.cases
    no_target = p.all_done & target.isna().to_numpy()
    t.sk.bad(
        no_target[g.codes], rows=p.rows, column=t.use["planned"], values=pd.Series(g.ids[g.codes]),
        expected="planned dates for a finished project's milestones (to tell on time from late)",
        fix="fill the planned dates, or map the project's planned end, e.g. a 'target_date' column.",
        reason="finished project without a planned end date",
    )
    return ~no_target


@dataclass(frozen=True)
class _ProjectDates:
    """Per project: when it started, its target, and when it closed (missing while open)."""

    created: pd.Series
    target: pd.Series
    closed: pd.Series


def _project_starts(p: _Projects, r: _MilestoneRows) -> tuple[pd.Series, list[str]]:
    """When each project started: its start column unless a milestone was achieved before, else its
    earliest planned or actual date (and a note saying so)."""
    g = p.cases
    start = pd.concat([p.planned.rename("p"), p.actual.rename("a")], axis=1).min(axis=1).astype(TS_DTYPE)
    created = group_dates(g.codes, start, g.m, "min")
    if "created" not in r.dates:
        return created, ["no project start column: created is each project's earliest planned or actual date"]
    given = group_dates(g.codes, r.dates["created"].iloc[g.k].reset_index(drop=True), g.m, "first")
    first_act = group_dates(g.codes, p.actual, g.m, "min")
    return given.where(given.notna() & ~(given > first_act).fillna(False), created), []


def _next_milestones(p: _Projects) -> tuple[pd.Series, pd.Series]:
    """Each project's next milestone not yet achieved (the earliest planned) and its planned date."""
    g = p.cases
    pend = ~p.done & p.planned.notna().to_numpy()
    nxt_idx = pd.Series(i8(p.planned)[pend], index=np.flatnonzero(pend)).groupby(g.codes[pend]).idxmin()
    next_name = pd.Series([None] * g.m, dtype=object)
    next_plan = pd.Series(pd.NaT, index=range(g.m), dtype=TS_DTYPE)
    if len(nxt_idx):
        pos = nxt_idx.to_numpy()
        next_name.iloc[nxt_idx.index.to_numpy()] = p.name[pos]
        next_plan.iloc[nxt_idx.index.to_numpy()] = p.planned.to_numpy()[pos]
    return next_name, next_plan


def _project_cases(
    t: SourceRows,
    p: _Projects,
    r: _MilestoneRows,
    dates: _ProjectDates,
    keep: np.ndarray,
    case_attr: list[str],
) -> pd.DataFrame:
    """One case per project kept: its dates (``created``, ``target_date``, ``closed``), outcome,
    amount, owner, segment, milestone counts, next milestone, and the ``case_columns``."""
    g = p.cases
    first_row = pd.Series(np.arange(len(g.k))).groupby(g.codes).first().to_numpy()
    cases = pd.DataFrame(
        {
            "case_id": g.ids,
            "kind": "project",
            "created": dates.created.to_numpy(),
            "closed": dates.closed.to_numpy(),
            "target_date": dates.target.to_numpy(),
            "_row": p.rows[first_row],
        }
    )
    if "outcome" in t.use:
        cases["outcome"] = g.last(t.text("outcome").to_numpy())
    for col, vals in g.case_values(t, r.amount).items():
        cases[col] = vals
    cases["milestones_total"] = p.total
    cases["milestones_done"] = p.n_done
    next_name, next_plan = _next_milestones(p)
    cases["next_milestone"] = next_name.to_numpy()
    cases["next_planned"] = next_plan.to_numpy()
    cases = cases.loc[keep].reset_index(drop=True)
    for col in case_attr:
        cases[col if col not in cases.columns else f"{col} (source)"] = g.last(t.df[col].to_numpy())[keep]
    return cases


def _achieved_milestones(t: SourceRows, p: _Projects, keep: np.ndarray, case_attr: list[str]) -> pd.DataFrame:
    """An event per milestone achieved by a project kept, at its actual date, with its planned date,
    the slip in days, and the other columns as attributes."""
    g = p.cases
    e = np.flatnonzero(p.done & keep[g.codes])
    ev = milestone_events(g.ids[g.codes[e]], p.name[e], p.actual.to_numpy()[e], p.rows[e], t.options)
    if "owner" in t.use:
        ev["owner"] = t.text("owner").to_numpy()[g.k][e]
    ev["planned"] = p.planned.to_numpy()[e]
    slip = (i8(p.actual)[e] - i8(p.planned)[e]) / _DAY_NS
    ev["slip_days"] = np.where(p.planned.notna().to_numpy()[e], slip, np.nan)
    for col, attr in extra_columns(t.df.columns, [*t.use.values(), *case_attr]).items():
        ev[attr if attr not in ("planned", "slip_days") else f"{attr} (source)"] = t.df[col].to_numpy()[g.k][e]
    return ev
