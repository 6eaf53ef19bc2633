"""Turn a loader's canonical-named raw frames into a validated :class:`~salesproc.history.History`.

Every loader ends here, so validation happens once, the same way, for every source. All work is
vectorised: no Python loop runs over rows or cases.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

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
from salesproc.load._options import Errors, MilestoneRule

# case-level columns a flat event log may carry on every row
CASE_LEVEL = ["outcome", "kind", "created", "closed", "amount", "segment", "target_date", "case_owner"]

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




def parse_timestamps(
    values: pd.Series,
    *,
    tz: str = "UTC",
    dayfirst: bool = False,
    date_format: str | None = None,
) -> pd.Series:
    """Parse to ``datetime64[ns, UTC]``; unparseable values become NaT (the caller reports them).

    Values with an offset are converted to UTC; values without one are read in ``tz``.
    """
    s = values
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert("UTC").astype(TS_DTYPE)
    if pd.api.types.is_datetime64_dtype(s.dtype):
        out = s.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        return out.dt.tz_convert("UTC").astype(TS_DTYPE)
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        # Excel serial dates are handled by the Excel reader; plain numbers are not dates
        return pd.Series(pd.NaT, index=s.index, dtype=TS_DTYPE)
    txt = s.astype("str")
    txt = txt.where(s.notna(), None)
    txt = txt.str.strip()
    txt = txt.where(txt != "", None)
    fmt = date_format or "ISO8601"
    out = pd.to_datetime(txt, utc=True, format=fmt, errors="coerce").astype(TS_DTYPE)
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
                rest[part] = pd.to_datetime(
                    rest_txt[part], utc=True, format="mixed", dayfirst=first, errors="coerce"
                ).astype(TS_DTYPE)
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


_DAY_MONTH = r"^\s*(\d{1,2})[./\-](\d{1,2})[./\-]\d{2,4}(?!\d)"


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
    txt = values.astype("str").where(values.notna(), "")
    found = txt.str.extract(_DAY_MONTH)
    first = pd.to_numeric(found[0], errors="coerce")
    second = pd.to_numeric(found[1], errors="coerce")
    hit = (second > 12) & (first <= 12) if dayfirst else (first > 12) & (second <= 12)
    return hit.fillna(False).to_numpy(dtype=bool)


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
) -> np.ndarray:
    """Report unreadable dates among ``candidates``; a wrong day/month order gets its own message."""
    bad = parsed.isna().to_numpy() & candidates
    keep = np.ones(len(parsed), dtype=bool)
    if not bad.any():
        return keep
    if date_format is None:
        order = bad & date_order_conflicts(raw, dayfirst=dayfirst)
        if dayfirst:
            exp = "a day-first date (dayfirst=True was passed)"
            why = "month-first date while dayfirst=True"

            def fx(i: int, v: object) -> str:
                return f"{v!r} is written month-first: pass dayfirst=False."
        else:
            exp = "a month-first date (dayfirst=False, the default)"
            why = "day-first date while dayfirst=False"

            def fx(i: int, v: object) -> str:
                return (
                    f"the column holds day-first dates such as {v!r}: pass dayfirst=True, "
                    "or give the exact format, e.g. date_format='%d.%m.%Y'."
                )
        keep &= sk.bad(
            order, rows=rows, column=column, values=raw, expected=exp, fix=fx, reason=why, weights=weights
        )
        bad &= ~order
    keep &= sk.bad(
        bad, rows=rows, column=column, values=raw, expected=expected, fix=fix, reason=reason, weights=weights
    )
    return keep


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
    if date_format is not None:
        try:
            pd.to_datetime(pd.Series(["2024-01-31"]), format=date_format, errors="coerce")
        except (ValueError, TypeError) as exc:
            raise ParameterError(
                "The 'date_format' parameter must be a strftime format such as '%d.%m.%Y'. "
                f"Got {date_format!r} instead ({exc})."
            ) from None


def parse_amounts(values: pd.Series, *, decimal: str = ".") -> pd.Series:
    """Numbers, also from European text such as ``1.234,50`` when ``decimal=','``."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("float64")
    if values.dtype == object:
        # numbers kept as Python objects, read as the text route reads them: integers always,
        # floats when the decimal mark is a point (their text then has no other separator)
        kind = pd.api.types.infer_dtype(values, skipna=True)
        if kind == "integer" or (decimal == "." and kind in ("floating", "mixed-integer-float")):
            return values.astype("float64")
    txt = values.astype("str").where(values.notna(), None).str.strip()
    txt = txt.str.replace(r"[\s\u00a0$€£¥]", "", regex=True)
    if decimal == ",":
        txt = txt.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    else:
        txt = txt.str.replace(",", "", regex=False)
    txt = txt.where(txt != "", None)
    return pd.to_numeric(txt, errors="coerce").astype("float64")


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
    idx = pa.array(codes, mask=codes < 0)
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
    decimal: str = ".",
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
    if errors not in ("raise", "skip"):
        raise ParameterError(f"The 'errors' parameter must be 'raise' or 'skip'. Got {errors!r} instead.")
    if kind not in KINDS:
        raise ParameterError(f"The 'kind' parameter must be one of {KINDS}. Got {kind!r} instead.")
    check_reading_parameters(tz=tz, decimal=decimal, date_format=date_format)
    sk = skips or Skips(source=source, errors=errors)
    sk.notes.extend(notes)
    if column_names:
        sk.names.update({str(k): str(v) for k, v in column_names.items()})
    n_event_rows = len(events)
    n_case_rows = 0 if cases is None else len(cases)
    if rows_read is None:
        rows_read = n_event_rows + n_case_rows

    ev = events.reset_index(drop=True)
    rows = _rows_of(ev, row_offset, lazy=True)
    ev = ev.drop(columns=["_row"], errors="ignore")
    keep = np.ones(len(ev), dtype=bool)

    # --- events: id, name, time, type --------------------------------------------------------
    # ids and names are cleaned once per distinct value and carried as codes (-1: none)
    no_text, no_values = pd.Series([], dtype="str"), pd.Index([], dtype="str")
    pre = (
        _factorize_text({c: ev[c] for c in ("case_id", "name", "type") if c in ev.columns}, ordered=["case_id"])
        if len(ev) else {}
    )
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
    ts = parse_timestamps(ev["timestamp"], tz=tz, dayfirst=dayfirst, date_format=date_format) if len(ev) else pd.Series([], dtype=TS_DTYPE)
    keep &= check_dates(
        sk, ts, ev["timestamp"] if len(ev) else ts, candidates=keep, rows=rows, column="timestamp",
        dayfirst=dayfirst, date_format=date_format,
        expected="a date or timestamp such as 2024-03-31 or 2024-03-31T14:05:00+02:00",
        fix=("correct the cell; for day-first dates pass dayfirst=True, or give the exact format, "
             "e.g. date_format='%d.%m.%Y'."),
        reason="unparseable or missing timestamp",
    )
    etype_code: np.ndarray
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
    else:
        match = milestone_matcher(milestones)
        if match is None:
            etype_code = np.zeros(len(ev), dtype=np.int8)
            if len(ev):
                sk.notes.append(
                    "events carry no type: all treated as milestones (pass milestones=... to name them)"
                )
        else:
            hits = match(pd.Series([*name_values.tolist(), ""], dtype="str"))  # last: no name
            etype_code = np.where(hits[name_codes], 0, 1).astype(np.int8)

    ev_kind_col = "kind" in ev.columns

    # --- terminal outcome events ------------------------------------------------------------
    term_outcome = None
    if outcome_events:
        term_map: dict[str, str] = {}
        for outc, names in outcome_events.items():
            if outc not in OUTCOMES:
                raise ParameterError(
                    f"The 'outcome_events' parameter must map outcomes ({OUTCOMES}) to event names. "
                    f"Got key {outc!r} instead."
                )
            for nm in [names] if isinstance(names, str) else names:
                term_map[str(nm)] = outc
        term_of_name = pd.Series(name_values, dtype=object).map(term_map).to_numpy(dtype=object)
        term_outcome = pd.Series(np.append(term_of_name, np.nan)[name_codes], dtype=object)

    # Work on positions into ``ev`` (``src``) and integer codes; the event table is built once, at
    # the end, by taking each column at those positions (no object copies of long columns).
    keep_idx: np.ndarray | _Span = _Span(len(keep)) if keep.all() else np.flatnonzero(keep)
    src = keep_idx
    ident = len(keep_idx) == len(ev)  # src is 0..n-1: columns are used as they are, not taken

    def at_src(values):  # type: ignore[no-untyped-def]
        return values if ident else values.take(src)

    # case codes in order of first appearance among the kept rows
    if ident:
        kcodes, uniq = id_codes, id_values
    else:
        kcodes, first_seen = pd.factorize(id_codes[keep_idx])
        uniq = id_values[first_seen]
    uniq_ids = _str_index(uniq)
    kts = at_src(i8(ts)) if len(ts) else np.zeros(0, np.int64)
    ncodes_all, name_uniq = at_src(name_codes), name_values
    tcode = at_src(etype_code)
    case_level_cols = {c: ev[c] for c in CASE_LEVEL if c in ev.columns}
    case_attr_cols = [c for c in ev.columns if isinstance(c, str) and c.startswith("case:")]
    for attr in case_attr_cols:
        case_level_cols[attr[len("case:"):]] = ev[attr]
    extra_cols = [
        c for c in ev.columns
        if c not in set(EVENT_COLUMNS) | set(CASE_LEVEL) | set(case_attr_cols)
    ]
    term = at_src(term_outcome.to_numpy()) if term_outcome is not None else None

    # order by case and time once (stable; skipped when the rows already are); duplicates then
    # sit side by side
    if not _in_case_time_order(kcodes, kts):
        order = _case_time_order(kcodes, kts)
        ident = False
        src, kts = src[order], kts[order]
        # the sorted codes are each code repeated as often as it occurs: no gather needed
        kcodes = np.repeat(np.arange(len(uniq), dtype=kcodes.dtype), np.bincount(kcodes, minlength=len(uniq)))
        ncodes_all, tcode = ncodes_all[order], tcode[order]
        if term is not None:
            term = np.asarray(term)[order]
    # a duplicate repeats the case and time of the row before it: look only at such runs
    tie = (kcodes[1:] == kcodes[:-1]) & (kts[1:] == kts[:-1])
    dup = np.zeros(len(kcodes), dtype=bool)
    if tie.any():
        run = np.r_[tie, False] | np.r_[False, tie]
        sub = pd.DataFrame({"c": kcodes[run], "n": ncodes_all[run], "t": kts[run], "y": tcode[run]})
        dup[run] = sub.duplicated().to_numpy()
    if dup.any():
        sk.count("duplicate event (same case, name, type and time): kept once", int(dup.sum()))
        nd = ~dup
        ident = False
        src, kcodes, kts = src[nd], kcodes[nd], kts[nd]
        ncodes_all, tcode = ncodes_all[nd], tcode[nd]
        if term is not None:
            term = term[nd]

    # --- cases from events (events are grouped by case and time-sorted) ------------------------
    codes = kcodes
    moved = False  # rows left the event table after ``starts`` was found
    n_from_events = len(uniq)
    ev_ts = kts
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if len(codes) else np.zeros(0, int)
    ends = np.r_[starts[1:], len(codes)] - 1 if len(codes) else np.zeros(0, int)
    from_ev = pd.DataFrame({"case_id": uniq_ids})
    from_ev["_first"] = _utc(ev_ts[starts])
    from_ev["_last"] = _utc(ev_ts[ends])
    # the source row of kept position p is rows[src[p]]
    from_ev["_row"] = rows[src[starts]] if len(starts) else np.zeros(0, np.int64)
    # source rows each case stands for (before terminal events leave the table): a case skipped
    # later counts all of them
    n_rows = (ends - starts + 1).astype(np.int64)  # codes are sorted: a case's rows sit together
    from_ev["_n_rows"] = n_rows
    for k, col_values in case_level_cols.items():
        given = col_values.notna().to_numpy()
        valid = None if given.all() else at_src(given)
        if valid is None or valid.all():  # the usual case: every row repeats it, so each case's last row has it
            pos = ends
        elif (
            (some := np.logical_or.reduceat(valid, starts)) == np.logical_and.reduceat(valid, starts)
        ).all():  # given on all of a case's rows or on none
            pos = np.where(some, ends, -1)
        else:
            at_valid = np.flatnonzero(valid)
            pos = np.full(n_from_events, -1, dtype=np.int64)
            pos[codes[at_valid]] = at_valid  # later rows overwrite earlier ones
        has_value = pos >= 0
        at = src[np.maximum(pos, 0)]
        is_text = _is_plain_str(col_values.dtype) or _has_text_categories(col_values)
        if (k in ("created", "closed", "target_date") and _is_datetime(col_values.dtype)) or (
            is_text and has_value.any()
        ):
            # case dates stay dates (read once, never through text); text stays text, as the
            # object route below would infer it
            taken = col_values.array.take(np.where(has_value, at, -1), allow_fill=True)
            if cases is not None and isinstance(col_values.dtype, pd.CategoricalDtype):
                taken = np.asarray(taken, dtype=object)  # merged with the case table's values below
            from_ev[k] = taken
        elif has_value.all():
            from_ev[k] = col_values.array.take(at)  # numbers stay numbers
        else:
            picked = np.full(n_from_events, None, dtype=object)
            picked[has_value] = np.asarray(col_values.iloc[at[has_value]].to_numpy(), dtype=object)
            from_ev[k] = picked
        # the row a case-level value came from, for messages about it
        from_ev[f"_row:{k}"] = np.where(has_value, rows[src[np.maximum(pos, 0)]], from_ev["_row"].to_numpy())

    if term is not None:
        is_term = pd.notna(term)
        if is_term.any():
            tcodes = codes[is_term]
            t_out = _group_last_valid(tcodes, term[is_term], n_from_events)
            t_time = np.full(n_from_events, np.iinfo(np.int64).min)
            np.maximum.at(t_time, tcodes, ev_ts[is_term])
            has = pd.notna(t_out)
            cur = from_ev["outcome"] if "outcome" in from_ev.columns else pd.Series([None] * n_from_events)
            from_ev["outcome"] = np.where(has, t_out, cur.to_numpy(dtype=object))
            # int64 min is NaT: cases without a terminal event get none
            tt = pd.Series(pd.to_datetime(np.where(has, t_time, np.iinfo(np.int64).min), utc=True))
            if "closed" in from_ev.columns:
                old = parse_timestamps(pd.Series(from_ev["closed"]), tz=tz, dayfirst=dayfirst)
                from_ev["closed"] = old.where(old.notna(), tt)
            else:
                from_ev["closed"] = tt.astype(TS_DTYPE)
            sk.notes.append(
                f"{int(is_term.sum()):,} terminal events became case outcomes and were removed from events"
            )
            nt = ~is_term
            ident = False
            moved = True  # per-case first rows are found again below
            src, codes, ncodes_all, tcode, kts = src[nt], codes[nt], ncodes_all[nt], tcode[nt], kts[nt]

    # --- merge with a case table -------------------------------------------------------------
    if cases is not None:
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
        c = merged.drop(columns=["_row_first"])
    else:
        c = from_ev

    if "case_owner" in c.columns:
        c = c.rename(columns={"case_owner": "owner"}) if "owner" not in c.columns else c.drop(columns=["case_owner"])
    owner_of: tuple[Any, pd.Series] | None = None
    if "owner" not in c.columns and len(src):
        # each case's first event owner, in time order
        owners = _event_text(ev, "owner", None if ident else np.asarray(src))
        owner_of = (src, owners)  # the event table's owner column, if ``src`` stays as it is
        has_owner = owners.notna().to_numpy()
        if has_owner.all() and not moved:
            first_pos = starts
        else:
            first_pos = np.full(n_from_events, -1, dtype=np.int64)
            at_owner = np.flatnonzero(has_owner)[::-1]
            first_pos[codes[at_owner]] = at_owner  # earlier rows overwrite later ones
        if cases is None:  # c is from_ev: one row per case, in code order
            c["owner"] = owners.array.take(first_pos, allow_fill=True)
        else:
            with_owner = first_pos >= 0
            first_owner = pd.Series(owners.array.take(first_pos[with_owner]), index=uniq_ids[with_owner])
            c["owner"] = c["case_id"].map(first_owner)
    c_rows = c["_row"].to_numpy(dtype=np.int64) if "_row" in c.columns else np.arange(len(c)) + row_offset
    weights = c["_n_rows"].to_numpy(dtype=np.int64) if "_n_rows" in c.columns else np.ones(len(c), np.int64)

    def rows_for(col: str) -> np.ndarray:
        """Source row of each case's ``col`` value (its case-table row, or the event row it came from)."""
        key = f"_row:{col}"
        if key not in c.columns:
            return c_rows
        return pd.Series(c[key]).fillna(pd.Series(c_rows, index=c.index)).to_numpy(dtype=np.int64)

    # --- kinds, dates, amounts, outcomes ---------------------------------------------------
    kinds = (
        _norm_token(c["kind"]).replace({"": kind, "opportunity": "deal", "deals": "deal", "projects": "project"})
        if "kind" in c.columns or ev_kind_col
        else pd.Series(
            pd.Categorical.from_codes(np.full(len(c), KINDS.index(kind), dtype=np.int8), dtype=_KIND_DTYPE),
            index=c.index,
        )
    )
    ck = np.ones(len(c), dtype=bool)
    ck &= sk.bad(
        ~kinds.isin(KINDS).to_numpy(), rows=rows_for("kind"), column="kind", values=c.get("kind", kinds),
        expected="'deal' or 'project'", fix="use one of those words.", reason="unknown case kind",
        weights=weights,
    )
    for col in ("created", "closed", "target_date"):
        if col in c.columns:
            raw = pd.Series(c[col])
            parsed = parse_timestamps(raw, tz=tz, dayfirst=dayfirst, date_format=date_format)
            given = raw.notna().to_numpy().copy()
            if given.any() and not _is_datetime(raw.dtype):  # a date is never blank text
                given[given] = (raw[given].astype("str").str.strip() != "").to_numpy()
            ck &= check_dates(
                sk, parsed, raw, candidates=given & ck, rows=rows_for(col), column=col,
                dayfirst=dayfirst, date_format=date_format,
                expected="a date such as 2024-03-31", fix="correct the date (or leave it empty).",
                reason=f"unparseable {col} date", weights=weights,
            )
            c[col] = parsed
        else:
            c[col] = pd.Series(pd.NaT, index=c.index, dtype=TS_DTYPE)
    if "_first" not in c.columns:
        c["_first"] = pd.Series(pd.NaT, index=c.index, dtype=TS_DTYPE)
        c["_last"] = pd.Series(pd.NaT, index=c.index, dtype=TS_DTYPE)
    c["created"] = c["created"].where(c["created"].notna(), c["_first"])
    ck &= sk.bad(
        c["created"].isna().to_numpy() & ck, rows=rows_for("created"), column="created", values=c["created"],
        expected="a creation date, or at least one dated event", fix="give the case a created date.",
        reason="case with no date at all", weights=weights,
    )
    if "amount" in c.columns:
        amt = parse_amounts(pd.Series(c["amount"]), decimal=decimal)
        rawa = pd.Series(c["amount"])
        bada = amt.isna().to_numpy() & rawa.notna().to_numpy()
        if bada.any():
            bada[bada] = (rawa[bada].astype("str").str.strip() != "").to_numpy()
        ck &= sk.bad(
            bada & ck, rows=rows_for("amount"), column="amount", values=rawa,
            expected="a number such as 12500.50",
            fix="correct the cell; for European number formats pass decimal=','.",
            reason="unparseable amount", weights=weights,
        )
        c["amount"] = amt
    else:
        c["amount"] = np.nan

    rawo = pd.Series(c["outcome"]) if "outcome" in c.columns else pd.Series([None] * len(c), index=c.index, dtype=object)
    outcome, okeep = normalize_outcomes(
        rawo, kinds, outcome_values=outcome_values, skips=sk, rows=rows_for("outcome"), weights=weights
    )
    ck &= okeep
    is_proj = (kinds == "project").to_numpy()
    # projects without an explicit outcome: on time / late from actual end vs planned end
    derive_proj = is_proj & (rawo.isna() | (_norm_token(rawo) == "")).to_numpy() if is_proj.any() else is_proj
    if derive_proj.any():
        closed_p = c["closed"]
        tgt = c["target_date"]
        lab = np.where(
            closed_p.isna(), "open", np.where((closed_p <= tgt).fillna(False).to_numpy(dtype=bool), "on_time", "late")
        )
        no_target = derive_proj & closed_p.notna().to_numpy() & tgt.isna().to_numpy()
        ck &= sk.bad(
            no_target & ck, rows=rows_for("target_date"), column="target_date", values=c["target_date"],
            expected="a planned end date for a finished project (to tell on time from late)",
            fix="map the planned-end column, e.g. mapping={'target_date': 'enddate_planned'}, or give an outcome.",
            reason="finished project without a planned end date", weights=weights,
        )
        outcome = outcome.where(~derive_proj, lab)
    if not ("outcome" in c.columns or outcome_events) and (~is_proj).any():
        sk.notes.append("no outcome column or outcome_events rule: deals are all open")
    c["outcome"] = outcome
    closed_case = (c["outcome"] != "open").to_numpy()
    # closed date: given, else the last event; open cases have none (a given one is an expected close)
    c["closed"] = c["closed"].where(~(closed_case & c["closed"].isna().to_numpy()), c["_last"])
    if (~closed_case & c["closed"].notna().to_numpy()).any():
        c["expected_close"] = c["closed"].where(~closed_case)
        c["closed"] = c["closed"].where(closed_case)
    ck &= sk.bad(
        closed_case & c["closed"].isna().to_numpy() & ck, rows=rows_for("closed"), column="closed",
        values=c["closed"], expected="a close date for a closed case (or at least one event)",
        fix="give the close date.", reason="closed case without a close date", weights=weights,
    )

    c = c.loc[ck].reset_index(drop=True)
    kinds = kinds[ck].reset_index(drop=True)
    if not ck.all():
        # their rows are already counted under the case's reason (see ``weights``)
        in_c = uniq_ids.isin(c["case_id"])
        kept_ev = in_c[codes]
        ident = ident and bool(kept_ev.all())
        if owner_of is not None and owner_of[0] is src:
            owner_of = (None, owner_of[1][kept_ev].reset_index(drop=True))
        src, codes, ncodes_all, tcode = src[kept_ev], codes[kept_ev], ncodes_all[kept_ev], tcode[kept_ev]
        kts = kts[kept_ev]
        if owner_of is not None and owner_of[0] is None:
            owner_of = (src, owner_of[1])

    c["kind"] = kinds
    c["outcome"] = _categorical(c["outcome"], OUTCOMES)
    c["status"] = pd.Categorical.from_codes(_STATUS_CODE_OF_OUTCOME[c["outcome"].cat.codes], dtype=_STATUS_DTYPE)
    for col in ("owner", "segment"):
        if col not in c.columns:
            c[col] = None
        if _has_text_categories(c[col]):
            c[col] = _categorical_text(c[col])
        elif not _is_plain_str(c[col].dtype):
            c[col] = pd.Series(c[col]).astype("str").where(pd.Series(c[col]).notna(), None)
    c = c.drop(columns=[x for x in c.columns if x in ("_first", "_last", "_n_rows") or x.startswith("_row")])

    report = LoadReport(
        source=source,
        rows_read=int(rows_read),
        rows_loaded=int(rows_read - sum(sk.counts.values())),
        skipped=dict(sk.counts),
        notes=tuple(dict.fromkeys(sk.notes)),
    )
    e = pd.DataFrame(
        {
            "case_id": pd.Categorical.from_codes(codes, categories=uniq_ids, validate=False),
            "name": pd.Categorical.from_codes(ncodes_all, categories=name_uniq, validate=False),
            "type": pd.Categorical.from_codes(
                tcode, categories=pd.Index(EVENT_TYPES, dtype="str"), validate=False
            ),
            "timestamp": ts.array if ident else _utc(kts).array,  # kts: the kept times, in order
            "owner": (
                owner_of[1] if owner_of is not None and owner_of[0] is src
                else _event_text(ev, "owner", None if ident else np.asarray(src))
            ),
            "role": _event_text(ev, "role", None if ident else np.asarray(src)),
        },
        copy=False,
    )
    if extra_cols:
        # all at once: a wide export (hundreds of columns) must not fragment the frame
        extras = (ev[extra_cols] if ident else ev[extra_cols].iloc[np.asarray(src)]).reset_index(drop=True)
        extras.columns = [str(x) for x in extra_cols]
        e = pd.concat([e, extras], axis=1)
    return finalize(c, e, report, ordered=cases is None)  # else the case table sets the order


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
