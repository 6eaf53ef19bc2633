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


def _case_time_order(codes: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """``np.lexsort((ts, codes))``: positions ordered by case code, then time, ties in row order.

    Case codes are small non-negative integers, so they are sorted 16 bits at a time with
    numpy's stable radix sort (linear time) instead of a comparison sort; rows already in time
    order (an export sorted by date) need no time sort at all.

    >>> codes, ts = np.array([1, 0, 1, 0, 2]), np.array([5, 9, 3, 9, 1])
    >>> _case_time_order(codes, ts).tolist(), np.lexsort((ts, codes)).tolist()
    ([1, 3, 2, 0, 4], [1, 3, 2, 0, 4])
    """
    by_time = None if _ascending(ts) else np.argsort(ts, kind="stable")
    c: np.ndarray = (codes if by_time is None else codes[by_time]).astype(np.int64 if len(codes) >= 2**31 else np.int32)
    bits = int(c.max(initial=0)).bit_length()
    # digit widths, least significant first; a last digit of at most 8 bits sorts as one byte
    widths = [bits] if bits <= 16 else [bits - 8, 8] if bits <= 24 else [16] * ((bits - 1) // 16) + [(bits - 1) % 16 + 1]
    order = None
    shift = 0
    for w in widths:  # each stable pass keeps the order the passes before it left
        digit = ((c if order is None else c[order]) >> shift) & ((1 << w) - 1)
        step = np.argsort(digit.astype(np.uint8 if w <= 8 else np.uint16), kind="stable")
        order = step if order is None else order[step]
        shift += w
    assert order is not None  # (there is always at least one digit)
    return order if by_time is None else by_time[order]


def _ascending(values: np.ndarray, block: int = 1 << 16) -> bool:
    """No value smaller than the one before it; checked a block at a time (blocks overlap by
    one), so no temporary as long as the column is made."""
    return all(
        bool((np.diff(values[lo : lo + block + 1]) >= 0).all()) for lo in range(0, len(values) - 1, block)
    )


def _in_case_time_order(codes: np.ndarray, ts: np.ndarray, block: int = 1 << 16) -> bool:
    """Rows grouped by case code (ascending) and in time order within a case.

    Checked a block at a time (blocks overlap by one row), so the temporaries stay in cache."""
    for lo in range(0, len(codes) - 1, block):
        c = codes[lo : lo + block + 1]
        step = np.diff(c)
        if step.min() < 0:
            return False
        if ((np.diff(ts[lo : lo + block + 1]) < 0) & (step == 0)).any():
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
