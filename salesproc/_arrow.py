"""pyarrow tables to pandas frames for the loaders, fast for dictionary-encoded text.

The loaders read the columns that identify things (case id, event name, type, outcome, segment,
owner, role) dictionary-encoded: Parquet stores them so and a CSV reader can build the dictionaries while it
parses, in parallel. pyarrow's own ``to_pandas`` then unifies the dictionaries of every chunk by
hashing each of them again, which for a case-id column costs more than the read itself. Chunks
of one Parquet row group (or one CSV block) share one dictionary, so here each distinct
dictionary is hashed once and every chunk's indices are mapped through it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["dictionary_to_categorical", "table_to_frame", "text_dictionary"]


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
    if len(dicts) == 1 and dicts[0].null_count == 0:
        # one dictionary (its values are distinct): the indices are the codes
        luts = [np.arange(len(dicts[0]), dtype=np.int64)]
        cats = pd.Index(pd.arrays.ArrowStringArray(dicts[0].cast(pa.large_string())), dtype="str")
    else:
        same = all(d.type == dicts[0].type for d in dicts)  # (a cast to one type copies)
        values = pa.concat_arrays(dicts if same else [d.cast(pa.large_string()) for d in dicts]).dictionary_encode()
        codes_of_value = values.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        cats = pd.Index(pd.arrays.ArrowStringArray(values.dictionary), dtype="str")
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
    return pd.Categorical.from_codes(out, categories=cats, validate=False)


def table_to_frame(table: pa.Table) -> pd.DataFrame:
    """``table.to_pandas(date_as_object=False)`` (dates as datetimes, not ``datetime.date``
    objects), with dictionary-encoded text columns converted by :func:`dictionary_to_categorical`
    (the rest, pandas metadata included, by pyarrow)."""
    names = table.column_names
    dict_cols = [
        n for n, t in zip(names, table.schema.types)
        if pa.types.is_dictionary(t) and (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type))
    ]
    if not dict_cols or len(set(names)) < len(names):  # (a repeated name is reported by the caller)
        return table.to_pandas(date_as_object=False)
    rest = table.drop_columns(dict_cols).to_pandas(date_as_object=False)
    cats = {n: dictionary_to_categorical(table.column(n)) for n in dict_cols}
    if len(rest) != table.num_rows:  # no other columns: an empty frame of the right length
        rest = pd.DataFrame(index=pd.RangeIndex(table.num_rows))
    for n, cat in cats.items():
        rest[n] = pd.Series(cat, index=rest.index, copy=False)
    return rest[[n for n in names if n in rest.columns]]

