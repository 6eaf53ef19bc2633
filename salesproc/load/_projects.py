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

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from salesproc.history._finalize import i8
from salesproc.history._history import TS_DTYPE, History
from salesproc.load._build import Errors, MilestoneRule, Skips, build_history
from salesproc.load._tabular import (
    ensure_frame,
    extra_columns,
    group_dates,
    group_last,
    parse_date_column,
    parse_number_column,
    resolve_columns,
    row_numbers,
    text,
)

__all__ = ["milestone_table_history"]

_DAY_NS = 86_400 * 10**9


def milestone_table_history(
    df: pd.DataFrame,
    cols: Mapping[str, str],
    *,
    source: str = "<data>",
    decimal: str = ".",
    kind: str = "project",
    errors: Errors = "raise",
    tz: str = "UTC",
    outcome_values: Mapping[str, str] | None = None,
    outcome_events: Mapping[str, Iterable[str]] | None = None,
    milestones: MilestoneRule = None,
    dayfirst: bool = False,
    date_format: str | None = None,
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
    case_columns
        Columns that describe the project, not the milestone (e.g. ``project_name``): kept as
        case attributes (the last value given for the project).
    kind
        Ignored: every case is a ``project``. (It is accepted because loaders pass it.)
    outcome_values
        Labels of the optional ``outcome`` column, e.g. ``{"Cancelled": "failed"}``.

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
    df = ensure_frame(df, source)
    n = len(df)
    sk = Skips(source=source, errors=errors)
    rows = row_numbers(df)
    use = resolve_columns(
        df, cols, required=("case_id", "name", "planned", "actual"), aliases=aliases, source=source,
        preset=preset,
    )
    id_col, name_col, plan_col, act_col = use["case_id"], use["name"], use["planned"], use["actual"]

    keep = np.ones(n, dtype=bool)
    cid = text(df[id_col])
    keep &= sk.bad(
        cid.isna().to_numpy(), rows=rows, column=id_col, values=df[id_col],
        expected="a project id (not empty)", fix="fill the id, or delete the row.", reason="empty case id",
    )
    name = text(df[name_col])
    keep &= sk.bad(
        name.isna().to_numpy() & keep, rows=rows, column=name_col, values=df[name_col],
        expected="a milestone name (not empty)", fix="fill the milestone name, or delete the row.",
        reason="empty milestone name",
    )
    date_opts: dict[str, Any] = dict(sk=sk, rows=rows, tz=tz, dayfirst=dayfirst, date_format=date_format)
    planned, keep = parse_date_column(df, plan_col, keep=keep, **date_opts)
    actual, keep = parse_date_column(df, act_col, keep=keep, **date_opts)
    keep &= sk.bad(
        (planned.isna() & actual.isna()).to_numpy() & keep, rows=rows, column=plan_col,
        values=df[plan_col], expected="a planned date (or an actual date) for the milestone",
        fix="fill the planned date, or delete the row.", reason="milestone with neither planned nor actual date",
    )
    proj_dates: dict[str, pd.Series] = {}
    for canon in ("target_date", "created"):
        if canon in use:
            proj_dates[canon], keep = parse_date_column(df, use[canon], keep=keep, **date_opts)
    amount = None
    if "amount" in use:
        amount, keep = parse_number_column(df, use["amount"], sk=sk, rows=rows, keep=keep, decimal=decimal)
    pair = pd.DataFrame({"p": cid, "m": name})
    dup = pair.duplicated(keep="first").to_numpy() & keep
    keep &= sk.bad(
        dup, rows=rows, column=name_col, values=df[name_col],
        expected="each milestone once per project", fix="delete the repeated row, or rename the milestone.",
        reason="repeated milestone of a project",
    )

    # --- per project -----------------------------------------------------------------------
    k = np.flatnonzero(keep)
    codes, uniq = pd.factorize(cid.to_numpy()[k], sort=False)
    m = len(uniq)
    plan_k = planned.iloc[k].reset_index(drop=True)
    act_k = actual.iloc[k].reset_index(drop=True)
    rows_k = rows[k]
    done = act_k.notna().to_numpy()
    total = np.bincount(codes, minlength=m)
    n_done = np.bincount(codes[done], minlength=m)
    all_done = (n_done == total) & (total > 0)

    target = group_dates(codes, plan_k, m, "max")
    if "target_date" in proj_dates:
        given = group_dates(codes, proj_dates["target_date"].iloc[k].reset_index(drop=True), m, "last")
        target = given.where(given.notna(), target)
    closed = group_dates(codes, act_k, m, "max").where(all_done)

    # a finished project needs a target to be on time or late: checked here, so that every row of
    # such a project is counted once when skipped
    first_row = pd.Series(np.arange(len(k))).groupby(codes).first().to_numpy()
    no_target = all_done & target.isna().to_numpy()
    sk.bad(
        no_target[codes], rows=rows_k, column=plan_col, values=pd.Series(np.asarray(uniq, dtype=object)[codes]),
        expected="planned dates for a finished project's milestones (to tell on time from late)",
        fix="fill the planned dates, or map the project's planned end, e.g. a 'target_date' column.",
        reason="finished project without a planned end date",
    )
    keep_p = ~no_target

    notes: list[str] = []
    start = pd.concat([plan_k.rename("p"), act_k.rename("a")], axis=1).min(axis=1).astype(TS_DTYPE)
    created = group_dates(codes, start, m, "min")
    if "created" in proj_dates:
        given = group_dates(codes, proj_dates["created"].iloc[k].reset_index(drop=True), m, "first")
        first_act = group_dates(codes, act_k, m, "min")
        created = given.where(given.notna() & ~(given > first_act).fillna(False), created)
    else:
        notes.append("no project start column: created is each project's earliest planned or actual date")

    pend = ~done & plan_k.notna().to_numpy()
    nxt_idx = pd.Series(i8(plan_k)[pend], index=np.flatnonzero(pend)).groupby(codes[pend]).idxmin()
    next_name = pd.Series([None] * m, dtype=object)
    next_plan = pd.Series(pd.NaT, index=range(m), dtype=TS_DTYPE)
    if len(nxt_idx):
        pos = nxt_idx.to_numpy()
        next_name.iloc[nxt_idx.index.to_numpy()] = name.to_numpy()[k][pos]
        next_plan.iloc[nxt_idx.index.to_numpy()] = plan_k.to_numpy()[pos]

    cases = pd.DataFrame(
        {
            "case_id": np.asarray(uniq, dtype=object),
            "kind": "project",
            "created": created.to_numpy(),
            "closed": closed.to_numpy(),
            "target_date": target.to_numpy(),
            "_row": rows_k[first_row],
        }
    )
    if "outcome" in use:
        cases["outcome"] = group_last(codes, text(df[use["outcome"]]).to_numpy()[k], m).to_numpy()
    if amount is not None:
        cases["amount"] = pd.to_numeric(group_last(codes, amount.iloc[k], m), errors="coerce").to_numpy()
    if "case_owner" in use:
        cases["owner"] = group_last(codes, text(df[use["case_owner"]]).to_numpy()[k], m).to_numpy()
    if "segment" in use:
        cases["segment"] = group_last(codes, text(df[use["segment"]]).to_numpy()[k], m).to_numpy()
    cases["milestones_total"] = total
    cases["milestones_done"] = n_done
    cases["next_milestone"] = next_name.to_numpy()
    cases["next_planned"] = next_plan.to_numpy()
    cases = cases.loc[keep_p].reset_index(drop=True)

    e = np.flatnonzero(done & keep_p[codes])
    ev = pd.DataFrame(
        {
            "case_id": np.asarray(uniq, dtype=object)[codes[e]],
            "name": name.to_numpy()[k][e],
            "timestamp": act_k.to_numpy()[e],
            "_row": rows_k[e],
        }
    )
    if milestones is None:
        ev["type"] = "milestone"
    if "owner" in use:
        ev["owner"] = text(df[use["owner"]]).to_numpy()[k][e]
    ev["planned"] = plan_k.to_numpy()[e]
    slip = (i8(act_k)[e] - i8(plan_k)[e]) / _DAY_NS
    ev["slip_days"] = np.where(plan_k.notna().to_numpy()[e], slip, np.nan)
    case_attr = [c for c in case_columns if c in df.columns and c not in use.values()]
    for col in case_attr:
        vals = group_last(codes, df[col].to_numpy()[k], m).to_numpy()[keep_p]
        cases[col if col not in cases.columns else f"{col} (source)"] = vals
    for col, attr in extra_columns(df.columns, [*use.values(), *case_attr]).items():
        ev[attr if attr not in ("planned", "slip_days") else f"{attr} (source)"] = df[col].to_numpy()[k][e]

    out_vals = {str(a): str(b) for a, b in (outcome_values or {}).items()} or None
    return build_history(
        ev, cases, source=source, kind="project", tz=tz, errors=errors, outcome_values=out_vals,
        milestones=milestones, dayfirst=dayfirst, date_format=date_format, decimal=decimal,
        rows_read=n, skips=sk, notes=notes,
    )
