"""Turn a loader's canonical-named raw frames into a validated :class:`~salesproc.history.History`.

Every loader ends here, so validation happens once, the same way, for every source. All work is
vectorised: no Python loop runs over rows or cases.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from salesproc._arrow import categorical_from_codes
from salesproc.errors import InvalidValueError, ParameterError
from salesproc.history._finalize import (
    _STATUS_CODE_OF_OUTCOME,
    _STATUS_DTYPE,
    _case_time_order,
    _categorical,
    _has_text_categories,
    _in_case_time_order,
    _is_plain_str,
    i8,
)
from salesproc.history._history import (
    EVENT_COLUMNS,
    EVENT_TYPES,
    KINDS,
    OUTCOMES,
    OUTCOMES_BY_KIND,
    TS_DTYPE,
    History,
    LoadReport,
    finalize,
)
from salesproc.load._numbers import NumberFormat, parse_numbers
from salesproc.load._options import Errors, MilestoneRule
from salesproc.load._outcome_names import outcome_events_note, recognised_outcome_events

# case-level columns a flat event log may carry on every row
CASE_LEVEL = ["outcome", "kind", "created", "closed", "amount", "segment", "target_date", "case_owner", "expected_close"]

_OUTCOME_SYNONYMS = {
    "won": "won", "win": "won", "closed_won": "won", "closedwon": "won", "success": "won",
    "lost": "lost", "loss": "lost", "closed_lost": "lost", "closedlost": "lost",
    "on_time": "on_time", "ontime": "on_time", "in_time": "on_time",
    "late": "late", "delayed": "late", "overdue": "late",
    "failed": "failed", "fail": "failed", "failure": "failed", "cancelled": "failed", "canceled": "failed",
    "open": "open", "": "open", "in_progress": "open", "active": "open", "pending": "open",
}
_TYPE_SYNONYMS = {
    "milestone": "milestone", "stage": "milestone", "phase": "milestone", "gate": "milestone",
    "activity": "activity", "task": "activity", "action": "activity", "event": "activity",
}


Text = str | Callable[[int, object], str]


@dataclass
class Skips:
    """Collects what is skipped (lenient mode) or raises on the first problem (strict mode).

    ``names`` maps canonical column names to the source's own, so messages name the column the
    user sees in the file.
    """

    source: str
    errors: Errors = "raise"
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)

    def count(self, reason: str, n: int) -> None:
        if n:
            self.counts[reason] = self.counts.get(reason, 0) + int(n)

    def bad(
        self,
        mask: np.ndarray,
        *,
        rows: np.ndarray,
        column: str,
        values: pd.Series | np.ndarray,
        expected: Text,
        fix: Text,
        reason: str,
        weights: np.ndarray | None = None,
    ) -> np.ndarray:
        """Handle rows flagged bad: raise in strict mode, else count them; returns the keep mask.

        ``expected`` and ``fix`` may be callables of (position, value) of the first bad row, for
        messages that quote the value. ``weights`` counts source rows per flagged item (a case
        stands for its case-table row and its events).
        """
        mask = np.asarray(mask, dtype=bool)
        n = int(mask.sum())
        if n == 0:
            return ~mask
        if self.errors == "raise":
            i = int(np.flatnonzero(mask)[0])
            val = values.iloc[i] if isinstance(values, pd.Series) else values[i]
            if val is None or (isinstance(val, float) and np.isnan(val)) or val is pd.NA or val is pd.NaT:
                val = ""
            raise InvalidValueError(
                source=self.source,
                row=int(rows[i]),
                column=self.names.get(column, column),
                value=val,
                expected=expected(i, val) if callable(expected) else expected,
                fix=(fix(i, val) if callable(fix) else fix)
                + " Or pass errors='skip' to skip such rows (they are counted in summary()).",
                count=n,
            )
        self.count(reason, n if weights is None else int(np.asarray(weights)[mask].sum()))
        return ~mask


def _utc(ns: np.ndarray) -> pd.DatetimeIndex:
    """Nanoseconds since the epoch (int64 min for missing) as UTC timestamps, like ``pd.to_datetime(ns, utc=True)``."""
    return pd.DatetimeIndex(np.asarray(ns, dtype=np.int64).view("M8[ns]")).tz_localize("UTC")


#: The dates a history can hold (those of ``datetime64[ns]``), as messages give them.
DATE_RANGE = ("1677-09-21", "2262-04-11")
_NAT = np.iinfo(np.int64).min
_PER_NS = {"s": 10**9, "ms": 10**6, "us": 10**3}

#: ``date_format`` values for dates written as numbers: (unit, origin, in local time).
NUMBER_DATE_FORMATS: dict[str, tuple[Any, str, bool]] = {
    "epoch_s": ("s", "unix", False),
    "epoch_ms": ("ms", "unix", False),
    "excel": ("D", "1899-12-30", True),
}


def _as_ns(ts: pd.Series) -> pd.Series:
    """UTC timestamps of any unit as ``datetime64[ns, UTC]``; those outside its range (such as
    9999-12-31 written for "never", or 0001-01-01) become NaT, for the caller to report.

    >>> s = pd.to_datetime(pd.Series(["2024-01-02", "9999-12-31"]), utc=True, format="ISO8601")
    >>> _as_ns(s).tolist()
    [Timestamp('2024-01-02 00:00:00+0000', tz='UTC'), NaT]
    """
    if ts.dtype == TS_DTYPE:
        return ts
    unit = ts.dt.unit
    if unit not in _PER_NS:
        return ts.astype(TS_DTYPE)
    try:  # the usual case, every date within range: one conversion in C
        return ts.astype(TS_DTYPE)
    except (OverflowError, pd.errors.OutOfBoundsDatetime):
        pass
    per = _PER_NS[unit]
    v = ts.array.asi8
    top = np.iinfo(np.int64).max // per
    outside = (v < -top) | (v > top)  # (NaT too: it stays NaT)
    ns = np.where(outside, _NAT, np.where(outside, 0, v) * per)
    return pd.Series(_utc(ns), index=ts.index)


def _dates_from_numbers(values: pd.Series, date_format: str, tz: str) -> pd.Series:
    """Numbers read as ``date_format`` says (:data:`NUMBER_DATE_FORMATS`): Unix time is UTC, Excel
    serial days are local time in ``tz``; anything else becomes NaT."""
    unit, origin, local = NUMBER_DATE_FORMATS[date_format]
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        num = values.astype("float64")
    else:
        num = pd.to_numeric(values.astype("str").where(values.notna(), None).str.strip(), errors="coerce")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = _as_ns(pd.to_datetime(num, unit=unit, origin=origin, utc=True, errors="coerce"))
    if local and tz != "UTC":
        out = out.dt.tz_localize(None).dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
    return out.astype(TS_DTYPE)


def parse_timestamps(
    values: pd.Series,
    *,
    tz: str = "UTC",
    dayfirst: bool = False,
    date_format: str | None = None,
) -> pd.Series:
    """Parse to ``datetime64[ns, UTC]``; unparseable values become NaT (the caller reports them).

    Values with an offset are converted to UTC; values without one are read in ``tz``. Dates
    outside 1677-09-21 .. 2262-04-11 (the range of ``datetime64[ns]``) and local times that do not
    exist or happen twice in ``tz`` become NaT too (:func:`check_dates` says why). Numbers are
    dates only with a ``date_format`` of :data:`NUMBER_DATE_FORMATS`: ``"epoch_s"`` and
    ``"epoch_ms"`` (Unix time, UTC) or ``"excel"`` (Excel serial days, local time in ``tz``).

    >>> parse_timestamps(pd.Series(["1704067200", 1704153600]), date_format="epoch_s").astype(str).tolist()
    ['2024-01-01 00:00:00+00:00', '2024-01-02 00:00:00+00:00']
    >>> parse_timestamps(pd.Series([45292.5]), date_format="excel").astype(str).tolist()
    ['2024-01-01 12:00:00+00:00']
    """
    s = values
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return _as_ns(s.dt.tz_convert("UTC"))
    if pd.api.types.is_datetime64_dtype(s.dtype):
        out = s.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        return _as_ns(out.dt.tz_convert("UTC"))
    if date_format in NUMBER_DATE_FORMATS:
        return _dates_from_numbers(s, date_format, tz)
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        # Excel serial dates are handled by the Excel reader; plain numbers are not dates
        return pd.Series(pd.NaT, index=s.index, dtype=TS_DTYPE)
    txt = s.astype("str")
    txt = txt.where(s.notna(), None)
    txt = txt.str.strip()
    txt = txt.where(txt != "", None)
    fmt = date_format or "ISO8601"
    out = _as_ns(pd.to_datetime(txt, utc=True, format=fmt, errors="coerce"))
    miss = out.isna() & txt.notna()
    if miss.any() and date_format is None:
        # a second, slower pass over what ISO 8601 could not read (e.g. 31.12.2017, 12/31/2017);
        # year-first text is never read day-first, and a date that only makes sense in the other
        # day/month order than ``dayfirst`` says stays unread (the caller says which way to turn)
        rest_txt = txt[miss]
        yearfirst = rest_txt.str.match(r"\d{4}[-/.]").to_numpy(dtype=bool)
        rest = pd.Series(pd.NaT, index=rest_txt.index, dtype=TS_DTYPE)
        for part, first in ((yearfirst, False), (~yearfirst, dayfirst)):
            if part.any():
                rest[part] = _parse_mixed(rest_txt[part], dayfirst=first)
        rest[date_order_conflicts(rest_txt, dayfirst=dayfirst)] = pd.NaT
        out = out.copy()
        out[miss] = rest
    if tz != "UTC":
        naive = txt.notna() & ~txt.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True, na=False)
        if naive.any():
            local = out[naive].dt.tz_localize(None).dt.tz_localize(
                tz, ambiguous="NaT", nonexistent="NaT"
            )
            out = out.copy()
            out[naive] = local.dt.tz_convert("UTC")
    return out.astype(TS_DTYPE)


def _parse_mixed(txt: pd.Series, *, dayfirst: bool) -> pd.Series:
    """``pd.to_datetime(txt, utc=True, format="mixed", dayfirst=dayfirst, errors="coerce")``, without
    its value-by-value parse for the values written plainly in the first one's layout (in an
    export, nearly all of them): those are read with that layout at once, the others as before.

    >>> txt = pd.Series(["31.12.2023 10:00:00", "01.02.2024 08:30:00", "2 March 2024", "nonsense"])
    >>> _parse_mixed(txt, dayfirst=True).dt.strftime("%Y-%m-%d %H:%M").tolist()
    ['2023-12-31 10:00', '2024-02-01 08:30', '2024-03-02 00:00', nan]
    """
    layout = _numeric_layout(txt.iloc[0], dayfirst=dayfirst) if len(txt) else None
    if layout is None:
        return _as_ns(pd.to_datetime(txt, utc=True, format="mixed", dayfirst=dayfirst, errors="coerce"))
    fmt, pattern = layout
    plain = txt.str.fullmatch(pattern).to_numpy(dtype=bool, na_value=False)
    if plain.all():
        out = _as_ns(pd.to_datetime(txt, utc=True, format=fmt, errors="coerce"))
    else:
        out = pd.Series(pd.NaT, index=txt.index, dtype=TS_DTYPE)
        out[plain] = _as_ns(pd.to_datetime(txt[plain], utc=True, format=fmt, errors="coerce"))
    rest = ~plain | out.isna().to_numpy()  # other layouts, and dates that do not exist (31.04.)
    if rest.any():
        out[rest] = _as_ns(pd.to_datetime(txt[rest], utc=True, format="mixed", dayfirst=dayfirst, errors="coerce"))
    return out


# a numeric field as the value-by-value parse reads it (leading zeros optional, in range)
_FIELD_PATTERN = {
    "%d": r"(?:0?[1-9]|[12]\d|3[01])",
    "%m": r"(?:0?[1-9]|1[0-2])",
    "%Y": r"(?:1[7-9]\d\d|2[01]\d\d|22[0-5]\d)",  # 1700-2259: within the range of datetime64[ns]
    "%H": r"(?:[01]?\d|2[0-3])",
    "%M": r"[0-5]?\d",
    "%S": r"[0-5]?\d",
}
_DATE_ORDERS = (["%Y", "%m", "%d"], ["%d", "%m", "%Y"], ["%m", "%d", "%Y"])


def _numeric_layout(value: str, *, dayfirst: bool) -> tuple[str, str] | None:
    """The strftime layout of a date written in numbers with a four-digit year (``31.12.2023 10:00``
    -> ``%d.%m.%Y %H:%M``), as pandas guesses it, and a regular expression for the values written
    plainly in it; None unless the layout reads day and month in the order ``dayfirst`` says, so
    that every such value is read as the value-by-value parse reads it.
    """
    from pandas.tseries.api import guess_datetime_format

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (it warns when the value reads only the other way round)
        fmt = guess_datetime_format(value, dayfirst=dayfirst)
    if fmt is None:
        return None
    parts = re.split(r"(%.)", fmt)  # text, field, text, field, ..., text
    fields, between = parts[1::2], parts[0::2]
    if (
        fields[:3] not in _DATE_ORDERS
        or fields[3:] != ["%H", "%M", "%S"][: len(fields) - 3]  # then hours, minutes, seconds
        or any(ch not in " .-/:T" for text in between for ch in text)  # only separators between them
        or (fields.index("%d") < fields.index("%m")) != dayfirst
    ):
        return None
    pattern = "".join(
        _FIELD_PATTERN[p] if i % 2 else re.sub(r"(\\ )+", " +", re.escape(p)) for i, p in enumerate(parts)
    )
    return fmt, pattern


# r"^\s*(\d{1,2})[./\-](\d{1,2})[./\-]\d{2,4}(?!\d)" in pyarrow's (RE2) syntax, ``\s`` and ``\d`` as Python
# reads them in text (any Unicode space or digit); the two numbers only in ASCII digits, as only
# those are read as numbers
_DAY_MONTH = (
    r"^[\t\n\v\f\r\x{1c}-\x{1f} \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]*"
    r"(?P<first>[0-9]{1,2})[./\-](?P<second>[0-9]{1,2})[./\-]\p{Nd}{2,4}(?:\P{Nd}|$)"
)


def date_order_conflicts(values: pd.Series, *, dayfirst: bool) -> np.ndarray:
    """Dates written ``d.m.y`` / ``m/d/y`` that only make sense in the other order than ``dayfirst``.

    ``31.12.2023`` is a conflict when ``dayfirst=False`` (there is no month 31); ``12/31/2023`` is one
    when ``dayfirst=True``. Reading such values the other way round would silently mix two orders in
    one column, so they are reported instead.

    Examples
    --------
    >>> import pandas as pd
    >>> date_order_conflicts(pd.Series(["31.12.2023", "01.12.2023", "2023-12-31"]), dayfirst=False).tolist()
    [True, False, False]
    >>> date_order_conflicts(pd.Series(["12/31/2023", "31/12/2023"]), dayfirst=True).tolist()
    [True, False]
    """
    if not (pd.api.types.is_object_dtype(values.dtype) or pd.api.types.is_string_dtype(values.dtype)):
        return np.zeros(len(values), dtype=bool)
    import pyarrow as pa
    import pyarrow.compute as pc

    txt = values.astype("str").where(values.notna(), "")
    found = pc.extract_regex(pa.array(txt.array), _DAY_MONTH)  # in C++, not row by row in Python
    # (missing where the text is not such a date: NaN, which compares False)
    first = pc.cast(pc.struct_field(found, "first"), pa.int8()).to_numpy(zero_copy_only=False)
    second = pc.cast(pc.struct_field(found, "second"), pa.int8()).to_numpy(zero_copy_only=False)
    hit = (second > 12) & (first <= 12) if dayfirst else (first > 12) & (second <= 12)
    return np.asarray(hit, dtype=bool)


def check_dates(
    sk: Skips,
    parsed: pd.Series,
    raw: pd.Series,
    *,
    candidates: np.ndarray,
    rows: np.ndarray,
    column: str,
    dayfirst: bool,
    date_format: str | None,
    expected: str,
    fix: str,
    reason: str,
    weights: np.ndarray | None = None,
    tz: str = "UTC",
) -> np.ndarray:
    """Report unreadable dates among ``candidates``. Those with a known cause get their own message:
    a wrong day/month order, a date outside 1677-09-21 .. 2262-04-11, a local time that does not
    exist or happens twice in ``tz`` (a daylight-saving change), and numbers that look like Excel
    serial days or Unix time. With ``errors="raise"`` the first such row in the source is reported.
    """
    bad = parsed.isna().to_numpy() & candidates
    keep = np.ones(len(parsed), dtype=bool)
    if not bad.any():
        return keep
    problems: list[_DateProblem] = []
    if date_format is None:
        order = bad & date_order_conflicts(raw, dayfirst=dayfirst)
        problems.append(_order_problem(order, raw, dayfirst=dayfirst))
        bad &= ~order
    if bad.any():
        problems += _date_problems(raw, bad, tz=tz, dayfirst=dayfirst, date_format=date_format, reason=reason)
    for p in problems:
        bad &= ~p.mask
    problems.append(_DateProblem(bad, expected, fix, reason, raw))
    if sk.errors == "raise":  # the first bad row first
        problems.sort(key=lambda p: int(np.argmax(p.mask)) if p.mask.any() else len(p.mask))
    for p in problems:
        keep &= sk.bad(
            p.mask, rows=rows, column=column, values=p.shown, expected=p.expected, fix=p.fix, reason=p.reason,
            weights=weights,
        )
    return keep


@dataclass(frozen=True)
class _DateProblem:
    """Bad dates of one cause: which rows, the message's parts, the reason counted when skipped,
    and the values as the message shows them."""

    mask: np.ndarray
    expected: Text
    fix: Text
    reason: str
    shown: pd.Series


def _order_problem(order: np.ndarray, raw: pd.Series, *, dayfirst: bool) -> _DateProblem:
    """Dates that only make sense in the other day/month order than ``dayfirst`` says."""
    if dayfirst:
        def fx(i: int, v: object) -> str:
            return f"{v!r} is written month-first: pass dayfirst=False."

        return _DateProblem(
            order, "a day-first date (dayfirst=True was passed)", fx, "month-first date while dayfirst=True", raw
        )

    def fx_(i: int, v: object) -> str:
        return (
            f"the column holds day-first dates such as {v!r}: pass dayfirst=True, "
            "or give the exact format, e.g. date_format='%d.%m.%Y'."
        )

    return _DateProblem(
        order, "a month-first date (dayfirst=False, the default)", fx_, "day-first date while dayfirst=False", raw
    )


def _wall_clock(raw: pd.Series, *, dayfirst: bool, date_format: str | None) -> pd.Series:
    """The dates as written, read as if in UTC and in whatever unit pandas gives (so 9999-12-31
    is read too); NaT where the text is no date at all."""
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        return raw.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(raw.dtype):
        return raw.dt.tz_localize("UTC")
    none = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[us, UTC]")
    if date_format in NUMBER_DATE_FORMATS or (
        pd.api.types.is_numeric_dtype(raw.dtype) or pd.api.types.is_bool_dtype(raw.dtype)
    ):
        return none
    txt = raw.astype("str").where(raw.notna(), None).str.strip()
    out = pd.to_datetime(txt, utc=True, format=date_format or "ISO8601", errors="coerce")
    miss = out.isna() & txt.notna()
    if date_format is None and miss.any():
        more = pd.to_datetime(txt[miss], utc=True, format="mixed", dayfirst=dayfirst, errors="coerce")
        out = out.astype("datetime64[us, UTC]") if out.dt.unit in ("s", "ms") else out
        out[miss] = more
    return out


# numbers that look like dates written in another way: (low, high, what, date_format, unit, origin)
_DATE_NUMBERS = (
    (10_000, 100_000, "an Excel serial day number", "excel", "D", "1899-12-30"),
    (1e8, 1e10, "Unix time in seconds", "epoch_s", "s", "unix"),
    (1e11, 1e13, "Unix time in milliseconds", "epoch_ms", "ms", "unix"),
)


def _date_problems(
    raw: pd.Series, bad: np.ndarray, *, tz: str, dayfirst: bool, date_format: str | None, reason: str
) -> list[_DateProblem]:
    """The ``bad`` dates whose cause is known: out of range, a daylight-saving gap or overlap, or
    numbers that look like Excel serial days or Unix time."""
    idx = np.flatnonzero(bad)
    sub = raw.iloc[idx].reset_index(drop=True)
    shown = pd.Series(np.full(len(raw), None, dtype=object), index=raw.index)
    shown.iloc[idx] = _as_written(sub)
    wall = _wall_clock(sub, dayfirst=dayfirst, date_format=date_format)
    in_range = _as_ns(wall)
    out: list[_DateProblem] = []

    def add(m: np.ndarray, expected: Text, fix: Text, why: str) -> None:
        if m.any():
            mask = np.zeros(len(raw), dtype=bool)
            mask[idx[m]] = True
            out.append(_DateProblem(mask, expected, fix, f"{reason}: {why}", shown))

    lo, hi = DATE_RANGE
    add(
        (wall.notna() & in_range.isna()).to_numpy(),
        f"a date between {lo} and {hi} (the dates a history can hold)",
        "correct the date; if it stands for no date (such as 9999-12-31 for 'never'), leave the cell empty.",
        f"outside {lo}..{hi}",
    )
    if tz != "UTC":
        out += _dst_problems(in_range, idx, len(raw), tz=tz, shown=shown, reason=reason)
    num = _numbers(sub).to_numpy()
    for low, high, what, fmt, unit, origin in _DATE_NUMBERS:
        m = (num >= low) & (num < high)
        if not m.any():
            continue

        def expected(i: int, v: object, what: str = what, unit: Any = unit, origin: str = origin) -> str:
            when = pd.to_datetime(float(str(v).strip()), unit=unit, origin=origin)
            return f"a date; {str(v).strip()} looks like {what} ({when:%Y-%m-%d %H:%M:%S}{'' if unit == 'D' else ' UTC'})"

        if fmt == "excel":
            fix = (
                "pass date_format='excel' to read the numbers as Excel serial days (local time in tz), "
                "or format the column as dates in Excel before exporting."
            )
        else:
            fix = (
                f"pass date_format={fmt!r} to read the numbers as {what}, or convert the column "
                f"before loading: pd.to_datetime(df[<column>], unit={unit!r}, utc=True)."
            )
        add(m, expected, fix, what.removeprefix("an "))
    return out


def _as_written(sub: pd.Series) -> np.ndarray:
    """The values for a message: dates and times as text (``'2024-10-27 02:30:00'``), not reprs."""
    if _is_datetime(sub.dtype):
        return sub.astype("str").to_numpy(dtype=object)
    out = sub.to_numpy(dtype=object, copy=True)
    if sub.dtype == object:
        import datetime as dt

        when = np.fromiter((isinstance(v, (dt.date, np.datetime64)) for v in out), dtype=bool, count=len(out))
        out[when] = [str(v) for v in out[when]]
    return out


def _numbers(sub: pd.Series) -> pd.Series:
    """The values as numbers (NaN where they are not)."""
    if pd.api.types.is_bool_dtype(sub.dtype) or _is_datetime(sub.dtype):
        return pd.Series(np.nan, index=sub.index)
    if pd.api.types.is_numeric_dtype(sub.dtype):
        return sub.astype("float64")
    return pd.to_numeric(sub.astype("str").str.strip(), errors="coerce").astype("float64")


def _dst_problems(
    wall: pd.Series, idx: np.ndarray, n: int, *, tz: str, shown: pd.Series, reason: str
) -> list[_DateProblem]:
    """Local times (read as ``wall``, UTC standing for the local clock) that ``tz`` skips when the
    clocks go forward, or has twice when they go back."""
    local = wall.dt.tz_localize(None)
    given = local.notna().to_numpy()
    twice = given & local.dt.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward").isna().to_numpy()
    skipped = given & ~twice & local.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT").isna().to_numpy()
    at = pd.Series(local.to_numpy(), index=pd.RangeIndex(len(local)))
    where = np.full(n, -1, dtype=np.int64)
    where[idx] = np.arange(len(idx))
    out = []
    if twice.any():
        def fx_twice(i: int, v: object) -> str:
            t = at.iloc[where[i]]
            early = t.tz_localize(tz, ambiguous=True).isoformat()
            late = t.tz_localize(tz, ambiguous=False).isoformat()
            return (
                f"write the time with its UTC offset ({early!r} for the first, {late!r} for the second), "
                "or pass tz='UTC' if the file's times are UTC."
            )

        mask = np.zeros(n, dtype=bool)
        mask[idx[twice]] = True
        out.append(_DateProblem(
            mask, f"a local time that happens once in {tz} (the clocks go back that night: it happens twice)",
            fx_twice, f"{reason}: local time repeated by a daylight-saving change", shown,
        ))
    if skipped.any():
        def fx_skipped(i: int, v: object) -> str:
            t = at.iloc[where[i]]
            after = t.tz_localize(tz, nonexistent="shift_forward").isoformat()
            return (
                f"correct the time (the clocks jump to {after}), write it with its UTC offset, "
                "or pass tz='UTC' if the file's times are UTC."
            )

        mask = np.zeros(n, dtype=bool)
        mask[idx[skipped]] = True
        out.append(_DateProblem(
            mask, f"a local time that exists in {tz} (the clocks go forward that night: it is skipped)",
            fx_skipped, f"{reason}: local time skipped by a daylight-saving change", shown,
        ))
    return out


def check_reading_parameters(*, tz: str = "UTC", decimal: str | None = ".", date_format: str | None = None) -> None:
    """Raise :class:`~salesproc.errors.ParameterError` for a time zone, decimal mark or date format
    that cannot be used, before any row is read."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ParameterError(
            "The 'tz' parameter must be an IANA time zone name such as 'UTC' or 'Europe/Amsterdam'. "
            f"Got {tz!r} instead."
        ) from None
    if decimal is not None and decimal not in (".", ","):
        raise ParameterError(f"The 'decimal' parameter must be '.' or ','. Got {decimal!r} instead.")
    if date_format is not None and date_format not in NUMBER_DATE_FORMATS:
        try:
            pd.to_datetime(pd.Series(["2024-01-31"]), format=date_format, errors="coerce")
        except (ValueError, TypeError) as exc:
            raise ParameterError(
                "The 'date_format' parameter must be a strftime format such as '%d.%m.%Y', or 'epoch_s', "
                f"'epoch_ms' or 'excel' for dates written as numbers. Got {date_format!r} instead ({exc})."
            ) from None


def parse_amounts(values: pd.Series, *, decimal: str | None = ".") -> pd.Series:
    """Numbers, also from European text such as ``1.234,50`` when ``decimal=','``; thousands
    separators only where they group digits by three (``decimal=None`` decides the mark from the
    values, see :func:`salesproc.load._numbers.parse_numbers`)."""
    return parse_numbers(values, decimal=decimal)[0]


def milestone_matcher(rule: MilestoneRule) -> Callable[[pd.Series], np.ndarray] | None:
    """A vectorised test for "is this event name a milestone?" from a list, prefix, regex or callable.

    A string is a regular expression matched at the start of the name (so a plain prefix works);
    an iterable of strings is an exact list; a callable is applied to each distinct name.
    """
    if rule is None:
        return None
    if isinstance(rule, re.Pattern):
        pat = rule
        return lambda names: names.astype("str").str.match(pat).to_numpy(dtype=bool)
    if isinstance(rule, str):
        try:
            pat = re.compile(rule)
        except re.error as exc:
            raise ParameterError(
                f"The 'milestones' parameter must be a regular expression, a list of names or a callable. "
                f"Got {rule!r} instead, which is not a valid regular expression ({exc})."
            ) from None
        return lambda names: names.astype("str").str.match(pat).to_numpy(dtype=bool)
    if callable(rule):
        fn = rule

        def by_call(names: pd.Series) -> np.ndarray:
            cat = names.astype("category")
            hits = np.array([bool(fn(str(c))) for c in cat.cat.categories], dtype=bool)
            codes = cat.cat.codes.to_numpy()
            return np.where(codes >= 0, hits[np.maximum(codes, 0)] if len(hits) else False, False)

        return by_call
    if not isinstance(rule, Iterable):
        raise ParameterError(
            "The 'milestones' parameter must be a regular expression, a list of names or a callable. "
            f"Got {type(rule).__name__} instead."
        )
    wanted = {str(x) for x in rule}
    return lambda names: names.astype("str").isin(wanted).to_numpy(dtype=bool)


def _norm_token(s: pd.Series) -> pd.Series:
    """Trimmed, lower-case, ``_``-joined text ("" for missing), worked out once per distinct value."""
    txt = s.astype("str").where(s.notna(), "")
    if len(txt) <= 64:
        return _norm_text(txt)
    codes, uniq = pd.factorize(txt)
    norm = _norm_text(pd.Series(uniq, dtype="str"))
    return pd.Series(norm.array.take(codes), index=txt.index, name=txt.name)


Factorized = tuple[np.ndarray, pd.Index]


def _factorize_text(columns: Mapping[str, pd.Series], *, ordered: Iterable[str] = ()) -> dict[str, Factorized]:
    """``pd.factorize`` of each plain-text column; long ones side by side in threads (pyarrow lets
    go of the GIL), which is most of the time a big file takes to load.

    A text categorical (a column read dictionary-encoded) is already factorized: its codes and
    categories are used as they are, except that for the columns in ``ordered`` the categories
    are put in order of first appearance and unused ones dropped (as ``pd.factorize`` would).
    """
    ordered = set(ordered)
    out: dict[str, Factorized] = {}
    for k, s in columns.items():
        if _has_text_categories(s):
            if k in ordered:
                out[k] = _factorize_categorical(s)
            else:
                out[k] = (np.asarray(s.cat.codes), _str_index(s.cat.categories))
    todo = {k: s for k, s in columns.items() if _is_plain_str(s.dtype)}
    if len(todo) > 1 and sum(len(s) for s in todo.values()) >= 300_000:
        with ThreadPoolExecutor(max_workers=len(todo)) as pool:
            return {**out, **dict(zip(todo, pool.map(pd.factorize, todo.values())))}
    return {**out, **{k: pd.factorize(s) for k, s in todo.items()}}


def _factorize_categorical(s: pd.Series) -> Factorized:
    """``pd.factorize`` of a text categorical from its codes: the categories in use, in order of
    first appearance (as for plain text), and each row's code into them (-1: missing).

    A column read dictionary-encoded (Parquet, or a CSV read so) is already factorized, up to
    unused categories and their order; this costs a few passes over small integers instead of
    hashing every string. A file grouped by case, read so, already has its codes in order.
    """
    cat = s.array
    codes = np.asarray(cat.codes)  # type: ignore[attr-defined]
    n_cat = len(cat.categories)  # type: ignore[attr-defined]
    if len(codes) and codes[0] == 0 and codes.min() >= 0:
        # in order of first appearance, all used, iff each code is at most one more than every
        # code before it (a Parquet dictionary, or a CSV read so, is built in that order)
        reach = np.maximum.accumulate(codes)
        if reach[-1] == n_cat - 1 and (len(codes) == 1 or np.diff(reach).max() <= 1):
            return codes, _str_index(cat.categories)  # type: ignore[attr-defined]
    first = np.full(n_cat + 1, len(codes), dtype=np.int64)  # slot n_cat: missing (-1)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    used = np.flatnonzero(first[:n_cat] < len(codes))
    order = used[np.argsort(first[used], kind="stable")]
    lut = np.full(n_cat + 1, -1, dtype=np.int64)
    lut[order] = np.arange(len(order))
    uniq = pd.Index(cat.categories[order], dtype="str")  # type: ignore[attr-defined]
    return lut[codes], uniq


def _norm_codes(s: pd.Series, pre: Factorized | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``_norm_token`` as codes into its distinct results (which may repeat: ``Task`` and ``task``).

    ``pre`` is ``pd.factorize(s)`` when already done."""
    if pre is not None or _is_plain_str(s.dtype):  # missing values (code -1) read as ""
        codes, uniq = pre if pre is not None else pd.factorize(s)
        norm = _norm_text(pd.Series([*uniq.tolist(), ""], dtype="str")).to_numpy(dtype=object)
        return codes, norm  # code -1 picks the last entry, ""
    codes, uniq = pd.factorize(s.astype("str").where(s.notna(), ""))
    return codes, _norm_text(pd.Series(uniq, dtype="str")).to_numpy(dtype=object)


def _norm_text(txt: pd.Series) -> pd.Series:
    return txt.str.strip().str.lower().str.replace(r"[\s\-]+", "_", regex=True)


def _is_datetime(dtype: Any) -> bool:
    return isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype)




def normalize_outcomes(
    raw: pd.Series,
    kinds: pd.Series,
    *,
    outcome_values: Mapping[str, str] | None,
    skips: Skips,
    rows: np.ndarray,
    weights: np.ndarray | None = None,
) -> tuple[pd.Series, np.ndarray]:
    """Map raw outcome labels to canonical ones; returns (outcome, keep-mask)."""
    out, label_codes, labels = _outcome_labels(raw, outcome_values)
    kind_cat = pd.Categorical(kinds, categories=KINDS) if not isinstance(kinds.dtype, pd.CategoricalDtype) else kinds.array
    kind_cat = kind_cat.set_categories(KINDS) if list(kind_cat.categories) != KINDS else kind_cat
    # allowed[kind code, label code]; the last row is an unknown kind (code -1): nothing allowed
    allowed = np.zeros((len(KINDS) + 1, len(labels)), dtype=bool)
    for i, kind in enumerate(KINDS):
        allowed[i] = np.isin(labels, OUTCOMES_BY_KIND[kind])
    bad = ~allowed[np.asarray(kind_cat.codes), label_codes]
    return out, _report_outcomes(bad, raw, kind_cat, skips=skips, rows=rows, weights=weights)


def _outcome_labels(
    raw: pd.Series, outcome_values: Mapping[str, str] | None
) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Canonical outcome per row, and as codes into the distinct results.

    The label depends only on the value's text (and the column being boolean), so it is worked
    out once per distinct text, on the first row that has it.
    """
    if _has_text_categories(raw):
        cat_codes = np.asarray(raw.cat.codes).astype(np.int64)
        codes = np.where(cat_codes < 0, len(raw.cat.categories), cat_codes)  # missing: its own code
    else:
        txt = raw.astype("str").where(raw.notna(), None)
        codes, _ = pd.factorize(txt, use_na_sentinel=False)
    first = np.full(codes.max(initial=-1) + 1, -1, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    labels = _outcome_label_rows(raw.iloc[first], outcome_values).to_numpy(dtype=object)
    code_of_label = np.array([OUTCOMES.index(x) if x in OUTCOMES else -1 for x in labels], dtype=np.int8)
    out = pd.Categorical.from_codes(code_of_label[codes], dtype=_OUTCOME_DTYPE)
    return pd.Series(out, index=raw.index), codes, labels


def _outcome_label_rows(raw: pd.Series, outcome_values: Mapping[str, str] | None) -> pd.Series:
    out = pd.Series(np.full(len(raw), None, dtype=object), index=raw.index)
    if outcome_values:
        user = {str(k): str(v) for k, v in outcome_values.items()}
        bad_targets = sorted(set(user.values()) - set(OUTCOMES))
        if bad_targets:
            raise ParameterError(
                f"The 'outcome_values' parameter must map labels to one of {OUTCOMES}. "
                f"Got {bad_targets} instead."
            )
        hit = raw.astype("str").where(raw.notna(), None).map(user)
        out = out.where(hit.isna(), hit)
    if pd.api.types.is_bool_dtype(raw.dtype):
        out = out.where(out.notna(), raw.map({True: "won", False: "lost"}))
    tok = _norm_token(raw)
    tok = tok.replace({"true": "won", "false": "lost", "1": "won", "0": "lost"})
    mapped = tok.map(_OUTCOMES_SYN_SERIES)
    return out.where(out.notna(), mapped)


def _report_outcomes(
    bad: np.ndarray,
    raw: pd.Series,
    kv: pd.Categorical | np.ndarray,
    *,
    skips: Skips,
    rows: np.ndarray,
    weights: np.ndarray | None,
) -> np.ndarray:
    """Raise on (or count) rows whose outcome is unknown or does not fit their kind."""

    def expected(i: int, value: object) -> str:
        k = str(kv[i]) if kv[i] in OUTCOMES_BY_KIND else "deal"
        return f"one of {', '.join(OUTCOMES_BY_KIND[k])} (for a {k})"

    def fix(i: int, value: object) -> str:
        k = str(kv[i]) if kv[i] in OUTCOMES_BY_KIND else "deal"
        targets = "|".join(repr(o) for o in OUTCOMES_BY_KIND[k])
        return (
            f"map your labels to those words, e.g. load_history(..., outcome_values={{{str(value)!r}: "
            f"{targets}}}), or correct the cell."
        )

    keep = skips.bad(
        bad,
        rows=rows,
        column="outcome",
        values=raw,
        expected=expected,
        fix=fix,
        reason="unknown outcome value",
        weights=weights,
    )
    return keep


_OUTCOMES_SYN_SERIES = pd.Series(_OUTCOME_SYNONYMS)
_KIND_DTYPE = pd.CategoricalDtype(pd.Index(KINDS, dtype="str"))
_OUTCOME_DTYPE = pd.CategoricalDtype(pd.Index(OUTCOMES, dtype="str"))
# status code of each outcome code (last entry: a missing outcome, code -1)


def _rows_of(df: pd.DataFrame, offset: int, *, lazy: bool = False) -> Any:
    """Each row's number in the source (its ``_row``, else ``offset`` + position); ``lazy`` gives
    the positions as a :class:`_Span` instead of an array."""
    if "_row" in df.columns:
        return df["_row"].to_numpy(dtype=np.int64)
    if lazy:
        return _Span(len(df), offset)
    return np.arange(len(df), dtype=np.int64) + offset


class _Span:
    """The integers ``offset .. offset + n - 1`` without their array (for a million rows that is
    memory to allocate and fill for nothing); indexing it gives the numbers at those positions.

    >>> s = _Span(5, offset=2)
    >>> len(s), s[0], s[np.array([1, 3])].tolist(), s[np.array([True, False, True, False, False])].tolist()
    (5, 2, [3, 5], [2, 4])
    """

    __slots__ = ("n", "offset")

    def __init__(self, n: int, offset: int = 0) -> None:
        self.n, self.offset = n, offset

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, np.integer)):
            if not -self.n <= key < self.n:
                raise IndexError(key)
            return int(key) % self.n + self.offset
        key = np.asarray(key)
        if key.dtype == bool:
            return np.flatnonzero(key) + self.offset
        return key.astype(np.int64) + self.offset  # (positions here are never negative)

    take = __getitem__

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.arange(self.offset, self.offset + self.n, dtype=dtype or np.int64)


def _id_codes(s: pd.Series, pre: Factorized | None = None) -> tuple[np.ndarray, pd.Index]:
    """Ids cleaned as :func:`_clean_ids` does, as codes (-1: none) into the distinct ids in order of
    first appearance; text columns are cleaned once per distinct value."""
    if pre is not None or _is_plain_str(s.dtype):
        raw_codes, raw_uniq = pre if pre is not None else pd.factorize(s)
        if _already_clean(raw_uniq):
            return raw_codes, _str_index(raw_uniq)
        codes, uniq = pd.factorize(_clean_ids(pd.Series(raw_uniq, dtype="str")))
        return np.append(codes, -1)[raw_codes], pd.Index(uniq)
    codes, uniq = pd.factorize(_clean_ids(s))
    return codes, pd.Index(uniq)


def _name_codes(s: pd.Series, pre: Factorized | None = None) -> tuple[np.ndarray, pd.Index]:
    """Event names as text with spaces trimmed, as codes (-1: none) into the distinct names."""
    if pre is not None or _is_plain_str(s.dtype):
        raw_codes, raw_uniq = pre if pre is not None else pd.factorize(s)
        if _already_clean(raw_uniq):
            return raw_codes, _str_index(raw_uniq)
        codes, uniq = pd.factorize(pd.Series(raw_uniq, dtype="str").str.strip())
        return np.append(codes, -1)[raw_codes], pd.Index(uniq, dtype="str")
    codes, uniq = pd.factorize(s.astype("str").where(s.notna(), None).str.strip())
    return codes, pd.Index(uniq, dtype="str")


def _str_index(values: Any) -> pd.Index:
    """``pd.Index(values, dtype="str")``, unnamed; an Index already so is returned itself, so what
    pandas caches on it (its hash table, whether it is unique) is worked out once."""
    if isinstance(values, pd.Index) and _is_plain_str(values.dtype) and values.name is None:
        return values
    return pd.Index(values, dtype="str", name=None)


def _categorical_text(s: pd.Series, positions: np.ndarray | None = None) -> pd.Series:
    """A text categorical (at ``positions``, all if None) as plain text, missing staying missing:
    its codes are gathered and the text taken from its few categories in pyarrow, rather than
    gathering and converting one string per row."""
    import pyarrow as pa

    cats = pa.array(np.asarray(s.cat.categories, dtype=object), type=pa.large_string())
    codes = np.asarray(s.cat.codes)
    if positions is not None:
        codes = codes[positions]
    idx = pa.array(codes, mask=codes < 0) if codes.min(initial=0) < 0 else pa.array(codes)  # (no copy)
    text = pd.arrays.ArrowStringArray(cats.take(idx))
    if positions is None:
        return pd.Series(text, index=s.index, name=s.name, dtype="str")
    return pd.Series(text, name=s.name, dtype="str")


def _already_clean(values: pd.Index) -> bool:
    """Distinct text values that cleaning would leave as they are: none blank or missing, none
    with surrounding spaces (then their codes need no remapping)."""
    if not _is_plain_str(values.dtype) or values.hasnans:
        return False
    txt = pd.Series(values, copy=False)
    return not bool((txt.str.strip() != txt).any() or (txt == "").any())


def _clean_ids(s: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(s.dtype):
        # ids read as floats (1.0) come from numeric id columns with blanks: keep the integer text
        ints = s.dropna()
        if len(ints) and (ints == np.floor(ints)).all():
            return s.map(lambda v: None if pd.isna(v) else str(int(v)))
    out = s.astype("str").where(s.notna(), None).str.strip()
    return out.where(out != "", None)


def build_history(
    events: pd.DataFrame,
    cases: pd.DataFrame | None = None,
    *,
    source: str = "<data>",
    kind: str = "deal",
    tz: str = "UTC",
    errors: Errors = "raise",
    outcome_values: Mapping[str, str] | None = None,
    outcome_events: Mapping[str, Iterable[str]] | None = None,
    milestones: MilestoneRule = None,
    dayfirst: bool = False,
    date_format: str | None = None,
    sla_days: float | None = None,
    finish_events: Iterable[str] | None = None,
    decimal: str | None = ".",
    rows_read: int | None = None,
    row_offset: int = 2,
    skips: Skips | None = None,
    notes: Iterable[str] = (),
    column_names: Mapping[str, str] | None = None,
) -> History:
    """Validate canonical-named frames and assemble a :class:`History`.

    ``events`` holds ``case_id``, ``name``, ``timestamp`` and optionally ``type``, ``owner``,
    ``role``, case-level columns (``outcome``, ``kind``, ``created``, ``closed``, ``amount``,
    ``segment``, ``target_date``, ``case_owner``), columns prefixed ``case:`` (case attributes) and
    any other column (event attributes). ``cases`` (optional) holds one row per case. A ``_row``
    column in either frame gives the source row of each row for messages (else ``row_offset`` +
    position). ``column_names`` maps canonical names to the source's own, also for messages.
    ``decimal`` is the mark of amounts written as text; None decides it from the values (the
    summary's notes say which).

    Projects without an outcome are on time or late by whether they finished by their due date:
    their ``target_date``, else ``created + sla_days`` (a service-level target, which then fills
    ``target_date``). A project finishes at its ``closed`` date, else (with ``finish_events``, one
    name or several) at its first event of those names. A project not finished by the end of the
    data stays open, even when past its due date. The report's notes say which rule was used, or
    why every project is open.

    Counting: every source row is either loaded or skipped with a reason, so ``rows_read ==
    rows_loaded + sum(skipped)``. A case skipped for a case-level problem (its outcome, kind or
    dates) counts its case-table row and all of its event rows under that reason.

    Examples
    --------
    >>> import pandas as pd
    >>> events = pd.DataFrame({"case_id": ["A", "A", "B"], "name": ["Qualify", "Proposal", "Qualify"],
    ...                        "timestamp": ["2024-01-02", "2024-01-05", "2024-01-03"]})
    >>> cases = pd.DataFrame({"case_id": ["A", "B", "C"], "outcome": ["won", "open", "lost"],
    ...                       "created": ["2024-01-01", "2024-01-02", "2024-01-04"],
    ...                       "closed": ["2024-01-05", None, "2024-01-06"]})
    >>> h = build_history(events, cases, source="crm")
    >>> h.summary().cases_without_events, h.report.rows_read, h.report.rows_loaded
    (1, 6, 6)
    """
    reading = _Reading(tz=tz, dayfirst=dayfirst, date_format=date_format, decimal=decimal)
    _check_build_parameters(errors=errors, kind=kind, reading=reading)
    success = _success_rule(sla_days, finish_events)
    sk = _prepare_skips(skips, source=source, errors=errors, notes=notes, column_names=column_names)
    if rows_read is None:
        rows_read = len(events) + (0 if cases is None else len(cases))

    # events: each row's case, name, time and type as codes, then the kept rows in case and time order
    ev = events.reset_index(drop=True)
    rows = _rows_of(ev, row_offset, lazy=True)
    ev = ev.drop(columns=["_row"], errors="ignore")
    checked = _check_events(ev, rows, sk, reading=reading, milestones=milestones)
    rule, by_name = _outcome_rule(outcome_events, checked, cases, kind=kind)
    evs = _kept_events(checked, _terminal_outcomes(rule, checked))
    evs = _order_by_case_and_time(evs)
    evs = _drop_duplicate_events(evs, sk)

    # cases: what the events say of each, outcomes from terminal events, the case table's rows
    evs = replace(evs, starts=_case_starts(evs.codes))
    # (values that differ between a case's rows are found meanwhile, in a thread: numpy work)
    conflicts = _in_background(_case_value_conflicts, evs, rows, _case_level_columns(ev), outcome_values=outcome_values)
    c = _cases_from_events(evs, rows, _case_level_columns(ev), with_case_table=cases is not None)
    evs = _outcomes_from_terminal_events(evs, c, sk, reading=reading, by_name=by_name)
    if cases is not None:
        c = _merge_case_table(_check_case_table(cases, sk, row_offset=row_offset), c, sk)
    c = _owner_column(c)
    evs = _first_event_owners(c, evs, ev, with_case_table=cases is not None)

    # per-case values checked (a bad one skips the case, counted with all its rows), then dropped
    where = _CaseSource.of(c, row_offset=row_offset)
    kinds = _case_kinds(c, kind=kind, from_events="kind" in ev.columns)
    ck = _check_kinds(c, kinds, where, sk)
    ck = _parse_case_dates(c, where, sk, ck, reading=reading)
    ck = _check_created(c, where, sk, ck)
    fmt = _amount_format(ev, rows, cases, sk, decimal=decimal, row_offset=row_offset)
    ck = _parse_case_amounts(c, where, sk, ck, fmt=fmt, deals=bool((kinds == "deal").any()))
    ck = _report_conflicts(c, conflicts.result(), where, sk, ck)
    ck = _case_outcomes(
        c, kinds, where, sk, ck, outcome_values=outcome_values, outcome_rule=bool(rule),
        success=replace(success, finished=_first_finish_events(c, evs, success.finish_events)),
    )
    ck = _close_dates(c, where, sk, ck)
    c["kind"] = kinds
    c, evs = _drop_skipped_cases(c, ck, evs)

    c = _case_statuses_and_text(c)
    e = _event_table(evs, ev, _extra_event_columns(ev))
    report = _load_report(sk, source=source, rows_read=rows_read)
    return finalize(c, e, report, ordered=cases is None)  # else the case table sets the order


# --- the steps of build_history, in the order it takes them -----------------------------------


@dataclass(frozen=True)
class _Reading:
    """How dates and numbers are written in the source (the reading keywords of :func:`build_history`)."""

    tz: str
    dayfirst: bool
    date_format: str | None
    decimal: str | None


@dataclass(frozen=True)
class _EventRows:
    """The source's event rows read as codes: case, name and type per row, the parsed times, and
    which rows passed the checks (``keep``)."""

    ev: pd.DataFrame  # the event rows, renumbered 0..n-1, without ``_row``
    case_codes: np.ndarray  # into ``case_ids``; -1: none
    case_ids: pd.Index
    name_codes: np.ndarray  # into ``names``; -1: none
    names: pd.Index
    ts: pd.Series  # parsed, ``datetime64[ns, UTC]``
    type_codes: np.ndarray  # 0 milestone, 1 activity, -1 unknown
    keep: np.ndarray


@dataclass(frozen=True)
class _Events:
    """The kept events as positions into the source frame and integer codes, one entry per event.

    Columns are taken at ``src`` only once, when the event table is built, so no long column is
    copied as objects on the way. ``ident`` says ``src`` is 0..n-1 (columns are used as they are).
    """

    src: np.ndarray | _Span  # position of each event in the source frame
    ident: bool
    codes: np.ndarray  # case code, into ``case_ids``
    case_ids: pd.Index
    ts: np.ndarray  # nanoseconds since the epoch, UTC
    parsed: pd.Series  # the parsed times of all source rows (used as they are when ``ident``)
    name_codes: np.ndarray  # into ``names``
    names: pd.Index
    type_codes: np.ndarray  # into EVENT_TYPES
    term: np.ndarray | None = None  # outcome of a terminal event (outcome_events), else missing
    owner: pd.Series | None = None  # each event's owner, once looked up for the cases
    starts: np.ndarray | None = None  # position of each case's first event, while still valid

    def at_src(self, values: Any) -> Any:
        """``values`` (one per source row) at the events' positions."""
        return values if self.ident else values.take(self.src)

    def positions(self) -> np.ndarray | None:
        """The events' positions in the source frame, None for all of it in order."""
        return None if self.ident else np.asarray(self.src)

    def select(self, idx: np.ndarray) -> _Events:
        """The events at ``idx`` (a mask or positions): every per-event array taken alike."""
        return replace(
            self,
            src=self.src[idx],
            ident=self.ident and idx.dtype == bool and bool(idx.all()),
            codes=self.codes[idx],
            ts=self.ts[idx],
            name_codes=self.name_codes[idx],
            type_codes=self.type_codes[idx],
            term=None if self.term is None else self.term[idx],
            owner=None if self.owner is None else self.owner.iloc[idx].reset_index(drop=True),
            starts=None,  # positions have moved
        )


def _check_build_parameters(*, errors: str, kind: str, reading: _Reading) -> None:
    """Raise :class:`~salesproc.errors.ParameterError` for an option that cannot be used, before any row is read."""
    if errors not in ("raise", "skip"):
        raise ParameterError(f"The 'errors' parameter must be 'raise' or 'skip'. Got {errors!r} instead.")
    if kind not in KINDS:
        raise ParameterError(f"The 'kind' parameter must be one of {KINDS}. Got {kind!r} instead.")
    check_reading_parameters(tz=reading.tz, decimal=reading.decimal, date_format=reading.date_format)


def _prepare_skips(
    skips: Skips | None,
    *,
    source: str,
    errors: Errors,
    notes: Iterable[str],
    column_names: Mapping[str, str] | None,
) -> Skips:
    """The loader's :class:`Skips` (or a new one), with its notes and the source's column names for messages."""
    sk = skips or Skips(source=source, errors=errors)
    sk.notes.extend(notes)
    if column_names:
        sk.names.update({str(k): str(v) for k, v in column_names.items()})
    return sk


def _check_events(
    ev: pd.DataFrame, rows: Any, sk: Skips, *, reading: _Reading, milestones: MilestoneRule
) -> _EventRows:
    """Each event row's case id, name, time and type, checked in that order (so strict mode names
    the first bad column); ids and names are cleaned once per distinct value, as codes."""
    no_text, no_values = pd.Series([], dtype="str"), pd.Index([], dtype="str")
    pre = _factorize_identifying_text(ev)
    keep = np.ones(len(ev), dtype=bool)
    id_codes, id_values = (
        _id_codes(ev["case_id"], pre.get("case_id")) if len(ev) else (np.zeros(0, np.int64), no_values)
    )
    keep &= sk.bad(
        (id_codes < 0) & keep, rows=rows, column="case_id", values=ev.get("case_id", no_text),
        expected="a case id (not empty)", fix="fill the id, or drop the row from the file.",
        reason="empty case id",
    )
    name_codes, name_values = (
        _name_codes(ev["name"], pre.get("name")) if len(ev) else (np.zeros(0, np.int64), no_values)
    )
    blank_name = np.append(name_values.to_numpy(dtype=object) == "", True)[name_codes]  # -1: missing
    keep &= sk.bad(
        blank_name & keep, rows=rows, column="name",
        values=ev.get("name", no_text), expected="an event name (not empty)",
        fix="fill the event name, or drop the row.", reason="empty event name",
    )
    ts, keep = _check_event_times(ev, rows, sk, keep, reading=reading)
    type_codes, keep = _event_types(
        ev, rows, sk, keep, pre=pre, names=(name_codes, name_values), milestones=milestones
    )
    return _EventRows(
        ev=ev, case_codes=id_codes, case_ids=id_values, name_codes=name_codes, names=name_values,
        ts=ts, type_codes=type_codes, keep=keep,
    )


def _factorize_identifying_text(ev: pd.DataFrame) -> dict[str, Factorized]:
    """``case_id``, ``name`` and ``type`` factorized together (in threads when long): the bulk of a big load."""
    if not len(ev):
        return {}
    return _factorize_text({c: ev[c] for c in ("case_id", "name", "type") if c in ev.columns}, ordered=["case_id"])


def _check_event_times(
    ev: pd.DataFrame, rows: Any, sk: Skips, keep: np.ndarray, *, reading: _Reading
) -> tuple[pd.Series, np.ndarray]:
    """Each event's time parsed to UTC; unreadable or missing ones reported (a wrong day/month order by name)."""
    ts = (
        parse_timestamps(ev["timestamp"], tz=reading.tz, dayfirst=reading.dayfirst, date_format=reading.date_format)
        if len(ev)
        else pd.Series([], dtype=TS_DTYPE)
    )
    keep &= check_dates(
        sk, ts, ev["timestamp"] if len(ev) else ts, candidates=keep, rows=rows, column="timestamp",
        dayfirst=reading.dayfirst, date_format=reading.date_format, tz=reading.tz,
        expected="a date or timestamp such as 2024-03-31 or 2024-03-31T14:05:00+02:00",
        fix=("correct the cell; for day-first dates pass dayfirst=True, or give the exact format, "
             "e.g. date_format='%d.%m.%Y'."),
        reason="unparseable or missing timestamp",
    )
    return ts, keep


def _event_types(
    ev: pd.DataFrame,
    rows: Any,
    sk: Skips,
    keep: np.ndarray,
    *,
    pre: Mapping[str, Factorized],
    names: tuple[np.ndarray, pd.Index],
    milestones: MilestoneRule,
) -> tuple[np.ndarray, np.ndarray]:
    """Each event's type code (0 milestone, 1 activity) from its ``type`` column, else from the
    ``milestones`` rule on its name, else all milestones (with a note saying so)."""
    name_codes, name_values = names
    if "type" in ev.columns:
        tcodes, tnorm = _norm_codes(ev["type"], pre.get("type"))
        mapped = pd.Series(tnorm, dtype=object).map(_TYPE_SYNONYMS).to_numpy(dtype=object)
        per_label = np.where(mapped == "milestone", 0, np.where(mapped == "activity", 1, -1)).astype(np.int8)
        etype_code = per_label[tcodes]
        keep &= sk.bad(
            (etype_code < 0) & keep, rows=rows, column="type", values=ev["type"],
            expected="'milestone' or 'activity'", fix="use one of those words (stage and task also work).",
            reason="unknown event type",
        )
        return etype_code, keep
    match = milestone_matcher(milestones)
    if match is None:
        if len(ev):
            sk.notes.append("events carry no type: all treated as milestones (pass milestones=... to name them)")
        return np.zeros(len(ev), dtype=np.int8), keep
    hits = match(pd.Series([*name_values.tolist(), ""], dtype="str"))  # last: no name
    return np.where(hits[name_codes], 0, 1).astype(np.int8), keep


def _outcome_rule(
    outcome_events: Mapping[str, Iterable[str]] | None, checked: _EventRows, cases: pd.DataFrame | None, *, kind: str
) -> tuple[Mapping[str, Iterable[str]] | None, bool]:
    """The terminal-event rule in force, and whether it is the names recognised by default.

    Without ``outcome_events`` (None; ``{}`` turns this off) a deal history whose events carry no
    outcome column and no kind column reads events named like an outcome (``Closed Won``,
    ``Lost``, ``Gewonnen``..., see :mod:`salesproc.load._outcome_names`) as its outcomes.
    """
    if outcome_events is not None or kind != "deal":
        return outcome_events, False
    given = set(checked.ev.columns) | (set() if cases is None else set(cases.columns))
    if "outcome" in given or "kind" in given:
        return None, False
    found = recognised_outcome_events(checked.names)
    return (found, True) if found else (None, False)


def _terminal_outcomes(
    outcome_events: Mapping[str, Iterable[str]] | None, checked: _EventRows
) -> pd.Series | None:
    """The outcome each event row's name stands for under ``outcome_events`` (missing for other names), None without a rule."""
    if not outcome_events:
        return None
    term_map: dict[str, str] = {}
    for outc, names in outcome_events.items():
        if outc not in OUTCOMES:
            raise ParameterError(
                f"The 'outcome_events' parameter must map outcomes ({OUTCOMES}) to event names. "
                f"Got key {outc!r} instead."
            )
        for nm in [names] if isinstance(names, str) else names:
            term_map[str(nm)] = outc
    term_of_name = pd.Series(checked.names, dtype=object).map(term_map).to_numpy(dtype=object)
    return pd.Series(np.append(term_of_name, np.nan)[checked.name_codes], dtype=object)


def _kept_events(checked: _EventRows, term_outcome: pd.Series | None) -> _Events:
    """The rows that passed the checks, as positions and codes; case codes renumbered in order of
    first appearance among them."""
    keep = checked.keep
    src: np.ndarray | _Span = _Span(len(keep)) if keep.all() else np.flatnonzero(keep)
    ident = len(src) == len(checked.ev)  # src is 0..n-1: columns are used as they are, not taken
    if ident:
        codes, uniq = checked.case_codes, checked.case_ids
    else:
        codes, first_seen = pd.factorize(checked.case_codes[src])
        uniq = checked.case_ids[first_seen]
    evs = _Events(
        src=src, ident=ident, codes=codes, case_ids=_str_index(uniq), ts=np.zeros(0, np.int64),
        parsed=checked.ts, name_codes=checked.name_codes, names=checked.names, type_codes=checked.type_codes,
    )
    return replace(
        evs,
        ts=evs.at_src(i8(checked.ts)) if len(checked.ts) else evs.ts,
        name_codes=evs.at_src(checked.name_codes),
        type_codes=evs.at_src(checked.type_codes),
        term=evs.at_src(term_outcome.to_numpy()) if term_outcome is not None else None,
    )


def _order_by_case_and_time(evs: _Events) -> _Events:
    """The events grouped by case and time-sorted within each (stable), unless they already are;
    duplicates then sit side by side."""
    if _in_case_time_order(evs.codes, evs.ts):
        return evs
    codes = np.empty_like(evs.codes)
    order = _case_time_order(evs.codes, evs.ts, sorted_codes=codes)
    identity = isinstance(evs.src, _Span) and evs.src.offset == 0  # src[order] would be order itself
    return replace(
        evs,
        src=order if identity else evs.src[order],
        ident=False,
        ts=evs.ts[order],
        codes=codes,
        name_codes=evs.name_codes[order],
        type_codes=evs.type_codes[order],
        term=None if evs.term is None else np.asarray(evs.term)[order],
    )


def _drop_duplicate_events(evs: _Events, sk: Skips) -> _Events:
    """Events repeating another's case, name, type and time kept once (and counted); only runs of
    rows that share case and time are compared."""
    codes, kts = evs.codes, evs.ts
    tie = (codes[1:] == codes[:-1]) & (kts[1:] == kts[:-1])
    if not tie.any():
        return evs
    dup = np.zeros(len(codes), dtype=bool)
    run = np.r_[tie, False] | np.r_[False, tie]
    sub = pd.DataFrame({"c": codes[run], "n": evs.name_codes[run], "t": kts[run], "y": evs.type_codes[run]})
    dup[run] = sub.duplicated().to_numpy()
    if not dup.any():
        return evs
    sk.count("duplicate event (same case, name, type and time): kept once", int(dup.sum()))
    return evs.select(~dup)


def _case_starts(codes: np.ndarray) -> np.ndarray:
    """Position of each case's first event (the events are grouped by case)."""
    return np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if len(codes) else np.zeros(0, int)


def _case_level_columns(ev: pd.DataFrame) -> dict[str, pd.Series]:
    """The event columns that hold a case's values on its rows (``outcome``, ..., and ``case:`` ones), by case-level name."""
    case_level_cols = {c: ev[c] for c in CASE_LEVEL if c in ev.columns}
    for attr in ev.columns:
        if isinstance(attr, str) and attr.startswith("case:"):
            case_level_cols[attr[len("case:") :]] = ev[attr]
    return case_level_cols


def _extra_event_columns(ev: pd.DataFrame) -> list[Any]:
    """The event columns that are neither canonical nor case-level: kept as event attributes."""
    case_attr_cols = [c for c in ev.columns if isinstance(c, str) and c.startswith("case:")]
    return [c for c in ev.columns if c not in set(EVENT_COLUMNS) | set(CASE_LEVEL) | set(case_attr_cols)]


def _cases_from_events(
    evs: _Events, rows: Any, case_level: Mapping[str, pd.Series], *, with_case_table: bool
) -> pd.DataFrame:
    """One row per case, in code order, from its events: first and last time, the source rows it
    stands for, and the case-level values its rows carry (with the row each came from)."""
    codes, starts = evs.codes, evs.starts
    assert starts is not None
    ends = np.r_[starts[1:], len(codes)] - 1 if len(codes) else np.zeros(0, int)
    # the source row of kept position p is rows[src[p]]
    first_rows = np.asarray(rows[evs.src[starts]], dtype=np.int64) if len(starts) else np.zeros(0, np.int64)
    columns: dict[str, Any] = {
        "case_id": evs.case_ids,
        "_first": _utc(evs.ts[starts]),
        "_last": _utc(evs.ts[ends]),
        "_row": first_rows,
        # source rows each case stands for (before terminal events leave the table): a case
        # skipped later counts all of them
        "_n_rows": (ends - starts + 1).astype(np.int64),  # codes are sorted: a case's rows sit together
    }
    for k, col_values in case_level.items():
        pos = _case_value_positions(evs, col_values, starts, ends)
        has_value = pos >= 0
        at = evs.src[np.maximum(pos, 0)]
        columns[k] = _case_values(col_values, at, has_value, k=k, with_case_table=with_case_table)
        # the row a case-level value came from, for messages about it
        columns[f"_row:{k}"] = np.where(has_value, rows[at], first_rows)
    return pd.DataFrame(columns, copy=False)  # one frame made at once, not a column at a time


def _case_value_positions(evs: _Events, col_values: pd.Series, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Per case, the position of its last event that gives a value in ``col_values`` (-1: none)."""
    given = col_values.notna().to_numpy()
    valid = None if given.all() else evs.at_src(given)
    if valid is None or valid.all():  # the usual case: every row repeats it, so each case's last row has it
        return ends
    # given on all of a case's rows or on none: given or not changes only where a case starts
    changes = np.flatnonzero(valid[1:] != valid[:-1]) + 1
    case_start = np.zeros(len(valid), dtype=bool)
    case_start[starts] = True
    if case_start[changes].all():
        return np.where(valid[starts], ends, -1)
    at_valid = np.flatnonzero(valid)
    pos = np.full(len(evs.case_ids), -1, dtype=np.int64)
    pos[evs.codes[at_valid]] = at_valid  # later rows overwrite earlier ones
    return pos


def _case_values(
    col_values: pd.Series, at: np.ndarray, has_value: np.ndarray, *, k: str, with_case_table: bool
) -> Any:
    """The values of a case-level column at source positions ``at`` (missing where not ``has_value``),
    keeping dates dates, text text and numbers numbers."""
    is_text = _is_plain_str(col_values.dtype) or _has_text_categories(col_values)
    if (k in ("created", "closed", "target_date") and _is_datetime(col_values.dtype)) or (
        is_text and has_value.any()
    ):
        # case dates stay dates (read once, never through text); text stays text, as the
        # object route below would infer it
        taken = col_values.array.take(np.where(has_value, at, -1), allow_fill=True)
        if with_case_table and isinstance(col_values.dtype, pd.CategoricalDtype):
            taken = np.asarray(taken, dtype=object)  # merged with the case table's values below
        return taken
    if has_value.all():
        return col_values.array.take(at)  # numbers stay numbers
    picked = np.full(len(at), None, dtype=object)
    picked[has_value] = np.asarray(col_values.iloc[at[has_value]].to_numpy(), dtype=object)
    return picked


def _outcomes_from_terminal_events(
    evs: _Events, from_ev: pd.DataFrame, sk: Skips, *, reading: _Reading, by_name: bool = False
) -> _Events:
    """Terminal events (``outcome_events``, or with ``by_name`` the names recognised as outcomes)
    become their case's outcome and close time (sets them in ``from_ev``) and leave the events."""
    term = evs.term
    evs = replace(evs, term=None)  # used up here
    if term is None:
        return evs
    is_term = pd.notna(term)
    if not is_term.any():
        return evs
    n_cases = len(from_ev)
    tcodes = evs.codes[is_term]
    t_out = _group_last_valid(tcodes, term[is_term], n_cases)
    t_time = np.full(n_cases, np.iinfo(np.int64).min)
    np.maximum.at(t_time, tcodes, evs.ts[is_term])
    has = pd.notna(t_out)
    cur = from_ev["outcome"] if "outcome" in from_ev.columns else pd.Series([None] * n_cases)
    from_ev["outcome"] = np.where(has, t_out, cur.to_numpy(dtype=object))
    # int64 min is NaT: cases without a terminal event get none
    tt = pd.Series(pd.to_datetime(np.where(has, t_time, np.iinfo(np.int64).min), utc=True))
    if "closed" in from_ev.columns:
        old = parse_timestamps(pd.Series(from_ev["closed"]), tz=reading.tz, dayfirst=reading.dayfirst)
        from_ev["closed"] = old.where(old.notna(), tt)
    else:
        from_ev["closed"] = tt.astype(TS_DTYPE)
    if by_name:
        names = recognised_outcome_events(evs.names[np.unique(evs.name_codes[is_term])])
        sk.notes.append(outcome_events_note(names, pd.Series(t_out[has]).value_counts().to_dict()))
    else:
        sk.notes.append(f"{int(is_term.sum()):,} terminal events became case outcomes and were removed from events")
    return evs.select(~is_term)  # per-case first rows are found again later


def _check_case_table(cases: pd.DataFrame, sk: Skips, *, row_offset: int) -> pd.DataFrame:
    """The case table's rows with a case id, each id once (ids cleaned as the events' are), with their source rows."""
    cs = cases.reset_index(drop=True)
    c_rows = _rows_of(cs, row_offset)
    cs = cs.drop(columns=["_row"], errors="ignore")
    ccid = _clean_ids(cs["case_id"])
    ckeep = sk.bad(
        ccid.isna().to_numpy(), rows=c_rows, column="case_id", values=cs["case_id"],
        expected="a case id (not empty)", fix="fill the id, or drop the row.", reason="empty case id",
    )
    dupc = ccid.duplicated(keep="first").to_numpy() & ccid.notna().to_numpy()
    ckeep &= sk.bad(
        dupc & ckeep, rows=c_rows, column="case_id", values=cs["case_id"],
        expected="each case id once in the case table", fix="remove the repeated row.",
        reason="repeated case id in case table",
    )
    cs = cs.loc[ckeep].assign(case_id=ccid[ckeep]).reset_index(drop=True)
    cs["_row"] = c_rows[ckeep]
    return cs


def _merge_case_table(cs: pd.DataFrame, from_ev: pd.DataFrame, sk: Skips) -> pd.DataFrame:
    """The case table joined with the cases from events: the table's values win, cases only in
    the events are added (and noted), and each case counts the source rows it stands for."""
    ev_only = ~from_ev["case_id"].isin(cs["case_id"])
    if ev_only.any():
        sk.notes.append(f"{int(ev_only.sum()):,} cases appear in events but not in the case table: added")
    merged = cs.merge(
        from_ev.rename(columns={"_row": "_row_first"}), on="case_id", how="outer",
        suffixes=("", "_ev"), sort=False,
    )
    in_table = merged["_row"].notna().to_numpy()
    for col in list(merged.columns):
        if col.endswith("_ev"):
            base = col[:-3]
            from_table = merged[base].notna().to_numpy()
            merged[base] = merged[base].where(from_table, merged[col])
            if f"_row:{base}" in merged.columns:
                merged[f"_row:{base}"] = np.where(from_table, merged["_row"], merged[f"_row:{base}"])
            merged = merged.drop(columns=[col])
    # cases only in the events point at their first event's row
    merged["_row"] = merged["_row"].fillna(merged["_row_first"]).astype(np.int64)
    merged["_n_rows"] = merged["_n_rows"].fillna(0).astype(np.int64) + in_table
    return merged.drop(columns=["_row_first"])


def _owner_column(c: pd.DataFrame) -> pd.DataFrame:
    """A case-level ``case_owner`` becomes the case's ``owner`` (an ``owner`` column wins)."""
    if "case_owner" not in c.columns:
        return c
    return c.rename(columns={"case_owner": "owner"}) if "owner" not in c.columns else c.drop(columns=["case_owner"])


def _first_event_owners(c: pd.DataFrame, evs: _Events, ev: pd.DataFrame, *, with_case_table: bool) -> _Events:
    """Cases without an owner take their first event's owner, in time order (sets ``c["owner"]``);
    the events keep the owner column so looked up, for the event table."""
    if "owner" in c.columns or not len(evs.src):
        return evs
    owners = _event_text(ev, "owner", evs.positions())
    has_owner = owners.notna().to_numpy()
    if has_owner.all() and evs.starts is not None:
        first_pos = evs.starts
    else:
        first_pos = np.full(len(evs.case_ids), -1, dtype=np.int64)
        at_owner = np.flatnonzero(has_owner)[::-1]
        first_pos[evs.codes[at_owner]] = at_owner  # earlier rows overwrite later ones
    if not with_case_table:  # c is the cases from events: one row per case, in code order
        c["owner"] = owners.array.take(first_pos, allow_fill=True)
    else:
        with_owner = first_pos >= 0
        first_owner = pd.Series(owners.array.take(first_pos[with_owner]), index=evs.case_ids[with_owner])
        c["owner"] = c["case_id"].map(first_owner)
    return replace(evs, owner=owners)


@dataclass(frozen=True)
class _CaseSource:
    """Where each case's values came from in the source: rows for messages, and how many source
    rows a skipped case counts (its case-table row and its events)."""

    table: pd.DataFrame
    rows: np.ndarray
    weights: np.ndarray

    @classmethod
    def of(cls, c: pd.DataFrame, *, row_offset: int) -> _CaseSource:
        """The source rows of the cases in ``c``."""
        c_rows = c["_row"].to_numpy(dtype=np.int64) if "_row" in c.columns else np.arange(len(c)) + row_offset
        weights = c["_n_rows"].to_numpy(dtype=np.int64) if "_n_rows" in c.columns else np.ones(len(c), np.int64)
        return cls(c, c_rows, weights)

    def rows_for(self, col: str) -> np.ndarray:
        """Source row of each case's ``col`` value (its case-table row, or the event row it came from)."""
        c = self.table
        key = f"_row:{col}"
        if key not in c.columns:
            return self.rows
        return pd.Series(c[key]).fillna(pd.Series(self.rows, index=c.index)).to_numpy(dtype=np.int64)


def _case_kinds(c: pd.DataFrame, *, kind: str, from_events: bool) -> pd.Series:
    """Each case's kind as a normalised word (``kind`` where none is given), or all ``kind`` when the data names none."""
    if "kind" in c.columns or from_events:
        return _norm_token(c["kind"]).replace(
            {"": kind, "opportunity": "deal", "deals": "deal", "projects": "project"}
        )
    return pd.Series(
        pd.Categorical.from_codes(np.full(len(c), KINDS.index(kind), dtype=np.int8), dtype=_KIND_DTYPE),
        index=c.index,
    )


def _check_kinds(c: pd.DataFrame, kinds: pd.Series, where: _CaseSource, sk: Skips) -> np.ndarray:
    """Cases whose kind is neither deal nor project reported; returns the cases kept so far."""
    ck = np.ones(len(c), dtype=bool)
    ck &= sk.bad(
        ~kinds.isin(KINDS).to_numpy(), rows=where.rows_for("kind"), column="kind", values=c.get("kind", kinds),
        expected="'deal' or 'project'", fix="use one of those words.", reason="unknown case kind",
        weights=where.weights,
    )
    return ck


def _parse_case_dates(c: pd.DataFrame, where: _CaseSource, sk: Skips, ck: np.ndarray, *, reading: _Reading) -> np.ndarray:
    """``created``, ``closed``, ``target_date`` (and ``expected_close`` when mapped) parsed in place
    (missing columns become NaT); unreadable dates reported."""
    for col in ("created", "closed", "target_date", "expected_close"):
        if col == "expected_close" and col not in c.columns:
            continue
        if col not in c.columns:
            c[col] = pd.Series(pd.NaT, index=c.index, dtype=TS_DTYPE)
            continue
        raw = pd.Series(c[col])
        parsed = parse_timestamps(raw, tz=reading.tz, dayfirst=reading.dayfirst, date_format=reading.date_format)
        given = raw.notna().to_numpy().copy()
        if given.any() and not _is_datetime(raw.dtype):  # a date is never blank text
            given[given] = (raw[given].astype("str").str.strip() != "").to_numpy()
        ck &= check_dates(
            sk, parsed, raw, candidates=given & ck, rows=where.rows_for(col), column=col,
            dayfirst=reading.dayfirst, date_format=reading.date_format, tz=reading.tz,
            expected="a date such as 2024-03-31", fix="correct the date (or leave it empty).",
            reason=f"unparseable {col} date", weights=where.weights,
        )
        c[col] = parsed
    return ck


def _check_created(c: pd.DataFrame, where: _CaseSource, sk: Skips, ck: np.ndarray) -> np.ndarray:
    """A case without a created date is created at its first event; one with neither is reported."""
    if "_first" not in c.columns:
        c["_first"] = pd.Series(pd.NaT, index=c.index, dtype=TS_DTYPE)
        c["_last"] = pd.Series(pd.NaT, index=c.index, dtype=TS_DTYPE)
    c["created"] = c["created"].where(c["created"].notna(), c["_first"])
    ck &= sk.bad(
        c["created"].isna().to_numpy() & ck, rows=where.rows_for("created"), column="created", values=c["created"],
        expected="a creation date, or at least one dated event", fix="give the case a created date.",
        reason="case with no date at all", weights=where.weights,
    )
    return ck


def _amount_format(
    ev: pd.DataFrame, rows: Any, cases: pd.DataFrame | None, sk: Skips, *, decimal: str | None, row_offset: int
) -> NumberFormat:
    """How the source writes its amounts, decided from every row that gives one (events and case
    table), else the given ``decimal``; noted for the summary when text was read."""
    columns = [(col, rows) for col in [_case_level_columns(ev).get("amount")] if col is not None]
    if cases is not None and "amount" in cases.columns:
        columns.append((cases["amount"], _rows_of(cases.reset_index(drop=True), row_offset)))
    name = sk.names.get("amount", "amount")
    fmt = None
    if len(columns) == 1:
        fmt = parse_numbers(
            columns[0][0], decimal=decimal, source=sk.source, column=name, rows=columns[0][1], values_too=False
        )[1]
    elif columns:
        both = pd.concat([pd.Series(col.to_numpy(dtype=object)) for col, _ in columns], ignore_index=True)
        at = np.concatenate([np.asarray(r) for _, r in columns])
        fmt = parse_numbers(both, decimal=decimal, source=sk.source, column=name, rows=at, values_too=False)[1]
    fmt = fmt or NumberFormat(decimal, given=decimal is not None)
    if columns and (fmt.decimal or fmt.thousands):
        sk.notes.append(f"{name}: {fmt.describe()}")
    return fmt


def _parse_case_amounts(
    c: pd.DataFrame, where: _CaseSource, sk: Skips, ck: np.ndarray, *, fmt: NumberFormat, deals: bool = True
) -> np.ndarray:
    """``amount`` parsed as numbers in place (NaN when absent), with the source's format ``fmt``;
    unreadable non-blank amounts reported."""
    if "amount" not in c.columns:
        c["amount"] = np.nan
        if deals:  # (a value per deal is what the pipeline review sums)
            sk.notes.append(
                "no amount column: the pipeline's value and the money at risk will be empty. Fix: map the "
                "amounts, e.g. mapping={'amount': '<column>'} (-m amount=<column>)"
            )
        return ck
    amt = parse_amounts(pd.Series(c["amount"]), decimal=fmt.decimal or ".")
    rawa = pd.Series(c["amount"])
    bada = amt.isna().to_numpy() & rawa.notna().to_numpy()
    if bada.any():
        bada[bada] = (rawa[bada].astype("str").str.strip() != "").to_numpy()
    ck &= sk.bad(
        bada & ck, rows=where.rows_for("amount"), column="amount", values=rawa,
        expected=f"a number written as the column's others are: {fmt.describe()}, such as {fmt.example()}",
        fix="correct the cell, or say how the file writes numbers with decimal='.' or decimal=','.",
        reason="unparseable amount", weights=where.weights,
    )
    c["amount"] = amt
    return ck


def _case_outcomes(
    c: pd.DataFrame,
    kinds: pd.Series,
    where: _CaseSource,
    sk: Skips,
    ck: np.ndarray,
    *,
    outcome_values: Mapping[str, str] | None,
    outcome_rule: bool,
    success: _Success | None = None,
) -> np.ndarray:
    """Each case's canonical outcome, set in place: labels mapped and checked against the case's
    kind; a project without one is on time or late by its due date (see :func:`_project_outcomes`)."""
    rawo = pd.Series(c["outcome"]) if "outcome" in c.columns else pd.Series([None] * len(c), index=c.index, dtype=object)
    outcome, okeep = normalize_outcomes(
        rawo, kinds, outcome_values=outcome_values, skips=sk, rows=where.rows_for("outcome"), weights=where.weights
    )
    ck &= okeep
    is_proj = (kinds == "project").to_numpy()
    # projects without an explicit outcome: on time / late from actual end vs planned end
    derive_proj = is_proj & (rawo.isna() | (_norm_token(rawo) == "")).to_numpy() if is_proj.any() else is_proj
    success = success or _Success()
    if derive_proj.any():
        given_target = c["target_date"].notna().to_numpy()
        ck, lab = _project_outcomes(c, derive_proj, where, sk, ck, success)
        outcome = outcome.where(~derive_proj, lab)
        sk.notes.extend(_project_success_notes(success, derive_proj, given_target, outcome.to_numpy()[derive_proj & ck]))
    if is_proj.any() and not derive_proj.any():
        sk.notes.append("projects: success = outcome events (outcome_events)" if outcome_rule
                        else "projects: success = outcome column")
    if not ("outcome" in c.columns or outcome_rule) and (~is_proj).any():
        sk.notes.append(
            "no outcome column, no outcome_events rule and no event read as an outcome (such as Closed Won "
            "or Lost): deals are all open. Fix: map the outcome column (-m outcome=<column>), or name the closing "
            "events with outcome_events={'won': [...], 'lost': [...]}"
        )
    c["outcome"] = outcome
    return ck


@dataclass(frozen=True)
class _Success:
    """What success means for a project without an outcome: finished (by its ``closed`` date, else
    its first event named in ``finish_events``) by its due date (``target_date``, else ``created +
    sla_days``). ``finished``: per case, the time of its first finishing event (NaT: none)."""

    sla_days: float | None = None
    finish_events: tuple[str, ...] = ()
    finished: pd.Series | None = None


def _success_rule(sla_days: float | None, finish_events: Iterable[str] | None) -> _Success:
    """``sla_days`` and ``finish_events`` checked: a positive number of days, event names."""
    if sla_days is not None and (
        isinstance(sla_days, bool) or not isinstance(sla_days, int | float) or not np.isfinite(sla_days) or sla_days <= 0
    ):
        raise ParameterError(
            f"The 'sla_days' parameter must be a positive number of days (10: resolved within 10 days). Got {sla_days!r} instead."
        )
    names = () if finish_events is None else (finish_events,) if isinstance(finish_events, str) else tuple(finish_events)
    if not all(isinstance(n, str) and n for n in names):
        raise ParameterError(
            f"The 'finish_events' parameter must be event names, e.g. ['Resolved', 'Closed']. Got {finish_events!r} instead."
        )
    return _Success(sla_days=None if sla_days is None else float(sla_days), finish_events=names)


def _first_finish_events(c: pd.DataFrame, evs: _Events, names: tuple[str, ...]) -> pd.Series | None:
    """Per case of ``c``, the time of its first event named in ``names`` (NaT: none); None without names."""
    if not names:
        return None
    is_finish = np.asarray(pd.Index(evs.names).isin(names), dtype=bool)
    at = is_finish[evs.name_codes] if len(evs.name_codes) else np.zeros(0, dtype=bool)
    first = np.full(len(evs.case_ids), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, evs.codes[at], evs.ts[at])
    first[first == np.iinfo(np.int64).max] = _NAT
    pos = pd.Index(evs.case_ids).get_indexer(pd.Index(c["case_id"].astype("str")))
    return pd.Series(_utc(np.where(pos >= 0, first[np.maximum(pos, 0)], _NAT)), index=c.index)


def _project_outcomes(
    c: pd.DataFrame, derive: np.ndarray, where: _CaseSource, sk: Skips, ck: np.ndarray, success: _Success
) -> tuple[np.ndarray, np.ndarray]:
    """Projects without an outcome (``derive``): on time or late by whether they finished by their
    due date; open while not finished (even when past it). The finish date (from ``finish_events``)
    and the due date (``created + sla_days``) fill ``closed`` and ``target_date`` where not given."""
    if success.finished is not None:
        c["closed"] = c["closed"].where(~(derive & c["closed"].isna().to_numpy()), success.finished)
    if success.sla_days is not None:
        due = c["created"] + pd.Timedelta(days=success.sla_days)
        c["target_date"] = c["target_date"].where(~(derive & c["target_date"].isna().to_numpy()), due)
    closed_p, tgt = c["closed"], c["target_date"]
    lab = np.where(
        closed_p.isna(), "open", np.where((closed_p <= tgt).fillna(False).to_numpy(dtype=bool), "on_time", "late")
    )
    no_target = derive & closed_p.notna().to_numpy() & tgt.isna().to_numpy()
    ck &= sk.bad(
        no_target & ck, rows=where.rows_for("target_date"), column="target_date", values=c["target_date"],
        expected="a planned end date for a finished project (to tell on time from late)",
        fix="map the planned-end column, e.g. mapping={'target_date': 'enddate_planned'}, give a service-level "
        "target with sla_days=10, or give an outcome.",
        reason="finished project without a planned end date", weights=where.weights,
    )
    return ck, lab


def _project_success_notes(
    success: _Success, derive: np.ndarray, given_target: np.ndarray, outcomes: np.ndarray
) -> list[str]:
    """What success meant for the projects without an outcome, or why every one of them is open."""
    rules = []
    if given_target[derive].any():
        rules.append("target_date")
    if success.sla_days is not None and (~given_target[derive]).any():
        rules.append(f"created + {success.sla_days:g} days (sla_days)")
    names = ", ".join(repr(n) for n in success.finish_events)
    finish = f"; finished = the first {names} event (finish_events)" if names else ""
    counts = pd.Series(outcomes).value_counts()
    counted = ", ".join(f"{int(counts.get(o, 0)):,} {o}" for o in ("on_time", "late", "open"))
    notes = [f"projects: success = finished by {', else by '.join(rules)}{finish}: {counted}"] if rules else []
    if len(outcomes) and (outcomes == "open").all():
        if not rules and not names:
            notes.append(
                "projects: no due date, service-level target, finish events or outcome: every project is open. "
                "Fix: map a due date (-m target_date=<column>) or pass sla_days=, and name the finishing events "
                "with finish_events="
            )
        elif names:
            notes.append(
                f"projects: no project has a {names} event (finish_events) or a close date: every project is open. "
                "Fix: name the finishing events as the data writes them"
            )
        else:
            notes.append(
                "projects: no close date and no finish events: every project is open. Fix: name the finishing "
                "events with finish_events= (or map the close date, -m closed=<column>)"
            )
    return notes


def _close_dates(c: pd.DataFrame, where: _CaseSource, sk: Skips, ck: np.ndarray) -> np.ndarray:
    """A closed case closes on its given date, else its last event; an open case's given date is
    its expected close (set in place), unless an ``expected_close`` column was mapped: that one is
    the open deals' expected close, and a closed deal's real close date is never taken from it. A
    closed case with neither is reported."""
    closed_case = (c["outcome"] != "open").to_numpy()
    c["closed"] = c["closed"].where(~(closed_case & c["closed"].isna().to_numpy()), c["_last"])
    if (~closed_case & c["closed"].notna().to_numpy()).any():
        if "expected_close" not in c.columns:
            c["expected_close"] = c["closed"].where(~closed_case)
        c["closed"] = c["closed"].where(closed_case)
    ck &= sk.bad(
        closed_case & c["closed"].isna().to_numpy() & ck, rows=where.rows_for("closed"), column="closed",
        values=c["closed"], expected="a close date for a closed case (or at least one event)",
        fix="give the close date.", reason="closed case without a close date", weights=where.weights,
    )
    return ck


def _drop_skipped_cases(c: pd.DataFrame, ck: np.ndarray, evs: _Events) -> tuple[pd.DataFrame, _Events]:
    """The cases kept and their events (a skipped case's event rows are already counted under the case's reason)."""
    c = c.loc[ck].reset_index(drop=True)
    if ck.all():
        return c, evs
    in_c = evs.case_ids.isin(c["case_id"])
    return c, evs.select(in_c[evs.codes])


def _case_statuses_and_text(c: pd.DataFrame) -> pd.DataFrame:
    """Outcome as a categorical with its status, owner and segment as text; the working columns dropped."""
    c["outcome"] = _categorical(c["outcome"], OUTCOMES)
    c["status"] = pd.Categorical.from_codes(_STATUS_CODE_OF_OUTCOME[c["outcome"].cat.codes], dtype=_STATUS_DTYPE)
    for col in ("owner", "segment"):
        if col not in c.columns:
            c[col] = None
        if _has_text_categories(c[col]):
            c[col] = _categorical_text(c[col])
        elif not _is_plain_str(c[col].dtype):
            c[col] = pd.Series(c[col]).astype("str").where(pd.Series(c[col]).notna(), None)
    return c.drop(columns=[x for x in c.columns if x in ("_first", "_last", "_n_rows") or x.startswith("_row")])


def _load_report(sk: Skips, *, source: str, rows_read: int) -> LoadReport:
    """What was read, loaded and skipped (by reason), and the notes, each once in order."""
    return LoadReport(
        source=source,
        rows_read=int(rows_read),
        rows_loaded=int(rows_read - sum(sk.counts.values())),
        skipped=dict(sk.counts),
        notes=tuple(dict.fromkeys(sk.notes)),
    )


_EVENT_TYPE_INDEX = pd.Index(EVENT_TYPES, dtype="str")


def _event_table(evs: _Events, ev: pd.DataFrame, extra_cols: list[Any]) -> pd.DataFrame:
    """The event table: codes become categoricals, and each source column is taken once at the events' positions."""
    e = pd.DataFrame(
        {
            # (ids and names are each distinct: pandas need not check them again)
            "case_id": categorical_from_codes(evs.codes, evs.case_ids),
            "name": categorical_from_codes(evs.name_codes, evs.names),
            "type": categorical_from_codes(evs.type_codes, _EVENT_TYPE_INDEX),
            "timestamp": evs.parsed.array if evs.ident else _utc(evs.ts).array,  # ts: the kept times, in order
            "owner": evs.owner if evs.owner is not None else _event_text(ev, "owner", evs.positions()),
            "role": _event_text(ev, "role", evs.positions()),
        },
        copy=False,
    )
    if extra_cols:
        # all at once: a wide export (hundreds of columns) must not fragment the frame
        extras = (ev[extra_cols] if evs.ident else ev[extra_cols].iloc[np.asarray(evs.src)]).reset_index(drop=True)
        extras.columns = [str(x) for x in extra_cols]
        e = pd.concat([e, extras], axis=1)
    return e


def _event_text(ev: pd.DataFrame, col: str, src: np.ndarray | None) -> pd.Series:
    """Event column ``col`` at positions ``src`` (all rows if None) as text; missing stays missing."""
    n = len(ev) if src is None else len(src)
    if col not in ev.columns:
        return pd.Series(np.full(n, None, dtype=object), dtype="str")
    values = ev[col]
    if _is_plain_str(values.dtype):
        return pd.Series(values.array if src is None else values.array.take(src))
    if _has_text_categories(values):  # read dictionary-encoded: gather codes, not strings
        return _categorical_text(values, src).rename(None)
    v = values.to_numpy() if src is None else values.to_numpy()[src]
    return pd.Series(v).astype("str").where(pd.notna(v), None)
















# --- case values that disagree between a case's rows ----------------------------------------


@dataclass(frozen=True)
class _Conflicts:
    """For one case-level column, the cases whose rows disagree: their ids, and per case the value
    kept (its last row in time order) and one other value, each with its source row. ``kind`` is
    ``"outcome"`` (two closed outcomes: won and lost), ``"reopened"`` (closed on a row, open on the
    last) or ``"value"`` (anything else: an amount, segment or owner that changed)."""

    column: str
    kind: str
    case_ids: np.ndarray
    kept: np.ndarray
    kept_rows: np.ndarray
    other: np.ndarray
    other_rows: np.ndarray


def _value_keys(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each source row's value as an int64 key (equal values, equal keys) and whether it is given.

    Dates and numbers are their own keys (their nanoseconds, their bits): no hashing of a million
    rows; text is factorized (categoricals already are)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = np.asarray(values.cat.codes, dtype=np.int64)
        return codes, codes >= 0
    if _is_datetime(values.dtype):
        return np.asarray(values.array.asi8, dtype=np.int64), values.notna().to_numpy()  # type: ignore[attr-defined]
    if values.dtype.kind == "f":
        v = values.to_numpy(dtype=np.float64) + 0.0  # -0.0 and 0.0 are one value
        return v.view(np.int64), ~np.isnan(v)
    codes = pd.factorize(values)[0].astype(np.int64)
    return codes, codes >= 0


def _in_background(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
    """``fn(*args, **kwargs)`` started in a thread of its own; ``.result()`` waits for it (and raises
    what it raised)."""
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(fn, *args, **kwargs)
    finally:
        pool.shutdown(wait=False)  # the thread ends when fn returns


def _case_value_conflicts(
    evs: _Events, rows: Any, case_level: Mapping[str, pd.Series], *, outcome_values: Mapping[str, str] | None
) -> list[_Conflicts]:
    """The case-level columns whose values differ between the rows of a case (compared as
    written; outcomes by what they mean, so ``Won`` and ``closed_won`` agree).

    The columns are independent and their work is numpy's (which releases the GIL), so long logs
    check them side by side in threads."""
    if evs.starts is None or not len(evs.codes):
        return []
    ends = np.r_[evs.starts[1:], len(evs.codes)] - 1

    def check(item: tuple[str, pd.Series]) -> list[_Conflicts]:
        return _column_conflicts(item[0], item[1], evs, rows, ends, outcome_values=outcome_values)

    items = list(case_level.items())
    if len(evs.codes) < 200_000 or len(items) < 2:
        return [cf for item in items for cf in check(item)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        return [cf for found in pool.map(check, items) for cf in found]


def _column_conflicts(
    k: str, values: pd.Series, evs: _Events, rows: Any, ends: np.ndarray, *, outcome_values: Mapping[str, str] | None
) -> list[_Conflicts]:
    """One case-level column's conflicts: rows whose value differs from the one kept for their case."""
    assert evs.starts is not None
    pos = _case_value_positions(evs, values, evs.starts, ends)
    if k == "outcome":
        canon = np.asarray(_outcome_labels(values, outcome_values)[0].cat.codes, dtype=np.int64)
        keys = np.where(values.notna().to_numpy(), canon, -1)
        given = keys >= 0
    else:
        keys, given = _value_keys(values)
    per_ev, given_ev = evs.at_src(keys), evs.at_src(given)
    kept = per_ev[np.maximum(pos, 0)][evs.codes]
    differs = given_ev & (pos >= 0)[evs.codes] & (per_ev != kept)
    if not differs.any():
        return []
    if k != "outcome":
        return _conflicts_of(evs, rows, values, pos, differs, column=k, kind="value")
    is_open = OUTCOMES.index("open")
    closed_both = differs & (per_ev != is_open) & (kept != is_open)
    reopened = differs & (kept == is_open)
    return [
        *_conflicts_of(evs, rows, values, pos, closed_both, column=k, kind="outcome"),
        *_conflicts_of(evs, rows, values, pos, reopened, column=k, kind="reopened"),
    ]


def _conflicts_of(
    evs: _Events, rows: Any, values: pd.Series, pos: np.ndarray, differs: np.ndarray, *, column: str, kind: str
) -> list[_Conflicts]:
    """The cases with a row flagged in ``differs`` (positions into the events), with the first such
    row of each and the row whose value is kept."""
    at = np.flatnonzero(differs)
    if not len(at):
        return []
    case, first = np.unique(evs.codes[at], return_index=True)
    other_src = np.asarray(evs.src[at[first]])
    kept_src = np.asarray(evs.src[pos[case]])
    return [
        _Conflicts(
            column=column, kind=kind, case_ids=np.asarray(evs.case_ids[case], dtype=object),
            kept=np.asarray(values.iloc[kept_src].to_numpy(), dtype=object), kept_rows=np.asarray(rows[kept_src]),
            other=np.asarray(values.iloc[other_src].to_numpy(), dtype=object), other_rows=np.asarray(rows[other_src]),
        )
    ]


def _report_conflicts(
    c: pd.DataFrame, conflicts: list[_Conflicts], where: _CaseSource, sk: Skips, ck: np.ndarray
) -> np.ndarray:
    """Two closed outcomes on one case's rows are bad cases (an error, or skipped and counted with
    all their rows); any other value that changed between a case's rows is noted, with how many
    cases and an example: the last row in time order was kept. Cases whose value came from the
    case table (which wins) are left out."""
    for cf in conflicts:
        on = pd.Series(np.arange(len(cf.case_ids)), index=pd.Index(cf.case_ids, dtype=object))
        at = c["case_id"].astype(object).map(on)
        hit = at.notna().to_numpy() & ck  # (cases already skipped are not reported twice)
        if hit.any() and f"_row:{cf.column}" in c.columns:  # the value kept came from the events
            i = at[hit].to_numpy(dtype=np.int64)
            hit[hit] = c[f"_row:{cf.column}"].to_numpy()[hit] == cf.kept_rows[i]
        if not hit.any():
            continue
        i = at.fillna(-1).to_numpy(dtype=np.int64)
        name = sk.names.get(cf.column, cf.column)
        if cf.kind == "outcome":
            ck &= _bad_outcome_conflicts(c, cf, i, hit & ck, where, sk)
            continue
        j = int(i[np.flatnonzero(hit)[0]])
        # (no row numbers: an XES file's differ between its readers)
        quote = cf.column != "amount"  # (amounts read as text are numbers)
        example = (
            f"e.g. case {str(cf.case_ids[j])!r}: {_shown(cf.other[j], quote)}, later {_shown(cf.kept[j], quote)}"
        )
        n = int(hit.sum())
        if cf.kind == "reopened":
            sk.notes.append(
                f"{name}: {n:,} case{'s' if n > 1 else ''} closed on a row but open on a later one ({example}): "
                "kept open, as the last row in time order says"
            )
        else:
            sk.notes.append(
                f"{name}: {n:,} case{'s' if n > 1 else ''} with different values on their rows ({example}): "
                "each case's last row in time order kept (an export updates a case over time)"
            )
    return ck


def _shown(value: object, quote: bool = True) -> str:
    """A cell's value for a message: text quoted, numbers and dates as written."""
    return repr(value) if isinstance(value, str) and quote else str(value)


def _bad_outcome_conflicts(
    c: pd.DataFrame, cf: _Conflicts, i: np.ndarray, mask: np.ndarray, where: _CaseSource, sk: Skips
) -> np.ndarray:
    """Cases with two closed outcomes (``mask``, ``i`` their entry in ``cf``) as bad cases."""
    safe = np.maximum(i, 0)
    other_rows = np.where(i >= 0, cf.other_rows[safe], where.rows)

    def expected(p: int, value: object) -> str:
        j = int(safe[p])
        return (
            f"one outcome per case, but row {cf.kept_rows[j]} (its last in time order) says {cf.kept[j]!r} "
            f"for the same case {str(cf.case_ids[j])!r}"
        )

    return sk.bad(
        mask, rows=other_rows, column=cf.column, values=pd.Series(cf.other[safe], dtype=object),
        expected=expected,
        fix="correct the outcome on the case's rows so that they agree (or give it on its last row only).",
        reason="conflicting outcomes on a case's rows", weights=where.weights,
    )


# --- vectorised group helpers (codes are 0..n-1) ---------------------------------------------

def _group_first_valid(codes: np.ndarray, vals: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, None, dtype=object)
    valid = pd.notna(vals)
    if valid.any():
        idx = np.flatnonzero(valid)[::-1]
        out[codes[idx]] = np.asarray(vals, dtype=object)[idx]
    return out


def _group_last_valid_pos(codes: np.ndarray, vals: np.ndarray, n: int) -> np.ndarray:
    """Per group, the position of the last non-missing value in row order (-1 if none)."""
    out = np.full(n, -1, dtype=np.int64)
    valid = pd.notna(vals)
    if np.any(valid):
        idx = np.flatnonzero(valid)
        out[codes[idx]] = idx  # later rows overwrite earlier ones
    return out


def _group_last_valid(codes: np.ndarray, vals: np.ndarray, n: int) -> np.ndarray:
    """Per group, the last non-missing value in row order (rows are time-sorted within a case)."""
    out = np.full(n, None, dtype=object)
    valid = pd.notna(vals)
    if valid.any():
        idx = np.flatnonzero(valid)
        out[codes[idx]] = np.asarray(vals, dtype=object)[idx]  # later rows overwrite earlier ones
    return out
