"""Put a built case table and event table into the shape a :class:`~salesproc.history.History`
promises: column order, dtypes, categories, the events sorted by case and time, the schema checked.

Every loader ends here (through :func:`salesproc.history._history.finalize`), and so does reading a
saved history back (``History.read_parquet``), so those invariants are established in one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from salesproc.errors import InputError
from salesproc.history._schema import (
    CASE_COLUMNS,
    EVENT_COLUMNS,
    EVENT_TYPES,
    KINDS,
    OUTCOMES,
    STATUS_OF_OUTCOME,
    STATUSES,
    TS_DTYPE,
)

__all__ = ["finalize_frames", "i8"]


def i8(s: pd.Series) -> np.ndarray:
    """Nanoseconds since the epoch (UTC) of a ``datetime64[ns, UTC]`` series; NaT is int64 min."""
    return s.array.asi8  # type: ignore[attr-defined,no-any-return]


def _is_plain_str(dtype: Any) -> bool:
    """The default text dtype (``"str"``), which ``astype("str")`` leaves as it is."""
    return isinstance(dtype, pd.StringDtype) and dtype.na_value is np.nan  # type: ignore[comparison-overlap]


_STATUS_DTYPE = pd.CategoricalDtype(pd.Index(STATUSES, dtype="str"))


_STATUS_CODE_OF_OUTCOME = np.array([STATUSES.index(STATUS_OF_OUTCOME[o]) for o in OUTCOMES] + [-1], dtype=np.int8)


def _case_time_order(codes: np.ndarray, ts: np.ndarray, *, sorted_codes: np.ndarray | None = None) -> np.ndarray:
    """``np.lexsort((ts, codes))``: positions ordered by case code, then time, ties in row order.
    ``sorted_codes`` (an array as long as ``codes``), when given, is filled with the codes in that order.

    Case code, time and row position are packed into one 64-bit key per row, distinct for every
    row, and the keys sorted (a vectorised sort: no stability is needed, as no two keys are equal).
    Rows already in time order (an export sorted by date) need no time in the key, their position
    says it; other times are counted from the earliest, in the finest unit (nanosecond, ...,
    second) that fits and that they are all whole numbers of. Keys that would not fit in 64 bits
    take a stable sort by time first.

    >>> codes, ts = np.array([1, 0, 1, 0, 2]), np.array([5, 9, 3, 9, 1])
    >>> _case_time_order(codes, ts).tolist(), np.lexsort((ts, codes)).tolist()
    ([1, 3, 2, 0, 4], [1, 3, 2, 0, 4])
    """
    n = len(codes)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    pos_bits = (n - 1).bit_length()
    free_bits = 64 - pos_bits - int(codes.max()).bit_length()  # what the time may take
    if free_bits < 0:
        order = np.lexsort((ts, codes))
        if sorted_codes is not None:
            np.take(codes, order, out=sorted_codes)
        return order
    if _ascending(ts):
        return _packed_order(codes, None, pos_bits, sorted_codes)
    t = _time_steps(ts, free_bits)
    if t is not None:
        return _packed_order(codes, t, pos_bits, sorted_codes)
    by_time = np.argsort(ts, kind="stable")
    return by_time[_packed_order(codes[by_time], None, pos_bits, sorted_codes)]


def _packed_order(
    codes: np.ndarray, t: np.ndarray | None, pos_bits: int, sorted_codes: np.ndarray | None
) -> np.ndarray:
    """The positions that sort the keys ``code | t | position`` (bit fields, most significant
    first); ``t`` (non-negative, changed in place) may be None. ``sorted_codes``: as for
    :func:`_case_time_order`."""
    time_bits = 0 if t is None else int(t.max()).bit_length()
    key = codes.astype(np.uint64)
    key <<= np.uint64(time_bits + pos_bits)
    if t is not None:
        tu = t.view(np.uint64)
        tu <<= np.uint64(pos_bits)
        key |= tu
    key |= np.arange(len(key), dtype=np.uint64)
    key.sort()
    if sorted_codes is not None:  # the code is the key's top bits
        np.right_shift(key, np.uint64(time_bits + pos_bits), out=sorted_codes, casting="unsafe")
    key &= np.uint64((1 << pos_bits) - 1)
    return key.view(np.int64)


def _time_steps(ts: np.ndarray, bits: int) -> np.ndarray | None:
    """Times as non-negative integers below ``2**bits`` in the same order, ties kept: counted from
    the earliest, in the finest of nanoseconds, microseconds, milliseconds and seconds that fits
    and that every time is a whole number of; None if none does."""
    lo, hi = int(ts.min()), int(ts.max())
    if bits <= 0 or hi - lo >= 2**63:
        return None
    rel = ts - np.int64(lo)  # (exact: every difference fits)
    for unit in (1, 10**3, 10**6, 10**9):
        if ((hi - lo) // unit).bit_length() <= bits and (unit == 1 or not (rel % unit).any()):
            return rel if unit == 1 else rel // unit
    return None


def _ascending(values: np.ndarray, block: int = 1 << 16) -> bool:
    """No value smaller than the one before it; checked a block at a time (blocks overlap by
    one), so no temporary as long as the column is made. (Compared, not subtracted: a difference
    of two int64 values can overflow.)"""
    for lo in range(0, len(values) - 1, block):
        v = values[lo : lo + block + 1]
        if (v[1:] < v[:-1]).any():
            return False
    return True


def _in_case_time_order(codes: np.ndarray, ts: np.ndarray, block: int = 1 << 16) -> bool:
    """Rows grouped by case code (ascending) and in time order within a case.

    Checked a block at a time (blocks overlap by one row), so the temporaries stay in cache."""
    for lo in range(0, len(codes) - 1, block):
        c = codes[lo : lo + block + 1]
        if (c[1:] < c[:-1]).any():
            return False
        t = ts[lo : lo + block + 1]
        if ((t[1:] < t[:-1]) & (c[1:] == c[:-1])).any():
            return False
    return True


def finalize_frames(
    cases: pd.DataFrame, events: pd.DataFrame, *, ordered: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Order columns, set dtypes, sort events, check the schema.

    ``ordered`` says the events are already grouped by case, in the cases' order, and in time
    order within each case (the builder has made sure of it)."""
    c = _finalize_cases(cases)
    e = _finalize_events(events, pd.Index(c["case_id"]).rename(None), ordered=ordered)
    return c, e


def _finalize_cases(cases: pd.DataFrame) -> pd.DataFrame:
    """The case table with every schema column, in schema order (extra columns after), in its dtypes."""
    missing = [c for c in ("case_id", "kind", "outcome", "created") if c not in cases.columns]
    if missing:
        raise InputError(f"case table lacks {missing}; expected the columns {CASE_COLUMNS}.")
    c = _with_optional_case_columns(cases.copy(deep=False))  # copy-on-write: the caller's frames are never changed
    c["case_id"] = c["case_id"].astype("str")
    c["kind"] = _categorical(c["kind"], KINDS)
    c["status"] = _categorical(c["status"], STATUSES)
    for col in ("created", "closed", "target_date"):
        c[col] = pd.to_datetime(c[col], utc=True).astype(TS_DTYPE)
    c["amount"] = pd.to_numeric(c["amount"], errors="coerce").astype("float64")
    extra = [x for x in c.columns if x not in CASE_COLUMNS]
    return c[CASE_COLUMNS + extra].reset_index(drop=True)


def _with_optional_case_columns(c: pd.DataFrame) -> pd.DataFrame:
    """Outcome made categorical; status from the outcome and empty dates, amount, owner and segment where absent."""
    c["outcome"] = _categorical(c["outcome"], OUTCOMES)
    if "status" not in c.columns:
        c["status"] = pd.Categorical.from_codes(_STATUS_CODE_OF_OUTCOME[c["outcome"].cat.codes], dtype=_STATUS_DTYPE)
    for col in ("closed", "target_date"):
        if col not in c.columns:
            c[col] = pd.Series(pd.NaT, index=c.index, dtype=TS_DTYPE)
    for col in ("amount",):
        if col not in c.columns:
            c[col] = np.nan
    for col in ("owner", "segment"):
        if col not in c.columns:
            c[col] = pd.Series([None] * len(c), dtype="str")
    return c


def _finalize_events(events: pd.DataFrame, case_ids: pd.Index, *, ordered: bool) -> pd.DataFrame:
    """The event table with every schema column, in schema order, categoricals set (case ids in the
    cases' order, names sorted) and sorted by case and time unless ``ordered``."""
    e = events.copy(deep=False)
    for col in ("owner", "role"):
        if col not in e.columns:
            e[col] = pd.Series([None] * len(e), dtype="str")
    if e["timestamp"].dtype != TS_DTYPE:
        e["timestamp"] = pd.to_datetime(e["timestamp"], utc=True).astype(TS_DTYPE)
    cat = _case_categorical(e["case_id"], case_ids)
    e["case_id"] = cat
    names = _name_categorical(e["name"])
    if names is not None:
        e["name"] = names
    e["type"] = pd.Categorical(e["type"], categories=EVENT_TYPES)
    if not ordered:
        e = _sorted_by_case_and_time(e, np.asarray(cat.codes))
    extra_e = [x for x in e.columns if x not in EVENT_COLUMNS]
    return e[EVENT_COLUMNS + extra_e].reset_index(drop=True)


def _case_categorical(case_id: pd.Series, wanted: pd.Index) -> pd.Categorical:
    """The events' case ids as a categorical over the cases' ids, in the cases' order (by codes
    when already categorical); an event of no case is an :class:`~salesproc.errors.InputError`."""
    if _has_text_categories(case_id):
        cat = case_id.array
        if cat.categories.dtype == wanted.dtype and cat.categories.equals(wanted):
            if cat.categories.name != wanted.name:  # already in the cases' order: codes stay
                cat = cat.rename_categories(wanted)
        else:
            cat = cat.set_categories(wanted)  # same as the text route, by codes
    else:
        cat = pd.Categorical(case_id.astype("str"), categories=wanted)
    orphan = (cat.codes < 0) & pd.notna(case_id).to_numpy()
    if orphan.any():
        raise InputError(f"{int(orphan.sum())} events belong to no case (first: {case_id[orphan].iloc[0]!r}).")
    return cat  # type: ignore[no-any-return]


def _name_categorical(name: pd.Series) -> Any:
    """Event names as a categorical of the names in use, sorted; None when they already are one."""
    if not _has_text_categories(name):
        return name.astype("str").astype("category")
    names = name.array
    codes_n = np.asarray(names.codes)  # type: ignore[attr-defined]
    used = np.zeros(len(names.categories) + 1, dtype=bool)  # type: ignore[attr-defined]  # last slot: missing (code -1)
    used[codes_n] = True
    wanted_names = pd.Index(names.categories[used[:-1]], dtype="str").sort_values()  # type: ignore[attr-defined]
    if not (used[:-1].all() and names.categories.equals(wanted_names)):  # type: ignore[attr-defined]
        return _recode(names, wanted_names)  # type: ignore[arg-type]
    return None


def _sorted_by_case_and_time(e: pd.DataFrame, ev_codes: np.ndarray) -> pd.DataFrame:
    """The events grouped by case code and time-sorted within each (stable), unless they already are."""
    ev_ts = i8(e["timestamp"])
    if _in_case_time_order(ev_codes, ev_ts):
        return e
    return e.iloc[_case_time_order(ev_codes, ev_ts) if ev_codes.min() >= 0 else np.lexsort((ev_ts, ev_codes))]


def _categorical(values: pd.Series, categories: Iterable[str]) -> pd.Categorical[Any]:
    """``pd.Categorical(values, categories=categories)``; one already so is used as it is, and a
    column of one repeated value is coded without hashing every row."""
    cats = list(categories)
    if isinstance(values.dtype, pd.CategoricalDtype) and list(values.cat.categories) == cats:
        return values.array  # type: ignore[return-value]
    v = values.to_numpy()
    if len(v) and v.dtype == object and isinstance(v[0], str) and v[0] in cats and (v == v[0]).all():
        return pd.Categorical.from_codes(
            np.full(len(v), cats.index(v[0]), dtype=np.int8), dtype=pd.CategoricalDtype(pd.Index(cats, dtype="str"))
        )
    return pd.Categorical(values, categories=cats)


def _recode(cat: pd.Categorical, categories: pd.Index) -> pd.Categorical:
    """``cat.set_categories(categories)`` for categories that hold every one in use: one small
    lookup table and one pass over the codes."""
    codes = np.asarray(cat.codes)
    lut = np.append(categories.get_indexer(cat.categories), -1).astype(codes.dtype)  # code -1 stays -1
    return pd.Categorical.from_codes(lut[codes], categories=categories, validate=False)


def _has_text_categories(s: pd.Series) -> bool:
    """A categorical whose categories are all text: ``astype("str")`` would not change them."""
    if not isinstance(s.dtype, pd.CategoricalDtype):
        return False
    cats = s.cat.categories
    return _is_plain_str(cats.dtype) or (cats.dtype == object and pd.api.types.infer_dtype(cats) == "string")
