"""What each report template sees: plain data built from salesproc's result objects.

Templates get dictionaries, lists, strings, numbers and timestamps, never live objects, so a
user's template (rendered in the sandbox) can read everything and change nothing. The context of
every report has:

``report``
    ``kind``, ``kicker``, ``title``, ``subtitle``, ``as_of``, ``source``.
``version``
    salesproc's version.
``words``
    ``unit``/``units`` (deal/deals or project/projects), ``won`` (won / finished on time),
    ``win_rate`` and ``success``.
``charts``
    Inline SVG charts by name (empty for Markdown).
``links``
    ``case_id -> relative link`` of per-deal reports (batch runs; else empty).

plus one of ``process``/``checklist`` (a template), ``plan``, ``deal`` (and its ``checklist``),
or ``pipeline`` (see the builders below).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import pandas as pd

from salesproc.render._charts import MilestoneBar, ReportCanvas
from salesproc.review._review import FLAG_LABELS as _REVIEW_FLAG_LABELS
from salesproc.review._review import chance_words
from salesproc.template._template import Milestone, ProcessTemplate

if TYPE_CHECKING:
    from salesproc.plan._plan import Plan
    from salesproc.review._review import DealReview, Review

__all__ = [
    "FLAG_LABELS",
    "checklist_context",
    "deal_context",
    "kind_of",
    "pipeline_context",
    "plan_context",
    "process_context",
]

# what each flag is called on a page (the review's own labels: one wording everywhere)
FLAG_LABELS = dict(_REVIEW_FLAG_LABELS)

ReportKind = str  # "process" | "plan" | "deal" | "pipeline"


def kind_of(obj: Any) -> ReportKind:
    """Which kind of report ``obj`` makes, or a ``TypeError`` naming what is accepted."""
    if isinstance(obj, ProcessTemplate):
        return "process"
    from salesproc.plan._plan import Plan
    from salesproc.review._review import DealReview, Review

    if isinstance(obj, Plan):
        return "plan"
    if isinstance(obj, DealReview):
        return "deal"
    if isinstance(obj, Review):
        return "pipeline"
    raise TypeError(
        "The 'obj' parameter of render_report must be a ProcessTemplate, a Plan, a Review or a DealReview. "
        f"Got {type(obj).__name__} instead."
    )


def _words(kind: str, success: str = "won") -> dict[str, str]:
    deal = kind == "deal"
    return {
        "unit": "deal" if deal else "project",
        "units": "deals" if deal else "projects",
        "Units": "Deals" if deal else "Projects",
        "won": "won" if deal else "finished on time",
        "win_rate": "win rate" if deal else "on-time rate",
        "success": success,
        "time_to": "Time to a win" if deal else "Time to finish",
        "goal": "win" if deal else "finish on time",
    }


def _version() -> str:
    from salesproc._version import __version__

    return __version__


def _f(x: Any) -> float | None:
    """A finite float or None."""
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _s(x: Any) -> str | None:
    """A string or None (pandas missing values become None)."""
    if x is None:
        return None
    try:
        if pd.isna(x):
            return None
    except (TypeError, ValueError):
        pass
    return str(x)


def _ts(x: Any) -> pd.Timestamp | None:
    if x is None:
        return None
    try:
        t = pd.Timestamp(x)
    except (TypeError, ValueError):
        return None
    return None if pd.isna(t) else t


def _base(kind: str, *, kicker: str, title: str, subtitle: str = "", as_of: Any = None, source: str = "",
          words: dict[str, str]) -> dict[str, Any]:
    return {
        "report": {"kind": kind, "kicker": kicker, "title": title, "subtitle": subtitle,
                   "as_of": _ts(as_of), "source": source},
        "version": _version(),
        "words": words,
        "charts": {},
        "links": {},
    }


# --- the process template ----------------------------------------------------------------------------


def _milestones(t: ProcessTemplate) -> list[dict[str, Any]]:
    return [m.model_dump(mode="python") for m in sorted(t.milestones, key=lambda m: m.order)]


def process_context(t: ProcessTemplate, *, canvas: ReportCanvas | None) -> dict[str, Any]:
    """``process``: the template as data (``milestones`` in order, ``critical``, ``warnings``,
    ``other_activities``, ``dependencies``, ``cycle_time``, ``caveats``, ``proposals``,
    ``provenance``) and ``charts.durations``."""
    words = _words(t.kind, t.success)
    data = t.model_dump(mode="python")
    ms = _milestones(t)
    acts = [a.model_dump(mode="python") for a in t.activities]
    crit = [a for a in acts if a["critical"]]
    prov = data["provenance"]
    n_closed = prov.get("closed_cases") or 0
    period = ""
    if prov.get("first_event") and prov.get("last_event"):
        period = f" ({str(prov['first_event'])[:10]} to {str(prov['last_event'])[:10]})"
    subtitle = (
        f"How our {words['units']} are {words['won']}, learnt from {n_closed:,} closed {words['units']}{period}"
        if n_closed else f"The {words['unit']} process as written"
    )
    first = ms[0]["evidence"]["to_success"] if ms else None
    ctx = _base(
        "process",
        kicker="Our process on one page",
        title=f"{t.name} v{t.version}",
        subtitle=subtitle,
        as_of=prov.get("as_of"),
        source=prov.get("source") or "",
        words=words,
    )
    ctx["process"] = {
        **data,
        "milestones": ms,
        "critical": crit,
        "warnings": [a for a in acts if a["requirement"] == "warning"],
        "other_activities": [a for a in acts if a["requirement"] == "none"],
        "required": [a for a in crit if a["requirement"] == "required"],
        "overall": first,
        "explicit_dependencies": data["dependencies"],
    }
    if canvas is not None and ms:
        bars = [MilestoneBar(m["name"], _f(m["p50_days"]), _f(m["p80_days"])) for m in ms]
        ctx["charts"]["durations"] = canvas.milestone_chart(
            bars, label="Typical time in each milestone: p50 (dark) and p80 (light), in days"
        )
    return ctx


# --- checklists ---------------------------------------------------------------------------------------


def _item(a: Any, kind: str, state: str | None, done_at: Any) -> dict[str, Any]:
    ev = a.evidence
    return {
        "what": a.name,
        "kind": kind,
        "requirement": a.requirement,
        "owner": a.owner_role,
        "due_days_before": _f(a.due_days_before) if kind == "activity" else None,
        "effect": _f(ev.risk_difference) if ev else None,
        "effect_ci": tuple(ev.ci) if ev else (None, None),
        "n": ev.n if ev else None,
        "note": a.note,
        "state": state,
        "done_at": _ts(done_at),
    }


def _checklist(
    t: ProcessTemplate,
    *,
    current_order: int | None = None,
    gaps: Mapping[str, str] | None = None,
    reached: Mapping[str, Any] | None = None,
    done_acts: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Milestones in order, each with its exit criteria, the critical activities due by it and the
    warning signs to avoid.

    For a deal (``current_order`` given: its milestone's position, 0 before the first) every line
    has a ``state``. Milestones: ``done`` (reached, with ``reached_at``), ``skipped`` (passed
    without reaching it), ``current`` or ``todo``. Critical activities: ``done`` (with
    ``done_at``), ``overdue`` or ``due`` (the review's gaps) or ``todo``. Warning signs:
    ``happened`` (with ``done_at``) or ``clear``. Exit criteria: ``done`` once the deal has moved
    past the milestone, else ``todo``.
    """
    reached = reached or {}
    done_acts = done_acts or {}
    gaps = gaps or {}
    deal = current_order is not None
    cur = current_order or 0
    out: list[dict[str, Any]] = []
    ms = sorted(t.milestones, key=lambda m: m.order)
    for i, m in enumerate(ms, start=1):
        state = _milestone_state(i, cur, m.name, reached) if deal else None
        items = _activity_items(t, m.name, gaps, done_acts, deal=deal)
        items += _exit_items(m, state, deal=deal)
        out.append(_milestone_line(i, m, state, reached, items))
    # warning signs not tied to a milestone go with the first one
    if out:
        out[0]["items"] += _loose_warnings(t, done_acts, deal=deal)
    return out


def _milestone_state(i: int, cur: int, name: str, reached: Mapping[str, Any]) -> str:
    """A deal's state at the ``i``-th milestone: ``done``, ``skipped``, ``current`` or ``todo``."""
    if i < cur:
        return "done" if name in reached or not reached else "skipped"
    return "current" if i == cur else "todo"


def _activity_items(
    t: ProcessTemplate, milestone: str, gaps: Mapping[str, str], done_acts: Mapping[str, Any], *, deal: bool
) -> list[dict[str, Any]]:
    """The critical activities due by ``milestone``, then its warning signs (with their states for a deal)."""
    items: list[dict[str, Any]] = []
    for a in t.activities:
        if a.milestone != milestone or a.requirement not in ("required", "recommended", "warning"):
            continue
        warning = a.requirement == "warning"
        a_state = None
        if deal:
            if warning:
                a_state = "happened" if a.name in done_acts else "clear"
            elif a.name in done_acts:
                a_state = "done"
            else:
                a_state = gaps.get(a.name, "todo")
        items.append(_item(a, "avoid" if warning else "activity", a_state, done_acts.get(a.name)))
    items.sort(key=lambda x: (x["kind"] == "avoid", -(x["due_days_before"] or 0)))
    return items


def _exit_items(m: Milestone, state: str | None, *, deal: bool) -> list[dict[str, Any]]:
    """The milestone's exit criteria as checklist lines (``done`` once a deal is past it)."""
    return [
        {
            "what": c, "kind": "exit", "requirement": "exit", "owner": m.owner_role,
            "due_days_before": None, "effect": None, "effect_ci": (None, None), "n": None,
            "note": None, "state": ("done" if state == "done" else "todo") if deal else None, "done_at": None,
        }
        for c in m.exit_criteria
    ]


def _milestone_line(
    i: int, m: Milestone, state: str | None, reached: Mapping[str, Any], items: list[dict[str, Any]]
) -> dict[str, Any]:
    """One milestone of the checklist: its numbers, its state and its lines."""
    ev = m.evidence
    return {
        "order": i,
        "name": m.name,
        "owner_role": m.owner_role,
        "p50_days": _f(m.p50_days),
        "p80_days": _f(m.p80_days),
        "to_next": ev.to_next.model_dump() if ev.to_next else None,
        "to_success": ev.to_success.model_dump() if ev.to_success else None,
        "state": state,
        "reached_at": _ts(reached.get(m.name)),
        "items": items,
    }


def _loose_warnings(t: ProcessTemplate, done_acts: Mapping[str, Any], *, deal: bool) -> list[dict[str, Any]]:
    """Warning signs not tied to a milestone (``happened`` or ``clear`` for a deal)."""
    out = []
    for a in t.activities:
        if a.requirement == "warning" and a.milestone is None:
            st = ("happened" if a.name in done_acts else "clear") if deal else None
            out.append(_item(a, "avoid", st, done_acts.get(a.name)))
    return out


def checklist_context(obj: ProcessTemplate | DealReview, *, template: ProcessTemplate | None = None,
                      canvas: ReportCanvas | None = None) -> dict[str, Any]:
    """The milestone checklist of a template (``checklist``), or of one deal (``checklist`` with
    states, and ``deal``)."""
    if isinstance(obj, ProcessTemplate):
        t = obj
        words = _words(t.kind, t.success)
        ctx = _base("checklist", kicker="Milestone checklist", title=f"{t.name} v{t.version}",
                    subtitle=f"What to have done at each milestone of a {words['unit']}, and who owns it",
                    as_of=t.provenance.as_of, source=t.provenance.source, words=words)
        ctx["checklist"] = _checklist(t)
        ctx["deal"] = None
        ctx["process"] = {"name": t.name, "version": t.version, "kind": t.kind}
        return ctx
    if template is None:
        raise TypeError("a deal's checklist needs the review's template")
    ctx = deal_context(obj, template=template, canvas=None)
    ctx["report"]["kicker"] = "Milestone checklist"
    ctx["report"]["kind"] = "checklist"
    return ctx


# --- one deal --------------------------------------------------------------------------------------------


def risk_level(probability: float | None, n_flags: int) -> str:
    """``high``, ``medium`` or ``low``: from the win probability, one level worse with two or more flags.

    >>> risk_level(0.2, 0), risk_level(0.55, 0), risk_level(0.8, 2)
    ('high', 'medium', 'medium')
    """
    levels = ["low", "medium", "high"]
    p = 0.5 if probability is None else probability
    i = 2 if p < 0.3 else (1 if p < 0.6 else 0)
    if n_flags >= 2:
        i = min(i + 1, 2)
    return levels[i]


def _deal_dict(d: DealReview) -> dict[str, Any]:
    data = d.to_dict()
    flags = {f.name: f for f in d.flags}
    data["flags"] = [{**f, "label": flags[f["name"]].label, "plain": flags[f["name"]].plain} for f in data["flags"]]
    data["risk"] = risk_level(d.probability, len(d.flags))
    base = data["reasons"][0] if data["reasons"] and data["reasons"][0]["points"] is None else None
    data["base_reason"] = base["text"] if base else None
    data["base_detail"] = base["detail"] if base else None
    data["reasons"] = [r for r in data["reasons"] if r["points"] is not None]
    for a in data["actions"]:
        a["who"] = _who(a["owner"], d.owner)
    data["overdue"] = [g for g in data["gaps"] if g["status"] == "overdue"]
    data["due"] = [g for g in data["gaps"] if g["status"] == "due"]
    data["reached"] = [{"milestone": n, "at": at} for n, at in d.reached]
    data["done"] = [{"activity": n, "at": at} for n, at in d.done]
    data["title"] = d.label
    data["label"] = d.label
    data["chance_text"] = d.chance_text
    data["analyst"] = {
        "method": d.model.method() if d.model is not None else None,
        "notes": d.analyst_notes(),
        "flags": [{"name": f.name, "label": f.label, "reason": f.reason} for f in d.flags],
        "actions": [{"what": a.what, "detail": a.detail} for a in d.actions
                    if a.detail and a.detail not in {g.evidence for g in d.gaps}],
    }
    return data


def _who(owner: str | None, deal_owner: str | None) -> str:
    """Who does an action: its role, else the deal's owner by name."""
    if owner and owner != "deal owner":
        return owner
    return deal_owner or "the deal owner"


def _position_words(d: DealReview, unit: str) -> str:
    """How the deal's time in its milestone compares, in words: ``usually about 15 days; 8 in 10 move on within 26``."""
    if d.milestone is None or d.milestone_p50 is None:
        return ""
    usual = f"usually about {d.milestone_p50:.0f} days"
    if d.milestone_p80 is not None and d.days_in_milestone > d.milestone_p80:
        return f"stalled: 8 in 10 {unit}s move on within {d.milestone_p80:.0f} days"
    return usual


def _age_words(d: DealReview, t: ProcessTemplate, words: Mapping[str, str]) -> str:
    """The deal's age against the time won deals took to close, in words (never a bare percentile)."""
    ct = t.cycle_time
    if ct is None or ct.p50 is None or d.age_percentile is None:
        return ""
    usual = f"{words['won']} {words['units']} usually take about {ct.p50:.0f} days"
    if d.age_percentile <= 0.1:
        return f"just started; {usual}"
    if d.age_percentile >= 0.9:
        return f"older than 9 in 10 {words['won']} {words['units']} were when they closed"
    return usual


def _deal_summary(deal: Mapping[str, Any], words: Mapping[str, str]) -> list[str]:
    """The deal in three plain sentences: the chance with its range, why, and what to do next, by
    whom, by when."""
    out = [f"Chance to {words['goal']}: {deal['chance_text']}."]
    if deal["base_reason"]:
        out.append(f"Why: {deal['base_reason']}" + (f"; {deal['flags'][0]['plain']}" if deal["flags"] else "") + ".")
    if deal["actions"]:
        a = deal["actions"][0]
        out.append(f"Next: {a['what']} ({a['who']}) by {a['by']:%Y-%m-%d}.")
    return out


def _deal_bars(d: DealReview, t: ProcessTemplate) -> list[MilestoneBar]:
    """The deal's time in each milestone it passed (first reach to the next milestone's) and in
    its current one, against the template's p50/p80."""
    ms = sorted(t.milestones, key=lambda m: m.order)
    reached = dict(d.reached)
    order = [m.name for m in ms if m.name in reached]
    spent: dict[str, float] = {}
    for a, b in itertools.pairwise(order):
        spent[a] = max((reached[b] - reached[a]).total_seconds() / 86_400, 0.0)
    bars = []
    for i, m in enumerate(ms, start=1):
        actual: float | None
        if i == d.milestone_order:
            state, actual = "current", d.days_in_milestone
        elif i < d.milestone_order:
            state = "done" if m.name in reached or not reached else "skipped"
            actual = spent.get(m.name)
        else:
            state, actual = "todo", None
        bars.append(MilestoneBar(m.name, _f(m.p50_days), _f(m.p80_days), actual, state))
    return bars


def deal_context(d: DealReview, *, template: ProcessTemplate, canvas: ReportCanvas | None,
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``deal``: the :class:`DealReview` as data, plus what the page says in plain words (``label``:
    id, name and account; ``chance_text``; ``summary``: the chance, why and what to do next, by whom,
    by when; ``position_words``, ``age_words``; flag ``label`` and ``plain``; action ``who``, by name
    when the deal's owner does it; ``base_reason``), ``risk``, ``overdue``/``due`` gaps, ``reached``
    and ``done`` with dates and ``analyst`` (``method``, ``notes``, flags with their ids and numbers,
    actions' evidence: for the "How this was worked out" fold); ``checklist`` (the template's, with
    this deal's states) and ``charts.position`` (time in each milestone against the template)."""
    words = _words(template.kind, template.success)
    deal = _deal_dict(d)
    deal["position_words"] = _position_words(d, words["unit"])
    deal["age_words"] = _age_words(d, template, words)
    deal["summary"] = _deal_summary(deal, words)
    if extra:
        deal.update(extra)
    where = d.milestone or "before the first milestone"
    ctx = _base(
        "deal_review",
        kicker=f"{words['unit'].capitalize()} review",
        title=d.label,
        subtitle=f"{where}, {d.days_in_milestone:.0f} days in; rank {d.rank} in the pipeline",
        as_of=d.as_of,
        source=f"template {template.name} v{template.version}",
        words=words,
    )
    ctx["deal"] = deal
    ctx["checklist"] = _checklist(
        template,
        current_order=d.milestone_order,
        gaps={g.activity: g.status for g in d.gaps},
        reached=dict(d.reached),
        done_acts=dict(d.done),
    )
    ctx["process"] = {"name": template.name, "version": template.version, "kind": template.kind}
    if canvas is not None and template.milestones:
        ctx["charts"]["position"] = canvas.milestone_chart(
            _deal_bars(d, template),
            label=(f"Time in each milestone: the usual time (half of {words['units']} move on by the dark bar, "
                   f"8 in 10 by the light one) and this {words['unit']}'s"),
        )
    return ctx


# --- the pipeline ----------------------------------------------------------------------------------------


def _row(r: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in r.items():
        if isinstance(v, float):
            out[k] = _f(v)
        elif isinstance(v, pd.Timestamp) or k.endswith("_by"):
            out[k] = _ts(v)
        elif hasattr(v, "item") and not isinstance(v, (str, bytes)):
            out[k] = v.item()
        else:
            out[k] = _s(v) if not isinstance(v, (bool, int)) else v
    return out


def pipeline_context(review: Review, *, canvas: ReportCanvas | None, charts: bool = True,
                     max_rows: int | None = None) -> dict[str, Any]:
    """``pipeline``: ``summary`` (``Review.summary()``), ``rows`` (the pipeline table, most at risk
    first, each with ``risk_level``, ``flag_list`` (names and labels), ``known_as`` (name and
    account, when the data has them) and ``chance_text``), ``flag_counts``, ``by_milestone``,
    ``caveats``, ``model`` (with ``method``, for the analyst), ``template``; ``charts.risk`` and
    ``charts.ageing``."""
    t = review.template
    words = _words(t.kind, t.success)
    frame = review.to_frame()
    if max_rows is not None:
        frame = frame.head(max_rows)
    rows = []
    for rec in frame.to_dict("records"):
        r = _row({str(k): v for k, v in rec.items()})
        names = [f.strip() for f in (r.get("flags") or "").split(",") if f.strip()]
        r["flag_list"] = [{"name": n, "label": FLAG_LABELS.get(n, n)} for n in names]
        r["risk_level"] = risk_level(r.get("probability"), len(names))
        r["known_as"] = " · ".join(x for x in (r.get("name"), r.get("account")) if x)
        r["chance_text"] = (chance_words(r["probability"], r.get("probability_low"), r.get("probability_high"))
                            if r.get("probability") is not None else None)
        rows.append(r)
    s = review.summary()
    full = review.to_frame()
    by_ms = []
    for name in [*t.milestone_names, None]:
        sel = full[full["milestone"].isna()] if name is None else full[full["milestone"] == name]
        if name is None and sel.empty:
            continue
        by_ms.append({
            "milestone": name or "before the first milestone",
            "deals": len(sel),
            "amount": _f(sel["amount"].sum(min_count=1)),
            "expected_value": _f((sel["probability"] * sel["amount"]).sum(min_count=1)),
            "stalled": int(sel["stalled"].sum()),
            "mean_probability": _f(sel["probability"].mean()) if len(sel) else None,
        })
    ctx = _base(
        "pipeline_review",
        kicker="Pipeline review",
        title=f"{s['open_deals']:,} open {words['units']} as of {review.as_of.date()}",
        subtitle=(f"{s['flagged']:,} flagged; most at risk first (amount × chance of losing). "
                  f"Template {t.name} v{t.version}."),
        as_of=review.as_of,
        source=t.provenance.source or "",
        words=words,
    )
    m = review.model
    ctx["pipeline"] = {
        "summary": s,
        "rows": rows,
        "shown": len(rows),
        "total": len(review),
        "flag_counts": [{"name": f, "label": FLAG_LABELS.get(f, f), "count": int(s.get(f, 0))}
                        for f in FLAG_LABELS],
        "by_milestone": by_ms,
        "caveats": list(review.caveats),
        "model": {"snapshots": m.snapshots, "cases": m.cases, "successes": m.successes,
                  "horizon_days": m.horizon_days, "heldout_auc": m.heldout_auc, "method": m.method()},
        "template": {"name": t.name, "version": t.version},
    }
    if canvas is not None and charts and len(full):
        from salesproc.render._charts import pipeline_chart

        ctx["charts"].update(pipeline_chart(review))
    return ctx


# --- plans -------------------------------------------------------------------------------------------------


def plan_context(plan: Plan, *, canvas: ReportCanvas | None) -> dict[str, Any]:
    """``plan``: the :class:`Plan` as data (``goal`` and ``goal_sentence``, ``items`` with ``done``/``remaining``,
    ``windows`` (overdue, this week, next two weeks), ``critical_path``, ``message``, ``notes``)
    and ``charts.gantt``."""
    words = _words(plan.kind)
    items = []
    for it in plan.items:
        d = asdict(it)
        d["done"] = it.done
        d["remaining"] = it.remaining
        items.append(d)
    by = {i["name"]: i for i in items}
    goal = asdict(plan.goal)
    sides = ("Seller", "Buyer") if plan.kind == "deal" else ("Delivery team", "Customer")
    title = f"Plan: {plan.goal.success}" + (f" ({plan.case_id})" if plan.case_id else "")
    ctx = _base(
        "plan",
        kicker="Mutual action plan" if plan.kind == "deal" else "Delivery plan",
        title=title,
        subtitle=(f"{plan.case_id + ': ' if plan.case_id else ''}target {plan.target_date.date()}; "
                  f"{plan.headline}"),
        as_of=plan.as_of,
        source=f"template {plan.template_name}",
        words=words,
    )
    ctx["plan"] = {
        "case_id": plan.case_id,
        "template_name": plan.template_name,
        "kind": plan.kind,
        "goal": goal,
        "goal_sentence": plan.goal.sentence(plan.kind),
        "owners": [{"side": sides[0], "who": plan.goal.seller_owner}, {"side": sides[1], "who": plan.goal.buyer_owner}],
        "as_of": plan.as_of,
        "target_date": plan.target_date,
        "probability": plan.probability,
        "p_success": plan.p_success,
        "p50_date": plan.p50_date,
        "p80_date": plan.p80_date,
        "earliest_date": plan.earliest_date,
        "median_days": plan.median_days,
        "current": plan.current,
        "headline": plan.headline,
        "message": plan.message,
        "notes": list(plan.notes),
        "items": items,
        "critical_path": list(plan.critical_path),
        "windows": [
            {"label": "Overdue", "items": [by[n] for n in plan.overdue if n in by]},
            {"label": "This week", "items": [by[n] for n in plan.this_week if n in by]},
            {"label": "Next two weeks", "items": [by[n] for n in plan.next_two_weeks if n in by]},
        ],
        "n_simulations": plan.n_simulations,
        "seed": plan.seed,
    }
    if canvas is not None and plan.items:
        from salesproc.render._charts import plan_chart

        ctx["charts"]["gantt"] = plan_chart(plan)
    return ctx
