"""Helpers shared by the loaders of row tables that are not event logs (CRM exports, milestone tables).

Each helper validates one kind of cell the way :mod:`salesproc.load._build` does, but names the source's
own column (``'deal_stage'``, not ``'stage'``) so an error points at the cell the user sees.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from salesproc.errors import InputError, MissingColumnError, _closest
from salesproc.history._history import TS_DTYPE, History
from salesproc.load._build import (
    Skips,
    _clean_ids,
    _norm_token,
    build_history,
    check_dates,
    parse_timestamps,
)
from salesproc.load._numbers import NumberFormat, parse_numbers
from salesproc.load._options import LoadOptions

__all__ = [
    "CaseRows",
    "SourceRows",
    "as_utc",
    "classify_stages",
    "ensure_frame",
    "extra_columns",
    "group_dates",
    "group_last",
    "milestone_events",
    "missing_column",
    "parse_date_column",
    "parse_flag_column",
    "parse_number_column",
    "resolve_columns",
    "row_numbers",
    "text",
]

# reserved names: a source column with one of these names is kept under "<name> (source)"
RESERVED = frozenset(
    {
        "case_id", "name", "type", "timestamp", "owner", "role", "outcome", "kind", "created", "closed",
        "amount", "segment", "target_date", "case_owner", "status", "expected_close", "_row",
    }
)

_TRUE = {"true", "t", "yes", "y", "1", "1.0", "x"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}
_WON_TOKENS = {"won", "closed_won", "closedwon", "win"}
_LOST_TOKENS = {"lost", "closed_lost", "closedlost", "loss"}


def row_numbers(df: pd.DataFrame) -> np.ndarray:
    """Row numbers as a spreadsheet shows them (header row 1, first data row 2)."""
    if "_row" in df.columns:
        return df["_row"].to_numpy(dtype=np.int64)
    return np.arange(len(df), dtype=np.int64) + 2


def missing_column(
    column: str,
    *,
    canonical: str,
    present: list[str],
    source: str,
    preset: str | None,
    taken: Iterable[str] = (),
) -> MissingColumnError:
    """A :class:`MissingColumnError` whose fix fits a preset (rename the column, keep the preset).

    ``taken`` are columns the preset already reads, never suggested for another field.
    """
    err = MissingColumnError(column, canonical=canonical, present=present, source=source)
    if preset:
        free = [c for c in present if c not in set(taken)]
        close = _closest(column, free) or "<your column>"
        head = str(err).split(" Fix: ")[0]
        err.args = (
            f"{head} Fix: the {preset!r} preset reads {canonical!r} from the column {column!r}; rename "
            f"yours, e.g. df = pd.read_csv(path).rename(columns={{{close!r}: {column!r}}}), then "
            f"load_history(df, mapping={preset!r}).",
        )
    return err


def resolve_columns(
    df: pd.DataFrame,
    cols: Mapping[str, str],
    *,
    required: Iterable[str],
    aliases: Mapping[str, Sequence[str]] | None,
    source: str,
    preset: str | None,
) -> dict[str, str]:
    """Canonical name -> a column of ``df``; a required one that is absent raises a helpful error.

    A mapped column that is absent is looked up among the preset's ``aliases`` (other names the
    same export uses, e.g. HubSpot's ``"Deal ID"`` for ``"Record ID"``); an optional one that is
    still absent is left out.
    """
    present = [str(c) for c in df.columns]
    have = set(present)
    out: dict[str, str] = {}
    for canon in dict.fromkeys([*cols, *required]):
        want = cols.get(canon, canon)
        if want in have:
            out[canon] = want
            continue
        alt = next((a for a in (aliases or {}).get(canon, ()) if a in have), None)
        if alt is not None:
            out[canon] = alt
        elif canon in required:
            raise missing_column(
                want, canonical=canon, present=present, source=source, preset=preset,
                taken=[c for c in cols.values() if c in have],
            )
    return out


def text(values: pd.Series) -> pd.Series:
    """Stripped text with blanks as missing; ids read as floats (``1.0``) keep their integer text."""
    return _clean_ids(values).reset_index(drop=True)


def parse_date_column(
    df: pd.DataFrame,
    column: str,
    *,
    sk: Skips,
    rows: np.ndarray,
    keep: np.ndarray,
    tz: str,
    dayfirst: bool,
    date_format: str | None,
    required: bool = False,
    expected: str = "a date such as 2024-03-31",
) -> tuple[pd.Series, np.ndarray]:
    """Parse one column of dates; unreadable cells (and empty ones when ``required``) are bad rows."""
    raw = df[column].reset_index(drop=True)
    parsed = parse_timestamps(raw, tz=tz, dayfirst=dayfirst, date_format=date_format)
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        filled = raw.notna().to_numpy()
    else:
        filled = text(raw).notna().to_numpy()
    keep = keep & check_dates(
        sk, parsed, raw, candidates=filled & keep, rows=rows, column=column, dayfirst=dayfirst,
        date_format=date_format, expected=expected, tz=tz,
        fix=("correct the cell; for day-first dates pass dayfirst=True, or give the exact format, "
             "e.g. date_format='%d.%m.%Y'."),
        reason=f"unreadable date in {column!r}",
    )
    if required:
        keep = keep & sk.bad(
            ~filled & keep, rows=rows, column=column, values=raw, expected=expected,
            fix="fill the date, or delete the row.", reason=f"missing date in {column!r}",
        )
    return parsed.reset_index(drop=True), keep


def parse_number_column(
    df: pd.DataFrame, column: str, *, sk: Skips, rows: np.ndarray, keep: np.ndarray, decimal: str | None
) -> tuple[pd.Series, np.ndarray]:
    """Parse one column of amounts, with the decimal mark given or else the one its values prove
    (noted for the summary); unreadable non-empty cells are bad rows."""
    raw = df[column].reset_index(drop=True)
    parsed, fmt = parse_numbers(raw, decimal=decimal, source=sk.source, column=column, rows=rows)
    fmt = fmt or NumberFormat(decimal, given=decimal is not None)
    if fmt.decimal or fmt.thousands:
        sk.notes.append(f"{column}: {fmt.describe()}")
    unread = parsed.isna().to_numpy() & text(raw).notna().to_numpy()
    keep = keep & sk.bad(
        unread & keep, rows=rows, column=column, values=raw,
        expected=f"a number written as the column's others are: {fmt.describe()}, such as {fmt.example()}",
        fix="correct the cell, or say how the file writes numbers with decimal='.' or decimal=','.",
        reason=f"unreadable number in {column!r}",
    )
    return parsed, keep


def parse_flag_column(
    df: pd.DataFrame, column: str, *, sk: Skips, rows: np.ndarray, keep: np.ndarray
) -> tuple[pd.Series, np.ndarray]:
    """Parse a yes/no column (``true``/``false``, ``1``/``0``, ``yes``/``no``) to a nullable boolean."""
    raw = df[column].reset_index(drop=True)
    if pd.api.types.is_bool_dtype(raw.dtype):
        return raw.astype("boolean"), keep
    tok = _norm_token(raw)
    out = pd.Series(pd.NA, index=raw.index, dtype="boolean")
    out[tok.isin(_TRUE).to_numpy()] = True
    out[tok.isin(_FALSE).to_numpy()] = False
    unread = out.isna().to_numpy() & (tok != "").to_numpy()
    keep = keep & sk.bad(
        unread & keep, rows=rows, column=column, values=raw, expected="true or false (also 1/0, yes/no)",
        fix="correct the cell.", reason=f"unreadable yes/no value in {column!r}",
    )
    return out, keep


def classify_stages(
    labels: pd.Series,
    *,
    won: Iterable[str] = (),
    lost: Iterable[str] = (),
    open_: Iterable[str] = (),
    extra: Mapping[str, str] | None = None,
    closed_list: bool = False,
) -> pd.Series:
    """The outcome each stage label stands for: ``won``, ``lost``, ``open``, or missing if unknown.

    Labels are compared without regard to case, spaces or hyphens, so ``"closedwon"``,
    ``"Closed Won"`` and ``"closed-won"`` are one stage. ``extra`` (the user's ``outcome_values``)
    wins over the preset's lists. Labels no list names are ``won``/``lost`` when they say so
    (``"Closed Won"``, ``"Lost"``); the rest are open stages, or unknown when ``closed_list`` says
    the preset's lists name every stage.
    """
    table: dict[str, str] = {}
    for outcome, names in (("open", open_), ("lost", lost), ("won", won)):
        for nm in names:
            table[_token(nm)] = outcome
    for nm, outcome in (extra or {}).items():
        table[_token(nm)] = str(outcome)
    tok = _norm_token(labels)
    out = tok.map(table)
    guess = pd.Series(None, index=labels.index, dtype=object)
    guess[tok.isin(_WON_TOKENS).to_numpy()] = "won"
    guess[tok.isin(_LOST_TOKENS).to_numpy()] = "lost"
    out = pd.Series(out.to_numpy(dtype=object), index=labels.index, dtype=object)
    out = out.where(out.notna(), guess)
    if not closed_list:
        out = out.where(out.notna(), "open")
    return out.where(labels.notna().to_numpy(), None)


def _token(label: str) -> str:
    return str(_norm_token(pd.Series([label])).iloc[0])


def extra_columns(columns: Iterable[str], used: Iterable[str]) -> dict[str, str]:
    """Unused source columns -> the attribute name each is kept under (reserved names get a suffix)."""
    skip = set(used) | {"_row"}
    out: dict[str, str] = {}
    for c in columns:
        c = str(c)
        if c in skip:
            continue
        out[c] = f"{c} (source)" if c in RESERVED or c.startswith("case:") else c
    return out


def as_utc(value: Any, name: str, *, tz: str = "UTC") -> pd.Timestamp:
    """A date parameter as a UTC timestamp (naive values are read in ``tz``)."""
    try:
        t = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"The {name!r} option must be a date or timestamp. Got {value!r} instead.") from exc
    if pd.isna(t):
        raise ValueError(f"The {name!r} option must be a date or timestamp. Got {value!r} instead.")
    if t.tzinfo is None:
        t = t.tz_localize(tz)
    return t.tz_convert("UTC")


def group_last(codes: np.ndarray, values: pd.Series | np.ndarray, n: int) -> pd.Series:
    """Per group (codes 0..n-1, rows in time order), the last non-missing value."""
    s = pd.Series(np.asarray(values, dtype=object) if not isinstance(values, pd.Series) else values.to_numpy())
    valid = s.notna().to_numpy()
    out = pd.Series([None] * n, dtype=object)
    if valid.any():
        last = pd.Series(s[valid].to_numpy()).groupby(codes[valid]).last()
        out.iloc[last.index.to_numpy()] = last.to_numpy()
    return out


def group_dates(codes: np.ndarray, values: pd.Series, n: int, how: str) -> pd.Series:
    """Per group, the ``min``/``max``/``first``/``last`` non-missing timestamp (NaT when none)."""
    s = pd.Series(values.to_numpy(), dtype=TS_DTYPE)
    agg = s.groupby(codes).agg(how)
    out = pd.Series(pd.NaT, index=range(n), dtype=TS_DTYPE)
    out.iloc[agg.index.to_numpy()] = agg.to_numpy()
    return out


def ensure_frame(df: Any, source: str) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"{source}: expected a table (DataFrame). Got {type(df).__name__} instead.")
    return df.reset_index(drop=True).set_axis([str(c) for c in df.columns], axis=1)


@dataclass(frozen=True)
class SourceRows:
    """A table being read row by row: the frame, its columns by canonical name, the row numbers
    messages give, the skip counter and the options."""

    df: pd.DataFrame
    use: dict[str, str]
    rows: np.ndarray
    sk: Skips
    options: LoadOptions
    source: str

    @classmethod
    def read(
        cls,
        df: pd.DataFrame,
        cols: Mapping[str, str],
        *,
        required: Iterable[str],
        aliases: Mapping[str, Sequence[str]] | None,
        preset: str | None,
        source: str,
        options: LoadOptions | None,
    ) -> SourceRows:
        """The rows of ``df`` (a frame from :func:`ensure_frame`); an absent required column raises.
        ``options=None`` reads with the defaults of :class:`LoadOptions`."""
        options = LoadOptions() if options is None else options
        sk = Skips(source=source, errors=options.errors)
        rows = row_numbers(df)
        use = resolve_columns(df, cols, required=required, aliases=aliases, source=source, preset=preset)
        return cls(df, use, rows, sk, options, source)

    @property
    def decimal(self) -> str | None:
        """The decimal mark of the table's numbers (None: the mark each column's values prove)."""
        return self.options.decimal

    def keep_all(self) -> np.ndarray:
        """A keep mask with every row kept."""
        return np.ones(len(self.df), dtype=bool)

    def text(self, canon: str) -> pd.Series:
        """The stripped text of the column mapped to ``canon``."""
        return text(self.df[self.use[canon]])

    def filled(
        self, canon: str, values: pd.Series, keep: np.ndarray, *, expected: str, fix: str, reason: str
    ) -> np.ndarray:
        """The keep mask, less the kept rows whose ``values`` (read from ``canon``'s column) are empty."""
        column = self.use[canon]
        return keep & self.sk.bad(
            values.isna().to_numpy() & keep, rows=self.rows, column=column, values=self.df[column],
            expected=expected, fix=fix, reason=reason,
        )

    def dates(
        self, column: str, keep: np.ndarray, *, required: bool = False, expected: str = "a date such as 2024-03-31"
    ) -> tuple[pd.Series, np.ndarray]:
        """One column of dates, read with the options' time zone and date format."""
        o = self.options
        return parse_date_column(
            self.df, column, sk=self.sk, rows=self.rows, keep=keep, tz=o.tz, dayfirst=o.dayfirst,
            date_format=o.date_format, required=required, expected=expected,
        )

    def amounts(self, keep: np.ndarray) -> tuple[pd.Series | None, np.ndarray]:
        """The ``amount`` column as numbers (None when it is not mapped)."""
        if "amount" not in self.use:
            return None, keep
        return parse_number_column(self.df, self.use["amount"], sk=self.sk, rows=self.rows, keep=keep, decimal=self.decimal)

    def build(
        self,
        events: pd.DataFrame,
        cases: pd.DataFrame,
        notes: Iterable[str],
        *,
        kind: str | None = None,
        outcome_values: Mapping[str, str] | None = None,
    ) -> History:
        """The history of these rows: events and cases validated by the builder, every row counted."""
        o = self.options
        return build_history(
            events, cases, source=self.source, kind=kind or o.kind, tz=o.tz, errors=o.errors,
            outcome_values=outcome_values, milestones=o.milestones, dayfirst=o.dayfirst,
            date_format=o.date_format, decimal=self.decimal, rows_read=len(self.df), skips=self.sk, notes=notes,
        )


@dataclass(frozen=True)
class CaseRows:
    """The kept rows of a table grouped by case: ``k`` their positions in the table, ``codes`` the
    case of each (0 to ``len(ids) - 1``), ``ids`` the cases' ids."""

    k: np.ndarray
    codes: np.ndarray
    ids: np.ndarray

    @property
    def m(self) -> int:
        """How many cases."""
        return len(self.ids)

    def last(self, values: pd.Series | np.ndarray) -> np.ndarray:
        """Per case, the last value given in its rows (``values`` has one per row of the table)."""
        kept = values.iloc[self.k] if isinstance(values, pd.Series) else values[self.k]
        return group_last(self.codes, kept, self.m).to_numpy()

    def case_values(self, t: SourceRows, amount: pd.Series | None, *, owner_of_rows: bool = False) -> dict[str, Any]:
        """Per case, the last amount, owner (``case_owner``) and segment given; with ``owner_of_rows``
        and no ``case_owner``, the first ``owner`` of its rows. Where a case's rows give different
        values, the summary notes it (the last in time order is kept)."""
        out: dict[str, Any] = {}
        if amount is not None:
            self.note_changes(t, "amount", amount.iloc[self.k])
            out["amount"] = pd.to_numeric(group_last(self.codes, amount.iloc[self.k], self.m), errors="coerce").to_numpy()
        if "case_owner" in t.use:
            self.note_changes(t, "case_owner", t.text("case_owner").to_numpy()[self.k])
            out["owner"] = self.last(t.text("case_owner").to_numpy())
        elif owner_of_rows and "owner" in t.use:
            owners = t.text("owner").to_numpy()[self.k]
            valid = pd.notna(owners)
            firsts = pd.Series(owners[valid]).groupby(self.codes[valid]).first()
            own = pd.Series([None] * self.m, dtype=object)
            own.iloc[firsts.index.to_numpy()] = firsts.to_numpy()
            out["owner"] = own.to_numpy()
        if "segment" in t.use:
            self.note_changes(t, "segment", t.text("segment").to_numpy()[self.k])
            out["segment"] = self.last(t.text("segment").to_numpy())
        return out

    def note_changes(self, t: SourceRows, canon: str, kept: pd.Series | np.ndarray) -> None:
        """Note (in ``t``'s report) the cases whose kept rows (``kept``, in time order) give
        ``canon`` different values: how many, and one with its earlier and its last value."""
        s = pd.Series(np.asarray(kept, dtype=object))
        valid = s.notna().to_numpy()
        if not valid.any():
            return
        f = pd.DataFrame({"case": self.codes[valid], "value": s[valid].to_numpy()})
        distinct = f.groupby("case")["value"].nunique()
        changed = distinct.index[distinct.to_numpy() > 1]
        if not len(changed):
            return
        values = f.loc[f["case"].to_numpy() == changed[0], "value"]
        last = values.iloc[-1]
        earlier = values[values != last].iloc[-1]
        shown = [repr(v) if isinstance(v, str) else f"{v:g}" if isinstance(v, float) else str(v) for v in (earlier, last)]
        n = len(changed)
        t.sk.notes.append(
            f"{t.use[canon]}: {n:,} case{'s' if n > 1 else ''} with different values on their rows "
            f"(e.g. {str(self.ids[changed[0]])!r}: {shown[0]}, later {shown[1]}): each case's last row in "
            "time order kept (an export updates a case over time)"
        )


def milestone_events(
    case_id: Sequence[Any] | np.ndarray,
    name: Sequence[Any] | np.ndarray,
    ts: pd.Series | np.ndarray,
    rows: np.ndarray,
    options: LoadOptions,
) -> pd.DataFrame:
    """Events in canonical columns; milestones unless the options say which names are."""
    ev = pd.DataFrame(
        {
            "case_id": np.asarray(case_id, dtype=object),
            "name": np.asarray(name, dtype=object),
            "timestamp": pd.Series(ts, dtype=TS_DTYPE).to_numpy(),
            "_row": np.asarray(rows, dtype=np.int64),
        }
    )
    if options.milestones is None:
        ev["type"] = "milestone"
    return ev
