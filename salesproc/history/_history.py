"""The history model: cases and their timestamped events, validated once, trusted downstream.

A :class:`History` holds two tables.

``cases`` (one row per case)
    ``case_id`` (str), ``kind`` (``deal`` | ``project``), ``outcome`` (deals: ``won`` | ``lost`` |
    ``open``; projects: ``on_time`` | ``late`` | ``failed`` | ``open``), ``status`` (the outcome
    normalised to ``success`` | ``failure`` | ``open``), ``created``, ``closed`` (missing while open),
    ``amount``, ``owner``, ``segment``, ``target_date`` (planned end), then any extra attributes.

``events`` (one row per event, sorted by case then time)
    ``case_id`` (categorical whose categories are ``cases.case_id`` in order, so
    ``events.case_id.cat.codes`` indexes ``cases``), ``name`` (categorical), ``type`` (``milestone`` |
    ``activity``), ``timestamp``, ``owner``, ``role``, then any extra attributes.

Time zones: every timestamp is timezone-aware UTC (``datetime64[ns, UTC]``). Values that carry an
offset are converted to UTC; values without one are read in the loader's ``tz`` (default ``"UTC"``).
Reports convert to a display zone at the very end.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from salesproc.errors import InputError, OverwriteError, ParameterError
from salesproc.history._finalize import finalize_frames
from salesproc.history._schema import (
    CASE_COLUMNS,
    EVENT_COLUMNS,
    EVENT_TYPES,
    KINDS,
    OUTCOMES,
    OUTCOMES_BY_KIND,
    STATUS_OF_OUTCOME,
    STATUSES,
    TS_DTYPE,
)

#: The files :meth:`History.to_parquet` writes (and the only ones it replaces in a saved folder).
SAVED_PARTS = ("cases.parquet", "events.parquet", "report.json")

#: Case attributes that hold only the data's final value, with no dates: unknown in a past view.
UNDATED_FINAL = ("close_date_changes", "expected_close", "close_date")

#: Start of the note :meth:`History.as_of` adds when it clears :data:`UNDATED_FINAL` values.
AS_OF_NOTE = "as of "

__all__ = [
    "CASE_COLUMNS",
    "EVENT_COLUMNS",
    "OUTCOMES",
    "STATUS_OF_OUTCOME",
    "History",
    "HistorySummary",
    "LoadReport",
]


@dataclass(frozen=True)
class LoadReport:
    """What a loader read, kept and skipped.

    ``rows_read == rows_loaded + sum(skipped.values())`` always holds: nothing is dropped unreported.
    """

    source: str = "<data>"
    rows_read: int = 0
    rows_loaded: int = 0
    skipped: Mapping[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rows_read": self.rows_read,
            "rows_loaded": self.rows_loaded,
            "skipped": dict(self.skipped),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class HistorySummary:
    """Counts that describe a history; ``str()`` is a readable report, ``to_dict()`` is JSON-ready."""

    source: str
    cases: int
    events: int
    cases_by_kind: Mapping[str, int]
    outcomes: Mapping[str, Mapping[str, int]]
    status: Mapping[str, int]
    first_event: str | None
    last_event: str | None
    milestones: Mapping[str, int]
    activities: Mapping[str, int]
    cases_without_events: int
    events_after_close: int
    rows_read: int
    rows_loaded: int
    skipped: Mapping[str, int]
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "cases": self.cases,
            "events": self.events,
            "cases_by_kind": dict(self.cases_by_kind),
            "outcomes": {k: dict(v) for k, v in self.outcomes.items()},
            "status": dict(self.status),
            "date_range": {"first_event": self.first_event, "last_event": self.last_event},
            "milestones": dict(self.milestones),
            "activities": dict(self.activities),
            "cases_without_events": self.cases_without_events,
            "events_after_close": self.events_after_close,
            "rows_read": self.rows_read,
            "rows_loaded": self.rows_loaded,
            "skipped": dict(self.skipped),
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        lines = [f"History from {self.source}"]
        lines.append(f"  cases:  {self.cases:,}   events: {self.events:,}")
        for kind, outs in self.outcomes.items():
            parts = ", ".join(f"{o} {n:,}" for o, n in outs.items())
            lines.append(f"  {kind}s: {self.cases_by_kind.get(kind, 0):,} ({parts})")
        lines.append(f"  dates:  {self.first_event} .. {self.last_event} (UTC)")
        for label, counts in (("milestones", self.milestones), ("activities", self.activities)):
            lines.append(f"  {label} ({len(counts)}):")
            items = list(counts.items())
            for name, n in items[:15]:
                lines.append(f"    {n:>9,}  {name}")
            if len(items) > 15:
                lines.append(f"    ... and {len(items) - 15} more")
        if self.cases_without_events:
            lines.append(f"  cases without events: {self.cases_without_events:,}")
        if self.events_after_close:
            lines.append(f"  events after their case closed (kept): {self.events_after_close:,}")
        lines.append(
            f"  rows read {self.rows_read:,} = loaded {self.rows_loaded:,}"
            f" + skipped {sum(self.skipped.values()):,}"
        )
        for reason, n in self.skipped.items():
            lines.append(f"    skipped {n:,}: {reason}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        return "\n".join(lines)


def _empty_events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "case_id": pd.Categorical([], categories=[]),
            "name": pd.Categorical([]),
            "type": pd.Categorical([], categories=EVENT_TYPES),
            "timestamp": pd.Series([], dtype=TS_DTYPE),
            "owner": pd.Series([], dtype="str"),
            "role": pd.Series([], dtype="str"),
        }
    )


class History:
    """Cases and their events: the validated input of every later step.

    Build one with :func:`salesproc.load_history` (or :func:`History.from_frames` for frames that
    already use the canonical columns). The tables are exposed as copies: nothing downstream can
    change a history in place.

    Examples
    --------
    >>> import salesproc
    >>> h = salesproc.load_sample_deals()
    >>> h.cases.columns[:4].tolist()
    ['case_id', 'kind', 'outcome', 'status']
    >>> h.summary().cases == len(h.cases)
    True
    """

    __slots__ = ("_cases", "_events", "_report")

    def __init__(self, cases: pd.DataFrame, events: pd.DataFrame, report: LoadReport) -> None:
        self._cases = cases
        self._events = events
        self._report = report

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_frames(
        cls,
        cases: pd.DataFrame,
        events: pd.DataFrame,
        *,
        report: LoadReport | None = None,
    ) -> History:
        """Make a history from frames that already follow the canonical schema (validated)."""
        return finalize(cases, events, report or LoadReport(rows_read=len(events), rows_loaded=len(events)))

    # -- access -------------------------------------------------------------------------------
    @property
    def cases(self) -> pd.DataFrame:
        """One row per case (a copy: changing it leaves the history unchanged)."""
        return self._cases.copy(deep=False)

    @property
    def events(self) -> pd.DataFrame:
        """One row per event, sorted by case then timestamp (a copy)."""
        return self._events.copy(deep=False)

    @property
    def report(self) -> LoadReport:
        """What the loader read, kept and skipped."""
        return self._report

    @property
    def kinds(self) -> list[str]:
        return [k for k in KINDS if (self._cases["kind"] == k).any()]

    def __len__(self) -> int:
        return len(self._cases)

    def case(self, case_id: str) -> tuple[pd.Series, pd.DataFrame]:
        """One case's row and its events."""
        hit = self._cases.index[self._cases["case_id"] == str(case_id)]
        if len(hit) == 0:
            raise KeyError(f"no case {case_id!r} in this history ({len(self._cases):,} cases)")
        row = self._cases.loc[hit[0]]
        ev = self._events[self._events["case_id"] == str(case_id)]
        return row, ev.reset_index(drop=True)

    # -- summaries ----------------------------------------------------------------------------
    def summary(self) -> HistorySummary:
        """Counts by kind and outcome, events, date range, milestones, activities and what was skipped."""
        c, e = self._cases, self._events
        outcomes: dict[str, dict[str, int]] = {}
        for kind in KINDS:
            sub = c.loc[c["kind"] == kind, "outcome"]
            if len(sub):
                vc = sub.value_counts()
                outcomes[kind] = {o: int(vc.get(o, 0)) for o in OUTCOMES_BY_KIND[kind]}
        by_type = {}
        for t in EVENT_TYPES:
            names = e.loc[e["type"] == t, "name"]
            vc = names.value_counts(sort=True)
            by_type[t] = {str(k): int(v) for k, v in vc.items() if v > 0}
        ts = e["timestamp"]
        codes = e["case_id"].cat.codes.to_numpy()
        with_events = np.zeros(len(c), dtype=bool)
        with_events[codes] = True
        closed = c["closed"].array.asi8[codes]
        nat = np.iinfo(np.int64).min
        after = int(np.sum((closed != nat) & (ts.array.asi8 > closed))) if len(e) else 0
        rep = self._report
        return HistorySummary(
            source=rep.source,
            cases=len(c),
            events=len(e),
            cases_by_kind={k: int((c["kind"] == k).sum()) for k in KINDS if (c["kind"] == k).any()},
            outcomes=outcomes,
            status={s: int((c["status"] == s).sum()) for s in STATUSES},
            first_event=None if ts.empty else ts.min().isoformat(),
            last_event=None if ts.empty else ts.max().isoformat(),
            milestones=by_type["milestone"],
            activities=by_type["activity"],
            cases_without_events=int((~with_events).sum()),
            events_after_close=after,
            rows_read=rep.rows_read,
            rows_loaded=rep.rows_loaded,
            skipped=dict(rep.skipped),
            notes=tuple(rep.notes),
        )

    def __repr__(self) -> str:
        c = self._cases
        st = c["status"].value_counts()
        return (
            f"<History {len(c):,} cases ({int(st.get('success', 0)):,} success, "
            f"{int(st.get('failure', 0)):,} failure, {int(st.get('open', 0)):,} open), "
            f"{len(self._events):,} events from {self._report.source}>"
        )

    def _repr_html_(self) -> str:
        s = self.summary()
        rows = "".join(
            f"<tr><th>{escape(kind)}s</th><td>{s.cases_by_kind.get(kind, 0):,}</td><td>"
            + ", ".join(f"{escape(o)} {n:,}" for o, n in outs.items())
            + "</td></tr>"
            for kind, outs in s.outcomes.items()
        )
        ms = ", ".join(f"{escape(k)} ({v:,})" for k, v in list(s.milestones.items())[:12])
        acts = ", ".join(f"{escape(k)} ({v:,})" for k, v in list(s.activities.items())[:12])
        skipped = "".join(f"<li>{escape(r)}: {n:,}</li>" for r, n in s.skipped.items())
        return (
            f"<div class='salesproc-history'><strong>History</strong> from {escape(s.source)}: "
            f"{s.cases:,} cases, {s.events:,} events, {escape(str(s.first_event))} .. "
            f"{escape(str(s.last_event))}<table>{rows}</table>"
            f"<p><em>Milestones:</em> {ms or 'none'}</p><p><em>Activities:</em> {acts or 'none'}</p>"
            + (f"<p><em>Skipped:</em></p><ul>{skipped}</ul>" if skipped else "")
            + "</div>"
        )

    # -- filtering ----------------------------------------------------------------------------
    def select(self, mask: np.ndarray | pd.Series) -> History:
        """The history restricted to the cases where ``mask`` (aligned with ``cases``) is true."""
        m = np.asarray(mask, dtype=bool)
        if m.shape != (len(self._cases),):
            raise ParameterError(
                f"The 'mask' parameter of History.select must have one entry per case "
                f"({len(self._cases)}). Got shape {m.shape} instead."
            )
        cases = self._cases.loc[m].reset_index(drop=True)
        codes = self._events["case_id"].cat.codes.to_numpy()
        ev = self._events.loc[m[codes]] if len(codes) else self._events
        ev = ev.assign(case_id=ev["case_id"].cat.set_categories(cases["case_id"])).reset_index(drop=True)
        return History(cases, ev, self._report)

    def filter(
        self,
        *,
        start: Any = None,
        end: Any = None,
        by: str = "created",
        kind: str | Iterable[str] | None = None,
        segment: str | Iterable[str] | None = None,
        status: str | Iterable[str] | None = None,
    ) -> History:
        """Cases in a date window (``start <= case[by] < end``), of given kinds, segments or statuses.

        ``by`` is ``"created"``, ``"closed"`` or ``"active"`` (the case overlaps the window).

        Examples
        --------
        >>> import salesproc
        >>> h = salesproc.load_sample_deals()
        >>> won = h.filter(status="success")
        >>> set(won.cases["outcome"]) == {"won"}
        True
        """
        c = self._cases
        m = np.ones(len(c), dtype=bool)
        lo = _ts(start, "start")
        hi = _ts(end, "end")
        if by not in ("created", "closed", "active"):
            raise ParameterError(
                f"The 'by' parameter of History.filter must be 'created', 'closed' or 'active'. "
                f"Got {by!r} instead."
            )
        if by == "active":
            if lo is not None:
                m &= (c["closed"].isna() | (c["closed"] >= lo)).to_numpy()
            if hi is not None:
                m &= (c["created"] < hi).to_numpy()
        else:
            col = c[by]
            if lo is not None:
                m &= (col >= lo).fillna(False).to_numpy(dtype=bool)
            if hi is not None:
                m &= (col < hi).fillna(False).to_numpy(dtype=bool)
        for colname, want in (("kind", kind), ("segment", segment), ("status", status)):
            if want is not None:
                vals = [want] if isinstance(want, str) else list(want)
                m &= c[colname].isin(vals).to_numpy()
        return self.select(m)

    def as_of(self, when: Any) -> History:
        """What was known at ``when``: later cases and events removed, each case as it stood then.

        A case closed after ``when`` is open again. An event whose ``closes`` attribute holds an
        outcome (a won or lost stage a deal later left: the deal was reopened) closes its case at
        that event's time when it is the case's latest milestone by ``when``, as an export taken
        then would have shown. A ``stage`` column is put back to the case's latest milestone by
        ``when``, and the attributes that hold only the data's final value, with no dates
        (``close_date_changes``, ``expected_close``, ``close_date``), are cleared on the cases not
        closed by then, with a note in ``report.notes``.

        This is the view a backtest uses, so that nothing dated after its cutoff leaks in.

        Examples
        --------
        >>> import pandas as pd
        >>> from salesproc import History
        >>> day = lambda d: pd.Timestamp(d, tz="UTC")
        >>> cases = pd.DataFrame({"case_id": ["R"], "kind": ["deal"], "outcome": ["won"],
        ...                       "created": [day("2024-01-01")], "closed": [day("2024-04-01")],
        ...                       "stage": ["Closed Won"]})
        >>> events = pd.DataFrame({"case_id": ["R"] * 3, "name": ["Qualify", "Closed Lost", "Proposal"],
        ...                        "timestamp": [day("2024-01-01"), day("2024-02-01"), day("2024-03-01")],
        ...                        "type": "milestone", "closes": [None, "lost", None]})
        >>> past = History.from_frames(cases, events).as_of("2024-02-15").cases
        >>> past[["outcome", "closed", "stage"]].astype(str).values.tolist()
        [['lost', '2024-02-01 00:00:00+00:00', 'Closed Lost']]
        """
        t = _ts(when, "when")
        assert t is not None
        c, ev = self._cases, self._events
        latest = [x for x in (c["created"].max(), c["closed"].max(),
                              ev["timestamp"].max() if len(ev) else None)
                  if x is not None and not pd.isna(x)]
        if latest and max(latest) <= t:
            return self  # nothing happened after `when`: the history is already what was known then
        keep = (c["created"] <= t).to_numpy()
        codes = ev["case_id"].cat.codes.to_numpy()
        ts = ev["timestamp"].array.asi8 if len(ev) else np.zeros(0, np.int64)
        changed = np.zeros(len(c), dtype=bool)  # something recorded after `when`
        changed[codes[ts > t.value]] = True
        changed |= (c["closed"] > t).fillna(False).to_numpy(dtype=bool)
        emask = keep[codes] & (ts <= t.value)
        view = _CasesAt(c, ev, emask, changed, t)
        cases, drop = view.cases(), view.closing_events()
        emask[drop] = False
        kept = ev.loc[emask]
        kept = kept.assign(case_id=kept["case_id"].cat.set_categories(cases["case_id"])).reset_index(drop=True)
        report = self._report
        if view.note:
            report = replace(report, notes=(*report.notes, view.note))
        return History(cases, kept, report)

    def rename_events(self, mapping: Mapping[str, str]) -> History:
        """The history with event names renamed (several old names may become one).

        Only the categories change, so this costs nothing per event.

        Examples
        --------
        >>> import salesproc
        >>> h = salesproc.load_sample_deals()
        >>> "Evaluation" in set(h.rename_events({"Discovery": "Evaluation"}).events["name"])
        True
        """
        if not mapping:
            return self
        name = self._events["name"]
        cats = [str(c) for c in name.cat.categories]
        new = [str(mapping.get(c, c)) for c in cats]
        uniq = list(dict.fromkeys(new))
        pos = {c: i for i, c in enumerate(uniq)}
        remap = np.array([pos[c] for c in new], dtype=np.int64)
        codes = name.cat.codes.to_numpy()
        new_codes = np.where(codes >= 0, remap[np.maximum(codes, 0)] if len(remap) else -1, -1)
        renamed = pd.Categorical.from_codes(new_codes, dtype=pd.CategoricalDtype(uniq))
        return History(self._cases, self._events.assign(name=renamed), self._report)

    # -- persistence --------------------------------------------------------------------------
    def to_parquet(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Save to a folder (``cases.parquet``, ``events.parquet``, ``report.json``), atomically.

        A new folder appears complete or not at all. With ``overwrite=True`` an existing saved
        history is replaced file by file: only those three files are written, so anything else in the
        folder (a ``notes.txt``) stays. A folder that is not a saved history is never written into.
        Load it back with :func:`salesproc.load_history` or :meth:`History.read_parquet`.

        Examples
        --------
        >>> import tempfile, pathlib, salesproc
        >>> d = pathlib.Path(tempfile.mkdtemp()) / "history"
        >>> h = salesproc.load_sample_deals()
        >>> _ = h.to_parquet(d)
        >>> _ = (d / "notes.txt").write_text("kept")
        >>> _ = h.to_parquet(d, overwrite=True)
        >>> sorted(x.name for x in d.iterdir())
        ['cases.parquet', 'events.parquet', 'notes.txt', 'report.json']
        """
        from salesproc._io import atomic_dir

        p = Path(path)
        if p.exists() or p.is_symlink():
            _check_replaceable(p, overwrite=overwrite)
            with _sibling_tmp(p) as tmp:
                self._write_parts(tmp)
                for part in SAVED_PARTS:
                    os.replace(tmp / part, p / part)  # each file swapped whole; nothing else touched
            return p
        with atomic_dir(p) as tmp:
            self._write_parts(tmp)
        return p

    def _write_parts(self, folder: Path) -> None:
        """Write the saved history's files into ``folder``."""
        self._cases.to_parquet(folder / "cases.parquet", index=False)
        self._events.to_parquet(folder / "events.parquet", index=False)
        (folder / "report.json").write_text(json.dumps(self._report.to_dict(), indent=1))

    @classmethod
    def read_parquet(cls, path: str | Path) -> History:
        """Read a history saved by :meth:`to_parquet`."""
        p = Path(path)
        for part in ("cases.parquet", "events.parquet"):
            if not (p / part).exists():
                raise InputError(
                    f"{p}: no {part}. Expected a folder written by History.to_parquet "
                    "(cases.parquet, events.parquet, report.json). Fix: save the history again with "
                    "History.to_parquet, or load it again from its source file."
                )
        import pyarrow.parquet as pq

        from salesproc._arrow import table_to_frame
        from salesproc.errors import SalesprocError

        part = "cases.parquet"
        try:
            cases = pd.read_parquet(p / part)
            part = "events.parquet"
            # the text columns are stored dictionary-encoded: read as codes, never one string per row
            events = table_to_frame(pq.read_table(p / part))
            part = "report.json"
            rep: dict[str, Any] = {}
            if (p / part).exists():
                rep = json.loads((p / part).read_text(encoding="utf-8"))
            report = LoadReport(
                source=str(rep.get("source", p)),
                rows_read=int(rep.get("rows_read", len(events))),
                rows_loaded=int(rep.get("rows_loaded", len(events))),
                skipped=dict(rep.get("skipped", {})),
                notes=tuple(rep.get("notes", ())),
            )
            part = "cases.parquet and events.parquet"
            # finalize checks what the files hold (every event's case is a case, events in case and
            # time order, which a saved history's are) and sets the dtypes
            return finalize(cases, events, report)
        except SalesprocError:
            raise
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:  # (ArrowInvalid, JSONDecodeError)
            raise _damaged(p, part, exc) from None


def _damaged(folder: Path, part: str, exc: BaseException) -> InputError:
    """A damaged file of a saved history (truncated Parquet, broken JSON, columns that are not a
    history's) as a :class:`~salesproc.errors.MalformedFileError` naming folder, file and fix."""
    from salesproc.errors import MalformedFileError

    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return MalformedFileError(
        f"{folder}: the saved history is damaged: cannot read {part} ({type(exc).__name__}: "
        f"{reason[:200]}). Expected the files History.to_parquet writes "
        "(cases.parquet, events.parquet, report.json), whole. Fix: save the history again with "
        "History.to_parquet, or load it again from its source file."
    )


def _ts(value: Any, name: str) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        t = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ParameterError(
            f"The {name!r} parameter must be a date or timestamp. Got {value!r} instead."
        ) from exc
    if t.tzinfo is None:
        t = t.tz_localize("UTC")
    return t.tz_convert("UTC")


def finalize(cases: pd.DataFrame, events: pd.DataFrame, report: LoadReport, *, ordered: bool = False) -> History:
    """A :class:`History` from a built case table and event table: column order, dtypes and
    categories set, events sorted by case and time, the schema checked (every loader ends here).

    ``ordered`` says the events are already grouped by case, in the cases' order, and in time
    order within each case (the builder has made sure of it)."""
    cases, events = finalize_frames(cases, events, ordered=ordered)
    return History(cases, events, report)


# --- saving into an existing folder --------------------------------------------------------------------


def _check_replaceable(p: Path, *, overwrite: bool) -> None:
    """Refuse to save into ``p`` unless ``overwrite`` and ``p`` is empty or a saved history."""
    if not overwrite:
        raise OverwriteError(f"{p} exists. Fix: choose another path or pass overwrite=True.")
    if not p.is_dir():
        raise OverwriteError(
            f"{p} exists and is not a folder. Expected a folder for History.to_parquet "
            f"({', '.join(SAVED_PARTS)}). Fix: choose another path, or move that file away."
        )
    if any(p.iterdir()) and not _is_saved_history(p):
        found = sorted(x.name for x in p.iterdir())
        shown = ", ".join(found[:8]) + (f", ... ({len(found) - 8} more)" if len(found) > 8 else "")
        raise OverwriteError(
            f"{p} is not a history saved by History.to_parquet: found {shown}, expected events.parquet "
            "or its report.json. overwrite=True replaces a saved history and never writes into another "
            "folder. Fix: choose a new or empty folder (e.g. a 'history' folder inside it)."
        )


def _is_saved_history(p: Path) -> bool:
    """Whether ``p`` holds a history saved by :meth:`History.to_parquet` (whole or damaged)."""
    if (p / "events.parquet").is_file():
        return True
    try:
        rep = json.loads((p / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(rep, dict) and {"rows_read", "rows_loaded"} <= set(rep)


@contextlib.contextmanager
def _sibling_tmp(p: Path) -> Iterator[Path]:
    """A temporary folder beside ``p`` (same file system, so its files move into ``p`` by rename)."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- a past view ---------------------------------------------------------------------------------------


class _CasesAt:
    """The cases as they stood at ``t``: the frame :meth:`History.as_of` builds, step by step.

    ``emask`` marks the events known at ``t`` (of cases created by then), ``changed`` the cases
    with anything recorded after ``t`` (an event, or a close).
    """

    def __init__(
        self, cases: pd.DataFrame, events: pd.DataFrame, emask: np.ndarray, changed: np.ndarray, t: pd.Timestamp
    ) -> None:
        self.t = t
        self.keep = (cases["created"] <= t).to_numpy()
        self.all_cases = cases
        self.events = events
        self.emask = emask
        self.changed = changed
        self.note = ""
        self.closed_by = np.zeros(len(cases), dtype=bool)  # closed at t by a `closes` event

    @functools.cached_property
    def last_ms(self) -> np.ndarray:
        """Per case, the position of its latest milestone event by ``t`` (-1: none); found only when
        a ``closes`` or ``stage`` column needs it."""
        ev = self.events
        ms = self.emask & (ev["type"] == "milestone").to_numpy() if len(ev) else self.emask
        return _last_per_case(ev["case_id"].cat.codes.to_numpy(), ms, len(self.all_cases))

    def cases(self) -> pd.DataFrame:
        """The case table at ``t`` (cases created by then)."""
        c = self.all_cases.copy()
        later = (c["closed"] > self.t).fillna(False).to_numpy(dtype=bool)
        if later.any():
            c.loc[later, "outcome"] = "open"
            c.loc[later, "status"] = "open"
            c.loc[later, "closed"] = pd.NaT
        self._close_by_events(c)
        self._rewind_stage(c)
        self._clear_undated(c)
        return c.loc[self.keep].reset_index(drop=True)

    def closing_events(self) -> np.ndarray:
        """Positions of the events that closed a case at ``t`` (an export then shows them as its outcome)."""
        return self.last_ms[self.closed_by] if self.closed_by.any() else np.zeros(0, dtype=np.int64)

    def _close_by_events(self, c: pd.DataFrame) -> None:
        """Close the cases open at ``t`` whose latest milestone by then carries a ``closes`` outcome."""
        if "closes" not in self.events.columns:
            return
        has = self.last_ms >= 0
        value = np.full(len(c), None, dtype=object)
        value[has] = self.events["closes"].to_numpy(dtype=object)[self.last_ms[has]]
        kinds = c["kind"].astype(str).to_numpy()
        ok = np.array(
            [isinstance(v, str) and v != "open" and v in OUTCOMES_BY_KIND.get(k, ()) for v, k in zip(value, kinds)],
            dtype=bool,
        )
        self.closed_by = ok & self.keep & (c["status"] == "open").to_numpy()
        if not self.closed_by.any():
            return
        hit = self.closed_by
        c.loc[hit, "outcome"] = value[hit]
        c.loc[hit, "status"] = [STATUS_OF_OUTCOME[v] for v in value[hit]]
        c.loc[hit, "closed"] = self.events["timestamp"].to_numpy()[self.last_ms[hit]]

    def _rewind_stage(self, c: pd.DataFrame) -> None:
        """A ``stage`` column (the final stage) put back to the latest milestone by ``t`` of each case
        that was still open then and changed later."""
        settled = (self.all_cases["closed"] <= self.t).fillna(False).to_numpy(dtype=bool)
        back = self.changed & ~settled
        if "stage" not in c.columns or not back.any():
            return
        name = self.events["name"]
        cats = np.asarray(name.cat.categories.astype(str), dtype=object)
        codes = name.cat.codes.to_numpy()
        at_t = np.full(len(c), None, dtype=object)
        has = self.last_ms >= 0
        at_t[has] = cats[codes[self.last_ms[has]]]
        stage = c["stage"].astype(object).where(~back, pd.Series(at_t, index=c.index))
        dtype = c["stage"].dtype
        with contextlib.suppress(TypeError, ValueError):  # keep the column's kind of dtype
            stage = stage.astype("category" if isinstance(dtype, pd.CategoricalDtype) else dtype)
        c["stage"] = stage

    def _clear_undated(self, c: pd.DataFrame) -> None:
        """Clear the final-value attributes of the cases not closed by ``t`` in the full data."""
        cols = [x for x in UNDATED_FINAL if x in c.columns]
        settled = (self.all_cases["closed"] <= self.t).fillna(False).to_numpy(dtype=bool)
        unknown = ~settled & self.keep
        if not cols or not unknown.any():
            return
        for col in cols:
            c[col] = c[col].where(~unknown)
        self.note = (
            f"{AS_OF_NOTE}{self.t.isoformat()}: {', '.join(cols)} cleared on {int(unknown.sum()):,} cases not "
            "closed by then: they hold the data's final values, with no dates, so what they were then is unknown"
        )


def _last_per_case(codes: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    """Per case, the position of its last event where ``mask`` (events in case and time order), or -1."""
    out = np.full(n, -1, dtype=np.int64)
    idx = np.flatnonzero(mask)[::-1]
    if len(idx):
        u, first = np.unique(codes[idx], return_index=True)
        out[u] = idx[first]
    return out
