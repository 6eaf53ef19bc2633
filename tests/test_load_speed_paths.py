"""The fast paths of loading give exactly what the plain ones give: the packed sort by case and
time equals numpy's lexsort for any times, and the threaded table conversion equals the serial one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import salesproc._arrow as arrow
from salesproc._arrow import categorical_from_codes, table_to_frame
from salesproc.history._finalize import _ascending, _case_time_order, _in_case_time_order

NAT = np.iinfo(np.int64).min
SECOND = 10**9


@settings(max_examples=300, deadline=None)
@given(
    n_cases=st.sampled_from([1, 2, 255, 100_000, 2**40, 2**62]),
    n=st.integers(0, 300),
    times=st.sampled_from(["sorted", "seconds", "milliseconds", "nanoseconds", "any", "with NaT"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_case_time_order_is_lexsort_for_any_times(n_cases: int, n: int, times: str, seed: int) -> None:
    # keys packed with times in seconds, in milliseconds, in nanoseconds, or too wide to pack (then
    # a stable sort by time first; codes too wide for any key: lexsort itself) all order as lexsort,
    # ties in row order, and the codes come out in that order
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, n_cases, size=n, dtype=np.int64)
    start = 1_700_000_000 * SECOND
    ts = {
        "sorted": lambda: np.sort(rng.integers(0, 50, size=n)) * SECOND + start,
        "seconds": lambda: rng.integers(0, 400 * 86_400, size=n) * SECOND + start,
        "milliseconds": lambda: rng.integers(0, 400 * 86_400_000, size=n) * 10**6 + start,
        "nanoseconds": lambda: rng.integers(0, 400 * 86_400 * SECOND, size=n) + start,
        "any": lambda: rng.integers(NAT, 2**63 - 1, size=n, dtype=np.int64, endpoint=True),
        "with NaT": lambda: np.where(rng.random(n) < 0.2, NAT, rng.integers(0, 5, size=n) * SECOND + start),
    }[times]()
    ts[: n // 4] = ts[n // 4 : 2 * (n // 4)]  # ties
    expected = np.lexsort((ts, codes))
    sorted_codes = np.empty_like(codes)
    assert _case_time_order(codes, ts, sorted_codes=sorted_codes).tolist() == expected.tolist()
    assert sorted_codes.tolist() == codes[expected].tolist()
    assert _in_case_time_order(codes[expected], ts[expected])


def test_order_checks_compare_rather_than_subtract() -> None:
    # a difference of two int64 times can overflow (a missing time is int64 min): the checks for
    # "already in order" must not read such a column as ordered
    ts = np.array([10**18, NAT, -(10**18)], dtype=np.int64)
    assert not _ascending(ts)
    assert not _in_case_time_order(np.zeros(3, dtype=np.int8), ts)
    assert _case_time_order(np.zeros(3, dtype=np.int8), ts).tolist() == [1, 2, 0]
    codes = np.array([127, -1], dtype=np.int8)  # (127 - (-1) does not fit in int8)
    assert not _in_case_time_order(codes, np.zeros(2, dtype=np.int64))


def _table(n: int, seed: int = 0) -> pa.Table:
    """A table read in blocks: dictionary columns with a dictionary per chunk, nulls, other columns."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"D{i:05d}" for i in rng.integers(0, n // 3 + 1, size=n)], dtype=object)
    names = np.array(["Qualify", "Demo", "Proposal", None], dtype=object)[rng.integers(0, 4, size=n)]
    chunks = np.array_split(np.arange(n), 5)
    return pa.table({
        "case_id": pa.chunked_array([pa.array(ids[c]).dictionary_encode() for c in chunks]),
        "timestamp": pa.array(rng.integers(0, 10**9, size=n).astype("datetime64[s]")),
        "name": pa.chunked_array([pa.array(names[c], type=pa.string()).dictionary_encode() for c in chunks]),
        "amount": pa.array(rng.random(n)),
    })


def test_threaded_table_conversion_equals_the_serial_one(monkeypatch: pytest.MonkeyPatch) -> None:
    table = _table(3_000)
    monkeypatch.setattr(arrow, "_THREADED_ROWS", 10**12)
    serial = table_to_frame(table)
    monkeypatch.setattr(arrow, "_THREADED_ROWS", 1)
    monkeypatch.setattr(arrow.os, "cpu_count", lambda: 2)
    threaded = table_to_frame(table)
    pd.testing.assert_frame_equal(threaded, serial)
    assert threaded.columns.tolist() == ["case_id", "timestamp", "name", "amount"]  # the file's order
    plain = table.to_pandas()
    for col in ("case_id", "name"):
        assert threaded[col].astype(object).fillna("-").tolist() == plain[col].astype(object).fillna("-").tolist()
    assert threaded["case_id"].cat.categories.is_unique


def test_categorical_from_codes_equals_pandas() -> None:
    codes = np.array([2, 0, -1, 1, 2], dtype=np.int8)
    cats = pd.Index(["b", "a", "c"], dtype="str")
    ours = categorical_from_codes(codes, cats)
    theirs = pd.Categorical.from_codes(codes, categories=cats)
    assert ours.dtype == theirs.dtype
    pd.testing.assert_extension_array_equal(ours, theirs)
