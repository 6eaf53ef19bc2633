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
from typing import Any

import numpy as np
import pandas as pd

from salesproc.history._finalize import i8
from salesproc.history._history import TS_DTYPE, History
from salesproc.load._build import Errors, MilestoneRule, Skips, build_history
from salesproc.load._tabular import (
    as_utc,
    classify_stages,
    ensure_frame,
    extra_columns,
    group_dates,
    group_last,
    parse_date_column,
    parse_flag_column,
    parse_number_column,
    resolve_columns,
    row_numbers,
    text,
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
    if not labels:
        return raw
    return raw.map(dict(labels)).where(lambda s: s.notna(), raw)


def _unknown_stage_fix(
    column: str,
    won: Sequence[str],
    lost: Sequence[str],
    open_: Sequence[str],
    bad: np.ndarray,
    labels: pd.Series,
) -> tuple[str, str]:
    """``expected`` and ``fix`` for the first unknown stage (the fix quotes the value found)."""
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


def _events_frame(
    case_id: Sequence[Any] | np.ndarray,
    name: Sequence[Any] | np.ndarray,
    ts: pd.Series | np.ndarray,
    rows: np.ndarray,
    milestones: MilestoneRule,
) -> pd.DataFrame:
    ev = pd.DataFrame(
        {
            "case_id": np.asarray(case_id, dtype=object),
            "name": np.asarray(name, dtype=object),
            "timestamp": pd.Series(ts, dtype=TS_DTYPE).to_numpy(),
            "_row": np.asarray(rows, dtype=np.int64),
        }
    )
    if milestones is None:
        ev["type"] = "milestone"
    return ev


# --- snapshots -------------------------------------------------------------------------------

def snapshot_history(
    df: pd.DataFrame,
    cols: Mapping[str, str],
    *,
    source: str = "<data>",
    decimal: str = ".",
    kind: str = "deal",
    errors: Errors = "raise",
    tz: str = "UTC",
    outcome_values: Mapping[str, str] | None = None,
    outcome_events: Mapping[str, Iterable[str]] | None = None,
    milestones: MilestoneRule = None,
    dayfirst: bool = False,
    date_format: str | None = None,
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
    df = ensure_frame(df, source)
    n = len(df)
    sk = Skips(source=source, errors=errors)
    rows = row_numbers(df)
    use = resolve_columns(
        df, cols, required=("case_id", "stage"), aliases=aliases, source=source, preset=preset
    )
    present = [str(c) for c in df.columns]
    user = _user_stage_map(outcome_values, outcome_events)

    # which columns date which stage
    sdates: dict[str, str] = {}
    if created_stage and "created" in use:
        sdates[created_stage] = use["created"]
    for stage, col in (stage_dates or {}).items():
        if col in present:
            sdates.setdefault(str(stage), col)
    if stage_date_pattern:
        pat = re.compile(stage_date_pattern)
        for c in present:
            m = pat.match(c)
            if m and c not in use.values():
                lab = m.group("stage")
                sdates.setdefault(str((stage_labels or {}).get(lab, lab)), c)

    keep = np.ones(n, dtype=bool)
    id_col, stage_col = use["case_id"], use["stage"]
    cid = text(df[id_col])
    keep &= sk.bad(
        cid.isna().to_numpy(), rows=rows, column=id_col, values=df[id_col],
        expected="an opportunity id (not empty)", fix="fill the id, or delete the row.",
        reason="empty case id",
    )
    label = _stage_labels(text(df[stage_col]), stage_labels)
    keep &= sk.bad(
        label.isna().to_numpy() & keep, rows=rows, column=stage_col, values=df[stage_col],
        expected="the opportunity's current stage (not empty)", fix="fill the stage, or delete the row.",
        reason="empty stage",
    )
    outcome = classify_stages(
        label, won=won_stages, lost=lost_stages, open_=open_stages, extra=user,
        closed_list=bool(open_stages),
    )
    unknown = (outcome.isna() & label.notna()).to_numpy() & keep
    expected, fix = _unknown_stage_fix(stage_col, won_stages, lost_stages, open_stages, unknown, label)
    keep &= sk.bad(
        unknown, rows=rows, column=stage_col, values=df[stage_col], expected=expected, fix=fix,
        reason=f"unknown stage in {stage_col!r}",
    )

    date_opts: dict[str, Any] = dict(sk=sk, rows=rows, tz=tz, dayfirst=dayfirst, date_format=date_format)
    parsed: dict[str, pd.Series] = {}
    for col in dict.fromkeys([*(use[k] for k in ("created", "closed") if k in use), *sdates.values()]):
        parsed[col], keep = parse_date_column(df, col, keep=keep, **date_opts)
    amount = None
    if "amount" in use:
        amount, keep = parse_number_column(df, use["amount"], sk=sk, rows=rows, keep=keep, decimal=decimal)
    dup = cid.duplicated(keep="first").to_numpy() & cid.notna().to_numpy()
    dup = dup & keep
    keep &= sk.bad(
        dup, rows=rows, column=id_col, values=df[id_col],
        expected="each opportunity once (a snapshot has one row per opportunity)",
        fix=("delete the repeated row; for an export with one row per stage change use "
             "mapping='salesforce' or mapping='hubspot'."),
        reason="repeated opportunity id",
    )

    # --- per opportunity -------------------------------------------------------------------
    k = np.flatnonzero(keep)
    cid_k = cid.to_numpy()[k]
    out_k = outcome.to_numpy()[k]
    lab_k = label.to_numpy()[k]
    rows_k = rows[k]
    is_closed = out_k != "open"
    nat = pd.Series(pd.NaT, index=range(len(k)), dtype=TS_DTYPE)

    def col_dates(col: str | None) -> pd.Series:
        return nat if col is None else parsed[col].iloc[k].reset_index(drop=True)

    stage_kind = dict(zip(sdates, classify_stages(
        pd.Series(list(sdates), dtype=object), won=won_stages, lost=lost_stages, open_=open_stages,
        extra=user,
    ).tolist()))
    open_cols = {s: c for s, c in sdates.items() if stage_kind[s] == "open"}
    closed_cols = {s: c for s, c in sdates.items() if stage_kind[s] != "open"}

    # closed: the date the deal entered its own won/lost stage, else the close-date column
    closed = col_dates(use.get("closed"))
    entered_final = nat.copy()
    labels_k = pd.Series(lab_k)
    for s, c in closed_cols.items():  # any won/lost stage date of the deal's outcome ...
        d = col_dates(c)
        fill = is_closed & (out_k == stage_kind[s]) & d.notna().to_numpy() & entered_final.isna().to_numpy()
        entered_final = entered_final.where(~fill, d)
    for s, c in closed_cols.items():  # ... and the date of its own final stage first
        d = col_dates(c)
        own = is_closed & (labels_k == s).to_numpy() & d.notna().to_numpy()
        entered_final = entered_final.where(~own, d)
    closed = entered_final.where(entered_final.notna(), closed)
    no_close = is_closed & closed.isna().to_numpy()
    first_bad = lab_k[no_close][0] if no_close.any() else ""
    close_col = use.get("closed", next(iter(closed_cols.values()), stage_col))
    keep_c = sk.bad(
        no_close, rows=rows_k, column=close_col,
        values=df[close_col].iloc[k].reset_index(drop=True) if close_col in df.columns else pd.Series(lab_k),
        expected=f"a close date: the stage {first_bad!r} means the opportunity is closed",
        fix="fill the close date, or delete the row.", reason="closed opportunity without a close date",
    )

    # created: the earliest known date; an opportunity with none existed by the snapshot date
    known = [col_dates(use.get("created")), *(col_dates(c) for c in open_cols.values())]
    stacked = pd.concat([s.rename(i) for i, s in enumerate(known)], axis=1)
    created = stacked.min(axis=1).astype(TS_DTYPE)
    created = created.where(created.notna() | ~pd.Series(is_closed), closed.where(pd.Series(is_closed)))
    created_known = created.notna().to_numpy()
    past = pd.concat([created, closed.where(pd.Series(is_closed))])[np.r_[keep_c, keep_c]]
    snapshot = as_utc(as_of, "as_of", tz=tz) if as_of is not None else past.max()
    notes: list[str] = []
    undated = ~created_known & keep_c
    if undated.any():
        if pd.isna(snapshot):
            keep_c &= sk.bad(
                undated, rows=rows_k, column=use.get("created", stage_col), values=pd.Series(lab_k),
                expected="at least one date for the opportunity (no row of the file has one)",
                fix="pass a snapshot date in the preset options (as_of=...), or fill the dates.",
                reason="opportunity with no date at all",
            )
        else:
            created = created.where(created_known, snapshot)
            by_stage = pd.Series(lab_k[undated]).value_counts()
            stages = ", ".join(f"{s!r} {v:,}" for s, v in by_stage.items())
            notes.append(
                f"{int(undated.sum()):,} opportunities have no date at all (stage {stages}): created "
                f"set to the snapshot date {snapshot.date().isoformat()} "
                f"({'given as_of' if as_of is not None else 'the latest date in the file'}); "
                "they have no events and created_known=False"
            )

    cases = pd.DataFrame(
        {
            "case_id": cid_k,
            "outcome": out_k,
            "created": created.to_numpy(),
            "closed": closed.to_numpy(),
            "_row": rows_k,
        }
    )
    if amount is not None:
        cases["amount"] = amount.to_numpy()[k]
    for canon in ("owner", "segment"):
        if canon in use:
            cases[canon] = text(df[use[canon]]).to_numpy()[k]
    cases["stage"] = lab_k
    cases["created_known"] = created_known
    used = set(use.values()) | set(sdates.values())
    for col, attr in extra_columns(present, used).items():
        cases[attr] = df[col].to_numpy()[k]
    cases = cases.loc[keep_c].reset_index(drop=True)

    parts = []
    for s, c in open_cols.items():
        d = col_dates(c)
        m = d.notna().to_numpy() & keep_c
        parts.append(_events_frame(cid_k[m], [s] * int(m.sum()), d[m], rows_k[m], milestones))
    ev = pd.concat(parts, ignore_index=True) if parts else _events_frame(
        [], [], pd.Series([], dtype=TS_DTYPE), np.zeros(0, np.int64), milestones
    )
    if closed_cols:
        notes.append(
            "won/lost stage dates (" + ", ".join(closed_cols) + ") give the close date of closed "
            "opportunities, not events"
        )
    return build_history(
        ev, cases, source=source, kind=kind, tz=tz, errors=errors, milestones=milestones,
        dayfirst=dayfirst, date_format=date_format, decimal=decimal, rows_read=n, skips=sk, notes=notes,
    )


# --- stage histories -------------------------------------------------------------------------

def stage_history(
    df: pd.DataFrame,
    cols: Mapping[str, str],
    *,
    source: str = "<data>",
    decimal: str = ".",
    kind: str = "deal",
    errors: Errors = "raise",
    tz: str = "UTC",
    outcome_values: Mapping[str, str] | None = None,
    outcome_events: Mapping[str, Iterable[str]] | None = None,
    milestones: MilestoneRule = None,
    dayfirst: bool = False,
    date_format: str | None = None,
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
    present = [str(c) for c in df.columns]
    ts_col = cols.get("timestamp", "timestamp")
    ts_alts = [ts_col, *(aliases or {}).get("timestamp", ())]
    if wide_pattern and not any(c in present for c in ts_alts):
        pat = re.compile(wide_pattern)
        if any(pat.match(c) for c in present):
            snap_cols = {k: v for k, v in cols.items() if k not in ("timestamp", "is_won", "is_closed")}
            if "case_owner" in snap_cols:
                snap_cols["owner"] = snap_cols.pop("case_owner")
            return snapshot_history(
                df, snap_cols, source=source, decimal=decimal, kind=kind, errors=errors, tz=tz,
                outcome_values=outcome_values, outcome_events=outcome_events, milestones=milestones,
                dayfirst=dayfirst, date_format=date_format, won_stages=won_stages,
                lost_stages=lost_stages, open_stages=open_stages, stage_date_pattern=wide_pattern,
                stage_labels=stage_labels, aliases=aliases, preset=preset,
            )
    n = len(df)
    sk = Skips(source=source, errors=errors)
    rows = row_numbers(df)
    use = resolve_columns(
        df, cols, required=("case_id", "stage", "timestamp"), aliases=aliases, source=source, preset=preset
    )
    user = _user_stage_map(outcome_values, outcome_events)
    id_col, stage_col, ts_col = use["case_id"], use["stage"], use["timestamp"]

    keep = np.ones(n, dtype=bool)
    cid = text(df[id_col])
    keep &= sk.bad(
        cid.isna().to_numpy(), rows=rows, column=id_col, values=df[id_col],
        expected="an opportunity id (not empty)", fix="fill the id, or delete the row.",
        reason="empty case id",
    )
    label = _stage_labels(text(df[stage_col]), stage_labels)
    keep &= sk.bad(
        label.isna().to_numpy() & keep, rows=rows, column=stage_col, values=df[stage_col],
        expected="the stage after the change (not empty)", fix="fill the stage, or delete the row.",
        reason="empty stage",
    )
    stage_out = classify_stages(
        label, won=won_stages, lost=lost_stages, open_=open_stages, extra=user, closed_list=bool(open_stages)
    )
    unknown = (stage_out.isna() & label.notna()).to_numpy() & keep
    expected, fix = _unknown_stage_fix(stage_col, won_stages, lost_stages, open_stages, unknown, label)
    keep &= sk.bad(
        unknown, rows=rows, column=stage_col, values=df[stage_col], expected=expected, fix=fix,
        reason=f"unknown stage in {stage_col!r}",
    )
    date_opts: dict[str, Any] = dict(sk=sk, rows=rows, tz=tz, dayfirst=dayfirst, date_format=date_format)
    ts, keep = parse_date_column(
        df, ts_col, keep=keep, required=True, expected="the date and time of the change", **date_opts
    )
    dates: dict[str, pd.Series] = {}
    for canon in ("created", "closed"):
        if canon in use:
            dates[canon], keep = parse_date_column(df, use[canon], keep=keep, **date_opts)
    amount = None
    if "amount" in use:
        amount, keep = parse_number_column(df, use["amount"], sk=sk, rows=rows, keep=keep, decimal=decimal)
    flags: dict[str, pd.Series] = {}
    for canon in ("is_won", "is_closed"):
        if canon in use:
            flags[canon], keep = parse_flag_column(df, use[canon], sk=sk, rows=rows, keep=keep)

    # --- order rows: by opportunity (first appearance), time, file order ----------------------
    k = np.flatnonzero(keep)
    codes_all, uniq = pd.factorize(cid.to_numpy()[k], sort=False)
    order = np.lexsort((np.arange(len(k)), i8(ts.iloc[k]), codes_all))
    k = k[order]
    codes = codes_all[order]
    m = len(uniq)
    cid_k = np.asarray(uniq, dtype=object)[codes]
    lab_k = label.to_numpy()[k]
    sout_k = stage_out.to_numpy()[k]
    ts_k = ts.iloc[k].reset_index(drop=True)
    rows_k = rows[k]

    first = np.r_[True, codes[1:] != codes[:-1]] if len(k) else np.zeros(0, bool)
    last = np.r_[codes[1:] != codes[:-1], True] if len(k) else np.zeros(0, bool)
    run_start = first | np.r_[False, lab_k[1:] != lab_k[:-1]] if len(k) else np.zeros(0, bool)
    last_idx = np.flatnonzero(last)
    rs = np.flatnonzero(run_start)
    # per case, the row where its final stage was entered (rows are in time order)
    final_run = pd.Series(rs).groupby(codes[rs]).max().reindex(range(m)).to_numpy(dtype=np.int64)

    # --- outcome: flags on the final row, else the final stage -------------------------------
    outcome = pd.Series(sout_k[last_idx], dtype=object)
    if flags:
        def final(flag: str) -> pd.Series:
            if flag in flags:
                return pd.Series(flags[flag].iloc[k].to_numpy()[last_idx], dtype="boolean")
            return pd.Series([pd.NA] * m, dtype="boolean")

        cf, wf = final("is_closed"), final("is_won")
        closed_yes = cf.fillna(False).to_numpy(dtype=bool)
        closed_no = (~cf).fillna(False).to_numpy(dtype=bool)
        won_yes = wf.fillna(False).to_numpy(dtype=bool)
        by_stage = outcome.to_numpy()
        by_flag = np.where(
            won_yes, "won",
            np.where(closed_no, "open", np.where(closed_yes, np.where(by_stage == "won", "won", "lost"), by_stage)),
        )
        outcome = pd.Series(by_flag, dtype=object)
    is_closed = (outcome != "open").to_numpy()

    closed_time = pd.Series(ts_k.to_numpy()[final_run], dtype=TS_DTYPE)
    close_date = group_dates(codes, dates["closed"].iloc[k], m, "last") if "closed" in dates else None
    closed = closed_time.where(is_closed, close_date if close_date is not None else pd.NaT)

    # --- events: stage entries, except the won/lost entry that closed the deal ----------------
    is_event = run_start.copy()
    is_event[final_run[is_closed]] = False
    notes: list[str] = []
    reopened = is_event & np.isin(sout_k, ["won", "lost"])
    if reopened.any():
        notes.append(
            f"{int(reopened.sum()):,} won/lost stages were left again (deal reopened): kept as events"
        )
    n_updates = int((~run_start).sum())
    if n_updates:
        notes.append(
            f"{n_updates:,} rows changed other fields without a stage change: they update the deal "
            "(amount, close date) and are not events"
        )
    e = np.flatnonzero(is_event)
    ev = _events_frame(cid_k[e], lab_k[e], ts_k.iloc[e], rows_k[e], milestones)
    if "owner" in use:
        ev["owner"] = text(df[use["owner"]]).to_numpy()[k][e]
    used = set(use.values())
    case_attr = [c for c in case_columns if c in df.columns and c not in used]
    for col, attr in extra_columns(df.columns, used | set(case_attr)).items():
        ev[attr] = df[col].to_numpy()[k][e]

    # --- cases ------------------------------------------------------------------------------
    min_ts = group_dates(codes, ts_k, m, "min")
    created = min_ts
    if "created" in dates:
        given = group_dates(codes, dates["created"].iloc[k], m, "first")
        later = (given > min_ts).fillna(False).to_numpy(dtype=bool)
        if later.any():
            notes.append(
                f"{int(later.sum()):,} deals changed stage before their create date: created set to "
                "the first change"
            )
        created = given.where(given.notna() & ~later, min_ts)
    cases = pd.DataFrame(
        {
            "case_id": np.asarray(uniq, dtype=object),
            "outcome": outcome.to_numpy(),
            "created": created.to_numpy(),
            "closed": closed.to_numpy(),
            "_row": rows_k[np.flatnonzero(first)],
        }
    )
    if amount is not None:
        cases["amount"] = pd.to_numeric(group_last(codes, amount.iloc[k], m), errors="coerce").to_numpy()
    if "case_owner" in use:
        cases["owner"] = group_last(codes, text(df[use["case_owner"]]).to_numpy()[k], m).to_numpy()
    elif "owner" in use:
        owners = text(df[use["owner"]]).to_numpy()[k]
        valid = pd.notna(owners)
        firsts = pd.Series(owners[valid]).groupby(codes[valid]).first()
        own = pd.Series([None] * m, dtype=object)
        own.iloc[firsts.index.to_numpy()] = firsts.to_numpy()
        cases["owner"] = own.to_numpy()
    if "segment" in use:
        cases["segment"] = group_last(codes, text(df[use["segment"]]).to_numpy()[k], m).to_numpy()
    cases["stage"] = lab_k[last_idx]
    if close_date is not None:
        cases["close_date"] = close_date.to_numpy()
        cases["close_date_changes"] = _close_date_pushes(codes, dates["closed"].iloc[k], m)
    for col in case_attr:
        cases[col if col not in cases.columns else f"{col} (source)"] = group_last(
            codes, df[col].to_numpy()[k], m
        ).to_numpy()

    return build_history(
        ev, cases, source=source, kind=kind, tz=tz, errors=errors, milestones=milestones,
        dayfirst=dayfirst, date_format=date_format, decimal=decimal, rows_read=n, skips=sk, notes=notes,
    )


def _close_date_pushes(codes: np.ndarray, close: pd.Series, m: int) -> np.ndarray:
    """Per case, how many times the close date moved later from one row to the next (rows in time order)."""
    vals = i8(pd.Series(close.to_numpy(), dtype=TS_DTYPE))
    ok = vals != np.iinfo(np.int64).min
    c, v = codes[ok], vals[ok]
    pushed = np.r_[False, (c[1:] == c[:-1]) & (v[1:] > v[:-1])] if len(c) else np.zeros(0, bool)
    return np.bincount(c[pushed], minlength=m).astype(np.int64)
