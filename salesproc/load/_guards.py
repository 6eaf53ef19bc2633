"""Guards against odd files a CSV reader meets: UTF-16 text, NUL bytes in cells, rows too long to
read, and a column named like the loader's own row numbers (``_row``).

Each turns what would be another library's message (or a silent misreading) into a salesproc error
naming the file, the row, the column and the fix, or reads the file as it is meant to be read.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from salesproc.errors import EncodingError, InputError, InvalidValueError

__all__ = [
    "OWN_ROW",
    "check_not_utf16",
    "check_nul_cells",
    "keep_own_row_column",
    "row_too_long_error",
    "utf16_bom",
]

_NUL = re.compile(b"\x00")

#: The name a source's own ``_row`` column is loaded under (``_row`` holds the loader's row numbers).
OWN_ROW = "_row (from the file)"


def utf16_bom(head: bytes) -> bool:
    """Whether the bytes start with a UTF-16 byte order mark (and not a UTF-32 one)."""
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return False
    return head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))


def check_not_utf16(head: bytes, source: str) -> None:
    """Refuse text that is UTF-16 without a byte order mark (every other byte 0 in plain text),
    which a UTF-8 reader would read as one garbled column.

    >>> check_not_utf16("case_id,name\\n".encode("utf-16-le"), "deals.csv")
    Traceback (most recent call last):
    ...
    salesproc.errors.EncodingError: deals.csv: this file is UTF-16 (little-endian, without a byte order mark): every other byte is 0, found b'c\\x00a\\x00s\\x00e\\x00_\\x00i\\x00', expected UTF-8 text. Fix: pass encoding='utf-16-le', or save the file as UTF-8 (in Excel: CSV UTF-8).
    """
    sample = np.frombuffer(head[: 4096 - 4096 % 2], dtype=np.uint8)
    if len(sample) < 4:
        return
    even, odd = sample[0::2] == 0, sample[1::2] == 0
    if odd.mean() > 0.4 and even.mean() < 0.05:
        order, codec = "little-endian", "utf-16-le"
    elif even.mean() > 0.4 and odd.mean() < 0.05:
        order, codec = "big-endian", "utf-16-be"
    else:
        return
    raise EncodingError(
        f"{source}: this file is UTF-16 ({order}, without a byte order mark): every other byte is 0, "
        f"found {head[:12]!r}, expected UTF-8 text. Fix: pass encoding={codec!r}, or save the file as "
        "UTF-8 (in Excel: CSV UTF-8)."
    )


def check_nul_cells(tbl: Any, source: str) -> None:
    """Refuse NUL bytes (``\\x00``) in the text of a table pyarrow read: text never holds them, so
    the file is damaged, binary, or in another encoding (UTF-16). Only the text's bytes are looked
    at (one search of its bytes per column); a column dictionary-encoded is looked at in its dictionary."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for name in tbl.column_names:
        if "\x00" in name:
            raise InputError(
                f"{source}, row 1: the header {name!r} holds a NUL byte (\\x00); expected text. Fix: the file "
                "is damaged or not a text file: export the data again as CSV (UTF-8), or pass encoding='utf-16' "
                "if it is UTF-16."
            )
    for name, col in zip(tbl.column_names, tbl.columns):
        t = col.type
        if not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t)):
            continue
        offset = 0
        for chunk in col.chunks:
            text = chunk.dictionary if pa.types.is_dictionary(t) else chunk
            data = text.buffers()[2]
            if data is not None and _NUL.search(memoryview(data)):  # (no copy of the bytes)
                hit = pc.match_substring(chunk.cast(pa.string()) if pa.types.is_dictionary(t) else chunk, "\x00")
                at = int(np.flatnonzero(hit.fill_null(False).to_numpy(zero_copy_only=False))[0])
                raise InvalidValueError(
                    source=source, row=offset + at + 2, column=name, value=chunk[at].as_py(),
                    expected="text without NUL bytes (\\x00)",
                    fix="the file is damaged, or binary data was exported into it: remove the NUL bytes "
                    "(export the data again), or pass encoding='utf-16' if the file is UTF-16.",
                )
            offset += len(chunk)


def keep_own_row_column(df: pd.DataFrame) -> pd.DataFrame:
    """A source's own column named ``_row`` renamed to :data:`OWN_ROW` (a new frame; ``df`` is not
    changed): the loaders keep each row's number in ``_row``, and the source's values would take
    their place (and be read as row numbers)."""
    if "_row" not in df.columns:
        return df
    if OWN_ROW in df.columns:
        raise InputError(
            f"the table has columns '_row' and {OWN_ROW!r}; salesproc keeps row numbers in '_row' and loads "
            f"a '_row' column as {OWN_ROW!r}. Fix: rename one of them."
        )
    return df.rename(columns={"_row": OWN_ROW})


def row_too_long_error(full: Callable[[], bytes], source: str, *, delimiter: str, block: int) -> InputError:
    """The error for a row longer than the reader's two blocks (pyarrow's "straddling object
    straddles two block boundaries"): which row, which column, and the likely cause."""
    data = full()
    found = _long_line(data, block, delimiter) or _long_record(data, block, delimiter)
    if found is None:
        return InputError(
            f"{source}: a row is longer than {2 * block >> 20} MiB; expected rows of text, dates and numbers. "
            "Fix: look for a quote (\") that is never closed, or a very long value, and correct the export."
        )
    row, column, size, start = found
    return InputError(
        f"{source}, row {row}{f', column {column!r}' if column else ''}: found a value of {size / 2**20:.1f} MiB "
        f"starting {start[:40]!r}; expected rows under {2 * block >> 20} MiB of text, dates and numbers. "
        "Fix: if a quote (\") opens that value and is never closed, the rest of the file was read into it: "
        "close or remove the quote; otherwise remove the long value (an embedded file or document) from the export."
    )


def _header(data: bytes, delimiter: str) -> list[str]:
    first = data[: data.find(b"\n")] if b"\n" in data else data
    return next(csv.reader([first.decode("utf-8", "replace").lstrip("\ufeff")], delimiter=delimiter), [])


def _long_line(data: bytes, block: int, delimiter: str) -> tuple[int, str, int, str] | None:
    """The first line longer than ``block`` (row, column, size, start), found without parsing."""
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n"))
    starts = np.r_[0, ends + 1]
    stops = np.r_[ends, len(data)]
    long = np.flatnonzero(stops - starts > block)
    if not len(long):
        return None
    i = int(long[0])
    line = data[starts[i] : stops[i]]
    return i + 1, *_longest_value(line.decode("utf-8", "replace"), _header(data, delimiter), delimiter)


def _longest_value(line: str, names: list[str], delimiter: str) -> tuple[str, int, str]:
    """The column, size in bytes and start of the longest value of one line."""
    limit = csv.field_size_limit()
    csv.field_size_limit(sys.maxsize)
    try:
        record = next(csv.reader([line], delimiter=delimiter), [line])
    except csv.Error:
        record = [line]
    finally:
        csv.field_size_limit(limit)
    k = int(np.argmax([len(v) for v in record]))
    return (names[k] if k < len(names) else ""), len(record[k].encode("utf-8")), record[k][:40]


def _long_record(data: bytes, block: int, delimiter: str) -> tuple[int, str, int, str] | None:
    """The first record longer than ``block`` across lines (a quoted value, or a quote never closed)."""
    names = _header(data, delimiter)
    limit = csv.field_size_limit()
    csv.field_size_limit(sys.maxsize)
    try:
        reader = csv.reader(io.StringIO(data.decode("utf-8", "replace")), delimiter=delimiter)
        line = 1
        for record in reader:
            sizes = [len(v) for v in record]
            # (characters, up to 4 bytes each: only a long record has its bytes counted)
            if sum(sizes) > block // 4 and sum(len(v.encode("utf-8")) for v in record) > block:
                k = int(np.argmax(sizes))
                column = names[k] if k < len(names) else ""
                return line, column, len(record[k].encode("utf-8")), record[k][:40]
            line = reader.line_num + 1
    except csv.Error:
        return None
    finally:
        csv.field_size_limit(limit)
    return None
