"""pyarrow tables to pandas frames for the loaders, fast for dictionary-encoded text.

The loaders read the columns that identify things (case id, event name, type, outcome, segment,
owner, role) dictionary-encoded: Parquet stores them so and a CSV reader can build the dictionaries while it
parses, in parallel. pyarrow's own ``to_pandas`` then unifies the dictionaries of every chunk by
hashing each of them again, which for a case-id column costs more than the read itself. Chunks
of one Parquet row group (or one CSV block) share one dictionary, so here each distinct
dictionary is hashed once and every chunk's indices are mapped through it.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["categorical_from_codes", "dictionary_to_categorical", "table_to_frame", "text_dictionary"]


def text_dictionary() -> pa.DataType:
    """The type the loaders read identifying text columns as."""
    return pa.dictionary(pa.int32(), pa.string())


def dictionary_to_categorical(column: pa.ChunkedArray | pa.Array) -> pd.Categorical:
    """A dictionary-encoded text column as a pandas Categorical (nulls as missing).

    The categories are the distinct dictionary values in order of first appearance among the
    dictionaries; values no row uses may be among them (callers drop those).

    Examples
    --------
    >>> import pyarrow as pa
    >>> a = pa.chunked_array([pa.array(["b", "a", None, "b"]).dictionary_encode(),
    ...                       pa.array(["c", "a"]).dictionary_encode()])
    >>> cat = dictionary_to_categorical(a)
    >>> list(cat.categories), cat.codes.tolist()
    (['b', 'a', 'c'], [0, 1, -1, 0, 2, 1])
    """
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    chunks = [c for c in chunks if len(c)]
    if not chunks:
        return pd.Categorical([], categories=pd.Index([], dtype="str"))
    # chunks of one row group / block share a dictionary: each distinct one is looked at once
    slot: dict[tuple[int, int, int], int] = {}
    dicts: list[pa.Array] = []
    which = []
    for c in chunks:
        d = c.dictionary
        buf = d.buffers()[1]
        key = (0 if buf is None else buf.address, d.offset, len(d))
        if key not in slot:
            slot[key] = len(dicts)
            dicts.append(d)
        which.append(slot[key])
    cats_distinct = False  # not known: pandas checks
    if len(dicts) == 1 and dicts[0].null_count == 0:
        # one dictionary (its values are distinct): the indices are the codes
        luts = [np.arange(len(dicts[0]), dtype=np.int64)]
        cats = pd.Index(pd.arrays.ArrowStringArray(dicts[0].cast(pa.large_string())), dtype="str")
    else:
        same = all(d.type == dicts[0].type for d in dicts)  # (a cast to one type copies)
        values = pa.concat_arrays(dicts if same else [d.cast(pa.large_string()) for d in dicts]).dictionary_encode()
        codes_of_value = values.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        cats = pd.Index(pd.arrays.ArrowStringArray(values.dictionary), dtype="str")
        cats_distinct = True  # (a dictionary encoding's values are)
        bounds = np.cumsum([0] + [len(d) for d in dicts])
        luts = [codes_of_value[bounds[i] : bounds[i + 1]] for i in range(len(dicts))]
    n = len(cats)
    small = np.int8 if n < 127 else np.int16 if n < 32_767 else np.int32
    out: np.ndarray = np.empty(sum(len(c) for c in chunks), dtype=small)
    lo = 0
    for c, i in zip(chunks, which):
        lut = np.append(luts[i], -1).astype(small)  # last: missing
        idx = c.indices.fill_null(len(lut) - 1) if c.null_count else c.indices
        np.take(lut, idx.to_numpy(zero_copy_only=False), out=out[lo : lo + len(c)])
        lo += len(c)
    if cats_distinct:
        return categorical_from_codes(out, cats)
    return pd.Categorical.from_codes(out, categories=cats, validate=False)


def categorical_from_codes(codes: np.ndarray, categories: pd.Index) -> pd.Categorical:
    """``pd.Categorical.from_codes(codes, categories=categories, validate=False)`` for categories
    known to be distinct (the uniques of a factorization, a dictionary encoding's values): pandas
    would hash them all to check, which for 100,000 case ids takes longer than the rest.

    >>> categorical_from_codes(np.array([1, 0, -1, 1], dtype=np.int8), pd.Index(["a", "b"], dtype="str")).tolist()
    ['b', 'a', nan, 'b']
    """
    from_fastpath = getattr(pd.CategoricalDtype, "_from_fastpath", None)  # (pandas' own, unchecked)
    dtype = pd.CategoricalDtype(categories) if from_fastpath is None else from_fastpath(categories, False)
    return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


def table_to_frame(table: pa.Table) -> pd.DataFrame:
    """``table.to_pandas(date_as_object=False)`` (dates as datetimes, not ``datetime.date``
    objects), with dictionary-encoded text columns converted by :func:`dictionary_to_categorical`
    (the rest, pandas metadata included, by pyarrow).

    The columns are converted side by side in threads when the table is long (numpy and pyarrow
    let go of the GIL for nearly all of it), the ones with the largest dictionaries first.
    """
    names = table.column_names
    dict_cols = [
        n for n, t in zip(names, table.schema.types)
        if pa.types.is_dictionary(t) and (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type))
    ]
    if not dict_cols or len(set(names)) < len(names):  # (a repeated name is reported by the caller)
        return table.to_pandas(date_as_object=False)
    dict_cols.sort(key=lambda n: -_dictionary_size(table.column(n)))  # (a stable sort)

    def convert(name: str | None) -> Any:
        if name is None:
            return table.drop_columns(dict_cols).to_pandas(date_as_object=False)
        return dictionary_to_categorical(table.column(name))

    todo: list[str | None] = [*dict_cols[:1], None, *dict_cols[1:]]  # the biggest dictionary first
    workers = min(len(todo), os.cpu_count() or 1)
    if workers > 1 and table.num_rows >= _THREADED_ROWS:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            done = list(pool.map(convert, todo))
    else:
        done = [convert(n) for n in todo]
    rest = done[1]
    cats = dict(zip(dict_cols, done[:1] + done[2:]))
    if len(rest) != table.num_rows:  # no other columns: an empty frame of the right length
        rest = pd.DataFrame(index=pd.RangeIndex(table.num_rows))
    for n in names:
        if n in cats:
            rest[n] = pd.Series(cats[n], index=rest.index, copy=False)
    return rest[[n for n in names if n in rest.columns]]


_THREADED_ROWS = 100_000  # below this, starting threads costs more than it saves


def _dictionary_size(column: pa.ChunkedArray) -> int:
    """How many dictionary values the first non-empty chunk of a column has (a guess at how long
    its conversion takes)."""
    return next((len(c.dictionary) for c in column.chunks if len(c)), 0)
