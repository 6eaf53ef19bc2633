"""Where each case stood at given moments: the vectorised core of deal review and backtesting.

:class:`CaseArrays` turns a history and a template into flat numpy arrays once (milestone events in
template order, activity first-times, people seen so far). :meth:`CaseArrays.state_at` then answers,
for any number of (case, time) pairs at once, "which milestone was it in, since when, how old was it,
had it gone backwards, which activities were done, how many people were involved" using only events
dated at or before that time. No Python loop runs over cases or queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from salesproc.history._history import History
from salesproc.template._template import ProcessTemplate

__all__ = ["DAY_NS", "NAT", "CaseArrays", "State", "training_snapshots"]

DAY_NS = 86_400 * 10**9
NAT = np.iinfo(np.int64).min
NEVER = np.iinfo(np.int64).max
PEOPLE_COLUMNS = ("contact", "contact_id", "contact_name", "owner")


@dataclass(frozen=True)
class State:
    """Where each queried case stood at its query time (one entry per query)."""

    case: np.ndarray  # int64 case index
    t: np.ndarray  # int64 ns
    stage: np.ndarray  # int64 template milestone index, -1 before the first milestone
    entered: np.ndarray  # int64 ns: start of the current milestone visit (created when stage == -1)
    furthest: np.ndarray  # int64 furthest milestone index reached so far (-1: none)
    regressed: np.ndarray  # bool: a milestone was revisited after a later one
    people: np.ndarray  # int64 distinct people seen on the case so far
    done: np.ndarray  # bool (queries x activities): activity done at or before t

    @property
    def days_in(self) -> np.ndarray:
        return np.maximum(self.t - self.entered, 0) / DAY_NS


@dataclass(frozen=True)
class _EventCodes:
    """The event table as integer codes, in its (case, time) order."""

    case: np.ndarray  # int64 case code
    t: np.ndarray  # int64 ns
    names: pd.Index  # the distinct event names
    name: np.ndarray  # int64 code into names
    is_activity: np.ndarray  # bool: an event of type "activity"


def _event_codes(e: pd.DataFrame) -> _EventCodes:
    """The event table's case, time, name and type as flat arrays."""
    return _EventCodes(
        case=e["case_id"].cat.codes.to_numpy().astype(np.int64),
        t=e["timestamp"].array.asi8.astype(np.int64),
        names=e["name"].cat.categories.astype(str),
        name=e["name"].cat.codes.to_numpy().astype(np.int64),
        is_activity=(e["type"] == "activity").to_numpy(dtype=bool),
    )


class CaseArrays:
    """Flat arrays of a history, with milestones and activities coded against a template."""

    people_column: str | None
    people_data: bool
    has_people: np.ndarray
    pc: np.ndarray
    pt: np.ndarray
    p_cum: np.ndarray

    def __init__(self, history: History, template: ProcessTemplate, *, people: Sequence[str] = PEOPLE_COLUMNS):
        c = history._cases
        e = history._events
        self.n = len(c)
        self.case_ids = c["case_id"].to_numpy(dtype=object)
        self.status = c["status"].cat.codes.to_numpy().astype(np.int64)  # 0 success, 1 failure, 2 open
        self.created = c["created"].array.asi8.astype(np.int64)
        self.closed = c["closed"].array.asi8.astype(np.int64)
        self.target = c["target_date"].array.asi8.astype(np.int64)  # planned end (NAT where none)
        self.milestones = template.milestone_names
        ev = _event_codes(e)
        is_ms = self._code_milestones(ev)
        self._code_activities(ev, ev.is_activity & ~is_ms, e["role"])
        self._count_people(ev, e, people)
        self._time_grid(ev.t)

    def _code_milestones(self, ev: _EventCodes) -> np.ndarray:
        """Milestone events in template order, with each visit's start, the furthest reached and the steps back;
        returns which events are milestones."""
        K = len(self.milestones)
        names, ncode = ev.names, ev.name
        ms_of_name = np.full(len(names), -1, dtype=np.int64)
        pos = {m: i for i, m in enumerate(self.milestones)}
        for i, nm in enumerate(names):
            ms_of_name[i] = pos.get(nm, -1)
        mk_all = ms_of_name[ncode] if len(ncode) else np.zeros(0, np.int64)
        is_ms = mk_all >= 0
        self.mc = ev.case[is_ms]
        self.mt = ev.t[is_ms]
        self.mk = mk_all[is_ms]
        m = len(self.mc)
        new_case = np.ones(m, dtype=bool)
        new_case[1:] = self.mc[1:] != self.mc[:-1]
        new_run = new_case.copy()
        new_run[1:] |= self.mk[1:] != self.mk[:-1]
        run_first = np.maximum.accumulate(np.where(new_run, np.arange(m), 0)) if m else np.zeros(0, np.int64)
        self.m_entered = self.mt[run_first] if m else np.zeros(0, np.int64)
        # running furthest milestone within each case (offset by case so one accumulate suffices)
        off = self.mc * (K + 1)
        self.m_furthest = (np.maximum.accumulate(self.mk + off) - off) if m else np.zeros(0, np.int64)
        prev_furthest = np.full(m, -1, dtype=np.int64)
        if m:
            prev_furthest[1:] = self.m_furthest[:-1]
            prev_furthest[new_case] = -1
        back = self.mk < prev_furthest
        cum = np.cumsum(back)
        case_start = np.maximum.accumulate(np.where(new_case, np.arange(m), 0)) if m else np.zeros(0, np.int64)
        base = (cum - back)[case_start] if m else np.zeros(0, np.int64)
        self.m_regressed = (cum - base) > 0
        self.m_back = back  # the events that were a step back
        return is_ms

    def _code_activities(self, ev: _EventCodes, is_act: np.ndarray, roles: pd.Series) -> None:
        """Activity events (not milestones), each activity's first time per case and its usual role."""
        ncode = ev.name
        act_used = np.unique(ncode[is_act]) if is_act.any() else np.zeros(0, np.int64)
        self.activities = [str(ev.names[int(i)]) for i in act_used]
        remap = np.full(len(ev.names), -1, dtype=np.int64)
        remap[act_used] = np.arange(len(act_used))
        self.ac = ev.case[is_act]
        self.at = ev.t[is_act]
        self.ak = remap[ncode[is_act]]
        J = len(self.activities)
        first = np.full(self.n * max(J, 1), NEVER, dtype=np.int64)
        if len(self.ac):
            np.minimum.at(first, self.ac * J + self.ak, self.at)
        self.first_done = first.reshape(self.n, max(J, 1))[:, :J]
        # the usual role of each activity: the most frequent non-empty role among its events
        self.act_role: dict[str, str | None] = {}
        rcode, rnames = _codes(roles)
        ra = rcode[is_act]
        ok = ra >= 0
        if ok.any() and J:
            R = len(rnames)
            counts = np.bincount(self.ak[ok] * R + ra[ok], minlength=J * R).reshape(J, R)
            best = counts.argmax(axis=1)
            self.act_role = {
                self.activities[j]: str(rnames[best[j]]) for j in range(J) if counts[j, best[j]] > 0
            }

    def _count_people(self, ev: _EventCodes, e: pd.DataFrame, people: Sequence[str]) -> None:
        """The people column (first of ``people`` with values) and the running count of distinct people per case."""
        codes, ts = ev.case, ev.t
        self.people_column = None
        self.people_data = False
        for col in people:
            if col in e.columns and e[col].notna().any():
                self.people_column = col
                break
        pcode = _codes(e[self.people_column])[0] if self.people_column is not None else np.zeros(0, np.int64)
        valid = pcode >= 0
        if valid.any():
            pair = codes * (int(pcode.max()) + 2) + pcode
            firstseen = valid & ~pd.Series(pair).duplicated().to_numpy()
            self.pc = codes
            self.pt = ts
            cum_p = np.cumsum(firstseen)
            newc = np.ones(len(codes), dtype=bool)
            newc[1:] = codes[1:] != codes[:-1]
            cstart = np.maximum.accumulate(np.where(newc, np.arange(len(codes)), 0))
            base_p: np.ndarray = (cum_p - firstseen)[cstart]
            self.p_cum = (cum_p - base_p).astype(np.int64)
            self.people_data = True
            self.has_people = np.bincount(codes[valid], minlength=self.n) > 0
        else:
            self.people_column = None
            self.pc = self.pt = self.p_cum = np.zeros(0, np.int64)
            self.has_people = np.zeros(self.n, dtype=bool)

    def _time_grid(self, ts: np.ndarray) -> None:
        """A time grid shared by every search: integer ticks small enough to pack (case, tick) in int64."""
        lo = [self.created[self.created != NAT].min()] if (self.created != NAT).any() else []
        if len(ts):
            lo.append(int(ts.min()))
        self.t0 = int(min(lo)) - DAY_NS if lo else 0
        span = (int(ts.max()) - self.t0 if len(ts) else 0) + 3650 * DAY_NS
        unit = 1
        while (self.n + 1) * (span // unit + 2) >= 2**62:
            unit *= 1000
        self.unit = unit
        self.stride = span // unit + 2
        self._mkey = self._key(self.mc, self.mt)
        self._pkey = self._key(self.pc, self.pt)

    def _key(self, case: np.ndarray, t: np.ndarray) -> np.ndarray:
        tick = np.clip((t - self.t0) // self.unit, 0, self.stride - 1)
        return case * self.stride + tick

    def _last(self, keys: np.ndarray, ev_case: np.ndarray, case: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Index of the case's last event at or before ``t`` (-1 where none)."""
        if len(keys) == 0:
            return np.full(len(case), -1, dtype=np.int64)
        idx = np.searchsorted(keys, self._key(case, t), side="right") - 1
        ok = idx >= 0
        ok[ok] = ev_case[idx[ok]] == case[ok]
        return np.where(ok, idx, -1)

    def state_at(self, case: np.ndarray, t: np.ndarray, activities: Sequence[int] | None = None) -> State:
        """The state of each ``case[i]`` at ``t[i]`` (ns), using only events dated up to then."""
        case = np.asarray(case, dtype=np.int64)
        t = np.asarray(t, dtype=np.int64)
        i = self._last(self._mkey, self.mc, case, t)
        has = i >= 0
        j = np.maximum(i, 0)
        if len(self.mk):
            stage = np.where(has, self.mk[j], -1)
            entered = np.where(has, self.m_entered[j], self.created[case])
            furthest = np.where(has, self.m_furthest[j], -1)
            regressed = has & self.m_regressed[j]
        else:
            stage = np.full(len(case), -1, dtype=np.int64)
            entered = self.created[case].copy()
            furthest = stage.copy()
            regressed = np.zeros(len(case), dtype=bool)
        if self.people_data:
            ip = self._last(self._pkey, self.pc, case, t)
            people = np.where(ip >= 0, self.p_cum[np.maximum(ip, 0)], 0)
        else:
            people = np.zeros(len(case), dtype=np.int64)
        cols = np.arange(len(self.activities)) if activities is None else np.asarray(activities, dtype=np.int64)
        done = self.first_done[case][:, cols] <= t[:, None] if len(cols) else np.zeros((len(case), 0), bool)
        return State(case, t, stage, entered, furthest, regressed, people.astype(np.int64), done)


def _codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of a text column (-1 for missing or blank) and the distinct values."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    names = np.asarray(uniques, dtype=object)
    blank = np.array([not str(x).strip() for x in names], dtype=bool)
    codes = codes.astype(np.int64)
    if blank.any():
        codes = np.where((codes >= 0) & blank[np.maximum(codes, 0)], -1, codes)
    return codes, names


@dataclass(frozen=True)
class Snapshots:
    """Training snapshots: cases seen open at regular moments, with their eventual outcome."""

    case: np.ndarray
    t: np.ndarray
    y: np.ndarray  # bool: success (as known at as_of)
    horizon_days: float
    step_days: float
    eligible_cases: int
    relaxed: bool


def training_snapshots(
    arrays: CaseArrays,
    as_of_ns: int,
    *,
    max_snapshots: int,
    horizon_quantile: float,
    seed: int,
    min_closed: int = 30,
) -> Snapshots:
    """Moments at which past cases were open, on a per-case grid with a random phase.

    Each case is seen every ``step`` days while it was open (so long-running cases count as often as
    they would be found open on a random review day). A snapshot keeps its case's outcome if the
    outcome had time to show: the snapshot is at least the horizon H (the ``horizon_quantile`` of
    the time from a snapshot to its case's close) before ``as_of``. Cases still open at ``as_of``
    count as failures for snapshots older than H and are left out otherwise, as in
    :func:`salesproc.derive_template`'s landmark comparisons.
    """
    created = arrays.created
    closed_case = arrays.status != 2
    end = np.where(closed_case & (arrays.closed != NAT), arrays.closed, as_of_ns)
    life = np.maximum(end - created, 0).astype(float)
    total = float(life.sum())
    step = max(float(DAY_NS), total / max(max_snapshots, 1))
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0.0, 1.0, arrays.n) * step
    count = np.where(life > phase, np.floor((life - phase) / step).astype(np.int64) + 1, 0)
    case = np.repeat(np.arange(arrays.n, dtype=np.int64), count)
    starts = np.cumsum(count) - count
    k = np.arange(len(case), dtype=np.int64) - np.repeat(starts, count)
    t = created[case] + (phase[case] + k * step).astype(np.int64)
    t = np.minimum(t, end[case] - 1)
    was_closed = closed_case[case]
    to_close = (arrays.closed[case] - t)[was_closed]
    if len(to_close) == 0:
        raise ValueError("no closed cases")
    H = float(np.quantile(to_close, horizon_quantile))
    elig = t <= as_of_ns - H
    relaxed = False
    if len(np.unique(case[elig & was_closed])) < min_closed:
        # too short a history for the horizon rule: keep closed cases only (biased towards fast
        # outcomes; the review states it as a caveat)
        elig = was_closed
        relaxed = True
    y = arrays.status[case] == 0
    return Snapshots(
        case=case[elig],
        t=t[elig],
        y=y[elig],
        horizon_days=H / DAY_NS,
        step_days=step / DAY_NS,
        eligible_cases=len(np.unique(case[elig])),
        relaxed=relaxed,
    )
