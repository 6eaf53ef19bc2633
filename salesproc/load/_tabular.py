"""Helpers shared by the loaders of row tables that are not event logs (CRM exports, milestone tables).

Each helper validates one kind of cell the way :mod:`salesproc.load._build` does, but names the source's
own column (``'deal_stage'``, not ``'stage'``) so an error points at the cell the user sees.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from salesproc.errors import InputError, MissingColumnError, _closest
from salesproc.history._history import TS_DTYPE
from salesproc.load._build import (
    Skips,
    _clean_ids,
    _norm_token,
    check_dates,
    parse_amounts,
    parse_timestamps,
)

__all__ = [
    "as_utc",
    "classify_stages",
    "ensure_frame",
    "extra_columns",
    "group_dates",
    "group_last",
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
        date_format=date_format, expected=expected,
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
    df: pd.DataFrame, column: str, *, sk: Skips, rows: np.ndarray, keep: np.ndarray, decimal: str
) -> tuple[pd.Series, np.ndarray]:
    """Parse one column of amounts; unreadable non-empty cells are bad rows."""
    raw = df[column].reset_index(drop=True)
    parsed = parse_amounts(raw, decimal=decimal)
    unread = parsed.isna().to_numpy() & text(raw).notna().to_numpy()
    keep = keep & sk.bad(
        unread & keep, rows=rows, column=column, values=raw, expected="a number such as 12500.50",
        fix="correct the cell; for European number formats pass decimal=','.",
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
