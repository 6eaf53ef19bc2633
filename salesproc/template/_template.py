"""The process template: a team's milestones, timings and critical activities, with their evidence.

A :class:`ProcessTemplate` is what :func:`salesproc.derive_template` learns from a history and what
people then edit by hand. It serialises to readable, diffable YAML (:func:`save_template`,
:func:`load_template`), compares with :func:`diff_templates`, and shows itself in a notebook.

Human edits survive re-derivation: every milestone and activity has an ``edited`` list naming the
fields a person set (the template editor fills it; on load, a duration or owner that differs from
its evidence is marked too). ``derive_template(history, previous=template)`` keeps those fields and
records what the new data would have changed as ``proposals``.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from salesproc._io import atomic_write_text, write_next_version
from salesproc.errors import TemplateError

__all__ = [
    "Activity",
    "ActivityEvidence",
    "Dependency",
    "Duration",
    "Milestone",
    "MilestoneEvidence",
    "ProcessTemplate",
    "Proposal",
    "Provenance",
    "Rate",
    "TemplateDiff",
    "diff_templates",
    "load_template",
    "save_template",
]

SCHEMA_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


# --- value checks ----------------------------------------------------------------------------------
# A hand-edited template is read back through these: a duration of ``.inf``, ``-5`` or ``.nan`` would
# otherwise flow into plans and reviews as if it were data. The messages are completed by the loader
# with the key path, the line and the value found.

N_QUANTILES = 19  # the Kaplan-Meier quantiles kept per duration: 5%, 10%, ..., 95%


def _days(x: float) -> float:
    if not (math.isfinite(x) and x >= 0):
        raise ValueError(
            "expected a finite number of days, 0 or more. "
            "Fix: type how many days it usually takes (or null if unknown)"
        )
    return x


def _share(x: float) -> float:
    if not (math.isfinite(x) and 0.0 <= x <= 1.0):
        raise ValueError(
            "expected a share or probability between 0 and 1. "
            "Fix: write it as a fraction (0.25 for 25%), or derive the template again"
        )
    return x


def _effect(x: float) -> float:
    if not (math.isfinite(x) and -1.0 <= x <= 1.0):
        raise ValueError(
            "expected a difference of two shares, between -1 and 1. Fix: derive the template again"
        )
    return x


def _whole(x: object) -> object:
    if isinstance(x, bool):
        raise ValueError("expected a whole number, 0 or more, not true/false. Fix: write the count")
    return x


def _count(x: int) -> int:
    if x < 0:
        raise ValueError("expected a whole number, 0 or more. Fix: write the count (derive again if unsure)")
    return x


Days = Annotated[float, AfterValidator(_days)]
"""A finite number of days, 0 or more."""
Share = Annotated[float, AfterValidator(_share)]
"""A share or probability in [0, 1]."""
Effect = Annotated[float, AfterValidator(_effect)]
"""A risk difference in [-1, 1]."""
Count = Annotated[int, BeforeValidator(_whole), AfterValidator(_count)]
"""A non-negative whole number."""


def _not_below(value: float | None, info: ValidationInfo, lower: str) -> float | None:
    """``value`` unless it is under the field ``lower`` validated before it (a p80 under its p50)."""
    low = info.data.get(lower)
    if value is not None and low is not None and value < low:
        raise ValueError(
            f"expected at least {lower} ({low:g}): 80% of cases cannot finish sooner than half of them. "
            f"Fix: raise {info.field_name} or lower {lower}"
        )
    return value


def _non_decreasing(qs: list[float | None]) -> list[float | None]:
    """Quantiles at 5%, 10%, ..., 95%: at most 19, each at least the one before; unknown only at the end."""
    if len(qs) > N_QUANTILES:
        raise ValueError(
            f"expected at most {N_QUANTILES} quantiles (5%, 10%, ..., 95%), found {len(qs)}. "
            "Fix: derive the template again rather than editing its evidence"
        )
    known = [q for q in qs if q is not None]
    if qs[: len(known)] != known:
        raise ValueError(
            "expected the unknown (null) quantiles only at the end, after those the data reach. "
            "Fix: derive the template again rather than editing its evidence"
        )
    for i, (a, b) in enumerate(itertools.pairwise(known)):
        if b < a:
            raise ValueError(
                f"expected quantiles that never decrease; the {5 * (i + 2)}% quantile ({b:g}) is under the "
                f"{5 * (i + 1)}% one ({a:g}). Fix: derive the template again rather than editing its evidence"
            )
    return qs


class Rate(_Model):
    """A proportion with its interval: ``k`` of ``n``, ``rate`` = k/n, Wilson 95% interval."""

    k: Count
    n: Count
    rate: Share | None
    low: Share | None
    high: Share | None

    @field_validator("n")
    @classmethod
    def _k_of_n(cls, n: int, info: ValidationInfo) -> int:
        k = info.data.get("k")
        if k is not None and k > n:
            raise ValueError(f"expected n at least k ({k}): k counts cases among n. Fix: derive the template again")
        return n

    def __str__(self) -> str:
        if self.rate is None or self.low is None or self.high is None:
            return f"n/a (n={self.n})"
        return f"{self.rate:.0%} [{self.low:.0%}, {self.high:.0%}] (n={self.n})"


class Duration(_Model):
    """Time in a milestone (days), censoring-aware (Kaplan-Meier).

    ``p50``/``p80`` with 95% intervals (``None`` where the data never reach that quantile),
    ``n`` visits of which ``events`` were observed to end and ``censored`` were still running;
    ``naive_p50`` is what dropping the running ones would have said (the bias it avoids);
    ``quantiles`` are the KM quantiles at 5%, 10%, ..., 95% (for simulation).
    """

    p50: Days | None = None
    p80: Days | None = None
    p50_ci: tuple[Days | None, Days | None] = (None, None)
    p80_ci: tuple[Days | None, Days | None] = (None, None)
    n: Count = 0
    events: Count = 0
    censored: Count = 0
    naive_p50: Days | None = None
    naive_p80: Days | None = None
    by_outcome: dict[str, Days | None] = Field(default_factory=dict)
    quantiles: Annotated[list[Days | None], AfterValidator(_non_decreasing)] = Field(default_factory=list)

    @field_validator("p80")
    @classmethod
    def _p80_after_p50(cls, v: float | None, info: ValidationInfo) -> float | None:
        return _not_below(v, info, "p50")

    @field_validator("naive_p80")
    @classmethod
    def _naive_p80_after_p50(cls, v: float | None, info: ValidationInfo) -> float | None:
        return _not_below(v, info, "naive_p50")


class MilestoneEvidence(_Model):
    """What the history says about one milestone."""

    reached: Count = 0
    reached_share: Share = 0.0
    skipped_share: Share = 0.0
    revisited_share: Share = 0.0
    to_next: Rate | None = None
    to_success: Rate | None = None
    success_if_furthest: Rate | None = None
    duration: Duration = Field(default_factory=Duration)


class Milestone(_Model):
    """One milestone of the process, in order, with who owns it and how long it usually takes.

    ``aliases`` are the event names in the data that count as this milestone (the names it had
    before a person renamed or merged it); the milestone's own name always counts.
    """

    name: str
    order: int
    exit_criteria: list[str] = Field(default_factory=list)
    owner_role: str | None = None
    p50_days: Days | None = None
    p80_days: Days | None = None
    evidence: MilestoneEvidence = Field(default_factory=MilestoneEvidence)
    aliases: list[str] = Field(default_factory=list)
    edited: list[str] = Field(default_factory=list)

    @field_validator("p80_days")
    @classmethod
    def _p80_after_p50(cls, v: float | None, info: ValidationInfo) -> float | None:
        return _not_below(v, info, "p50_days")


class ActivityEvidence(_Model):
    """A landmark comparison: among cases that reached ``milestone``, success with vs without the activity.

    ``p`` is Fisher's exact test, ``q`` its Benjamini-Hochberg adjustment over all activities;
    ``q_age_adjusted`` is the same comparison stratified by age at the milestone (Cochran-Mantel-
    Haenszel, BH-adjusted), which must agree before an activity is flagged.
    """

    milestone: str
    n: Count
    n_with: Count
    n_without: Count
    success_with: Share | None
    success_without: Share | None
    risk_difference: Effect | None
    ci: tuple[Effect | None, Effect | None] = (None, None)
    p: Share | None = None
    q: Share | None = None
    q_age_adjusted: Share | None = None


class Activity(_Model):
    """An activity and whether it separates wins from losses.

    ``milestone`` is the milestone it should be done by; ``due_days_before`` how many days before
    reaching it the winners usually did it; ``requirement`` is ``required`` / ``recommended`` for
    critical activities, ``warning`` for ones that go with losing, ``none`` otherwise.
    """

    name: str
    milestone: str | None = None
    due_days_before: Days | None = None
    owner_role: str | None = None
    critical: bool = False
    requirement: Literal["required", "recommended", "warning", "none"] = "none"
    evidence: ActivityEvidence | None = None
    note: str | None = None
    edited: list[str] = Field(default_factory=list)


class Dependency(_Model):
    """``before`` must be done before ``after`` starts (names of milestones or activities)."""

    before: str
    after: str


class Provenance(_Model):
    """Where a template's numbers come from."""

    data_fingerprint: str = ""
    source: str = ""
    first_event: str | None = None
    last_event: str | None = None
    as_of: str | None = None
    cases: Count = 0
    closed_cases: Count = 0
    events: Count = 0
    salesproc_version: str = ""
    options: dict[str, Any] = Field(default_factory=dict)
    #: How the team's export was read (the settings file's keys: source, mapping, outcome rules...)
    settings: dict[str, Any] = Field(default_factory=dict)


class Proposal(_Model):
    """A change the data suggests to a field a person set (kept as the person set it)."""

    item: str
    field: str
    current: Any = None
    proposed: Any = None
    reason: str = ""


class ProcessTemplate(_Model):
    """A team's process: milestones in order, critical activities, dependencies and the evidence.

    Examples
    --------
    >>> from salesproc.template import ProcessTemplate, Milestone
    >>> t = ProcessTemplate(name="demo", kind="deal",
    ...                     milestones=[Milestone(name="Qualify", order=1), Milestone(name="Proposal", order=2)])
    >>> t.milestone_names
    ['Qualify', 'Proposal']
    """

    schema_version: int = SCHEMA_VERSION
    name: str = "process"
    version: int = 1
    kind: Literal["deal", "project"] = "deal"
    success: str = "won"
    milestones: list[Milestone] = Field(default_factory=list)
    activities: list[Activity] = Field(default_factory=list)
    dependencies: list[Dependency] = Field(default_factory=list)
    cycle_time: Duration | None = None
    caveats: list[str] = Field(default_factory=list)
    proposals: list[Proposal] = Field(default_factory=list)
    directly_follows: dict[str, dict[str, Count]] = Field(default_factory=dict)
    provenance: Provenance = Field(default_factory=Provenance)

    @model_validator(mode="after")
    def _check(self) -> ProcessTemplate:
        names = [m.name for m in self.milestones]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"milestone names must be unique; repeated: {dup}")
        known = set(names) | {a.name for a in self.activities}
        for a in self.activities:
            if a.milestone is not None and a.milestone not in names:
                raise ValueError(
                    f"activity {a.name!r} is due by milestone {a.milestone!r}, which is not one of {names}"
                )
        for d in self.dependencies:
            for end in (d.before, d.after):
                if end not in known:
                    raise ValueError(f"dependency {d.before!r} -> {d.after!r} names unknown {end!r}")
        return self

    # -- convenience -------------------------------------------------------------------------
    @property
    def milestone_names(self) -> list[str]:
        return [m.name for m in sorted(self.milestones, key=lambda m: m.order)]

    @property
    def critical_activities(self) -> list[Activity]:
        return [a for a in self.activities if a.critical]

    @property
    def warnings(self) -> list[Activity]:
        return [a for a in self.activities if a.requirement == "warning"]

    def milestone(self, name: str) -> Milestone:
        for m in self.milestones:
            if m.name == name:
                return m
        raise KeyError(f"no milestone {name!r}; the template has {self.milestone_names}")

    def activity(self, name: str) -> Activity:
        for a in self.activities:
            if a.name == name:
                return a
        raise KeyError(f"no activity {name!r} in the template")

    def event_aliases(self) -> dict[str, str]:
        """Event name -> milestone name, for milestones that were renamed or merged.

        Examples
        --------
        >>> from salesproc.template import ProcessTemplate, Milestone
        >>> t = ProcessTemplate(milestones=[Milestone(name="Evaluation", order=1, aliases=["Demo", "Trial"])])
        >>> t.event_aliases()
        {'Demo': 'Evaluation', 'Trial': 'Evaluation'}
        """
        return {a: m.name for m in self.milestones for a in m.aliases if a != m.name}

    def align(self, history: Any) -> Any:
        """``history`` with event names renamed to this template's milestones (see ``aliases``)."""
        mapping = self.event_aliases()
        return history.rename_events(mapping) if mapping else history

    def all_dependencies(self) -> list[Dependency]:
        """Explicit dependencies plus the implied ones: milestone order, activity before its milestone."""
        deps = list(self.dependencies)
        names = self.milestone_names
        deps += [Dependency(before=a, after=b) for a, b in itertools.pairwise(names)]
        deps += [
            Dependency(before=a.name, after=a.milestone)
            for a in self.activities
            if a.critical and a.milestone is not None
        ]
        seen: set[tuple[str, str]] = set()
        out = []
        for d in deps:
            if (d.before, d.after) not in seen:
                seen.add((d.before, d.after))
                out.append(d)
        return out

    def to_yaml(self) -> str:
        """Readable YAML (key order as in the model, lists one item per block)."""
        data = self.model_dump(mode="json", exclude_none=False)
        header = (
            f"# salesproc process template '{self.name}' v{self.version} ({self.kind}s)\n"
            "# Edit freely: list a field under 'edited' to keep your value when the template is\n"
            "# derived again from new data (numbers under 'evidence' are the data's, read-only).\n"
        )
        return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)

    def to_frame(self) -> Any:
        """Milestones and activities as one table."""
        import pandas as pd

        rows = []
        for m in sorted(self.milestones, key=lambda m: m.order):
            ev = m.evidence
            rows.append(
                {
                    "item": m.name,
                    "type": "milestone",
                    "order": m.order,
                    "owner_role": m.owner_role,
                    "p50_days": m.p50_days,
                    "p80_days": m.p80_days,
                    "reached": ev.reached,
                    "to_next": ev.to_next.rate if ev.to_next else None,
                    "to_success": ev.to_success.rate if ev.to_success else None,
                }
            )
        for a in self.activities:
            e = a.evidence
            rows.append(
                {
                    "item": a.name,
                    "type": "activity",
                    "milestone": a.milestone,
                    "requirement": a.requirement,
                    "owner_role": a.owner_role,
                    "due_days_before": a.due_days_before,
                    "risk_difference": e.risk_difference if e else None,
                    "q": e.q if e else None,
                    "n": e.n if e else None,
                }
            )
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        return (
            f"<ProcessTemplate {self.name!r} v{self.version}: {len(self.milestones)} milestones, "
            f"{len(self.critical_activities)} critical activities, {len(self.warnings)} warning signs>"
        )

    def __str__(self) -> str:
        return self.__repr__()

    def _repr_html_(self) -> str:
        ms = "".join(
            "<tr><td>{o}</td><td><b>{n}</b></td><td>{r}</td><td>{p50}</td><td>{p80}</td>"
            "<td>{nx}</td><td>{sx}</td></tr>".format(
                o=m.order,
                n=escape(m.name),
                r=escape(m.owner_role or ""),
                p50=_fmt_days(m.p50_days),
                p80=_fmt_days(m.p80_days),
                nx=escape(str(m.evidence.to_next)) if m.evidence.to_next else "",
                sx=escape(str(m.evidence.to_success)) if m.evidence.to_success else "",
            )
            for m in sorted(self.milestones, key=lambda m: m.order)
        )
        acts = "".join(
            "<tr><td>{n}</td><td>{req}</td><td>{m}</td><td>{rd}</td><td>{q}</td><td>{sup}</td></tr>".format(
                n=escape(a.name),
                req=escape(a.requirement),
                m=escape(a.milestone or ""),
                rd=_fmt_rd(a.evidence),
                q=f"{a.evidence.q:.3g}" if a.evidence and a.evidence.q is not None else "",
                sup=a.evidence.n if a.evidence else "",
            )
            for a in self.activities
            if a.requirement != "none"
        )
        cav = "".join(f"<li>{escape(c)}</li>" for c in self.caveats)
        return (
            f"<div class='salesproc-template'><h4>{escape(self.name)} v{self.version} "
            f"({escape(self.kind)}s)</h4>"
            "<table><tr><th>#</th><th>milestone</th><th>owner</th><th>p50 days</th><th>p80 days</th>"
            f"<th>to next</th><th>to {escape(self.success)}</th></tr>{ms}</table>"
            "<table><tr><th>activity</th><th>status</th><th>by</th><th>effect</th><th>q</th>"
            f"<th>n</th></tr>{acts}</table>"
            + (f"<p>Caveats:</p><ul>{cav}</ul>" if cav else "")
            + "</div>"
        )


def _fmt_days(x: float | None) -> str:
    return "" if x is None else f"{x:.1f}"


def _fmt_rd(e: ActivityEvidence | None) -> str:
    if e is None or e.risk_difference is None:
        return ""
    lo, hi = e.ci
    ci = f" [{lo:+.0%}, {hi:+.0%}]" if lo is not None and hi is not None else ""
    return f"{e.risk_difference:+.0%}{ci}"


# --- persistence ------------------------------------------------------------------------------


def save_template(template: ProcessTemplate, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``template`` as YAML, atomically, and return the path written.

    An existing file is never silently replaced: without ``overwrite=True`` the template goes to the
    next free versioned name (``process.v2.yaml``, ``process.v3.yaml``...).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from salesproc.template import ProcessTemplate, Milestone, save_template, load_template
    >>> t = ProcessTemplate(milestones=[Milestone(name="Qualify", order=1)])
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> save_template(t, d / "process.yaml").name
    'process.yaml'
    >>> save_template(t, d / "process.yaml").name
    'process.v2.yaml'
    >>> load_template(d / "process.v2.yaml") == t
    True
    """
    if overwrite:
        return atomic_write_text(path, template.to_yaml(), overwrite=True)
    # the next free name is claimed atomically: a save never replaces one made at the same moment
    return write_next_version(path, template.to_yaml())


def load_template(path: str | Path) -> ProcessTemplate:
    """Read a template YAML file; errors name the key path and the line.

    Fields whose value differs from their evidence (a duration or owner typed by hand) are marked
    as edited, so that a later re-derivation keeps them.
    """
    p = Path(path)
    if not p.exists():
        raise TemplateError(f"{p}: no such template file.")
    text = p.read_text(encoding="utf-8")
    return template_from_yaml(text, source=str(p))


def template_from_yaml(text: str, *, source: str = "<yaml>") -> ProcessTemplate:
    """Parse template YAML text (safe loader only)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise TemplateError(f"{source}{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise TemplateError(f"{source}: expected a mapping of template fields at the top, got {type(data).__name__}.")
    try:
        tpl = ProcessTemplate.model_validate(data)
    except ValidationError as exc:
        msgs = [_error_line(node, err) for err in exc.errors()]
        raise TemplateError(
            f"{source}: invalid template:\n  " + "\n  ".join(dict.fromkeys(msgs)) + "\n"
            f"Fix: correct the values above in {source} (if numbers under 'evidence' were edited, "
            "derive the template again instead: they are the data's)."
        ) from None
    return _mark_hand_edits(tpl)


def _error_line(node: Any, err: Any) -> str:
    """One validation error as ``line N, key.path: found X, expected ...``."""
    loc = [x for x in err["loc"] if x not in ("function-after", "function-before")]
    path = _loc_path(loc)
    line_no = _line_of(node, loc)
    where = f"line {line_no}, " if line_no else ""
    got = err.get("input")
    msg = str(err["msg"]).removeprefix("Value error, ")
    found = "" if isinstance(got, (dict, list)) else f"found {got!r}, "
    return f"{where}{path or '<top>'}: {found}{msg[:1].lower()}{msg[1:]}"


def check_template(template: ProcessTemplate, *, where: str) -> ProcessTemplate:
    """``template``, once its values are checked again, whole.

    ``model_copy(update=...)`` skips pydantic's checks, so a template changed that way may hold what
    :class:`ProcessTemplate` refuses (a negative or infinite duration, a share above 1). Planning and
    reviewing call this before they trust the numbers.

    Examples
    --------
    >>> from salesproc.template import Milestone, ProcessTemplate
    >>> t = ProcessTemplate(milestones=[Milestone(name="Qualify", order=1, p50_days=5.0)])
    >>> bad = t.model_copy(update={"milestones": [t.milestones[0].model_copy(update={"p50_days": -5.0})]})
    >>> check_template(bad, where="plan_backwards")
    Traceback (most recent call last):
    ...
    salesproc.errors.TemplateError: The 'template' parameter of plan_backwards holds values a template cannot have:
      milestones[0].p50_days: found -5.0, expected a finite number of days, 0 or more. Fix: type how many days it usually takes (or null if unknown)
    Fix: change templates with salesproc.edit (set_milestone...) or build the parts with their constructors (Milestone(...)), which check each value; model_copy(update=...) does not.
    """
    try:
        ProcessTemplate.model_validate(template.model_dump())
    except ValidationError as exc:
        msgs = [_error_line(None, err) for err in exc.errors()]
        raise TemplateError(
            f"The 'template' parameter of {where} holds values a template cannot have:\n  "
            + "\n  ".join(dict.fromkeys(msgs)) + "\n"
            "Fix: change templates with salesproc.edit (set_milestone...) or build the parts with their "
            "constructors (Milestone(...)), which check each value; model_copy(update=...) does not."
        ) from None
    return template


def _loc_path(loc: Sequence[Any]) -> str:
    out = ""
    for x in loc:
        out += f"[{x}]" if isinstance(x, int) else (f".{x}" if out else str(x))
    return out


def _line_of(node: Any, loc: Sequence[Any]) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (or of its nearest existing parent)."""
    cur = node
    line = cur.start_mark.line + 1 if cur is not None else None
    for key in loc:
        nxt = None
        if isinstance(cur, yaml.MappingNode):
            for k, v in cur.value:
                if k.value == str(key):
                    nxt = v
                    break
        elif isinstance(cur, yaml.SequenceNode) and isinstance(key, int) and key < len(cur.value):
            nxt = cur.value[key]
        if nxt is None:
            break
        cur = nxt
        line = cur.start_mark.line + 1
    return line


def _mark_hand_edits(tpl: ProcessTemplate) -> ProcessTemplate:
    ms = []
    changed = False
    for m in tpl.milestones:
        d = m.evidence.duration
        extra = []
        if m.p50_days is not None and d.p50 is not None and abs(m.p50_days - d.p50) > 1e-6:
            extra.append("p50_days")
        if m.p80_days is not None and d.p80 is not None and abs(m.p80_days - d.p80) > 1e-6:
            extra.append("p80_days")
        new = [f for f in extra if f not in m.edited]
        if new:
            changed = True
            m = m.model_copy(update={"edited": [*m.edited, *new]})
        ms.append(m)
    return tpl.model_copy(update={"milestones": ms}) if changed else tpl


# --- diff -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    kind: str
    item: str
    detail: str


@dataclass(frozen=True)
class TemplateDiff:
    """Readable differences between two templates; ``str()`` gives one line per change."""

    a: str
    b: str
    changes: tuple[Change, ...]

    def __bool__(self) -> bool:
        return bool(self.changes)

    def __iter__(self) -> Iterator[Change]:
        return iter(self.changes)

    def __len__(self) -> int:
        return len(self.changes)

    def __str__(self) -> str:
        if not self.changes:
            return f"{self.a} and {self.b}: no differences"
        return f"{self.a} -> {self.b}:\n" + "\n".join(f"  {c.detail}" for c in self.changes)

    def _repr_html_(self) -> str:
        items = "".join(f"<li><code>{escape(c.kind)}</code> {escape(c.detail)}</li>" for c in self.changes)
        return f"<div><b>{escape(self.a)} &rarr; {escape(self.b)}</b><ul>{items or '<li>no differences</li>'}</ul></div>"

    def to_frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame([c.__dict__ for c in self.changes], columns=["kind", "item", "detail"])


def diff_templates(
    a: ProcessTemplate, b: ProcessTemplate, *, days_tolerance: float = 0.5
) -> TemplateDiff:
    """What changed from ``a`` to ``b``: milestones added, removed, reordered or renamed fields;
    durations moved; activities that gained or lost critical status or changed milestone.

    Examples
    --------
    >>> from salesproc.template import ProcessTemplate, Milestone, diff_templates
    >>> a = ProcessTemplate(milestones=[Milestone(name="Qualify", order=1), Milestone(name="Demo", order=2)])
    >>> b = ProcessTemplate(milestones=[Milestone(name="Demo", order=1), Milestone(name="Qualify", order=2)])
    >>> print(diff_templates(a, b))
    v1 -> v1:
      milestone order: Qualify > Demo  ->  Demo > Qualify
    """
    renames = _renames(a, b)
    a_renamed, an = _under_new_names(a, renames.renamed)
    changes = [
        *renames.changes,
        *_milestone_changes(a_renamed, an, b, renames.merged, days_tolerance),
        *_activity_changes(a, b),
        *_dependency_changes(a, b),
    ]
    return TemplateDiff(a=f"v{a.version}", b=f"v{b.version}", changes=tuple(changes))


@dataclass(frozen=True)
class _Renames:
    """Milestones of one template renamed or merged in the next (old name -> new), and what that changed."""

    renamed: dict[str, str]
    merged: frozenset[str]  # the new names of merged milestones: not comparable with any one of their parts
    changes: tuple[Change, ...]  # renamed, merged, added and removed milestones


def _renames(a: ProcessTemplate, b: ProcessTemplate) -> _Renames:
    """Milestones renamed or merged from ``a`` into ``b`` (by ``b``'s aliases), added and removed."""
    ch: list[Change] = []
    an, bn = a.milestone_names, b.milestone_names
    renamed = _renamed_by_aliases(a, b)
    merged_into: dict[str, list[str]] = {}
    for old, new in renamed.items():
        merged_into.setdefault(new, []).append(old)
    for new, olds in merged_into.items():
        if len(olds) == 1:
            ch.append(Change("milestone_renamed", new, f"milestone renamed: {olds[0]} -> {new}"))
        else:
            ch.append(Change("milestones_merged", new, f"milestones merged: {' + '.join(olds)} -> {new}"))
    merged_names = {new for new, olds in merged_into.items() if len(olds) > 1}
    for m in b.milestones:  # merged into one that keeps its name
        olds = [x for x in m.aliases if x in an and x != m.name and x not in bn and m.name in an]
        if olds:
            merged_names.add(m.name)
            ch.append(Change("milestones_merged", m.name, f"milestones merged: {' + '.join([m.name, *olds])} -> {m.name}"))
            renamed.update({o: m.name for o in olds})
    for name in bn:
        if name not in an and name not in merged_into:
            ch.append(Change("milestone_added", name, f"milestone added: {name}"))
    for name in an:
        if name not in bn and name not in renamed:
            ch.append(Change("milestone_removed", name, f"milestone removed: {name}"))
    return _Renames(renamed=renamed, merged=frozenset(merged_names), changes=tuple(ch))


def _renamed_by_aliases(a: ProcessTemplate, b: ProcessTemplate) -> dict[str, str]:
    """Old name in ``a`` -> new name in ``b``, for ``b``'s new milestones whose aliases name one of ``a``'s."""
    an, bn = a.milestone_names, b.milestone_names
    renamed: dict[str, str] = {}
    for m in b.milestones:
        if m.name not in an:
            for old in m.aliases:
                if old in an and old not in bn:
                    renamed[old] = m.name
    return renamed


def _under_new_names(a: ProcessTemplate, renamed: dict[str, str]) -> tuple[ProcessTemplate, list[str]]:
    """``a`` with its milestones under their new names (merged parts once), and its milestone names."""
    an = a.milestone_names
    if not renamed:
        return a, an
    a = a.model_copy(update={"milestones": [
        m.model_copy(update={"name": renamed.get(m.name, m.name)}) for m in a.milestones
        if not (m.name in renamed and renamed[m.name] in an)
    ]})
    return a, list(dict.fromkeys(renamed.get(x, x) for x in an))


def _milestone_changes(
    a: ProcessTemplate, an: list[str], b: ProcessTemplate, merged: frozenset[str], days_tolerance: float
) -> list[Change]:
    """The order of the milestones both templates have, and their durations, owners and exit criteria."""
    bn = b.milestone_names
    ch: list[Change] = []
    common_a = [n for n in an if n in bn]
    common_b = [n for n in bn if n in an]
    if common_a != common_b:
        ch.append(
            Change("milestone_reordered", "", f"milestone order: {' > '.join(common_a)}  ->  {' > '.join(common_b)}")
        )
    for name in common_b:
        if name in merged:
            continue  # a merged step's times and owner are not comparable with one of its parts
        ma, mb = a.milestone(name), b.milestone(name)
        for fld in ("p50_days", "p80_days"):
            va, vb = getattr(ma, fld), getattr(mb, fld)
            if (va is None) != (vb is None) or (
                va is not None and vb is not None and abs(va - vb) > days_tolerance
            ):
                ch.append(Change("duration_moved", name, f"{name}: {fld} {_fmt_days(va) or '-'} -> {_fmt_days(vb) or '-'}"))
        for fld in ("owner_role", "exit_criteria"):
            if getattr(ma, fld) != getattr(mb, fld):
                ch.append(Change("milestone_changed", name, f"{name}: {fld} {getattr(ma, fld)!r} -> {getattr(mb, fld)!r}"))
    return ch


def _activity_changes(a: ProcessTemplate, b: ProcessTemplate) -> list[Change]:
    """Activities added or removed (unless of no consequence), or whose status, milestone or owner changed."""
    ch: list[Change] = []
    acts_a = {x.name: x for x in a.activities}
    acts_b = {x.name: x for x in b.activities}
    for name, xb in acts_b.items():
        xa = acts_a.get(name)
        if xa is None:
            if xb.requirement != "none":
                ch.append(Change("activity_added", name, f"activity added: {name} ({xb.requirement})"))
            continue
        ch += _activity_change(name, xa, xb)
    for name, xa in acts_a.items():
        if name not in acts_b and xa.requirement != "none":
            ch.append(Change("activity_removed", name, f"activity removed: {name} (was {xa.requirement})"))
    return ch


def _activity_change(name: str, xa: Activity, xb: Activity) -> list[Change]:
    """How one activity in both templates changed: critical status, requirement, milestone, owner."""
    ch: list[Change] = []
    if xa.critical != xb.critical:
        kind = "activity_now_critical" if xb.critical else "activity_no_longer_critical"
        word = "became critical" if xb.critical else "lost critical status"
        ch.append(Change(kind, name, f"{name} {word} ({xa.requirement} -> {xb.requirement})"))
    elif xa.requirement != xb.requirement:
        ch.append(Change("activity_requirement", name, f"{name}: {xa.requirement} -> {xb.requirement}"))
    if xa.milestone != xb.milestone and (xa.critical or xb.critical):
        ch.append(Change("activity_moved", name, f"{name}: due by {xa.milestone} -> {xb.milestone}"))
    if xa.owner_role != xb.owner_role and (xa.critical or xb.critical):
        ch.append(Change("activity_owner", name, f"{name}: owner {xa.owner_role!r} -> {xb.owner_role!r}"))
    return ch


def _dependency_changes(a: ProcessTemplate, b: ProcessTemplate) -> list[Change]:
    """Dependencies added and removed."""
    deps_a = {(d.before, d.after) for d in a.dependencies}
    deps_b = {(d.before, d.after) for d in b.dependencies}
    return [
        *(Change("dependency_added", d[0], f"dependency added: {d[0]} before {d[1]}") for d in sorted(deps_b - deps_a)),
        *(Change("dependency_removed", d[0], f"dependency removed: {d[0]} before {d[1]}") for d in sorted(deps_a - deps_b)),
    ]


def slug(text: str) -> str:
    """A file-name-safe slug."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return s[:80] or "item"
