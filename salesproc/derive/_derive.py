"""Derive a team's own process template from its history, with honest evidence.

The whole derivation works on integer codes: events arrive sorted by case and time, milestone and
activity names are categorical, and every statistic is a numpy reduction. No Python loop runs over
cases; loops run over milestones and activities only.

Method, in short:

* **Order**: for every pair of milestones, count the cases that first reached one before the other;
  order by Copeland score (pairwise wins), ties by mean first-reach rank. Robust to skipped stages,
  regressions and loops. Directly-follows counts are computed on consecutive milestone events.
* **Conversion**: per milestone, share of decided cases that went on (to any later milestone, or to
  success), share of closed cases that succeeded, success by furthest milestone; Wilson intervals.
* **Time in milestone**: each visit (a run of events of one milestone) lasts until the next
  milestone or the case's close; visits of open cases are right-censored at ``as_of``. Kaplan-Meier
  gives p50/p80 with log-log Greenwood intervals; ``naive_p50`` shows what dropping open cases says.
* **Critical activities**: a landmark comparison. For activity A and milestone M, take the cases that
  reached M at least a horizon H_M before ``as_of`` (H_M = 95th percentile of the time from M to
  close) so that everyone's outcome had time to show, and compare success between those that did A
  before reaching M and those that did not: risk difference with Newcombe's interval, Fisher's
  exact p, Benjamini-Hochberg q over all tests. Activities that merely happen more in long deals
  get no head start, because only what happened before the landmark counts.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from salesproc._version import __version__
from salesproc.derive._stats import QUANTILE_LEVELS, bh, fisher_pvalues, kaplan_meier, newcombe, wilson
from salesproc.derive._visits import milestone_visits
from salesproc.errors import DeriveError, NoClosedCasesError, NoMilestonesError
from salesproc.history._history import History, _ts
from salesproc.load._build import MilestoneRule, milestone_matcher
from salesproc.load._outcome_names import outcome_like_names
from salesproc.template._template import (
    Activity,
    ActivityEvidence,
    Dependency,
    Duration,
    Milestone,
    MilestoneEvidence,
    ProcessTemplate,
    Proposal,
    Provenance,
    Rate,
)

__all__ = ["derive_template", "directly_follows", "milestone_order"]

DAY_NS = 86_400 * 10**9
NEVER = np.iinfo(np.int64).max
NAT = np.iinfo(np.int64).min
_TERMINAL = re.compile(r"^\s*(closed?[\s_-]*)?(won|lost|win|loss)\s*$", re.IGNORECASE)


class _Prepared:
    """Arrays shared by every step of a derivation."""

    def __init__(self, history: History, milestones: MilestoneRule, as_of: pd.Timestamp) -> None:
        c = history._cases
        e = history._events
        self.n = len(c)
        self.as_of = as_of
        self.as_of_ns = int(as_of.value)
        self.status = c["status"].cat.codes.to_numpy()  # 0 success, 1 failure, 2 open
        self.success = self.status == 0
        self.closed_case = self.status != 2
        self.closed_ns = c["closed"].array.asi8.copy()
        self.created_ns = c["created"].array.asi8
        self.kind = str(c["kind"].iloc[0]) if len(c) else "deal"
        codes = e["case_id"].cat.codes.to_numpy().astype(np.int64)
        ts = e["timestamp"].array.asi8
        names = e["name"].cat.categories.astype(str)
        ncode = e["name"].cat.codes.to_numpy()
        terminal = np.array([bool(_TERMINAL.match(x)) for x in names], dtype=bool)
        is_ms = _milestone_events(e, names, ncode, milestones) & ~terminal[ncode]
        self.dropped_terminal = [str(x) for x in names[terminal]]
        self.events = len(e)
        self.first_event_ns = int(ts.min()) if len(ts) else None
        self.last_event_ns = int(ts.max()) if len(ts) else None
        # milestones: compact codes
        m_used = np.unique(ncode[is_ms])
        self.ms_names = [str(names[i]) for i in m_used]
        remap = np.full(len(names), -1, dtype=np.int64)
        remap[m_used] = np.arange(len(m_used))
        self.mc = codes[is_ms]
        self.mk = remap[ncode[is_ms]]
        self.mt = ts[is_ms]
        a_mask = ~is_ms & ~terminal[ncode]
        a_used = np.unique(ncode[a_mask])
        self.act_names = [str(names[i]) for i in a_used]
        remap_a = np.full(len(names), -1, dtype=np.int64)
        remap_a[a_used] = np.arange(len(a_used))
        self.ac = codes[a_mask]
        self.ak = remap_a[ncode[a_mask]]
        self.at = ts[a_mask]
        self.act_stage = _usual_stage(
            codes, ncode, is_ms, a_mask, remap, self.ac, self.ak, n_acts=len(a_used), n_ms=len(m_used)
        )
        # usual role of each event name, by counting (name, role) pairs: no per-row Python objects
        rcode, runiq = pd.factorize(e["role"], use_na_sentinel=True)
        self.role_of_name = _mode_by_group(ncode, rcode, len(names), [str(x) for x in runiq])
        self.ms_role = [self.role_of_name[i] for i in m_used]
        self.act_role = [self.role_of_name[i] for i in a_used]
        self.first = _first_reach(self.n, self.mc, self.mk, self.mt, len(self.ms_names))
        # the data fingerprint: what the numbers were computed from
        self.fingerprint = _fingerprint(
            (codes, ts, ncode, self.status, self.closed_ns, self.created_ns), names, c["case_id"]
        )


def _milestone_events(e: pd.DataFrame, names: pd.Index, ncode: np.ndarray, milestones: MilestoneRule) -> np.ndarray:
    """Which events are milestones: by their ``type``, or by name under the ``milestones`` rule."""
    if milestones is None:
        return (e["type"] == "milestone").to_numpy()
    match = milestone_matcher(milestones)
    assert match is not None
    is_ms_name = match(pd.Series(names))
    return is_ms_name[ncode]


def _usual_stage(
    codes: np.ndarray,
    ncode: np.ndarray,
    is_ms: np.ndarray,
    a_mask: np.ndarray,
    remap: np.ndarray,
    ac: np.ndarray,
    ak: np.ndarray,
    *,
    n_acts: int,
    n_ms: int,
) -> np.ndarray:
    """The milestone each activity is usually done in: the last milestone reached before it, most often (-1: none)."""
    last_ms = np.where(is_ms, np.arange(len(codes)), -1)
    np.maximum.accumulate(last_ms, out=last_ms)
    lm = last_ms[a_mask]
    in_case = (lm >= 0) & (codes[np.maximum(lm, 0)] == ac)
    cur = np.where(in_case, remap[ncode[np.maximum(lm, 0)]], -1)
    n_ms = max(n_ms, 1)
    ok = cur >= 0
    cnt = np.bincount(ak[ok] * n_ms + cur[ok], minlength=n_acts * n_ms).reshape(n_acts, n_ms)
    return np.where(cnt.sum(axis=1) > 0, cnt.argmax(axis=1), -1)


def _first_reach(n: int, mc: np.ndarray, mk: np.ndarray, mt: np.ndarray, K: int) -> np.ndarray:
    """(cases, milestones): when each case first reached each milestone (``NEVER`` if it did not)."""
    first = np.full(n * max(K, 1), NEVER, dtype=np.int64)
    if len(mc):
        np.minimum.at(first, mc * K + mk, mt)
    return first.reshape(n, max(K, 1))[:, :K]


def _fingerprint(arrays: Iterable[np.ndarray], names: pd.Index, case_ids: pd.Series) -> str:
    """A hash of the arrays, the event names and the first case ids: what the numbers were computed from."""
    h = hashlib.sha256()
    for arr in arrays:
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update("\x1f".join(names).encode())
    h.update("\x1f".join(case_ids.astype(str).head(1000)).encode())
    return "sha256:" + h.hexdigest()[:32]


@dataclass(frozen=True)
class _Order:
    """The template's milestones in consensus order, and when each case first reached them."""

    main: np.ndarray  # their codes among all milestones (``P.ms_names``), in consensus order
    names: list[str]
    share: np.ndarray  # share of cases that reached each of all milestones
    rare: list[str]  # milestones left out: reached by too few cases
    first: np.ndarray  # (cases, main): first reach, ``NEVER`` if not reached
    reached: np.ndarray  # (cases, main)


@dataclass(frozen=True)
class _Conversion:
    """How the cases that reached one milestone went on, and how many of them closed either way."""

    reached: int
    to_next: Rate
    to_success: Rate
    success_if_furthest: Rate
    skipped_share: float
    n_succeeded: int
    n_failed: int


@dataclass(frozen=True)
class _Stay:
    """Time in one milestone (Kaplan-Meier over its visits, open ones censored) and how often it is revisited."""

    duration: Duration
    revisited_share: float


def derive_template(
    history: History,
    *,
    as_of: Any = None,
    milestones: MilestoneRule = None,
    name: str = "process",
    min_milestone_share: float = 0.05,
    alpha: float = 0.05,
    min_support: int = 20,
    required_effect: float = 0.10,
    horizon_quantile: float = 0.95,
    previous: ProcessTemplate | None = None,
    settings: Mapping[str, Any] | None = None,
) -> ProcessTemplate:
    """Learn the team's process template from its history.

    Parameters
    ----------
    history
        Cases and events (:func:`salesproc.load_history`).
    as_of
        The date the analysis speaks for; only what was known then is used (later events are cut,
        cases closed later count as open). Defaults to the last date in the history.
    milestones
        Which event names are milestones, for logs without event types: a list, a regex or prefix,
        or a callable. Default: the events' ``type``.
    name
        The template's name.
    min_milestone_share
        Milestones reached by fewer cases than this share are left out of the template (named in
        its caveats); directly-follows counts still include them.
    alpha
        Benjamini-Hochberg false discovery rate for flagging activities.
    min_support
        Fewest cases with, and without, an activity for a comparison to be made at all.
    required_effect
        Risk difference from which a critical activity is ``required`` (else ``recommended``).
    horizon_quantile
        Landmark follow-up: only cases that reached a milestone at least this quantile of the
        milestone-to-close time before ``as_of`` are compared, so every outcome had time to show.
    previous
        An earlier (possibly hand-edited) template: fields listed in its items' ``edited`` are kept
        and the data's new values become ``proposals``.
    settings
        How the history was read (:func:`salesproc.load.settings_dict` of its options and source),
        recorded in the template's ``provenance.settings``.

    Examples
    --------
    >>> import salesproc
    >>> h, truth = salesproc.synthetic_history(1500, seed=3)
    >>> t = salesproc.derive_template(h, as_of=truth.as_of)
    >>> t.milestone_names == truth.stages
    True
    """
    history, t_as_of = _history_to_derive_from(history, as_of=as_of, previous=previous)
    P = _prepare(history, milestones, t_as_of)
    order = _milestone_order(P, min_milestone_share)
    conversion = _conversion(P, order)
    stays = _times_in_milestones(P, order, _visits(P))
    acts, act_caveats = _activities(P, order, alpha=alpha, min_support=min_support,
                                    required_effect=required_effect, horizon_quantile=horizon_quantile)
    caveats = _caveats(P, order, conversion, stays, act_caveats, min_milestone_share=min_milestone_share)
    prov = _provenance(P, history, options={
        "min_milestone_share": min_milestone_share,
        "alpha": alpha,
        "min_support": min_support,
        "required_effect": required_effect,
        "horizon_quantile": horizon_quantile,
        "milestones": _describe_rule(milestones),
    })
    if settings:
        prov = prov.model_copy(update={"settings": _plain_settings(settings)})
    tpl = ProcessTemplate(
        name=name,
        version=1,
        kind=P.kind,  # type: ignore[arg-type]
        success="won" if P.kind == "deal" else "on_time",
        milestones=_milestone_models(P, order, conversion, stays, acts),
        activities=acts,
        dependencies=[],
        cycle_time=_cycle_time(P),
        caveats=caveats,
        directly_follows=_dfg_dict(P),
        provenance=prov,
    )
    if previous is not None:
        tpl = _keep_edits(previous, tpl)
    return tpl


# --- the steps of derive_template ----------------------------------------------------------------


def _history_to_derive_from(
    history: History, *, as_of: Any, previous: ProcessTemplate | None
) -> tuple[History, pd.Timestamp]:
    """The history as known at ``as_of`` (default: its last date) under ``previous``'s names; one kind of case."""
    t_as_of = _ts(as_of, "as_of") if as_of is not None else _default_as_of(history)
    assert t_as_of is not None
    if as_of is not None:
        history = history.as_of(t_as_of)
    if previous is not None:
        history = previous.align(history)  # a person's renamed and merged milestones
    kinds = {str(k) for k in history._cases["kind"].unique()}
    if len(kinds) > 1:
        counts = history._cases["kind"].astype(str).value_counts()
        found = ", ".join(f"{k} {int(n):,}" for k, n in sorted(counts.items()))
        raise DeriveError(
            f"{history._report.source}: the 'history' parameter of derive_template must hold one kind of case. "
            f"Got {sorted(kinds)} instead ({found}). A template describes deals or projects, not both. "
            "Fix: derive from one kind, e.g. history.filter(kind='deal'), or split the file by its 'kind' column."
        )
    return history, t_as_of


def _prepare(history: History, milestones: MilestoneRule, as_of: pd.Timestamp) -> _Prepared:
    """The arrays every step works on; a history without milestone events is an error."""
    P = _Prepared(history, milestones, as_of)
    if len(P.ms_names) == 0:
        counts = history._events["name"].astype(str).value_counts()
        seen = {str(k): int(v) for k, v in counts.items() if v > 0}
        terminal = set(P.dropped_terminal)
        raise NoMilestonesError(
            source=history._report.source,
            names={k: v for k, v in seen.items() if k not in terminal},
            outcomes={k: v for k, v in seen.items() if k in terminal},
            rule=milestones if milestones is not None and not callable(milestones) else None,
        )
    if not P.closed_case.any():
        raise NoClosedCasesError(
            source=history._report.source, kind=P.kind, cases=P.n, caller="derive_template",
            outcome_like=outcome_like_names(history._events["name"].astype(str).value_counts().to_dict()),
        )
    return P


def _milestone_order(P: _Prepared, min_milestone_share: float) -> _Order:
    """The milestones reached by enough cases, in consensus order (Copeland over first reaches)."""
    reached = P.first < NEVER
    n_reached = reached.sum(axis=0)
    share = n_reached / max(P.n, 1)
    main = np.flatnonzero(share >= min_milestone_share)
    rare = [P.ms_names[i] for i in np.flatnonzero(share < min_milestone_share)]
    order = _consensus_order(P.first[:, main], reached[:, main])
    main = main[order]
    return _Order(
        main=main,
        names=[P.ms_names[i] for i in main],
        share=share,
        rare=rare,
        first=P.first[:, main],
        reached=reached[:, main],
    )


def _conversion(P: _Prepared, order: _Order) -> list[_Conversion]:
    """Per milestone: the share that went on, that succeeded, that succeeded from there at most; skips."""
    R = order.reached
    KM_ = len(order.main)
    # furthest milestone reached (in consensus order)
    pos = np.where(R, np.arange(KM_)[None, :], -1)
    furthest = pos.max(axis=1)
    closed = P.closed_case
    succ = P.success
    out: list[_Conversion] = []
    for j in range(KM_):
        rj = R[:, j]
        later = R[:, j + 1 :].any(axis=1) if j + 1 < KM_ else np.zeros(P.n, dtype=bool)
        moved_on = rj & (later | succ)
        decided = rj & (moved_on | closed)
        cl = rj & closed
        fur = closed & (furthest == j)
        skipped = int((later & ~rj).sum())
        out.append(
            _Conversion(
                reached=int(rj.sum()),
                to_next=_rate(int(moved_on.sum()), int(decided.sum())),
                to_success=_rate(int((cl & succ).sum()), int(cl.sum())),
                success_if_furthest=_rate(int((fur & succ).sum()), int(fur.sum())),
                skipped_share=skipped / max(int(later.sum()), 1),
                n_succeeded=int((cl & succ).sum()),
                n_failed=int((cl & ~succ).sum()),
            )
        )
    return out


def _times_in_milestones(P: _Prepared, order: _Order, vis: dict[str, np.ndarray]) -> list[_Stay]:
    """Per milestone: Kaplan-Meier time in it over its visits (open ones censored at ``as_of``); revisits."""
    out: list[_Stay] = []
    for j, k in enumerate(order.main):
        vm = vis["k"] == k
        nvis = np.bincount(vis["case"][vm], minlength=P.n)
        revisited = float((nvis >= 2).sum() / max(int(order.reached[:, j].sum()), 1))
        dur = _duration(vis["days"][vm], vis["observed"][vm], vis["closed_case"][vm], vis["success"][vm])
        out.append(_Stay(duration=dur, revisited_share=revisited))
    return out


def _caveats(
    P: _Prepared,
    order: _Order,
    conversion: list[_Conversion],
    stays: list[_Stay],
    act_caveats: list[str],
    *,
    min_milestone_share: float,
) -> list[str]:
    """What to keep in mind: left-out milestones, thin data, unknown p80 times, what censoring changed."""
    success_word = "won" if P.kind == "deal" else "on time"
    fail_word = "lost" if P.kind == "deal" else "late or failed"
    unit = "deals" if P.kind == "deal" else "projects"
    caveats: list[str] = []
    rare = order.rare
    if rare:
        caveats.append(
            f"{len(rare)} rare milestone(s) left out (reached by under {min_milestone_share:.0%} of {unit}): "
            + ", ".join(rare[:8])
            + (" ..." if len(rare) > 8 else "")
        )
    n_closed = int(P.closed_case.sum())
    if n_closed < 100:
        caveats.append(
            f"Built from only {n_closed} closed {unit}: intervals are wide; treat every number as a rough guide."
        )
    for name, conv, stay in zip(order.names, conversion, stays):
        dur = stay.duration
        if conv.n_failed < 30 and P.kind == "deal":
            caveats.append(f"only {conv.n_failed} {fail_word} {unit} reached {name}: its win rates are uncertain")
        if conv.n_succeeded < 30:
            caveats.append(f"only {conv.n_succeeded} {success_word} {unit} reached {name}")
        if dur.p80 is None and dur.n:
            caveats.append(f"{name}: under 80% of visits have ended, so its p80 time is unknown")
        if dur.p50 is not None and dur.naive_p50 is not None and abs(dur.naive_p50 - dur.p50) > max(
            1.0, 0.1 * dur.p50
        ):
            caveats.append(
                f"{name}: dropping open {unit} would have put the median time at {dur.naive_p50:.1f} days "
                f"instead of {dur.p50:.1f}"
            )
    return list(dict.fromkeys([*caveats, *act_caveats]))


def _milestone_models(
    P: _Prepared, order: _Order, conversion: list[_Conversion], stays: list[_Stay], acts: list[Activity]
) -> list[Milestone]:
    """The template's milestones with their evidence; exit criteria: the critical activities due by the next."""
    ms_models = [
        Milestone(
            name=order.names[j],
            order=j + 1,
            owner_role=P.ms_role[k],
            p50_days=stay.duration.p50,
            p80_days=stay.duration.p80,
            evidence=MilestoneEvidence(
                reached=conv.reached,
                reached_share=round(float(order.share[k]), 4),
                skipped_share=round(float(conv.skipped_share), 4),
                revisited_share=round(stay.revisited_share, 4),
                to_next=conv.to_next,
                to_success=conv.to_success,
                success_if_furthest=conv.success_if_furthest,
                duration=stay.duration,
            ),
        )
        for j, (k, conv, stay) in enumerate(zip(order.main, conversion, stays))
    ]
    names = order.names
    by_ms: dict[str, list[str]] = {}
    for a in acts:
        if a.critical and a.milestone:
            by_ms.setdefault(a.milestone, []).append(f"{a.name} done")
    return [
        m.model_copy(update={"exit_criteria": by_ms.get(names[i + 1], [])}) if i + 1 < len(names) else m
        for i, m in enumerate(ms_models)
    ]


def _cycle_time(P: _Prepared) -> Duration:
    """Days from creation to close of the successful cases."""
    ok = P.success & (P.closed_ns != NAT)
    cyc_days = (P.closed_ns[ok] - P.created_ns[ok]) / DAY_NS
    return _duration(cyc_days, np.ones(len(cyc_days), bool), np.ones(len(cyc_days), bool), np.ones(len(cyc_days), bool))


def _provenance(P: _Prepared, history: History, *, options: dict[str, Any]) -> Provenance:
    """What the template was derived from: the data's fingerprint and span, as_of, the options, the version."""
    return Provenance(
        data_fingerprint=P.fingerprint,
        source=history.report.source,
        first_event=_iso(P.first_event_ns),
        last_event=_iso(P.last_event_ns),
        as_of=P.as_of.isoformat(),
        cases=P.n,
        closed_cases=int(P.closed_case.sum()),
        events=P.events,
        salesproc_version=__version__,
        options=options,
    )


def _plain_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings as YAML-safe plain values (tables of texts, lists of texts)."""
    def plain(v: Any) -> Any:
        if isinstance(v, Mapping):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, list | tuple | set | frozenset):
            return [plain(x) for x in v]
        return v if v is None or isinstance(v, str | bool | int | float) else str(v)

    return {str(k): plain(v) for k, v in settings.items()}


def _default_as_of(history: History) -> pd.Timestamp:
    e, c = history._events, history._cases
    cands = [x for x in (e["timestamp"].max() if len(e) else None, c["closed"].max(), c["created"].max()) if x is not None and not pd.isna(x)]
    if not cands:
        raise DeriveError(
            f"{history._report.source}: the history holds no dates (no events, no created or closed "
            "dates), so there is no 'as of' date to derive for. Expected: events with timestamps. "
            "Fix: pass as_of='YYYY-MM-DD', or load a file whose events have dates."
        )
    return max(cands)


def _iso(ns: int | None) -> str | None:
    return None if ns is None else pd.Timestamp(ns, tz="UTC").isoformat()


def _describe_rule(rule: MilestoneRule) -> Any:
    if rule is None or isinstance(rule, str):
        return rule
    if isinstance(rule, re.Pattern):
        return rule.pattern
    if callable(rule):
        return getattr(rule, "__name__", "callable")
    return sorted(str(x) for x in rule)


def _rate(k: int, n: int) -> Rate:
    if n == 0:
        return Rate(k=0, n=0, rate=None, low=None, high=None)
    lo, hi = wilson(k, n)
    return Rate(k=k, n=n, rate=round(k / n, 4), low=round(float(lo), 4), high=round(float(hi), 4))


def _mode_by_group(group: np.ndarray, code: np.ndarray, n_groups: int, labels: list[str]) -> list[str | None]:
    """For each group, its most frequent label (None where the group has no labelled rows)."""
    ok = code >= 0
    if not ok.any() or not labels:
        return [None] * n_groups
    L = len(labels)
    counts = np.bincount(group[ok].astype(np.int64) * L + code[ok], minlength=n_groups * L).reshape(n_groups, L)
    best = counts.argmax(axis=1)
    return [labels[b] if counts[g, b] > 0 and labels[b] else None for g, b in enumerate(best)]


def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(float(x), nd)


def _duration(days: np.ndarray, observed: np.ndarray, closed_case: np.ndarray, success: np.ndarray) -> Duration:
    if len(days) == 0:
        return Duration()
    km = kaplan_meier(days, observed)
    p50, l50, h50 = km.quantile(0.5)
    p80, l80, h80 = km.quantile(0.8)
    naive = days[closed_case & observed]
    by_outcome: dict[str, float | None] = {}
    for label, m in (("success", closed_case & success & observed), ("failure", closed_case & ~success & observed)):
        by_outcome[label] = _r(float(np.median(days[m]))) if m.any() else None
    return Duration(
        p50=_r(p50),
        p80=_r(p80),
        p50_ci=(_r(l50), _r(h50)),
        p80_ci=(_r(l80), _r(h80)),
        n=len(days),
        events=int(observed.sum()),
        censored=int((~observed).sum()),
        naive_p50=_r(float(np.quantile(naive, 0.5, method="inverted_cdf"))) if len(naive) else None,
        naive_p80=_r(float(np.quantile(naive, 0.8, method="inverted_cdf"))) if len(naive) else None,
        by_outcome=by_outcome,
        quantiles=[_r(q) for q in km.quantiles(QUANTILE_LEVELS)],
    )


def _consensus_order(first: np.ndarray, reached: np.ndarray) -> np.ndarray:
    """Order milestones by pairwise first-reach precedence (Copeland), ties by mean rank."""
    K = first.shape[1]
    if K <= 1:
        return np.arange(K)
    wins = np.zeros(K)
    for a in range(K):
        both = reached[:, a : a + 1] & reached
        before = (first[:, a : a + 1] < first) & both
        after = (first[:, a : a + 1] > first) & both
        wins[a] = float(np.sum(before.sum(axis=0) > after.sum(axis=0)))
    # mean rank of first reach within each case, among the milestones it reached
    ranks = np.argsort(np.argsort(np.where(reached, first, NEVER), axis=1), axis=1).astype(float)
    ranks[~reached] = np.nan
    with np.errstate(invalid="ignore"):
        mean_rank = np.nanmean(np.where(reached, ranks, np.nan), axis=0)
    return np.lexsort((mean_rank, -wins))


def milestone_order(history: History, *, milestones: MilestoneRule = None) -> list[str]:
    """The consensus order of all milestones in a history (no share threshold)."""
    P = _Prepared(history, milestones, _default_as_of(history))
    reached = P.first < NEVER
    return [P.ms_names[i] for i in _consensus_order(P.first, reached)]


def _visits(P: _Prepared) -> dict[str, np.ndarray]:
    """Milestone visits: runs of events of one milestone within a case, with their durations."""
    mc, mk, mt = P.mc, P.mk, P.mt
    if len(mc) == 0:
        z = np.zeros(0, dtype=np.int64)
        return {"case": z, "k": z, "days": z.astype(float), "observed": z.astype(bool),
                "closed_case": z.astype(bool), "success": z.astype(bool)}
    # a closed case's close time (open and won/lost-without-date cases: still running at as_of)
    closed_ns = np.where(P.closed_case, P.closed_ns, NAT)
    vc, vk, vt, end, observed = milestone_visits(mc, mk, mt, closed_ns, P.as_of_ns)
    days = np.maximum(end - vt, 0) / DAY_NS
    return {
        "case": vc,
        "k": vk,
        "days": days,
        "observed": observed,
        "closed_case": P.closed_case[vc],
        "success": P.success[vc],
    }


def _dfg_dict(P: _Prepared) -> dict[str, dict[str, int]]:
    K = len(P.ms_names)
    if len(P.mc) < 2:
        return {}
    same = P.mc[1:] == P.mc[:-1]
    pair = P.mk[:-1][same] * K + P.mk[1:][same]
    counts = np.bincount(pair, minlength=K * K).reshape(K, K)
    out: dict[str, dict[str, int]] = {}
    for a, b in zip(*np.nonzero(counts)):
        out.setdefault(P.ms_names[a], {})[P.ms_names[b]] = int(counts[a, b])
    return out


def directly_follows(history: History, *, types: Iterable[str] = ("milestone", "activity")) -> pd.DataFrame:
    """Directly-follows counts between consecutive events of each case (``source, target, count``).

    With both event types this equals the classic process-mining DFG of the log.
    """
    e = history._events
    keep = e["type"].isin(list(types)).to_numpy()
    codes = e["case_id"].cat.codes.to_numpy()[keep]
    cats = e["name"].cat.categories.astype(str)
    nk = e["name"].cat.codes.to_numpy()[keep].astype(np.int64)
    if len(codes) < 2:
        return pd.DataFrame({"source": [], "target": [], "count": []})
    same = codes[1:] == codes[:-1]
    K = len(cats)
    pair = nk[:-1][same] * K + nk[1:][same]
    u, cnt = np.unique(pair, return_counts=True)
    return pd.DataFrame({"source": cats[u // K], "target": cats[u % K], "count": cnt}).sort_values(
        ["count", "source", "target"], ascending=[False, True, True], ignore_index=True
    )


@dataclass(frozen=True)
class _Landmarks:
    """Landmark comparisons: per (activity, milestone), success with and without the activity done before it."""

    rows: list[dict[str, Any]]  # a, m, n, n_with, n_without, k_with, k_without, rd, lo, hi
    eligible: dict[int, np.ndarray]  # milestone -> the cases that reached it long enough before as_of


def _activities(
    P: _Prepared,
    order: _Order,
    *,
    alpha: float,
    min_support: int,
    required_effect: float,
    horizon_quantile: float,
) -> tuple[list[Activity], list[str]]:
    """Critical activities: landmark comparisons of success with and without each one, tested once each."""
    caveats: list[str] = []
    if len(P.act_names) == 0:
        return [], caveats
    A = _first_done(P)
    usual = _usual_position(P, order)
    landmarks = _landmark_comparisons(P, order, A, usual, horizon_quantile)
    if not landmarks.rows:
        return [Activity(name=n, note="no closed cases to compare") for n in P.act_names], caveats
    T = _primary_tests(P, order, A, usual, landmarks, min_support)
    acts: list[Activity] = []
    thin: list[str] = []
    for a, name in enumerate(P.act_names):
        ta = T[T["a"] == a]
        tested = ta[ta["q"].notna()]
        if not len(tested):
            thin.append(name)
        acts.append(_activity(P, order, A, a, ta, tested, alpha=alpha, min_support=min_support,
                              required_effect=required_effect))
    if thin:
        caveats.append(
            f"{len(thin)} activit{'y' if len(thin) == 1 else 'ies'} had too few cases to judge: "
            + ", ".join(thin[:8]) + (" ..." if len(thin) > 8 else "")
        )
    names = order.names
    rank = {"required": 0, "recommended": 1, "warning": 2, "none": 3}
    acts.sort(key=lambda x: (rank[x.requirement], names.index(x.milestone) if x.milestone in names else 99,
                             -(abs(x.evidence.risk_difference or 0) if x.evidence else 0)))
    return acts, caveats


def _first_done(P: _Prepared) -> np.ndarray:
    """(cases, activities): when each case first did each activity (``NEVER`` if it did not)."""
    J = len(P.act_names)
    flat = np.full(P.n * J, NEVER, dtype=np.int64)
    np.minimum.at(flat, P.ac * J + P.ak, P.at)
    return flat.reshape(P.n, J)


def _usual_position(P: _Prepared, order: _Order) -> np.ndarray:
    """Per activity: the position (in ``order``) of the milestone it is usually done in; -1 if none of them."""
    pos_of_raw = {int(k): j for j, k in enumerate(order.main)}
    return np.array([pos_of_raw.get(int(k), -1) for k in P.act_stage], dtype=np.int64)


def _landmark_comparisons(
    P: _Prepared, order: _Order, A: np.ndarray, usual: np.ndarray, horizon_quantile: float
) -> _Landmarks:
    """Per milestone, among the cases that reached it a horizon before as_of: success with and without each activity."""
    F, R = order.first, order.reached
    J = len(P.act_names)
    y = P.success
    # opportunity: at a milestone after the one an activity is usually done in, compare only cases
    # that went through that milestone (skipping it removes the chance to do the activity, and
    # skipping may go with other differences)
    Fu = np.where(usual[None, :] >= 0, F[:, np.maximum(usual, 0)], NEVER)
    rows: list[dict[str, Any]] = []
    elig_by_m: dict[int, np.ndarray] = {}
    for j in range(len(order.names)):
        Rt = F[:, j]
        rj = R[:, j]
        cl = rj & P.closed_case & (P.closed_ns != NAT)
        if cl.sum() == 0:
            continue
        horizon = float(np.quantile(P.closed_ns[cl] - Rt[cl], horizon_quantile))
        elig = rj & (Rt <= P.as_of_ns - horizon)
        if elig.sum() == 0:
            continue
        elig_by_m[j] = elig
        E = elig[:, None] & ((usual[None, :] >= j) | (usual[None, :] < 0) | (Fu < Rt[:, None]))
        X = (Rt[:, None] > A) & E
        n_with = X.sum(axis=0)
        k_with = (X & y[:, None]).sum(axis=0)
        n_all_a = E.sum(axis=0)
        k_all_a = (E & y[:, None]).sum(axis=0)
        n_without = n_all_a - n_with
        k_without = k_all_a - k_with
        rd, lo, hi = newcombe(k_with, n_with, k_without, n_without)
        for a in range(J):
            rows.append(
                {
                    "a": a, "m": j, "n": int(n_all_a[a]), "n_with": int(n_with[a]), "n_without": int(n_without[a]),
                    "k_with": int(k_with[a]), "k_without": int(k_without[a]),
                    "rd": float(rd[a]), "lo": float(lo[a]), "hi": float(hi[a]),
                }
            )
    return _Landmarks(rows=rows, eligible=elig_by_m)


def _primary_tests(
    P: _Prepared, order: _Order, A: np.ndarray, usual: np.ndarray, landmarks: _Landmarks, min_support: int
) -> pd.DataFrame:
    """The comparisons with Fisher p and BH q (plain and age-adjusted) on each activity's one primary test."""
    T = pd.DataFrame(landmarks.rows)
    supported = (T["n_with"] >= min_support) & (T["n_without"] >= min_support)
    # one primary test per activity, chosen before looking at any outcome: the first milestone after
    # the one it is usually done in that has enough cases with and without it. Testing every
    # milestone would count one real effect many times and let false ones in under BH.
    after_usual = T["m"].to_numpy() > usual[T["a"].to_numpy()]
    cand = T[supported.to_numpy() & after_usual]
    primary = cand.sort_values(["a", "m"]).groupby("a", sort=False).head(1).index
    testable = T.index.isin(primary)
    T["p"] = np.nan
    T["q"] = np.nan
    T["p_adj"] = np.nan
    T["q_adj"] = np.nan
    if testable.any():
        sub = T[testable]
        p = fisher_pvalues(
            sub["k_with"].to_numpy(), (sub["n_with"] - sub["k_with"]).to_numpy(),
            sub["k_without"].to_numpy(), (sub["n_without"] - sub["k_without"]).to_numpy(),
        )
        T.loc[testable, "p"] = p
        T.loc[testable, "q"] = bh(p)
        # the same comparison within strata of age at the milestone (Cochran-Mantel-Haenszel):
        # an activity that only marks elapsed time (status reports in a late project) is not flagged
        p_adj = np.array([
            _age_adjusted_p(P, order.first, A, usual, landmarks.eligible[int(m)], int(a), int(m))
            for a, m in zip(sub["a"].to_numpy(), sub["m"].to_numpy())
        ])
        T.loc[testable, "p_adj"] = p_adj
        T.loc[testable, "q_adj"] = bh(p_adj)
    return T


def _activity(
    P: _Prepared,
    order: _Order,
    A: np.ndarray,
    a: int,
    ta: pd.DataFrame,
    tested: pd.DataFrame,
    *,
    alpha: float,
    min_support: int,
    required_effect: float,
) -> Activity:
    """One activity's verdict: critical (or a warning) where both q values are under alpha, else not."""
    F, R, names = order.first, order.reached, order.names
    name = P.act_names[a]
    role = P.act_role[a]
    sig = tested[(tested["q"] < alpha) & (tested["q_adj"] < alpha)]
    if len(sig):
        best = sig.sort_values("m").iloc[0].copy()
        # typical timing: median days before reaching the milestone, among those who did it
        mj = int(best["m"])
        did = R[:, mj] & (A[:, a] < F[:, mj])
        best["due"] = float(np.median((F[did, mj] - A[did, a]) / DAY_NS)) if did.any() else np.nan
        positive = best["rd"] > 0
        if positive:
            requirement = "required" if (best["rd"] >= required_effect and best["lo"] > 0) else "recommended"
        else:
            requirement = "warning"
        note = _explain(name, best, names, positive, P.kind)
        return Activity(
            name=name, milestone=names[int(best["m"])],
            due_days_before=_r(best["due"], 1) if not np.isnan(best["due"]) else None,
            owner_role=role, critical=bool(positive), requirement=requirement,  # type: ignore[arg-type]
            evidence=_evidence(best, names), note=note,
        )
    if len(tested):
        best = tested.iloc[0]
        return Activity(
            name=name, milestone=None, owner_role=role, critical=False, requirement="none",
            evidence=_evidence(best, names),
            note=f"no clear link to the outcome ({best['rd']:+.0%} at {names[int(best['m'])]}, q={best['q']:.2f})",
        )
    fallback = ta.sort_values("n_with", ascending=False).iloc[0] if len(ta) else None
    return Activity(
        name=name, owner_role=role, critical=False, requirement="none",
        evidence=_evidence(fallback, names) if fallback is not None else None,
        note=f"too few cases to judge (need {min_support} with and without it before a milestone)",
    )


def _age_adjusted_p(
    P: _Prepared, F: np.ndarray, A: np.ndarray, usual: np.ndarray, elig: np.ndarray, a: int, j: int, strata: int = 5
) -> float:
    """CMH p-value (continuity-corrected) of activity ``a`` at milestone ``j``, stratified by age."""
    Rt = F[:, j]
    e = elig & ((usual[a] >= j) | (usual[a] < 0) | (F[:, max(int(usual[a]), 0)] < Rt))
    x = (A[:, a] < Rt)[e]
    y = P.success[e]
    age = (Rt - P.created_ns)[e]
    if len(age) < 2:
        return 1.0
    edges = np.quantile(age, np.linspace(0, 1, strata + 1)[1:-1])
    k = np.searchsorted(edges, age, side="right")
    a_k = np.bincount(k, weights=x & y, minlength=strata)
    n1 = np.bincount(k, weights=x, minlength=strata)
    m1 = np.bincount(k, weights=y, minlength=strata)
    N = np.bincount(k, minlength=strata).astype(float)
    ok = N > 1
    a_k, n1, m1, N = a_k[ok], n1[ok], m1[ok], N[ok]
    expect = n1 * m1 / N
    var = n1 * (N - n1) * m1 * (N - m1) / (N**2 * (N - 1))
    if var.sum() <= 0:
        return 1.0
    from scipy import stats

    chi = (max(abs(float((a_k - expect).sum())) - 0.5, 0.0)) ** 2 / float(var.sum())
    return float(stats.chi2.sf(chi, 1))


def _evidence(row: pd.Series, names: list[str]) -> ActivityEvidence:
    nw, nwo = int(row["n_with"]), int(row["n_without"])
    return ActivityEvidence(
        milestone=names[int(row["m"])],
        n=int(row["n"]),
        n_with=nw,
        n_without=nwo,
        success_with=_r(row["k_with"] / nw, 4) if nw else None,
        success_without=_r(row["k_without"] / nwo, 4) if nwo else None,
        risk_difference=_r(row["rd"], 4) if np.isfinite(row["rd"]) else None,
        ci=(_r(row["lo"], 4) if np.isfinite(row["lo"]) else None, _r(row["hi"], 4) if np.isfinite(row["hi"]) else None),
        p=float(f"{row['p']:.4g}") if pd.notna(row.get("p")) else None,
        q=float(f"{row['q']:.4g}") if pd.notna(row.get("q")) else None,
        q_age_adjusted=float(f"{row['q_adj']:.4g}") if pd.notna(row.get("q_adj")) else None,
    )


def _explain(name: str, row: pd.Series, names: list[str], positive: bool, kind: str) -> str:
    m = names[int(row["m"])]
    sw = row["k_with"] / row["n_with"]
    so = row["k_without"] / row["n_without"]
    word = "won" if kind == "deal" else "finished on time"
    unit = "deals" if kind == "deal" else "projects"
    return (
        f"{unit.capitalize()} that reached {m} with '{name}' done {word} {sw:.0%} of the time "
        f"({int(row['n_with'])} {unit}), without it {so:.0%} ({int(row['n_without'])}): "
        f"{row['rd']:+.0%} [{row['lo']:+.0%}, {row['hi']:+.0%}]"
    )


def _keep_edits(previous: ProcessTemplate, new: ProcessTemplate) -> ProcessTemplate:
    """Carry a person's edits from ``previous`` into ``new``; what the data would change becomes a proposal."""
    proposals: list[Proposal] = []
    prev_ms = {m.name: m for m in previous.milestones}
    order_edited = any("order" in m.edited for m in previous.milestones)
    ms = []
    for m in new.milestones:
        pm = prev_ms.get(m.name)
        if pm is None:
            ms.append(m)
            continue
        upd: dict[str, Any] = {"edited": list(pm.edited), "aliases": list(pm.aliases)}
        for fld in pm.edited:
            if fld in ("order",) or not hasattr(m, fld):
                continue
            kept, fresh = getattr(pm, fld), getattr(m, fld)
            upd[fld] = kept
            if kept != fresh:
                proposals.append(Proposal(item=m.name, field=fld, current=kept, proposed=fresh,
                                          reason="re-derived from the latest history"))
        ms.append(m.model_copy(update=upd))
    if order_edited:
        prev_order = {m.name: m.order for m in previous.milestones}
        ms.sort(key=lambda m: (prev_order.get(m.name, 10**6), m.order))
        data_order = [m.name for m in new.milestones]
        if [m.name for m in ms] != data_order:
            proposals.append(Proposal(item="milestones", field="order", current=[m.name for m in ms],
                                      proposed=data_order, reason="the data's consensus order differs"))
        ms = [m.model_copy(update={"order": i + 1}) for i, m in enumerate(ms)]
    prev_acts = {a.name: a for a in previous.activities}
    names = {m.name for m in ms}
    acts = []
    for a in new.activities:
        pa = prev_acts.get(a.name)
        if pa is None:
            acts.append(a)
            continue
        upd = {"edited": list(pa.edited)}
        for fld in pa.edited:
            if not hasattr(a, fld):
                continue
            kept, fresh = getattr(pa, fld), getattr(a, fld)
            if fld == "milestone" and kept is not None and kept not in names:
                continue
            upd[fld] = kept
            if kept != fresh:
                proposals.append(Proposal(item=a.name, field=fld, current=kept, proposed=fresh,
                                          reason=a.note or "re-derived from the latest history"))
        acts.append(a.model_copy(update=upd))
    # activities a person added by hand (not in the data) are kept
    known = {a.name for a in acts}
    acts += [a for a in previous.activities if a.name not in known and a.edited]
    all_names = names | {a.name for a in acts}
    deps = [d for d in previous.dependencies if d.before in all_names and d.after in all_names]
    return new.model_copy(
        update={
            "name": previous.name,
            "version": previous.version + 1,
            "milestones": ms,
            "activities": acts,
            "dependencies": [Dependency(before=d.before, after=d.after) for d in deps],
            "proposals": proposals,
        }
    )
