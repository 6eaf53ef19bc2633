"""CRM exports -> History: snapshots (one row per opportunity) and stage histories (one row per change).

Two shapes of CRM export reach :func:`salesproc.load_history` through presets:

``snapshot`` (:func:`snapshot_history`)
    One row per opportunity with its *current* stage and the dates it reached some stages, e.g.
    Maven's ``sales_pipeline.csv`` or a HubSpot deal export with ``Date entered "<stage>"`` columns.
    Each dated stage becomes a milestone event; the current stage decides the outcome; a won or
    lost deal's close date is its ``closed``.

``stage_history`` (:func:`stage_history`)
    One row per change of an opportunity (Salesforce ``OpportunityHistory``, HubSpot deal stage
    history). A row whose stage differs from the opportunity's previous row is a milestone event at
    the row's timestamp; rows that only change other fields (amount, close date, probability)
    update the deal. The final stage decides the outcome: a won or lost final stage is the outcome
    (not an event) and the time the deal entered it is ``closed``.

Both count every source row: ``rows_read == rows_loaded + skipped``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from salesproc.history._finalize import i8
from salesproc.history._history import TS_DTYPE, History
from salesproc.load._options import LoadOptions
from salesproc.load._tabular import (
    CaseRows,
    SourceRows,
    as_utc,
    classify_stages,
    ensure_frame,
    extra_columns,
    group_dates,
    milestone_events,
    parse_flag_column,
)

__all__ = ["snapshot_history", "stage_history"]

# HubSpot's default sales pipeline: internal stage ids -> the labels its UI shows
HUBSPOT_STAGE_LABELS = {
    "appointmentscheduled": "Appointment Scheduled",
    "qualifiedtobuy": "Qualified To Buy",
    "presentationscheduled": "Presentation Scheduled",
    "decisionmakerboughtin": "Decision Maker Bought-In",
    "contractsent": "Contract Sent",
    "closedwon": "Closed Won",
    "closedlost": "Closed Lost",
}
# a HubSpot column such as: Date entered "Contract Sent (Sales Pipeline)"
HUBSPOT_DATE_ENTERED = r'^Date entered "(?P<stage>.+?)(?: \([^()]*\))?"$'


def _user_stage_map(
    outcome_values: Mapping[str, str] | None, outcome_events: Mapping[str, Iterable[str]] | None
) -> dict[str, str]:
    """The user's stage -> outcome choices: ``outcome_values`` and ``outcome_events`` both work."""
    out: dict[str, str] = {}
    for outcome, names in (outcome_events or {}).items():
        for nm in [names] if isinstance(names, str) else names:
            out[str(nm)] = str(outcome)
    for nm, outcome in (outcome_values or {}).items():
        out[str(nm)] = str(outcome)
    bad = sorted({v for v in out.values() if v not in ("won", "lost", "open")})
    if bad:
        raise ValueError(
            "The 'outcome_values' parameter must map CRM stages to 'won', 'lost' or 'open'. "
            f"Got {bad} instead."
        )
    return out


def _stage_labels(raw: pd.Series, labels: Mapping[str, str] | None) -> pd.Series:
    """Stage values as labels (internal ids such as ``closedwon`` replaced by theirs)."""
    if not labels:
        return raw
    return raw.map(dict(labels)).where(lambda s: s.notna(), raw)


@dataclass(frozen=True)
class _Stages:
    """What stage values mean: the won, lost and open lists, the user's choices, the id -> label map."""

    won: Sequence[str]
    lost: Sequence[str]
    open_: Sequence[str]
    labels: Mapping[str, str] | None
    user: dict[str, str]

    @classmethod
    def of(
        cls,
        options: LoadOptions,
        won: Sequence[str],
        lost: Sequence[str],
        open_: Sequence[str],
        labels: Mapping[str, str] | None,
    ) -> _Stages:
        """The preset's lists and labels with the user's ``outcome_values`` and ``outcome_events``."""
        return cls(won, lost, open_, labels, _user_stage_map(options.outcome_values, options.outcome_events))

    def outcomes(self, labels: pd.Series, *, closed_list: bool) -> pd.Series:
        """The outcome each label stands for (missing when unknown and ``closed_list``)."""
        return classify_stages(
            labels, won=self.won, lost=self.lost, open_=self.open_, extra=self.user, closed_list=closed_list
        )


def _unknown_stage_fix(column: str, stages: _Stages, bad: np.ndarray, labels: pd.Series) -> tuple[str, str]:
    """``expected`` and ``fix`` for the first unknown stage (the fix quotes the value found)."""
    won, lost, open_ = stages.won, stages.lost, stages.open_
    known = [*open_, *won, *lost]
    expected = (
        "one of the stages " + ", ".join(repr(s) for s in known)
        + f" (open: {', '.join(open_) or '-'}; won: {', '.join(won) or '-'}; lost: {', '.join(lost) or '-'})"
    )
    hit = np.flatnonzero(bad)
    value = str(labels.iloc[hit[0]]) if len(hit) else "<stage>"
    fix = (
        f"say what the stage {value!r} in {column!r} means, e.g. load_history(..., "
        f"outcome_values={{{value!r}: 'open'}}) for a stage of open deals, 'won' or 'lost' for a "
        "closed one."
    )
    return expected, fix


# --- steps both shapes take ----------------------------------------------------------------------

@dataclass(frozen=True)
class _StageRows:
    """Each row's opportunity id, stage label and the outcome that stage stands for; the rows kept."""

    cid: pd.Series
    label: pd.Series
    outcome: pd.Series
    keep: np.ndarray


def _check_stages(t: SourceRows, stages: _Stages, *, stage_is: str) -> _StageRows:
    """Skip rows without an opportunity id or a stage, and rows whose stage the lists do not know."""
    cid = t.text("case_id")
    keep = t.filled(
        "case_id", cid, t.keep_all(), expected="an opportunity id (not empty)",
        fix="fill the id, or delete the row.", reason="empty case id",
    )
    label = _stage_labels(t.text("stage"), stages.labels)
    keep = t.filled(
        "stage", label, keep, expected=f"{stage_is} (not empty)", fix="fill the stage, or delete the row.",
        reason="empty stage",
    )
    outcome = stages.outcomes(label, closed_list=bool(stages.open_))
    unknown = (outcome.isna() & label.notna()).to_numpy() & keep
    stage_col = t.use["stage"]
    expected, fix = _unknown_stage_fix(stage_col, stages, unknown, label)
    keep = keep & t.sk.bad(
        unknown, rows=t.rows, column=stage_col, values=t.df[stage_col], expected=expected, fix=fix,
        reason=f"unknown stage in {stage_col!r}",
    )
    return _StageRows(cid, label, outcome, keep)


# --- snapshots -------------------------------------------------------------------------------

def snapshot_history(
    df: pd.DataFrame,
    cols: Mapping[str, str],
    *,
    source: str = "<data>",
    options: LoadOptions | None = None,
    won_stages: Sequence[str] = (),
    lost_stages: Sequence[str] = (),
    open_stages: Sequence[str] = (),
    created_stage: str | None = None,
    stage_dates: Mapping[str, str] | None = None,
    stage_date_pattern: str | None = None,
    stage_labels: Mapping[str, str] | None = None,
    as_of: Any = None,
    aliases: Mapping[str, Sequence[str]] | None = None,
    preset: str | None = None,
) -> History:
    """A history from a CRM snapshot: one row per opportunity with its current stage and stage dates.

    Parameters
    ----------
    df
        The export, one row per opportunity.
    cols
        Canonical name -> column: ``case_id`` and ``stage`` (required), ``created`` (creation or
        first dated stage), ``closed`` (close date: actual for won/lost deals, expected for open
        ones), ``amount``, ``owner``, ``segment``. Other columns become case attributes.
    won_stages, lost_stages, open_stages
        Which stage values mean won, lost, or still open (``open_stages`` in pipeline order).
        When ``open_stages`` is given the lists are complete and any other stage is an error
        (``errors="raise"``) or a skipped row (``errors="skip"``). ``outcome_values`` (and
        ``outcome_events``) add to or override them, e.g. ``{"Negotiating": "open"}``.
    created_stage
        The stage reached at the ``created`` date (Maven's ``engage_date`` is the date a deal
        entered ``"Engaging"``): that date is also a milestone event of this name.
    stage_dates, stage_date_pattern
        Columns holding the date each stage was entered: ``{"Proposal": "proposal_date"}``, or a
        regular expression whose group ``stage`` takes the stage from the column name (HubSpot's
        ``Date entered "Contract Sent (Sales Pipeline)"``). Open stages become milestone events;
        a won/lost stage's date is the deal's ``closed``.
    stage_labels
        Internal stage ids -> labels, e.g. ``{"closedwon": "Closed Won"}``.
    options
        How dates are read and rows checked (``errors``, ``tz``, ``dayfirst``, ``date_format``,
        ``decimal``, ``milestones``, ``kind``); ``outcome_values`` and ``outcome_events`` say what
        stages mean. Default: :class:`LoadOptions`' defaults.
    as_of
        The date of the snapshot. Opportunities with no date at all (Maven's Prospecting deals)
        get it as ``created`` (they existed by then) and ``created_known=False``. Default: the
        latest date the file records (creation, stage and close dates of closed deals).

    Returns
    -------
    History
        Cases with ``stage`` (the current stage), ``created_known`` and the extra columns as
        attributes; events are the dated open stages. Every opportunity is one case.

    Examples
    --------
    >>> import io, salesproc
    >>> csv = io.StringIO(
    ...     "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value\\n"
    ...     "A1,Ann Lee,GTX Basic,Acme,Won,2017-01-02,2017-02-01,1200\\n"
    ...     "A2,Bo Chan,GTX Pro,,Engaging,2017-01-05,,\\n"
    ...     "A3,Bo Chan,MG Special,,Prospecting,,,\\n"
    ... )
    >>> h = salesproc.load_history(csv, mapping="crm-snapshot")
    >>> h.cases[["case_id", "outcome", "stage", "amount", "created_known"]].to_dict("records")[0]
    {'case_id': 'A1', 'outcome': 'won', 'stage': 'Won', 'amount': 1200.0, 'created_known': True}
    >>> h.cases["created"].dt.strftime("%Y-%m-%d").tolist()
    ['2017-01-02', '2017-01-05', '2017-02-01']
    >>> h.events[["case_id", "name"]].astype(str).values.tolist()
    [['A1', 'Engaging'], ['A2', 'Engaging']]
    """
    t = SourceRows.read(
        ensure_frame(df, source), cols, required=("case_id", "stage"), aliases=aliases, preset=preset,
        source=source, options=options,
    )
    stages = _Stages.of(t.options, won_stages, lost_stages, open_stages, stage_labels)
    dated = _StageDates.of(_stage_date_columns(t, created_stage, stage_dates, stage_date_pattern, stage_labels), stages)
    checked = _check_stages(t, stages, stage_is="the opportunity's current stage")
    opps = _read_opportunities(t, checked, dated)
    closed, keep = _close_dates(t, opps, dated)
    created = _creation_dates(t, opps, dated, closed, keep, as_of)
    cases = _snapshot_cases(t, opps, created, closed, dated)
    events = _dated_stage_events(opps, dated, created.keep, t.options)
    notes = [*created.notes]
    if dated.closed:
        notes.append(
            "won/lost stage dates (" + ", ".join(dated.closed) + ") give the close date of closed "
            "opportunities, not events"
        )
    return t.build(events, cases, notes)


def _stage_date_columns(
    t: SourceRows,
    created_stage: str | None,
    stage_dates: Mapping[str, str] | None,
    pattern: str | None,
    labels: Mapping[str, str] | None,
) -> dict[str, str]:
    """Stage -> the column dating it: the created column's stage, the given columns, the pattern's."""
    present = [str(c) for c in t.df.columns]
    sdates: dict[str, str] = {}
    if created_stage and "created" in t.use:
        sdates[created_stage] = t.use["created"]
    for stage, col in (stage_dates or {}).items():
        if col in present:
            sdates.setdefault(str(stage), col)
    if pattern:
        pat = re.compile(pattern)
        for c in present:
            m = pat.match(c)
            if m and c not in t.use.values():
                lab = m.group("stage")
                sdates.setdefault(str((labels or {}).get(lab, lab)), c)
    return sdates


@dataclass(frozen=True)
class _StageDates:
    """The columns dating stages, by what the stage means: open ones give events, won/lost ones close."""

    columns: dict[str, str]
    kind: dict[str, str]
    open: dict[str, str]
    closed: dict[str, str]

    @classmethod
    def of(cls, sdates: dict[str, str], stages: _Stages) -> _StageDates:
        """Sort the dated stages into open and closed ones."""
        outcomes = stages.outcomes(pd.Series(list(sdates), dtype=object), closed_list=False)
        kind = dict(zip(sdates, outcomes.tolist()))
        open_cols = {s: c for s, c in sdates.items() if kind[s] == "open"}
        closed_cols = {s: c for s, c in sdates.items() if kind[s] != "open"}
        return cls(sdates, kind, open_cols, closed_cols)


@dataclass(frozen=True)
class _Opportunities:
    """A snapshot's kept rows, one per opportunity: positions ``k`` in the table, ids, outcomes,
    stages, row numbers, and the parsed dates and amounts of all rows."""

    k: np.ndarray
    cid: np.ndarray
    outcome: np.ndarray
    label: np.ndarray
    rows: np.ndarray
    dates: dict[str, pd.Series]
    amount: pd.Series | None

    @property
    def is_closed(self) -> np.ndarray:
        """Which opportunities are won or lost."""
        return self.outcome != "open"

    def dates_in(self, column: str | None) -> pd.Series:
        """Each opportunity's date in ``column`` (all missing for no column)."""
        if column is None:
            return pd.Series(pd.NaT, index=range(len(self.k)), dtype=TS_DTYPE)
        return self.dates[column].iloc[self.k].reset_index(drop=True)


def _read_opportunities(t: SourceRows, st: _StageRows, dated: _StageDates) -> _Opportunities:
    """Parse the dates and amounts, skip repeated opportunities; the opportunities kept."""
    keep = st.keep
    parsed: dict[str, pd.Series] = {}
    for col in dict.fromkeys([*(t.use[k] for k in ("created", "closed") if k in t.use), *dated.columns.values()]):
        parsed[col], keep = t.dates(col, keep)
    amount, keep = t.amounts(keep)
    dup = st.cid.duplicated(keep="first").to_numpy() & st.cid.notna().to_numpy() & keep
    id_col = t.use["case_id"]
    keep = keep & t.sk.bad(
        dup, rows=t.rows, column=id_col, values=t.df[id_col],
        expected="each opportunity once (a snapshot has one row per opportunity)",
        fix=("delete the repeated row; for an export with one row per stage change use "
             "mapping='salesforce' or mapping='hubspot'."),
        reason="repeated opportunity id",
    )
    k = np.flatnonzero(keep)
    return _Opportunities(
        k, st.cid.to_numpy()[k], st.outcome.to_numpy()[k], st.label.to_numpy()[k], t.rows[k], parsed, amount
    )


def _close_dates(t: SourceRows, opps: _Opportunities, dated: _StageDates) -> tuple[pd.Series, np.ndarray]:
    """When each opportunity closed: the date it entered its own won/lost stage, else the close-date
    column; a won or lost one with neither is a bad row. Returns the dates and the opportunities kept."""
    is_closed = opps.is_closed
    entered_final = opps.dates_in(None)
    for s, c in dated.closed.items():  # any won/lost stage date of the deal's outcome ...
        d = opps.dates_in(c)
        fill = is_closed & (opps.outcome == dated.kind[s]) & d.notna().to_numpy() & entered_final.isna().to_numpy()
        entered_final = entered_final.where(~fill, d)
    labels = pd.Series(opps.label)
    for s, c in dated.closed.items():  # ... and the date of its own final stage first
        d = opps.dates_in(c)
        own = is_closed & (labels == s).to_numpy() & d.notna().to_numpy()
        entered_final = entered_final.where(~own, d)
    closed = entered_final.where(entered_final.notna(), opps.dates_in(t.use.get("closed")))
    no_close = is_closed & closed.isna().to_numpy()
    first_bad = opps.label[no_close][0] if no_close.any() else ""
    close_col = t.use.get("closed", next(iter(dated.closed.values()), t.use["stage"]))
    values = (
        t.df[close_col].iloc[opps.k].reset_index(drop=True) if close_col in t.df.columns else pd.Series(opps.label)
    )
    keep = t.sk.bad(
        no_close, rows=opps.rows, column=close_col, values=values,
        expected=f"a close date: the stage {first_bad!r} means the opportunity is closed",
        fix="fill the close date, or delete the row.", reason="closed opportunity without a close date",
    )
    return closed, keep


@dataclass(frozen=True)
class _Created:
    """When each opportunity was created, whether the file says so, the opportunities kept, notes."""

    dates: pd.Series
    known: np.ndarray
    keep: np.ndarray
    notes: list[str]


def _creation_dates(
    t: SourceRows, opps: _Opportunities, dated: _StageDates, closed: pd.Series, keep: np.ndarray, as_of: Any
) -> _Created:
    """The earliest date known of each opportunity; one with none existed by the snapshot date."""
    is_closed = pd.Series(opps.is_closed)
    known = [opps.dates_in(t.use.get("created")), *(opps.dates_in(c) for c in dated.open.values())]
    stacked = pd.concat([s.rename(i) for i, s in enumerate(known)], axis=1)
    created = stacked.min(axis=1).astype(TS_DTYPE)
    created = created.where(created.notna() | ~is_closed, closed.where(is_closed))
    created_known = created.notna().to_numpy()
    past = pd.concat([created, closed.where(is_closed)])[np.r_[keep, keep]]
    snapshot = as_utc(as_of, "as_of", tz=t.options.tz) if as_of is not None else past.max()
    notes: list[str] = []
    undated = ~created_known & keep
    if undated.any():
        if pd.isna(snapshot):
            keep = keep & t.sk.bad(
                undated, rows=opps.rows, column=t.use.get("created", t.use["stage"]), values=pd.Series(opps.label),
                expected="at least one date for the opportunity (no row of the file has one)",
                fix="pass a snapshot date in the preset options (as_of=...), or fill the dates.",
                reason="opportunity with no date at all",
            )
        else:
            created = created.where(created_known, snapshot)
            notes.append(_undated_note(opps.label[undated], snapshot, given=as_of is not None))
    return _Created(created, created_known, keep, notes)


def _undated_note(stages: np.ndarray, snapshot: pd.Timestamp, *, given: bool) -> str:
    """The note on opportunities without any date, counted by stage."""
    by_stage = pd.Series(stages).value_counts()
    listed = ", ".join(f"{s!r} {v:,}" for s, v in by_stage.items())
    return (
        f"{len(stages):,} opportunities have no date at all (stage {listed}): created "
        f"set to the snapshot date {snapshot.date().isoformat()} "
        f"({'given as_of' if given else 'the latest date in the file'}); "
        "they have no events and created_known=False"
    )


def _snapshot_cases(
    t: SourceRows, opps: _Opportunities, created: _Created, closed: pd.Series, dated: _StageDates
) -> pd.DataFrame:
    """One case per opportunity kept: outcome, dates, amount, owner, segment, stage, other columns."""
    cases = pd.DataFrame(
        {
            "case_id": opps.cid,
            "outcome": opps.outcome,
            "created": created.dates.to_numpy(),
            "closed": closed.to_numpy(),
            "_row": opps.rows,
        }
    )
    if opps.amount is not None:
        cases["amount"] = opps.amount.to_numpy()[opps.k]
    for canon in ("owner", "segment"):
        if canon in t.use:
            cases[canon] = t.text(canon).to_numpy()[opps.k]
    cases["stage"] = opps.label
    cases["created_known"] = created.known
    used = set(t.use.values()) | set(dated.columns.values())
    for col, attr in extra_columns([str(c) for c in t.df.columns], used).items():
        cases[attr] = t.df[col].to_numpy()[opps.k]
    return cases.loc[created.keep].reset_index(drop=True)


def _dated_stage_events(
    opps: _Opportunities, dated: _StageDates, keep: np.ndarray, options: LoadOptions
) -> pd.DataFrame:
    """A milestone event for each open stage an opportunity kept has a date for."""
    parts = []
    for s, c in dated.open.items():
        d = opps.dates_in(c)
        m = d.notna().to_numpy() & keep
        parts.append(milestone_events(opps.cid[m], [s] * int(m.sum()), d[m], opps.rows[m], options))
    if not parts:
        return milestone_events([], [], pd.Series([], dtype=TS_DTYPE), np.zeros(0, np.int64), options)
    return pd.concat(parts, ignore_index=True)


# --- stage histories -------------------------------------------------------------------------

def stage_history(
    df: pd.DataFrame,
    cols: Mapping[str, str],
    *,
    source: str = "<data>",
    options: LoadOptions | None = None,
    won_stages: Sequence[str] = (),
    lost_stages: Sequence[str] = (),
    open_stages: Sequence[str] = (),
    stage_labels: Mapping[str, str] | None = None,
    case_columns: Sequence[str] = (),
    aliases: Mapping[str, Sequence[str]] | None = None,
    wide_pattern: str | None = None,
    preset: str | None = None,
) -> History:
    """A history from a CRM stage-history export: one row per change of an opportunity.

    Parameters
    ----------
    df
        The export, one row per change (any order).
    cols
        Canonical name -> column: ``case_id``, ``stage`` and ``timestamp`` (when the row's change
        happened) are required; optional ``created`` (the deal's creation date), ``closed`` (the
        close date the CRM held after the change), ``amount``, ``owner`` (who made the change),
        ``case_owner`` (the deal's owner), ``segment``, and the Salesforce flags ``is_won`` and
        ``is_closed``. Other columns become event attributes of the stage change they sit on,
        except ``case_columns`` (case attributes).
    options
        As for :func:`snapshot_history`.
    won_stages, lost_stages, open_stages
        Stage values that mean won / lost / open. Without ``is_won``/``is_closed`` flags the final
        stage's meaning decides the outcome. ``open_stages`` makes the lists complete (other
        stages are errors). ``outcome_values`` / ``outcome_events`` add to or override them.
    stage_labels
        Internal stage ids -> labels (HubSpot's ``"closedwon"`` -> ``"Closed Won"``).
    wide_pattern
        When the timestamp column is absent but columns match this pattern (HubSpot's
        ``Date entered "<stage>"``), the export is a one-row-per-deal snapshot: it is read by
        :func:`snapshot_history` with that pattern.

    Returns
    -------
    History
        Events: one milestone per stage entered (consecutive rows in the same stage are one).
        Cases: outcome from the final row (Salesforce ``IsClosed``/``IsWon`` flags if present, else
        the final stage); ``closed`` = when a won/lost deal entered its final stage; attributes
        ``stage`` (final stage), ``close_date`` (the CRM's latest close date),
        ``close_date_changes`` (how often the close date moved later); open deals carry their
        latest close date as ``expected_close``.

    Examples
    --------
    >>> import io, salesproc
    >>> csv = io.StringIO(
    ...     "OpportunityId,StageName,CreatedDate,Amount,CloseDate,IsWon,IsClosed\\n"
    ...     "006A,Prospecting,2024-01-02T09:00:00Z,5000,2024-02-28,false,false\\n"
    ...     "006A,Prospecting,2024-01-20T09:00:00Z,5000,2024-03-31,false,false\\n"
    ...     "006A,Closed Won,2024-03-15T16:00:00Z,5500,2024-03-15,true,true\\n"
    ... )
    >>> h = salesproc.load_history(csv, mapping="salesforce")
    >>> h.cases[["case_id", "outcome", "amount", "close_date_changes"]].to_dict("records")
    [{'case_id': '006A', 'outcome': 'won', 'amount': 5500.0, 'close_date_changes': 1}]
    >>> str(h.cases["closed"][0])
    '2024-03-15 16:00:00+00:00'
    >>> h.events["name"].astype(str).tolist()
    ['Prospecting']
    """
    df = ensure_frame(df, source)
    if _is_wide(df, cols, aliases, wide_pattern):
        return snapshot_history(
            df, _snapshot_columns(cols), source=source, options=options, won_stages=won_stages,
            lost_stages=lost_stages, open_stages=open_stages, stage_date_pattern=wide_pattern,
            stage_labels=stage_labels, aliases=aliases, preset=preset,
        )
    t = SourceRows.read(
        df, cols, required=("case_id", "stage", "timestamp"), aliases=aliases, preset=preset,
        source=source, options=options,
    )
    stages = _Stages.of(t.options, won_stages, lost_stages, open_stages, stage_labels)
    checked = _check_stages(t, stages, stage_is="the stage after the change")
    values = _read_change_values(t, checked.keep)
    changes = _Changes.ordered(t, checked, values)
    closing = _Closing.of(changes, values)
    case_attr = [c for c in case_columns if c in df.columns and c not in set(t.use.values())]
    events, notes = _stage_entry_events(t, changes, closing, case_attr)
    created, created_notes = _deal_creation_dates(changes, values)
    cases = _deal_cases(t, changes, values, created, closing, case_attr)
    return t.build(events, cases, [*notes, *created_notes])


def _is_wide(
    df: pd.DataFrame, cols: Mapping[str, str], aliases: Mapping[str, Sequence[str]] | None, wide_pattern: str | None
) -> bool:
    """Whether the export is a one-row-per-deal snapshot: no timestamp column, but columns dating stages."""
    if not wide_pattern:
        return False
    present = [str(c) for c in df.columns]
    ts_alts = [cols.get("timestamp", "timestamp"), *(aliases or {}).get("timestamp", ())]
    if any(c in present for c in ts_alts):
        return False
    pat = re.compile(wide_pattern)
    return any(pat.match(c) for c in present)


def _snapshot_columns(cols: Mapping[str, str]) -> dict[str, str]:
    """A stage-history mapping as a snapshot's: no change time or flags; the deal's owner is its owner."""
    snap_cols = {k: v for k, v in cols.items() if k not in ("timestamp", "is_won", "is_closed")}
    if "case_owner" in snap_cols:
        snap_cols["owner"] = snap_cols.pop("case_owner")
    return snap_cols


@dataclass(frozen=True)
class _ChangeValues:
    """A stage history's parsed cells: change times, created and close dates, amounts, yes/no flags."""

    ts: pd.Series
    dates: dict[str, pd.Series]
    amount: pd.Series | None
    flags: dict[str, pd.Series]
    keep: np.ndarray


def _read_change_values(t: SourceRows, keep: np.ndarray) -> _ChangeValues:
    """Parse the times, dates, amounts and Salesforce flags; unreadable cells are bad rows."""
    ts, keep = t.dates(t.use["timestamp"], keep, required=True, expected="the date and time of the change")
    dates: dict[str, pd.Series] = {}
    for canon in ("created", "closed"):
        if canon in t.use:
            dates[canon], keep = t.dates(t.use[canon], keep)
    amount, keep = t.amounts(keep)
    flags: dict[str, pd.Series] = {}
    for canon in ("is_won", "is_closed"):
        if canon in t.use:
            flags[canon], keep = parse_flag_column(t.df, t.use[canon], sk=t.sk, rows=t.rows, keep=keep)
    return _ChangeValues(ts, dates, amount, flags, keep)


@dataclass(frozen=True)
class _Changes:
    """A stage history's kept rows in order: by opportunity (first appearance), time, file order.

    ``run_start`` marks the rows that entered a stage, ``first``/``last_idx`` each deal's first and
    last row, ``final_run`` the row where each deal entered its final stage.
    """

    deals: CaseRows
    label: np.ndarray
    stage_outcome: np.ndarray
    ts: pd.Series
    rows: np.ndarray
    first: np.ndarray
    last_idx: np.ndarray
    run_start: np.ndarray
    final_run: np.ndarray

    @property
    def cid(self) -> np.ndarray:
        """Each row's opportunity id."""
        return self.deals.ids[self.deals.codes]

    @classmethod
    def ordered(cls, t: SourceRows, st: _StageRows, values: _ChangeValues) -> _Changes:
        """Order the kept rows and find the runs of one stage."""
        k = np.flatnonzero(values.keep)
        codes_all, uniq = pd.factorize(st.cid.to_numpy()[k], sort=False)
        order = np.lexsort((np.arange(len(k)), i8(values.ts.iloc[k]), codes_all))
        k = k[order]
        codes = codes_all[order]
        lab_k = st.label.to_numpy()[k]
        first = np.r_[True, codes[1:] != codes[:-1]] if len(k) else np.zeros(0, bool)
        last = np.r_[codes[1:] != codes[:-1], True] if len(k) else np.zeros(0, bool)
        run_start = first | np.r_[False, lab_k[1:] != lab_k[:-1]] if len(k) else np.zeros(0, bool)
        rs = np.flatnonzero(run_start)
        # per case, the row where its final stage was entered (rows are in time order)
        final_run = pd.Series(rs).groupby(codes[rs]).max().reindex(range(len(uniq))).to_numpy(dtype=np.int64)
        return cls(
            CaseRows(k, codes, np.asarray(uniq, dtype=object)), lab_k, st.outcome.to_numpy()[k],
            values.ts.iloc[k].reset_index(drop=True), t.rows[k], first, np.flatnonzero(last), run_start, final_run,
        )


def _final_outcomes(ch: _Changes, flags: dict[str, pd.Series]) -> pd.Series:
    """Each deal's outcome: the flags of its final row (Salesforce ``IsClosed``/``IsWon``) when the
    export has them, else what its final stage means."""
    outcome = pd.Series(ch.stage_outcome[ch.last_idx], dtype=object)
    if not flags:
        return outcome
    cf, wf = _final_flag(ch, flags, "is_closed"), _final_flag(ch, flags, "is_won")
    closed_yes = cf.fillna(False).to_numpy(dtype=bool)
    closed_no = (~cf).fillna(False).to_numpy(dtype=bool)
    won_yes = wf.fillna(False).to_numpy(dtype=bool)
    by_stage = outcome.to_numpy()
    by_flag = np.where(
        won_yes, "won",
        np.where(closed_no, "open", np.where(closed_yes, np.where(by_stage == "won", "won", "lost"), by_stage)),
    )
    return pd.Series(by_flag, dtype=object)


def _final_flag(ch: _Changes, flags: dict[str, pd.Series], flag: str) -> pd.Series:
    """A flag's value on each deal's last row (missing when the export has no such flag)."""
    if flag in flags:
        return pd.Series(flags[flag].iloc[ch.deals.k].to_numpy()[ch.last_idx], dtype="boolean")
    return pd.Series([pd.NA] * ch.deals.m, dtype="boolean")


@dataclass(frozen=True)
class _Closing:
    """Each deal's outcome, whether it is won or lost, when it closed (when it entered its final stage;
    open ones keep their latest close date), and the CRM's latest close date (None without a column)."""

    outcome: pd.Series
    is_closed: np.ndarray
    closed: pd.Series
    close_date: pd.Series | None

    @classmethod
    def of(cls, ch: _Changes, values: _ChangeValues) -> _Closing:
        """Outcomes from the final rows, close times from the final runs."""
        g = ch.deals
        outcome = _final_outcomes(ch, values.flags)
        is_closed = (outcome != "open").to_numpy()
        closed_time = pd.Series(ch.ts.to_numpy()[ch.final_run], dtype=TS_DTYPE)
        close_date = group_dates(g.codes, values.dates["closed"].iloc[g.k], g.m, "last") if "closed" in values.dates else None
        closed = closed_time.where(is_closed, close_date if close_date is not None else pd.NaT)
        return cls(outcome, is_closed, closed, close_date)


def _stage_entry_events(
    t: SourceRows, ch: _Changes, closing: _Closing, case_attr: list[str]
) -> tuple[pd.DataFrame, list[str]]:
    """A milestone per stage entered, except the won/lost entry that closed the deal; other columns
    are its attributes. Also the notes on reopened deals and on rows that changed no stage."""
    is_event = ch.run_start.copy()
    is_event[ch.final_run[closing.is_closed]] = False
    notes: list[str] = []
    reopened = is_event & np.isin(ch.stage_outcome, ["won", "lost"])
    if reopened.any():
        notes.append(
            f"{int(reopened.sum()):,} won/lost stages were left again (deal reopened): kept as events"
        )
    n_updates = int((~ch.run_start).sum())
    if n_updates:
        notes.append(
            f"{n_updates:,} rows changed other fields without a stage change: they update the deal "
            "(amount, close date) and are not events"
        )
    e = np.flatnonzero(is_event)
    k = ch.deals.k
    ev = milestone_events(ch.cid[e], ch.label[e], ch.ts.iloc[e], ch.rows[e], t.options)
    if "owner" in t.use:
        ev["owner"] = t.text("owner").to_numpy()[k][e]
    if reopened.any():  # a past view (History.as_of) shows the deal closed while it was
        closes = np.asarray(ch.stage_outcome, dtype=object)[e].copy()
        closes[~reopened[e]] = None
        ev["closes"] = closes
    for col, attr in extra_columns(t.df.columns, set(t.use.values()) | set(case_attr)).items():
        ev[attr] = t.df[col].to_numpy()[k][e]
    return ev, notes


def _deal_creation_dates(ch: _Changes, values: _ChangeValues) -> tuple[pd.Series, list[str]]:
    """When each deal was created: its create date, unless it changed stage before; else its first change."""
    g = ch.deals
    min_ts = group_dates(g.codes, ch.ts, g.m, "min")
    if "created" not in values.dates:
        return min_ts, []
    given = group_dates(g.codes, values.dates["created"].iloc[g.k], g.m, "first")
    later = (given > min_ts).fillna(False).to_numpy(dtype=bool)
    notes = []
    if later.any():
        notes.append(
            f"{int(later.sum()):,} deals changed stage before their create date: created set to "
            "the first change"
        )
    return given.where(given.notna() & ~later, min_ts), notes


def _deal_cases(
    t: SourceRows,
    ch: _Changes,
    values: _ChangeValues,
    created: pd.Series,
    closing: _Closing,
    case_attr: list[str],
) -> pd.DataFrame:
    """One case per deal: outcome, dates, its latest amount, owner and segment, final stage, close-date
    moves, and the ``case_columns``."""
    g = ch.deals
    cases = pd.DataFrame(
        {
            "case_id": g.ids,
            "outcome": closing.outcome.to_numpy(),
            "created": created.to_numpy(),
            "closed": closing.closed.to_numpy(),
            "_row": ch.rows[np.flatnonzero(ch.first)],
        }
    )
    for col, vals in g.case_values(t, values.amount, owner_of_rows=True).items():
        cases[col] = vals
    cases["stage"] = ch.label[ch.last_idx]
    if closing.close_date is not None:
        cases["close_date"] = closing.close_date.to_numpy()
        cases["close_date_changes"] = _close_date_pushes(g.codes, values.dates["closed"].iloc[g.k], g.m)
    for col in case_attr:
        cases[col if col not in cases.columns else f"{col} (source)"] = g.last(t.df[col].to_numpy())
    return cases


def _close_date_pushes(codes: np.ndarray, close: pd.Series, m: int) -> np.ndarray:
    """Per case, how many times the close date moved later from one row to the next (rows in time order)."""
    vals = i8(pd.Series(close.to_numpy(), dtype=TS_DTYPE))
    ok = vals != np.iinfo(np.int64).min
    c, v = codes[ok], vals[ok]
    pushed = np.r_[False, (c[1:] == c[:-1]) & (v[1:] > v[:-1])] if len(c) else np.zeros(0, bool)
    return np.bincount(c[pushed], minlength=m).astype(np.int64)
