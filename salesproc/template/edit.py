"""Editing a process template by hand: one pure function per edit, each returning a new template.

This is the state model of the workshop's template editor (:class:`salesproc.widgets.TemplateEditor`,
a thin ipywidgets shell over these functions); scripts can call them directly. The input template is
never changed. Every change names the field it set in that item's ``edited`` list, so that
``derive_template(history, previous=edited)`` keeps the team's decision when the data are refreshed
(and records what the new data would have changed as a proposal).

Each result is a valid :class:`~salesproc.template.ProcessTemplate`: orders stay ``1..K``, renames
and merges carry the activities due by a milestone and the dependencies that name it along with them.

Examples
--------
>>> from salesproc.template import Activity, Milestone, ProcessTemplate
>>> from salesproc.template.edit import merge_milestones, move_milestone, rename_milestone
>>> t = ProcessTemplate(
...     milestones=[Milestone(name="Qualify", order=1), Milestone(name="Demo", order=2),
...                 Milestone(name="Proposal", order=3)],
...     activities=[Activity(name="Pricing call", milestone="Demo", critical=True, requirement="required")],
... )
>>> t2 = rename_milestone(move_milestone(t, "Proposal", -1), "Demo", "Discovery")
>>> t2.milestone_names
['Qualify', 'Proposal', 'Discovery']
>>> t2.activity("Pricing call").milestone
'Discovery'
>>> merge_milestones(t2, ["Proposal", "Discovery"], name="Offer").milestone_names
['Qualify', 'Offer']
>>> t.milestone_names  # the input is unchanged
['Qualify', 'Demo', 'Proposal']
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final, Literal

from salesproc._io import next_version_path
from salesproc.errors import TemplateError
from salesproc.template._template import Activity, Dependency, Milestone, ProcessTemplate

__all__ = [
    "REQUIREMENTS",
    "accept_activity",
    "merge_milestones",
    "move_milestone",
    "next_template_version",
    "reject_activity",
    "rename_milestone",
    "set_activity",
    "set_milestone",
]

REQUIREMENTS: Final = ("required", "recommended", "warning", "none")
Requirement = Literal["required", "recommended", "warning", "none"]


class _Unset:
    """Marks a keyword that was not given (``None`` is a value: it clears a field)."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final = _Unset()


# --- helpers ------------------------------------------------------------------------------------


def _ordered(template: ProcessTemplate) -> list[Milestone]:
    return sorted(template.milestones, key=lambda m: m.order)


def _mark(edited: Iterable[str], *fields: str) -> list[str]:
    out = list(edited)
    for f in fields:
        if f not in out:
            out.append(f)
    return out


def _milestone(template: ProcessTemplate, name: str, fn: str) -> Milestone:
    for m in template.milestones:
        if m.name == name:
            return m
    raise TemplateError(
        f"{fn}: no milestone {name!r}. The template's milestones are {template.milestone_names}. "
        "Fix: use one of those names (they are case-sensitive)."
    )


def _activity(template: ProcessTemplate, name: str, fn: str) -> Activity:
    for a in template.activities:
        if a.name == name:
            return a
    shown = [a.name for a in template.activities][:20]
    raise TemplateError(
        f"{fn}: no activity {name!r}. Activities include {shown}. Fix: use an activity's exact name."
    )


def _clean_name(value: object, fn: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TemplateError(
            f"The {what!r} parameter of {fn} must be a non-empty name. Got {value!r} instead. "
            "Fix: type the milestone's new name."
        )
    return " ".join(value.split())


def _days(value: object, fn: str, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TemplateError(
            f"The {what!r} parameter of {fn} must be a number of days or None. Got {value!r} instead."
        )
    x = float(value)
    if not math.isfinite(x) or x < 0:
        raise TemplateError(
            f"The {what!r} parameter of {fn} must be a finite number of days, 0 or more. Got {value!r} "
            "instead. Fix: enter how many days the step usually takes."
        )
    return x


def _owner(value: object, fn: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TemplateError(f"The 'owner_role' parameter of {fn} must be text or None. Got {value!r} instead.")
    v = " ".join(value.split())
    return v or None


def _criteria(value: object, fn: str) -> list[str]:
    if isinstance(value, str):
        items: Iterable[object] = value.splitlines()
    elif isinstance(value, Iterable):
        items = value
    else:
        raise TemplateError(
            f"The 'exit_criteria' parameter of {fn} must be a list of text lines. Got {value!r} instead."
        )
    out: list[str] = []
    for x in items:
        if not isinstance(x, str):
            raise TemplateError(
                f"The 'exit_criteria' parameter of {fn} must hold text lines. Got {x!r} in it instead."
            )
        s = " ".join(x.split())
        if s and s not in out:
            out.append(s)
    return out


def _check_free(template: ProcessTemplate, new: str, fn: str, *, allow: Iterable[str] = ()) -> None:
    allowed = set(allow)
    if new in allowed:
        return
    if new in template.milestone_names:
        raise TemplateError(
            f"{fn}: a milestone named {new!r} already exists. Fix: choose another name, or merge the two "
            "milestones with merge_milestones."
        )
    if any(a.name == new for a in template.activities):
        raise TemplateError(
            f"{fn}: {new!r} is already the name of an activity; milestones and activities need distinct "
            "names. Fix: choose another name."
        )


def _renumber(ms: Sequence[Milestone]) -> list[Milestone]:
    return [m if m.order == i + 1 else m.model_copy(update={"order": i + 1}) for i, m in enumerate(ms)]


def _rebuild(
    template: ProcessTemplate,
    milestones: Sequence[Milestone],
    *,
    rename: dict[str, str] | None = None,
    mark_activities: bool = True,
) -> ProcessTemplate:
    """A new template with ``milestones`` and every reference renamed by ``rename`` (old -> new)."""
    rn = rename or {}
    acts = []
    for a in template.activities:
        if a.milestone in rn:
            upd: dict[str, Any] = {"milestone": rn[a.milestone]}
            if mark_activities:
                upd["edited"] = _mark(a.edited, "milestone")
            a = a.model_copy(update=upd)
        acts.append(a)
    deps: list[Dependency] = []
    seen: set[tuple[str, str]] = set()
    for d in template.dependencies:
        before, after = rn.get(d.before, d.before), rn.get(d.after, d.after)
        if before == after or (before, after) in seen:
            continue
        seen.add((before, after))
        deps.append(Dependency(before=before, after=after))
    props = [
        p.model_copy(update={"item": rn[p.item]}) if p.item in rn else p for p in template.proposals
    ]
    data = template.model_dump()
    data.update(
        milestones=[m.model_dump() for m in _renumber(milestones)],
        activities=[a.model_dump() for a in acts],
        dependencies=[d.model_dump() for d in deps],
        proposals=[p.model_dump() for p in props],
    )
    try:
        return ProcessTemplate.model_validate(data)
    except ValueError as exc:  # pragma: no cover - every edit keeps the template valid
        raise TemplateError(f"the edit would make the template invalid: {exc}") from None


# --- milestone edits ----------------------------------------------------------------------------


def move_milestone(template: ProcessTemplate, name: str, steps: int) -> ProcessTemplate:
    """Move milestone ``name`` earlier (``steps < 0``) or later (``steps > 0``) in the process.

    The moved milestone is marked as edited (``order``), so a later re-derivation keeps the team's
    order and proposes the data's instead of imposing it.

    Examples
    --------
    >>> from salesproc.template import Milestone, ProcessTemplate
    >>> t = ProcessTemplate(milestones=[Milestone(name=n, order=i + 1) for i, n in enumerate("ABC")])
    >>> t2 = move_milestone(t, "C", -2)
    >>> t2.milestone_names, t2.milestone("C").edited
    (['C', 'A', 'B'], ['order'])
    """
    fn = "move_milestone"
    ms = _ordered(template)
    m = _milestone(template, name, fn)
    if isinstance(steps, bool) or not isinstance(steps, int):
        raise TemplateError(f"The 'steps' parameter of {fn} must be an integer. Got {steps!r} instead.")
    i = ms.index(m)
    j = i + steps
    if not 0 <= j < len(ms):
        where = "first" if j < 0 else "last"
        raise TemplateError(
            f"{fn}: cannot move {name!r} {abs(steps)} place(s) {'up' if steps < 0 else 'down'}: it is "
            f"number {i + 1} of {len(ms)}, and would land before the {where} milestone."
        )
    if steps == 0:
        return template
    ms.pop(i)
    ms.insert(j, m.model_copy(update={"edited": _mark(m.edited, "order")}))
    return _rebuild(template, ms)


def _aliases(existing: Sequence[str], *names: str, exclude: str) -> list[str]:
    """The event names a milestone stands for after a rename or merge (its own name excluded)."""
    return [a for a in dict.fromkeys([*existing, *names]) if a != exclude]


def rename_milestone(template: ProcessTemplate, name: str, new_name: str) -> ProcessTemplate:
    """Rename milestone ``name``; activities due by it and dependencies naming it follow.

    Examples
    --------
    >>> from salesproc.template import Milestone, ProcessTemplate
    >>> t = ProcessTemplate(milestones=[Milestone(name="Demo", order=1)])
    >>> rename_milestone(t, "Demo", "  Discovery   call ").milestone_names
    ['Discovery call']
    """
    fn = "rename_milestone"
    m = _milestone(template, name, fn)
    new = _clean_name(new_name, fn, "new_name")
    if new == name:
        return template
    _check_free(template, new, fn)
    ms = [
        x.model_copy(update={"name": new, "edited": _mark(m.edited, "name"),
                             "aliases": _aliases(x.aliases, name, exclude=new)}) if x.name == name else x
        for x in _ordered(template)
    ]
    return _rebuild(template, ms, rename={name: new})


def merge_milestones(
    template: ProcessTemplate,
    names: Sequence[str],
    *,
    into: str | None = None,
    name: str | None = None,
) -> ProcessTemplate:
    """Merge several milestones into one.

    The merged milestone takes the place of ``into`` (default: the earliest of ``names``) and its
    evidence; its name is ``name`` (default: ``into``'s). Times add up (p50 and p80 days are the sums
    of the merged milestones' known values: a conservative estimate of the time in the combined
    step), exit criteria are pooled in process order, and the owner is ``into``'s (or the first one
    set). Activities due by any merged milestone become due by the merged one; dependencies follow
    and those that would link the milestone to itself are dropped.

    Examples
    --------
    >>> from salesproc.template import Activity, Milestone, ProcessTemplate
    >>> t = ProcessTemplate(
    ...     milestones=[Milestone(name="Demo", order=1, p50_days=5, p80_days=9),
    ...                 Milestone(name="Trial", order=2, p50_days=10, p80_days=20)],
    ...     activities=[Activity(name="Security review", milestone="Trial")])
    >>> m = merge_milestones(t, ["Demo", "Trial"], name="Evaluation")
    >>> m.milestone_names, m.milestone("Evaluation").p50_days, m.activity("Security review").milestone
    (['Evaluation'], 15.0, 'Evaluation')
    """
    fn = "merge_milestones"
    if isinstance(names, str) or len(list(names)) < 2:
        raise TemplateError(
            f"The 'names' parameter of {fn} must list two or more milestones. Got {names!r} instead."
        )
    wanted = list(dict.fromkeys(names))
    if len(wanted) < 2:
        raise TemplateError(f"The 'names' parameter of {fn} names the same milestone twice: {names!r}.")
    for n in wanted:
        _milestone(template, n, fn)
    ms = _ordered(template)
    merged = [m for m in ms if m.name in wanted]
    keep_name = into if into is not None else merged[0].name
    if keep_name not in wanted:
        raise TemplateError(
            f"The 'into' parameter of {fn} must be one of the merged milestones {wanted}. "
            f"Got {into!r} instead."
        )
    base = next(m for m in merged if m.name == keep_name)
    final = _clean_name(name, fn, "name") if name is not None else base.name
    _check_free(template, final, fn, allow=wanted)

    def total(field: str) -> float | None:
        vals = [getattr(m, field) for m in merged if getattr(m, field) is not None]
        return round(float(sum(vals)), 2) if vals else None

    owner = base.owner_role or next((m.owner_role for m in merged if m.owner_role), None)
    criteria = list(dict.fromkeys(c for m in merged for c in m.exit_criteria))
    upd: dict[str, Any] = {
        "name": final,
        "p50_days": total("p50_days"),
        "p80_days": total("p80_days"),
        "owner_role": owner,
        "exit_criteria": criteria,
    }
    edited = list(dict.fromkeys(f for m in merged for f in m.edited))
    marks = [f for f, v in upd.items() if getattr(base, f) != v]
    upd["edited"] = _mark(edited, *marks)
    upd["aliases"] = _aliases([a for m in merged for a in m.aliases], *[m.name for m in merged], exclude=final)
    new_m = base.model_copy(update=upd)
    out = [new_m if m.name == keep_name else m for m in ms if m.name == keep_name or m.name not in wanted]
    return _rebuild(template, out, rename=dict.fromkeys(wanted, final))


def set_milestone(
    template: ProcessTemplate,
    name: str,
    *,
    owner_role: str | _Unset | None = UNSET,
    exit_criteria: Iterable[str] | str | _Unset = UNSET,
    p50_days: float | _Unset | None = UNSET,
    p80_days: float | _Unset | None = UNSET,
) -> ProcessTemplate:
    """Set a milestone's owner, exit criteria (a list, or text with one criterion per line) or durations.

    Only the fields given are touched; those whose value changes are marked as edited. ``None``
    clears a field.

    Examples
    --------
    >>> from salesproc.template import Milestone, ProcessTemplate
    >>> t = ProcessTemplate(milestones=[Milestone(name="Proposal", order=1, p50_days=7.0)])
    >>> m = set_milestone(t, "Proposal", owner_role="AE", exit_criteria="Pricing approved\\n\\nLegal ok",
    ...                   p50_days=7.0, p80_days=14).milestone("Proposal")
    >>> m.owner_role, m.exit_criteria, m.p80_days, m.edited
    ('AE', ['Pricing approved', 'Legal ok'], 14.0, ['owner_role', 'exit_criteria', 'p80_days'])
    """
    fn = "set_milestone"
    m = _milestone(template, name, fn)
    upd: dict[str, Any] = {}
    if not isinstance(owner_role, _Unset):
        upd["owner_role"] = _owner(owner_role, fn)
    if not isinstance(exit_criteria, _Unset):
        upd["exit_criteria"] = _criteria(exit_criteria, fn)
    if not isinstance(p50_days, _Unset):
        upd["p50_days"] = _days(p50_days, fn, "p50_days")
    if not isinstance(p80_days, _Unset):
        upd["p80_days"] = _days(p80_days, fn, "p80_days")
    p50 = upd.get("p50_days", m.p50_days)
    p80 = upd.get("p80_days", m.p80_days)
    if p50 is not None and p80 is not None and p80 < p50:
        raise TemplateError(
            f"{fn}: {name!r} would take {p50:g} days typically (p50) but {p80:g} days in 80% of cases "
            "(p80); p80 must be at least p50. Fix: raise p80_days or lower p50_days."
        )
    changed = {f: v for f, v in upd.items() if getattr(m, f) != v}
    if not changed:
        return template
    changed["edited"] = _mark(m.edited, *[f for f in upd if f in changed])
    ms = [m.model_copy(update=changed) if x.name == name else x for x in _ordered(template)]
    return _rebuild(template, ms)


# --- activity edits -----------------------------------------------------------------------------


def set_activity(
    template: ProcessTemplate,
    name: str,
    *,
    requirement: Requirement | _Unset = UNSET,
    milestone: str | _Unset | None = UNSET,
    owner_role: str | _Unset | None = UNSET,
    due_days_before: float | _Unset | None = UNSET,
) -> ProcessTemplate:
    """Set an activity's requirement, the milestone it is due by, its owner or its lead time.

    ``requirement`` is ``required`` or ``recommended`` (a critical activity), ``warning`` (goes with
    losing) or ``none``; ``critical`` follows it. Changed fields are marked as edited.

    Examples
    --------
    >>> from salesproc.template import Activity, Milestone, ProcessTemplate
    >>> t = ProcessTemplate(milestones=[Milestone(name="Proposal", order=1)],
    ...                     activities=[Activity(name="Exec sponsor call")])
    >>> a = set_activity(t, "Exec sponsor call", requirement="recommended", milestone="Proposal").activity(
    ...     "Exec sponsor call")
    >>> a.critical, a.requirement, a.milestone, a.edited
    (True, 'recommended', 'Proposal', ['requirement', 'critical', 'milestone'])
    """
    fn = "set_activity"
    a = _activity(template, name, fn)
    upd: dict[str, Any] = {}
    if not isinstance(requirement, _Unset):
        if requirement not in REQUIREMENTS:
            raise TemplateError(
                f"The 'requirement' parameter of {fn} must be one of {list(REQUIREMENTS)}. "
                f"Got {requirement!r} instead."
            )
        upd["requirement"] = requirement
        upd["critical"] = requirement in ("required", "recommended")
    if not isinstance(milestone, _Unset):
        if milestone is not None:
            _milestone(template, milestone, fn)
        upd["milestone"] = milestone
    if not isinstance(owner_role, _Unset):
        upd["owner_role"] = _owner(owner_role, fn)
    if not isinstance(due_days_before, _Unset):
        upd["due_days_before"] = _days(due_days_before, fn, "due_days_before")
    changed = {f: v for f, v in upd.items() if getattr(a, f) != v}
    if not changed:
        return template
    changed["edited"] = _mark(a.edited, *[f for f in upd if f in changed])
    return _replace_activity(template, name, a.model_copy(update=changed))


def accept_activity(
    template: ProcessTemplate, name: str, requirement: Requirement | None = None
) -> ProcessTemplate:
    """The team accepts the data's verdict on an activity (or sets ``requirement``), and it sticks.

    Without ``requirement`` the activity keeps its status (a ``none`` activity becomes ``required``).
    ``requirement`` and ``critical`` are marked as edited even when unchanged: accepting is a decision
    that a re-derivation keeps.

    Examples
    --------
    >>> from salesproc.template import Activity, ProcessTemplate
    >>> t = ProcessTemplate(activities=[Activity(name="ROI model", critical=True, requirement="recommended")])
    >>> a = accept_activity(t, "ROI model").activity("ROI model")
    >>> a.requirement, a.edited
    ('recommended', ['requirement', 'critical'])
    """
    a = _activity(template, name, "accept_activity")
    req: Requirement = requirement if requirement is not None else (
        a.requirement if a.requirement != "none" else "required"
    )
    out = set_activity(template, name, requirement=req)
    b = out.activity(name)
    return _replace_activity(out, name, b.model_copy(update={"edited": _mark(b.edited, "requirement", "critical")}))


def reject_activity(template: ProcessTemplate, name: str) -> ProcessTemplate:
    """The team rejects an activity the data flagged: it is no longer critical (nor a warning sign).

    Examples
    --------
    >>> from salesproc.template import Activity, ProcessTemplate
    >>> t = ProcessTemplate(activities=[Activity(name="Discount", requirement="warning")])
    >>> a = reject_activity(t, "Discount").activity("Discount")
    >>> a.requirement, a.critical, a.edited
    ('none', False, ['requirement', 'critical'])
    """
    _activity(template, name, "reject_activity")
    out = set_activity(template, name, requirement="none")
    b = out.activity(name)
    return _replace_activity(out, name, b.model_copy(update={"edited": _mark(b.edited, "requirement", "critical")}))


def _replace_activity(template: ProcessTemplate, name: str, new: Activity) -> ProcessTemplate:
    acts = [new if x.name == name else x for x in template.activities]
    return template.model_copy(update={"activities": acts})


# --- versions -----------------------------------------------------------------------------------


def next_template_version(
    template: ProcessTemplate, path: str | Path, *, previous: ProcessTemplate | None = None
) -> ProcessTemplate:
    """``template`` numbered as the next version to be saved at ``path``.

    The number follows the next free file name (``process.yaml`` is v1, ``process.v2.yaml`` v2, ...)
    and is always above ``previous``'s, so file names and ``version`` fields agree.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from salesproc.template import ProcessTemplate, save_template
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> t = ProcessTemplate()
    >>> _ = save_template(t, d / "process.yaml")
    >>> next_template_version(t, d / "process.yaml", previous=t).version
    2
    """
    nxt = next_version_path(path)
    stem = nxt.stem
    number = 1
    tail = stem.rsplit(".", 1)[-1] if "." in stem else ""
    if tail.startswith("v") and tail[1:].isdigit():
        number = int(tail[1:])
    if previous is not None:
        number = max(number, previous.version + 1)
    return template.model_copy(update={"version": number})
