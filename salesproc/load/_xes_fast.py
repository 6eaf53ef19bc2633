"""The XES reader's fast path: r4pm parses, a scan of the file's bytes vouches for its reading.

`r4pm <https://pypi.org/project/r4pm/>`_ ("Rust for process mining", MIT or Apache-2.0, the successor
of ``rustxes`` that pm4py itself now prefers) reads a log several times faster than expat with
Python handlers. Its DataFrame import is lossy where salesproc's reader is strict: it fills missing
attributes from ``<global>`` defaults, keeps dates to the microsecond and in UTC, turns values it
cannot parse into 0 or null (printing a warning), leaves out traces without events and events
outside traces, reads lists as text, drops the children of nested attributes silently, and reads
some malformed files without a word. So :func:`read_fast` uses it only for a file that one pass
over its bytes shows to be written the way XES tools write logs, every attribute
``<type key="..." value="..."/>`` on its own, every value one both parsers read alike, and it
checks r4pm's columns against the attributes that pass counted:

- the XML: UTF-8, no DTD, comments or processing instructions, traces and events nested as XES
  nests them, no attribute outside a trace, no nested or list attribute, only the predefined
  entities; the root closed once, at the end;
- the values: ``int``, ``float``, ``boolean`` and ``date`` text that r4pm and pandas read to the
  same value (plain decimals of at most 15 digits, ``true``/``false``, ISO 8601 dates to the
  microsecond, with an offset unless the time zone is UTC); no ``id`` attributes (r4pm rewrites
  UUIDs); no key starting ``case:`` (r4pm's own prefix for trace attributes);
- r4pm's reading: one row per event, traces' columns constant over their events, no value with a
  control character or a replacement character, and, once ``<global>`` defaults are taken out
  again, as many values of each type as the file has attributes of that type.

Anything else returns ``None`` and the expat reader reads the file, so both give the same history.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["FastLog", "FastTable", "Unsupported", "read_fast"]

_LT, _QUOTE = ord("<"), ord('"')
_SLICE = 1 << 18


def _code(two: str) -> int:
    return (ord(two[0]) << 8) | ord(two[1])


_TRACE, _TRACE_END, _EVENT, _EVENT_END, _LOG_END = (_code(c) for c in ("tr", "/t", "ev", "/e", "/l"))
# attribute tags by the two letters after '<': name, and its length
_ATTRS = {_code("st"): "string", _code("da"): "date", _code("in"): "int", _code("fl"): "float", _code("bo"): "boolean"}
# the body's tags by class (0: not allowed in a body the fast path reads)
_C_TRACE, _C_TRACE_END, _C_EVENT, _C_EVENT_END, _C_LOG_END, _C_ATTR = 1, 2, 3, 4, 5, 6
_CLASS = np.zeros(1 << 16, dtype=np.uint8)
_CLASS[[_TRACE, _TRACE_END, _EVENT, _EVENT_END, _LOG_END]] = [_C_TRACE, _C_TRACE_END, _C_EVENT, _C_EVENT_END, _C_LOG_END]
_CLASS[list(_ATTRS)] = _C_ATTR
_NEXT_OK = np.zeros(64, dtype=bool)  # structural tag pairs (a, b) as a * 8 + b that may follow each other
_NEXT_OK[[a * 8 + b for a, b in ((_C_TRACE, _C_EVENT), (_C_TRACE, _C_TRACE_END), (_C_EVENT, _C_EVENT_END),
                                  (_C_EVENT_END, _C_EVENT), (_C_EVENT_END, _C_TRACE_END), (_C_TRACE_END, _C_TRACE))]] = True
_BAD_ENTITY = re.compile(rb"&(?!(?:amp|lt|gt|quot|apos);)")
_BAD_TEXT = r"[\x00-\x1f\ufffd]"  # expat turns tabs and line breaks in values into spaces; r4pm keeps them
_DTYPES = {"String": "string", "Datetime": "date", "Int64": "int", "Float64": "float", "Boolean": "boolean"}


class Unsupported(Exception):
    """The fast path cannot give this column as the expat reader would: read the file with expat."""


@dataclass(frozen=True)
class _Scan:
    """What one pass over the file's bytes found (for files the fast path can read)."""

    body: int  # where the first <trace starts
    events_per_trace: np.ndarray
    counts: dict[str, int]  # attributes in the body by XES type
    struct_at: np.ndarray  # where the <trace>, </trace>, <event> and </event> tags are
    struct_class: np.ndarray  # and which each is
    naive_dates: bool  # a date without an offset


# --- the scan --------------------------------------------------------------------------------


def _utf8(data: bytes) -> bool:
    """No byte-order mark, and the XML declaration (if any) names no encoding but UTF-8."""
    if not data.startswith(b"<?xml"):
        return data[:1] == b"<" or data[:1].isspace()
    decl = data[: data.find(b"?>")].lower()
    m = re.search(rb"encoding\s*=\s*[\"']([^\"']*)", decl)
    return m is None or m.group(1) in (b"utf-8", b"utf8")


def _structure(cls: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Traces hold events, events hold attributes, nothing else nests; the root closes last.
    ``cls`` classes the body's tags (see ``_CLASS``). Returns (events per trace, where the
    structural tags are and what they are) or None."""
    if not cls.all() or cls[-1] != _C_LOG_END or (cls == _C_LOG_END).sum() != 1:
        return None
    struct = np.flatnonzero(cls <= _C_EVENT_END)
    s = cls[struct]
    # each structural tag may only follow certain others: <trace> (<event> </event>)* </trace>, ...
    if s[0] != _C_TRACE or s[-1] != _C_TRACE_END or struct[-1] != len(cls) - 2:
        return None
    if not _NEXT_OK[s[:-1] * 8 + s[1:]].all():
        return None
    opens = struct[s == _C_TRACE]
    if (cls[opens[1:] - 1] != _C_TRACE_END).any():  # nothing between one trace and the next
        return None
    per_trace = np.bincount(np.cumsum(s == _C_TRACE)[s == _C_EVENT] - 1, minlength=len(opens))
    return per_trace, struct, s


def _bytes(arr: np.ndarray, idx: np.ndarray, width: int) -> np.ndarray:
    """The ``width`` bytes from each ``idx`` on, a row each (0 past the end). One gather of rows:
    a row's bytes sit together, so each costs one trip to memory."""
    padded = arr if len(arr) >= width else np.r_[arr, np.zeros(width, dtype=np.uint8)]
    rows = np.lib.stride_tricks.sliding_window_view(padded, width)
    return rows[np.clip(idx, 0, len(rows) - 1)]


def _is(arr: np.ndarray, idx: np.ndarray, text: bytes) -> np.ndarray:
    """Whether the bytes from each ``idx`` on are ``text``."""
    return (_bytes(arr, idx, len(text)) == np.frombuffer(text, dtype=np.uint8)).all(axis=1)


def _layout(arr: np.ndarray, start: np.ndarray, quotes: np.ndarray, name: str) -> bool:
    """Every attribute is ``<type key="K" value="V"/>`` as far as its quotes tell (5 bytes between the
    name and the key, 7 between key and value; other names for the two leave r4pm's counts short),
    its key not starting ``case:``."""
    q1, q2, q3, _ = quotes.T
    if not ((q1 == start + len(name) + 6) & (q3 == q2 + 8)).all():
        return False
    head = _bytes(arr, q1 + 1, 2)
    maybe = q1[(head[:, 0] == ord("c")) & (head[:, 1] == ord("a"))]
    return not (len(maybe) and _is(arr, maybe + 1, b"case:").any())


def _digit(b: np.ndarray) -> np.ndarray:
    return (b >= ord("0")) & (b <= ord("9"))


def _numbers_read_alike(arr: np.ndarray, q3: np.ndarray, q4: np.ndarray, kind: str) -> bool:
    """int: an optional sign and 1-15 digits; float: a plain decimal of at most 15 digits, with an
    optional exponent; boolean: ``true`` or ``false``. (pandas and Rust read these to the same value.)"""
    length = q4 - q3 - 1
    if kind == "boolean":
        true = _is(arr, q3, b'"true"') & (length == 4)
        return bool((true | (_is(arr, q3, b'"false"') & (length == 5))).all())
    if (length < 1).any() or (length > 24).any():
        return False
    block = _bytes(arr, q3 + 1, int(length.max()))
    ok = np.ones(len(q3), dtype=bool)
    mantissa, exponent, dots, es = (np.zeros(len(q3), dtype=np.int64) for _ in range(4))
    after_e = np.zeros(len(q3), dtype=bool)
    for c in range(int(length.max())):  # one column of characters at a time
        here, ch = c < length, block[:, c]
        digit, sign = _digit(ch), (ch == ord("+")) | (ch == ord("-"))
        is_e = ((ch == ord("e")) | (ch == ord("E"))) & (kind == "float")
        dot = (ch == ord(".")) & (kind == "float")
        ok &= ~here | digit | dot | is_e | (sign & ((c == 0) | after_e))
        ok &= ~(here & dot & (es > 0))
        mantissa += here & digit & (es == 0)
        exponent += here & digit & (es > 0)
        dots += here & dot
        after_e = here & is_e
        es += after_e
    ok &= (mantissa >= 1) & (mantissa <= 15) & (dots <= 1) & (es <= 1)
    ok &= (es == 0) | ((exponent >= 1) & (exponent <= 3))
    return bool(ok.all())


_DATE = b"dddd-dd-ddTdd:dd:dd"


def _dates_read_alike(arr: np.ndarray, q3: np.ndarray, q4: np.ndarray) -> tuple[bool, bool]:
    """``YYYY-MM-DDThh:mm:ss[.ffffff][Z|+hh:mm]``: (all are, some lack an offset)."""
    length = q4 - q3 - 1
    if (length < len(_DATE)).any() or (length > 32).any():
        return False, False
    block = _bytes(arr, q3 + 1, 32)
    ok = np.ones(len(q3), dtype=bool)
    for i, ch in enumerate(_DATE):
        b = block[:, i]
        ok &= _digit(b) if ch == ord("d") else b == ch
    ok &= block[:, 17] <= ord("5")  # no leap second (chrono reads :60, pandas does not)

    def back(k: int) -> np.ndarray:  # the k-th byte from the value's end
        return np.take_along_axis(block, np.maximum(length - k, 0)[:, None], axis=1)[:, 0]

    offset = ((back(6) == ord("+")) | (back(6) == ord("-"))) & (back(3) == ord(":"))
    offset &= _digit(back(5)) & _digit(back(4)) & _digit(back(2)) & _digit(back(1))
    zone = np.where(back(1) == ord("Z"), 1, np.where(offset, 6, 0))
    rest = length - len(_DATE) - zone  # '.ffffff' or nothing
    ok &= (rest == 0) | ((rest >= 2) & (rest <= 7) & (block[:, len(_DATE)] == ord(".")))
    for i in range(1, 7):
        ok &= (i >= rest) | _digit(block[:, len(_DATE) + i])
    return bool(ok.all()), bool((zone == 0).any())


def _header_ok(arr: np.ndarray, tags: np.ndarray, first: int) -> bool:
    """Before the first trace: an XML declaration first, comments; no DTD or other instructions.
    After it: none of these."""
    c1 = arr[tags + 1]
    special = (c1 == ord("!")) | (c1 == ord("?"))
    if special[first:].any():
        return False
    head = tags[:first][special[:first]]
    if len(head) and head[0] == 0 and arr[1] == ord("?"):
        head = head[1:]
    return bool(_is(arr, head, b"<!--").all())


def _tokens(arr: np.ndarray) -> np.ndarray:
    """The positions of every ``<`` and ``"``, a slice at a time (small temporaries stay in cache)."""
    kind = np.dtype(np.int32 if len(arr) < 2**31 else np.int64)
    parts = [np.zeros(0, dtype=kind)]
    for i in range(0, len(arr), _SLICE):
        part = arr[i : i + _SLICE]
        found = np.flatnonzero((part == _LT) | (part == _QUOTE)).astype(kind)
        found += i
        parts.append(found)
    return np.concatenate(parts)


def scan(data: bytes, *, naive_ok: bool) -> _Scan | None:
    """One pass over the (inflated) file: None unless r4pm's reading can be checked as described
    in the module's docstring."""
    if not _utf8(data) or (b"&" in data and _BAD_ENTITY.search(data)):
        return None
    arr = np.frombuffer(data, dtype=np.uint8)
    pos = _tokens(arr)
    tok = np.flatnonzero(arr[pos] == _LT)  # each tag's place among the tokens
    if len(tok) < 3 or (len(pos) - 1 != tok[-1]) or data[pos[tok[-1]]:].strip() != b"</log>":
        return None
    tags = pos[tok]
    head = _bytes(arr, tags + 1, 2).astype(np.uint16)
    code = (head[:, 0] << 8) | head[:, 1]
    b = int(np.argmax(code == _TRACE))  # the first trace
    if code[b] != _TRACE or not _header_ok(arr, tags, b):
        return None
    cls = _CLASS[code[b:]]
    found = _structure(cls)
    if found is None:
        return None
    per_trace, struct, struct_class = found
    at = np.flatnonzero(cls == _C_ATTR) + b
    # quotes: four after an attribute's tag (key and value), none after a trace's or an event's
    if (tok[at + 1] - tok[at] != 5).any() or (tok[struct + b + 1] - tok[struct + b] != 1).any():
        return None
    counts: dict[str, int] = {}
    naive = False
    for k, name in _ATTRS.items():
        mine = at[code[at] == k]
        counts[name] = len(mine)
        if not len(mine):
            continue
        quotes = np.lib.stride_tricks.sliding_window_view(pos, 4)[tok[mine] + 1]
        if not _layout(arr, tags[mine], quotes, name):
            return None
        if name == "date":
            alike, some_naive = _dates_read_alike(arr, quotes[:, 2], quotes[:, 3])
            naive |= some_naive
            if not alike or (some_naive and not naive_ok):
                return None
        elif name != "string" and not _numbers_read_alike(arr, quotes[:, 2], quotes[:, 3], name):
            return None
    return _Scan(body=int(tags[b]), events_per_trace=per_trace, counts=counts, struct_at=tags[struct + b],
                 struct_class=struct_class, naive_dates=naive)


# --- r4pm's reading, checked -----------------------------------------------------------------


def _inflated(path: Path) -> bytes:
    """The file's bytes, gzip data (recognised by its first bytes) inflated, all members."""
    data = path.read_bytes()
    out = []
    while data[:2] == b"\x1f\x8b":
        unzip = zlib.decompressobj(wbits=31)
        out.append(unzip.decompress(data))
        if not unzip.eof:
            raise zlib.error("cut short")
        data = unzip.unused_data
    return b"".join(out) + data if out else data


def _global_defaults(meta: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(column, XES type, value) of each ``<global>`` default, as r4pm names and reads them."""
    out = []
    for scope, prefix in (("global_trace_attrs", "case:"), ("global_event_attrs", "")):
        for g in meta.get(scope) or []:
            value = g.get("value") or {}
            out.append((prefix + str(g.get("key")), str(value.get("type")), value.get("content")))
    return out


def _without_defaults(df: Any, defaults: list[tuple[str, str, Any]]) -> Any:
    """r4pm's frame with each global default taken out again (a value equal to the default is one
    r4pm filled in, unless the file wrote it: then the counts below do not add up)."""
    import polars as pl

    for column, xes_type, value in defaults:
        if column not in df.columns:
            continue
        if xes_type == "Date":
            stamp = pd.Timestamp(str(value)).tz_convert("UTC").tz_localize(None)
            literal = pl.lit(stamp.to_pydatetime(), dtype=df.schema[column])
        elif xes_type in ("String", "Int", "Float", "Boolean"):
            literal = pl.lit(value, dtype=df.schema[column])
        else:
            raise Unsupported(f"global default of type {xes_type}")
        col = pl.col(column)
        df = df.with_columns(pl.when(col == literal).then(None).otherwise(col).alias(column))
    empty = [c for c in df.columns if df[c].null_count() == df.height]
    return df.drop(empty)


def _checked(df: Any, found: _Scan) -> tuple[dict[str, Any], dict[str, Any]]:
    """r4pm's columns split into trace and event attributes (a value per trace / per event), after
    checking that they are the file's attributes; raises Unsupported if not."""
    per_trace = found.events_per_trace
    starts = np.r_[0, np.cumsum(per_trace)[:-1]]
    counts = dict.fromkeys(found.counts, 0)
    traces: dict[str, Any] = {}
    events: dict[str, Any] = {}
    for column in df.columns:
        s = df[column]
        kind = _DTYPES.get(s.dtype.base_type().__name__)
        key = column[5:] if column.startswith("case:") else column
        if kind is None or not key:
            raise Unsupported(f"column {column!r} of type {s.dtype}")
        if column.startswith("case:"):
            first = s.gather(starts)
            # a trace's value stands on each of its events
            if s.count() != int((first.is_not_null().to_numpy() * per_trace).sum()):
                raise Unsupported(f"trace attribute {key!r} differs between its events")
            traces[key], counted = first, first
        else:
            events[key], counted = s, s
        counts[kind] += counted.count()
        if kind == "string" and counted.str.contains(_BAD_TEXT).any():
            raise Unsupported(f"a value of {key!r} holds a control character")
        if kind == "float" and counted.is_nan().any():
            raise Unsupported(f"{key!r} holds NaN")
    if counts != found.counts:
        raise Unsupported(f"r4pm read {counts} attribute values, the file has {found.counts}")
    return traces, events


@dataclass(frozen=True)
class FastTable:
    """One level of the log (traces or events) as r4pm read it: a column per attribute key."""

    n: int
    keys: list[str]
    columns: dict[str, pa.Array]
    lines: np.ndarray
    text_as_objects: bool = False  # traces: text as a NumPy object array (as the expat reader has it)

    def raw(self, key: str, rows: np.ndarray | None = None, *, dates: bool = False) -> Any:
        """The values as text (dates parsed, where ``dates``); raises Unsupported for numbers."""
        col = self.columns[key]
        if pa.types.is_timestamp(col.type) and dates:
            return self._dates(col, rows)
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            raise Unsupported(f"{key!r} is not text")
        return self._text(col, rows)

    def typed(self, key: str, rows: np.ndarray, *, tz: str, notes: list[str]) -> Any:
        """The values of ``rows`` by their XES type, as the expat reader converts them."""
        col = self.columns[key]
        if pa.types.is_timestamp(col.type):
            return self._dates(col, rows)
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            return self._text(col, rows)
        part = col.take(pa.array(rows))
        values = part.fill_null(False if pa.types.is_boolean(col.type) else 0).to_numpy(zero_copy_only=False)
        if pa.types.is_floating(col.type):
            return part.to_numpy(zero_copy_only=False).astype(np.float64)
        if not part.null_count:
            return values
        mask = part.is_null().to_numpy(zero_copy_only=False)
        if pa.types.is_boolean(col.type):
            return pd.arrays.BooleanArray(values.astype(bool), mask)
        return pd.arrays.IntegerArray(values.astype(np.int64), mask)

    def _text(self, col: pa.Array, rows: np.ndarray | None) -> Any:
        part = col if rows is None else col.take(pa.array(rows))
        if self.text_as_objects or part.null_count == len(part):  # (no text: object, as the expat reader has it)
            return np.asarray(part.to_pylist(), dtype=object)
        return part.to_pandas().array

    @staticmethod
    def _dates(col: pa.Array, rows: np.ndarray | None) -> Any:
        part = col if rows is None else col.take(pa.array(rows))
        naive = pd.DatetimeIndex(part.to_numpy(zero_copy_only=False))
        if naive.unit != "ns" and ((naive < pd.Timestamp.min) | (naive > pd.Timestamp.max)).any():
            # (9999-12-31 for "never"): the expat reader reports it, naming the line
            raise Unsupported("a date outside the range of datetime64[ns]")
        return naive.tz_localize("UTC").as_unit("ns").array


@dataclass(frozen=True)
class FastLog:
    """A log read by r4pm and checked: traces and events, and each event's trace."""

    traces: FastTable
    events: FastTable
    event_trace: np.ndarray
    outside: int = 0
    nested: int = 0
    lists: dict[str, int] = field(default_factory=dict)


def _arrow(columns: dict[str, Any]) -> dict[str, pa.Array]:
    out = {}
    for key, s in columns.items():
        arr = s.to_arrow()
        if pa.types.is_string_view(arr.type) or pa.types.is_string(arr.type):
            arr = arr.cast(pa.large_string())
        out[key] = arr
    return out


def _first_seen(data: bytes, keys: list[str], found: _Scan, *, event_level: bool) -> list[str]:
    """The keys in the order the file first has them (at that level), as the expat reader lists them."""
    where = {}
    for key in keys:
        if re.search(r"[&<>\"'\x00-\x1f]", key):
            raise Unsupported(f"key {key!r} is written escaped")
        needle = f'key="{key}" '.encode()
        at = data.find(needle, found.body)
        while at != -1:
            tag = int(np.searchsorted(found.struct_at, at, side="right")) - 1
            if (found.struct_class[tag] == _C_EVENT) == event_level:
                break
            at = data.find(needle, at + 1)
        if at == -1:
            raise Unsupported(f"key {key!r} not found")
        where[key] = at
    return sorted(keys, key=where.__getitem__)


def read_fast(path: Path, *, naive_ok: bool) -> FastLog | None:
    """The log read by r4pm and checked against the file, or None: r4pm or polars is not installed,
    or the file is one the expat reader must read (see the module's docstring). ``naive_ok``: dates
    without an offset may be read as UTC (the time zone asked for is UTC)."""
    try:
        import polars  # noqa: F401 (r4pm's frames are polars frames)
        import r4pm.df
    except ImportError:
        return None
    try:
        data = _inflated(path)
    except (OSError, zlib.error):
        return None
    found = scan(data, naive_ok=naive_ok)
    if found is None:
        return None
    if (found.events_per_trace == 0).any():
        return None  # r4pm leaves out traces without events
    try:
        df, meta = r4pm.df.import_xes(str(path), print_debug=False)
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException:
        return None
    n_events = int(found.events_per_trace.sum())
    if df.height != n_events:
        return None
    try:
        df = _without_defaults(df, _global_defaults(json.loads(meta)))
        traces, events = _checked(df, found)
        trace_keys = _first_seen(data, list(traces), found, event_level=False)
        event_keys = _first_seen(data, list(events), found, event_level=True)
    except Unsupported:
        return None
    n_traces = len(found.events_per_trace)
    return FastLog(
        traces=FastTable(n_traces, trace_keys, _arrow(traces), np.arange(1, n_traces + 1), text_as_objects=True),
        events=FastTable(n_events, event_keys, _arrow(events), np.arange(1, n_events + 1)),
        event_trace=np.repeat(np.arange(n_traces), found.events_per_trace),
    )
