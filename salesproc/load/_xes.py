"""Read XES (IEEE 1849) event logs, plain ``.xes`` or gzip-compressed ``.xes.gz``, into a History.

Two readers, one history. When the optional ``r4pm`` package is installed (``pip install
'salesproc[xes]'``; Rust, MIT or Apache-2.0), it parses the file and :mod:`salesproc.load._xes_fast`
checks its reading against one pass over the file's bytes; a file that pass cannot vouch for (see
that module) is read by the expat reader below, and so is every file when r4pm is absent. Both hand
the same columns to the same steps, so the history is the same; an error found on the fast path is
reported by the expat reader, which names the line.

The expat reader streams the file through expat (the parser under :mod:`xml.etree.ElementTree`) with handlers
that keep only the attribute values: no element tree is built, so memory holds the values read and
nothing else (``ElementTree.iterparse`` builds and frees an element per tag, about three times
slower on the receipt log), and every message can name the line. Entity declarations are refused (defusedxml's rule), so a file cannot expand entities
("billion laughs") or pull in external files.

How XES maps to a history
-------------------------
- a ``<trace>`` is a case: its ``concept:name`` is the ``case_id``, its other attributes become case
  attributes (``enddate_planned`` stays ``enddate_planned`` unless ``mapping`` makes it canonical);
- an ``<event>`` is an event: ``concept:name`` -> ``name``, ``time:timestamp`` -> ``timestamp``,
  ``org:resource`` -> ``owner``, ``org:role`` (else ``org:group``) -> ``role``; other attributes stay
  event attributes under their XES keys;
- typed attributes keep their type (``int``, ``float``, ``boolean``, ``date``; ``string`` and ``id``
  are text); nested attributes (children of an attribute) and lists are not case data: they are
  ignored and counted in the load report's notes;
- ``<global>`` defaults are not values: an event that lacks an attribute lacks it;
- only events whose ``lifecycle:transition`` is kept (``"complete"`` by default) are loaded; the
  others are counted in the report's ``skipped`` with their transition.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from xml.parsers import expat

import numpy as np
import pandas as pd

from salesproc.errors import (
    EmptyInputError,
    InvalidValueError,
    MalformedFileError,
    MissingColumnError,
    ParameterError,
    SalesprocError,
)
from salesproc.history._history import History
from salesproc.load import _xes_fast
from salesproc.load._build import CASE_LEVEL, Skips, build_history, parse_timestamps
from salesproc.load._options import LoadOptions
from salesproc.load._presets import check_mapping, get_preset

__all__ = ["read_xes"]

_CHUNK = 1 << 16
_VALUE_TAGS = frozenset({"string", "date", "int", "float", "boolean", "id"})
_LIST_TAGS = frozenset({"list", "container"})
_ATTR_TAGS = _VALUE_TAGS | _LIST_TAGS
_CASE_FIELDS = frozenset({"case_id", *CASE_LEVEL})
_EVENT_FIELDS = frozenset({"name", "timestamp", "type", "role"})
_DATE_FIELDS = frozenset({"timestamp", "created", "closed", "target_date"})
_FAST_FROM_BYTES = 1 << 20  # files smaller than this (as stored) are read by expat: quicker for them

# what an open element is, seen from its children
_ROOT, _LOG, _TRACE, _EVENT, _ATTR, _NESTED, _SKIP = range(7)


@dataclass
class _Columns:
    """Sparse column store: per attribute key, the numbers of the rows that have it and its values.

    Values are appended while the row is open (its number is ``n``); :meth:`close` ends the row.
    """

    n: int = 0
    lines: list[int] = field(default_factory=list)
    values: dict[str, tuple[list[int], list[str | None]]] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)

    def put(self, key: str, tag: str, value: str | None) -> None:
        col = self.values.get(key)
        if col is None:
            col = self.values[key] = ([], [])
        col[0].append(self.n)
        col[1].append(value)
        if self.types.get(key) != tag:
            self.note_type(key, tag)

    def close(self, line: int) -> None:
        self.lines.append(line)
        self.n += 1

    def note_type(self, key: str, tag: str) -> None:
        self.types[key] = tag if key not in self.types else "mixed"

    def current(self, key: str) -> str | None:
        """The open row's value of ``key`` (None if it has none yet)."""
        col = self.values.get(key)
        return col[1][-1] if col and col[0] and col[0][-1] == self.n else None

    @property
    def keys(self) -> list[str]:
        """The attribute keys, in the order the file first has them."""
        return list(self.values)

    def raw(self, key: str, rows: np.ndarray | None = None, *, dates: bool = False) -> np.ndarray:
        """The column as an object array of text, None where a row lacks the key (the last value
        wins); only ``rows``, if given."""
        out = np.full(self.n, None, dtype=object)
        idx = np.asarray(self.values[key][0], dtype=np.int64)
        vals = np.asarray(self.values[key][1], dtype=object)
        last = np.r_[idx[1:] != idx[:-1], True] if len(idx) else np.zeros(0, dtype=bool)
        out[idx[last]] = vals[last]
        return out if rows is None else out[rows]

    def typed(self, key: str, rows: np.ndarray, *, tz: str, notes: list[str]) -> Any:
        """The values of ``rows`` converted by the key's XES type."""
        return _typed(self.raw(key, rows), self.types.get(key, "string"), key, tz=tz, notes=notes)


@dataclass
class _Log:
    """Everything the parse collects."""

    traces: _Columns = field(default_factory=_Columns)
    events: _Columns = field(default_factory=_Columns)
    event_trace: list[int] = field(default_factory=list)
    outside: int = 0
    nested: int = 0
    lists: dict[str, int] = field(default_factory=dict)


class _Parser:
    """Expat handlers that fill a :class:`_Log` while the file streams through.

    The handler for the commonest element, an attribute of an event, is a closure over local names:
    it runs once per attribute, so it is kept short.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.log = _Log()
        self.stack: list[int] = [_ROOT]
        self.trace_line = 0
        self.event_line = 0
        self.in_trace = False
        p = expat.ParserCreate()
        p.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        p.EntityDeclHandler = self.entity_decl
        p.UnparsedEntityDeclHandler = self.unparsed_entity
        p.ExternalEntityRefHandler = self.external_entity
        self.parser = p
        p.StartElementHandler = self._start_handler()
        p.EndElementHandler = self._end_handler()

    # -- where we are, for messages ------------------------------------------------------------
    def where(self) -> str:
        """``in trace 3 ('case-17')``: the trace being read (or last read), for error messages."""
        traces = self.log.traces
        if self.in_trace:
            n, place, name = traces.n + 1, "in", traces.current("concept:name")
        else:
            n, place = traces.n, "after"
            col = traces.values.get("concept:name")
            name = col[1][-1] if col and col[0] and col[0][-1] == n - 1 else None
        if n == 0:
            return "before the first trace"
        return f"{place} trace {n} ({name!r})" if name is not None else f"{place} trace {n}"

    # -- safety: no entities --------------------------------------------------------------------
    def entity_decl(self, name: str, *_: Any) -> None:
        raise MalformedFileError(
            f"{self.source}, line {self.parser.CurrentLineNumber}: the file declares an XML entity "
            f"({name!r}). XES logs need none, and entities can expand without bound or read other "
            "files, so they are refused. Fix: export the log again without a DTD."
        )

    def unparsed_entity(self, name: str, *_: Any) -> None:
        self.entity_decl(name)

    def external_entity(self, context: str, base: str | None, system_id: str | None, public_id: str | None) -> int:
        self.entity_decl(system_id or "external")
        return 0

    # -- structure --------------------------------------------------------------------------------
    def _start_handler(self) -> Any:
        stack, events, value_tags = self.stack, self.log.events, _VALUE_TAGS
        local: dict[str, str] = {}
        classify = self._classify

        def start(name: str, attrs: dict[str, str]) -> None:
            tag = local.get(name)
            if tag is None:
                tag = local[name] = name.rpartition(":")[2].lower()
            parent = stack[-1]
            if parent == _EVENT and tag in value_tags:
                key = attrs.get("key")
                if key is not None:
                    events.put(key, tag, attrs.get("value"))
                    stack.append(_ATTR)
                    return
            stack.append(classify(name, tag, attrs, parent))

        return start

    def _end_handler(self) -> Any:
        stack, log = self.stack, self.log
        events, traces, event_trace = log.events, log.traces, log.event_trace

        def end(name: str) -> None:
            role = stack.pop()
            if role == _EVENT:
                events.close(self.event_line)
                event_trace.append(traces.n)
            elif role == _TRACE:
                traces.close(self.trace_line)
                self.in_trace = False

        return end

    def _classify(self, name: str, tag: str, attrs: dict[str, str], parent: int) -> int:
        """What a new element is (every case but a plain event attribute)."""
        if parent == _EVENT:
            return self._attribute(tag, attrs, self.log.events)
        if parent == _TRACE:
            if tag == "event":
                self.event_line = self.parser.CurrentLineNumber
                return _EVENT
            return self._attribute(tag, attrs, self.log.traces)
        if parent in (_ATTR, _NESTED):
            if tag in _ATTR_TAGS:
                self.log.nested += 1
            return _NESTED
        if parent == _LOG:
            if tag == "trace":
                self.in_trace = True
                self.trace_line = self.parser.CurrentLineNumber
                return _TRACE
            if tag == "event":
                self.log.outside += 1
            return _SKIP
        if parent == _ROOT:
            if tag != "log":
                raise MalformedFileError(
                    f"{self.source}, line {self.parser.CurrentLineNumber}: the root element is <{name}>, "
                    "expected <log>: this is not an XES event log. Fix: pass an XES file (IEEE 1849), "
                    "or export the log as CSV and load that."
                )
            return _LOG
        return _SKIP

    def _attribute(self, tag: str, attrs: dict[str, str], cols: _Columns) -> int:
        if tag not in _ATTR_TAGS:
            return _SKIP
        key = attrs.get("key")
        if key is None:
            raise MalformedFileError(
                f"{self.source}, line {self.parser.CurrentLineNumber}: a <{tag}> attribute has no key "
                f"({self.where()}). Fix: every XES attribute needs key=\"...\" and value=\"...\"."
            )
        if tag in _LIST_TAGS:
            self.log.lists[key] = self.log.lists.get(key, 0) + 1
            return _NESTED
        cols.put(key, tag, attrs.get("value"))
        return _ATTR

    def feed(self, data: bytes, final: bool = False) -> None:
        try:
            self.parser.Parse(data, final)
        except expat.ExpatError as exc:
            line, col, what = exc.lineno, exc.offset, expat.ErrorString(exc.code)
            ending = final and what in ("no element found", "unclosed token")
            fix = (
                "the file ends early (an interrupted download or export): get or export it again."
                if ending
                else "the file is damaged or was edited by hand; export it again from the tool that "
                "wrote it, or correct the XML near that line."
            )
            raise MalformedFileError(
                f"{self.source}, line {line}, column {col + 1}: not well-formed XML ({what}), "
                f"{self.where()}. Fix: {fix}"
            ) from None


def _parse(path: Path, source: str) -> _Log:
    """Stream the file through the parser; gzip data (recognised by its first bytes) is inflated on
    the way, so a truncated archive is reported with the line and trace it breaks off in."""
    if path.stat().st_size == 0:
        raise EmptyInputError(f"{source}: the file is empty (0 bytes). Fix: export the log again.")
    parser = _Parser(source)
    inflated = 0

    def broken(what: str) -> MalformedFileError:
        return MalformedFileError(
            f"{source}: the gzip data {what} after {inflated:,} bytes of XML (line "
            f"{parser.parser.CurrentLineNumber}, {parser.where()}). Fix: download or export the file "
            "again (`gzip -t file.xes.gz` checks a copy)."
        )

    with path.open("rb") as fh:
        unzip = zlib.decompressobj(wbits=31) if fh.read(2) == b"\x1f\x8b" else None
        fh.seek(0)
        while raw := fh.read(_CHUNK):
            if unzip is None:
                parser.feed(raw)
                continue
            try:
                data = unzip.decompress(raw)
                while unzip.eof and unzip.unused_data:  # a file of several gzip members
                    rest = unzip.unused_data
                    unzip = zlib.decompressobj(wbits=31)
                    data += unzip.decompress(rest)
            except zlib.error as exc:
                raise broken(f"is damaged ({exc})") from None
            inflated += len(data)
            parser.feed(data)
        if unzip is not None and not unzip.eof:
            raise broken("is cut short")
    parser.feed(b"", final=True)
    return parser.log


def _traces(n: int) -> str:
    return f"{n:,} trace" + ("" if n == 1 else "s")


# --- typed columns ---------------------------------------------------------------------------

def _typed(raw: np.ndarray, xes_type: str, key: str, *, tz: str, notes: list[str]) -> Any:
    """Convert one attribute's raw text by its XES type; values that do not fit keep the text."""
    s = pd.Series(raw, dtype=object)
    present = s.notna().to_numpy()
    if xes_type in ("int", "float"):
        num = pd.to_numeric(s, errors="coerce")
        if (num.isna().to_numpy() & present).any():
            notes.append(f"attribute {key!r} is declared {xes_type} but holds other values: kept as text")
            return raw
        if xes_type == "int":
            return num.astype("int64") if present.all() else num.astype("Int64")
        return num.astype("float64")
    if xes_type == "boolean":
        low = s.str.strip().str.lower()
        val = low.map({"true": True, "false": False})
        if (val.isna().to_numpy() & present).any():
            notes.append(f"attribute {key!r} is declared boolean but holds other values: kept as text")
            return raw
        return val.astype("bool") if present.all() else val.astype("boolean")
    if xes_type == "date":
        ts = parse_timestamps(s, tz=tz)
        if (ts.isna().to_numpy() & present).any():
            notes.append(f"attribute {key!r} is declared date but holds other values: kept as text")
            return raw
        return ts
    return raw


def _lifecycle_set(lifecycle: str | Iterable[str] | None) -> set[str] | None:
    if lifecycle is None:
        return None
    if isinstance(lifecycle, str):
        return {lifecycle.strip().lower()}
    try:
        values = {str(v).strip().lower() for v in lifecycle}
    except TypeError:
        raise ParameterError(
            "The 'lifecycle' parameter of load_history must be a transition such as 'complete', a list "
            f"of transitions, or None (keep all). Got {type(lifecycle).__name__} instead."
        ) from None
    return values


def _resolve(
    mapping: Mapping[str, str] | str | None,
    trace_keys: list[str],
    event_keys: list[str],
    source: str,
) -> tuple[dict[str, str], dict[str, str], dict[str, Any]]:
    """Canonical field -> trace attribute, canonical field -> event attribute, preset options.

    A mapped name may carry the ``case:`` prefix of flat XES exports (``case:enddate``) to say it is
    a trace attribute; without it, case-level fields look in trace attributes first.
    """
    options: dict[str, Any] = {}
    required = {"case_id", "name", "timestamp"}
    user: dict[str, str]
    if mapping is None:
        user = {}
    elif isinstance(mapping, str):
        preset = get_preset(mapping)
        if preset.shape != "events":
            raise ParameterError(
                f"The 'mapping' parameter of load_history must be an events preset for an XES log; "
                f"{preset.name!r} describes {preset.shape} tables. Got {mapping!r} instead."
            )
        options = {k: v for k, v in preset.options.items() if k != "required"}
        known = set(event_keys) | {f"case:{k}" for k in trace_keys} | set(trace_keys)
        user = {k: v for k, v in preset.mapping.items() if v in known or k in required}
    elif isinstance(mapping, Mapping):
        check_mapping(mapping)  # a typo such as 'outcom' would otherwise be read by nothing
        user = {str(k): str(v) for k, v in mapping.items()}
    else:
        raise ParameterError(
            "The 'mapping' parameter of load_history must be a dict or a preset name. "
            f"Got {type(mapping).__name__} instead."
        )
    tset, eset = set(trace_keys), set(event_keys)
    wanted: dict[str, str] = {"case_id": "case:concept:name", "name": "concept:name", "timestamp": "time:timestamp"}
    taken = set(user.values())
    for canon, key in (("owner", "org:resource"), ("role", "org:role"), ("role", "org:group")):
        if canon not in wanted and canon not in user and key in eset and key not in taken:
            wanted[canon] = key
    wanted.update(user)
    present = [*event_keys, *(f"case:{k}" for k in trace_keys)]
    case_key = wanted.pop("case_id")
    case_key = case_key[5:] if case_key.startswith("case:") else case_key
    if case_key not in tset and case_key != "concept:name":
        # (a log without any trace name gets the clearer per-trace message later)
        raise MissingColumnError(
            case_key, canonical="case_id", present=[f"case:{k}" for k in trace_keys], source=source
        )
    to_trace: dict[str, str] = {"case_id": case_key}
    to_event: dict[str, str] = {}
    for canon, ref in wanted.items():
        bare = ref[5:] if ref.startswith("case:") else ref
        if canon in _EVENT_FIELDS:
            levels = [(eset, to_event)] if not ref.startswith("case:") else []
        elif ref.startswith("case:"):
            levels = [(tset, to_trace)]
        elif canon in _CASE_FIELDS:
            levels = [(tset, to_trace), (eset, to_event)]
        else:
            levels = [(eset, to_event), (tset, to_trace)]
        for keys, into in levels:
            if bare in keys:
                into[canon] = bare
                break
        else:
            if canon in required or canon in user:
                shown = [*event_keys] if canon in _EVENT_FIELDS else present
                raise MissingColumnError(bare, canonical=canon, present=shown, source=source)
    return to_trace, to_event, options


# --- the steps from a parsed log to a history (the same for both readers) ----------------------


class _Table(Protocol):
    """One level of a parsed log, traces or events: a row per trace or event, a column per key."""

    @property
    def n(self) -> int: ...

    @property
    def keys(self) -> list[str]: ...

    @property
    def lines(self) -> Any: ...

    def raw(self, key: str, rows: np.ndarray | None = None, *, dates: bool = False) -> Any: ...

    def typed(self, key: str, rows: np.ndarray, *, tz: str, notes: list[str]) -> Any: ...


class _ParsedLog(Protocol):
    """What either reader hands on: the traces, the events, each event's trace, and what was left out."""

    @property
    def traces(self) -> _Table: ...

    @property
    def events(self) -> _Table: ...

    @property
    def event_trace(self) -> Any: ...

    @property
    def outside(self) -> int: ...

    @property
    def nested(self) -> int: ...

    @property
    def lists(self) -> Mapping[str, int]: ...


@dataclass(frozen=True)
class _Kept:
    """Which events and traces become events and cases, and the case id of each trace."""

    ids: np.ndarray
    events: np.ndarray
    traces: np.ndarray


def _check_not_empty(log: _ParsedLog, source: str) -> None:
    n_traces, n_events = log.traces.n, log.events.n
    if n_traces == 0:
        raise EmptyInputError(f"{source}: the log holds no traces. Fix: export the log with its cases.")
    if n_events == 0:
        raise EmptyInputError(f"{source}: the log's {n_traces:,} traces hold no events. Fix: export the events too.")


def _case_ids(log: _ParsedLog, id_key: str, source: str, sk: Skips) -> _Kept:
    """Every trace needs a case id, else its events cannot be told apart: an error, or (with
    ``errors="skip"``) the trace and its events are skipped and counted."""
    tr = log.traces
    ids = np.asarray(tr.raw(id_key), dtype=object) if id_key in tr.keys else np.full(tr.n, None, dtype=object)
    id_text = pd.Series(ids, dtype=object).str.strip()
    nameless = (id_text.isna() | (id_text == "")).to_numpy()
    kept = _Kept(ids, np.ones(log.events.n, dtype=bool), np.ones(tr.n, dtype=bool))
    if not nameless.any():
        return kept
    first = int(np.flatnonzero(nameless)[0])
    if sk.errors == "raise":
        raise MalformedFileError(
            f"{source}, line {tr.lines[first]}: trace {first + 1} has no {id_key!r} attribute, so "
            f"its events cannot be told from other cases' ({_traces(int(nameless.sum()))} without it in the file). "
            f"Fix: give every trace <string key=\"{id_key}\" value=\"...\"/>, take the case id from "
            "another trace attribute (mapping={'case_id': '<key>'}), or pass errors='skip' to skip "
            "such traces (each is counted as skipped with its events)."
        )
    event_trace = np.asarray(log.event_trace, dtype=np.int64)
    per_trace = np.bincount(event_trace, minlength=tr.n)
    sk.count(f"trace without {id_key} (with its events)", int(nameless.sum() + per_trace[nameless].sum()))
    return _Kept(ids, ~nameless[event_trace], ~nameless)


def _lifecycle_filter(log: _ParsedLog, keep: set[str] | None, kept: _Kept, source: str, sk: Skips) -> _Kept:
    """Only events of a kept ``lifecycle:transition`` (or none) stay, the others counted by
    transition; a trace the filter empties is no case."""
    ev = log.events
    if keep is None or "lifecycle:transition" not in ev.keys:
        return kept
    low = pd.Series(ev.raw("lifecycle:transition")).str.strip().str.lower()
    drop = (low.notna() & ~low.isin(keep)).to_numpy() & kept.events
    if not drop.any():
        return kept
    found = low[drop].value_counts(sort=False)
    if not (kept.events & ~drop).any():
        shown = ", ".join(f"{v} ({n:,})" for v, n in found.items())
        raise EmptyInputError(
            f"{source}: no event has a lifecycle transition in {sorted(keep)}; "
            f"the log has {shown}. Fix: pass lifecycle='{found.index[0]}', or lifecycle=None "
            "to keep every event."
        )
    for value, n in found.items():
        sk.count(f"lifecycle transition not kept ({value})", int(n))
    events = kept.events & ~drop
    # a trace the filter emptied is no case: it had events, none of the kept kind
    event_trace = np.asarray(log.event_trace, dtype=np.int64)
    emptied = kept.traces & (np.bincount(event_trace, minlength=log.traces.n) > 0)
    emptied &= np.bincount(event_trace[events], minlength=log.traces.n) == 0
    sk.count("trace with no event of a kept lifecycle transition", int(emptied.sum()))
    return _Kept(kept.ids, events, kept.traces & ~emptied)


def _left_out(log: _ParsedLog, sk: Skips) -> list[str]:
    """Events outside traces are counted as skipped; nested and list attributes noted."""
    notes: list[str] = []
    if log.outside:
        sk.count("event outside any trace", log.outside)
    if log.nested:
        notes.append(f"{log.nested:,} nested attribute values (children of trace or event attributes) ignored")
    if log.lists:
        listed = ", ".join(f"{k!r} ({n:,})" for k, n in log.lists.items())
        notes.append(f"list attributes ignored: {listed}")
    return notes


def _frame(cols: _Table, rename: Mapping[str, str], rows: np.ndarray, *, tz: str, notes: list[str]) -> pd.DataFrame:
    """One column per attribute key, for ``rows``. Mapped keys take their canonical name and stay
    raw text (the builder parses and reports them); the others keep their key and are converted
    by XES type."""
    by_key = {key: canon for canon, key in rename.items()}
    keys = cols.keys
    data: dict[str, Any] = {}
    for key, canon in by_key.items():
        if key in keys:
            data[canon] = cols.raw(key, rows, dates=canon in _DATE_FIELDS)
    reserved = {"case_id", "_row"}
    for key in keys:
        if key in by_key:
            continue
        if key in data or key in reserved:
            notes.append(f"attribute {key!r} has a name the loader uses for another field: not loaded")
            continue
        data[key] = cols.typed(key, rows, tz=tz, notes=notes)
    return pd.DataFrame(data, index=pd.RangeIndex(len(rows)))


def _frames(
    log: _ParsedLog, kept: _Kept, to_event: Mapping[str, str], to_trace: Mapping[str, str], *, tz: str, notes: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The builder's event and case tables, each row with its line in the file (``_row``)."""
    rows = np.flatnonzero(kept.events)
    events = _frame(log.events, to_event, rows, tz=tz, notes=notes)
    events["case_id"] = kept.ids[np.asarray(log.event_trace, dtype=np.int64)[rows]]
    events["_row"] = np.asarray(log.events.lines, dtype=np.int64)[rows]
    trows = np.flatnonzero(kept.traces)
    cases = _frame(log.traces, to_trace, trows, tz=tz, notes=notes)
    cases["_row"] = np.asarray(log.traces.lines, dtype=np.int64)[trows]
    return events, cases


def _history(log: _ParsedLog, source: str, options: LoadOptions, keep: set[str] | None) -> History:
    """A parsed log -> History: case ids, the lifecycle filter, the tables, the builder."""
    _check_not_empty(log, source)
    to_trace, to_event, preset = _resolve(options.mapping, log.traces.keys, log.events.keys, source)
    sk = Skips(source=source, errors=options.errors)
    id_key = to_trace.pop("case_id")
    kept = _lifecycle_filter(log, keep, _case_ids(log, id_key, source, sk), source, sk)
    notes = _left_out(log, sk)
    events, cases = _frames(log, kept, to_event, {**to_trace, "case_id": id_key}, tz=options.tz, notes=notes)
    given = {k: v for k, v in options.build_kwargs().items() if v is not None}
    try:
        return build_history(
            events, cases, source=source, decimal=".",
            rows_read=log.traces.n + log.events.n + log.outside,
            skips=sk, notes=notes, column_names={**to_event, **to_trace, "case_id": id_key}, **{**preset, **given},
        )
    except InvalidValueError as exc:
        # rows of an XES file are lines of XML: say so
        if exc.row is not None:
            exc.args = (str(exc).replace(f"{source}, row {exc.row},", f"{source}, line {exc.row},", 1),)
        raise


def _read_fast(path: Path, options: LoadOptions) -> _ParsedLog | None:
    """The log as r4pm reads it, where it reads it as the expat reader does (else None)."""
    if options.date_format is not None:
        return None  # mapped dates come parsed: a format for their text would not be checked
    try:
        if path.stat().st_size < _FAST_FROM_BYTES:
            return None  # small logs: expat is done before r4pm and polars are imported
    except OSError:
        return None
    return _xes_fast.read_fast(path, naive_ok=options.tz == "UTC")


def read_xes(path: str | Path, *, options: LoadOptions | None = None) -> History:
    """Read an XES event log (``.xes`` or gzip-compressed ``.xes.gz``) into a :class:`History`.

    :func:`salesproc.load_history` calls this for XES files; the options mean the same there.

    Parameters
    ----------
    path
        The log. Compression is recognised from the file's first bytes, not its name.
    options
        How the log becomes a history (:class:`~salesproc.load.LoadOptions`; the defaults if
        None). For XES:

        ``lifecycle``
            Which ``lifecycle:transition`` values to keep (case-insensitive); ``None`` keeps every
            event. Events without the attribute are kept. The others are counted in
            ``report.skipped``.
        ``mapping``
            Canonical field -> XES attribute key, for fields the standard keys do not give, e.g.
            ``{"target_date": "enddate_planned", "closed": "enddate"}``. Case-level fields are
            looked up among trace attributes first; ``case:`` before a key (``"case:enddate"``)
            names a trace attribute explicitly. Also a preset name (``"xes-csv"``).

        The others (``kind``, ``errors``, ``tz``, ``outcome_values``, ``outcome_events``,
        ``milestones``, ``dayfirst``, ``date_format``) as in :func:`salesproc.load_history`.

    Returns
    -------
    History
        One case per trace, one event per kept event. ``report.rows_read`` counts every trace and
        every event read (a trace is the case's row, an event an event's), so the events the
        lifecycle filter drops are counted in ``report.skipped``.

    Raises
    ------
    MalformedFileError
        XML that is not well formed, truncated gzip data, a root other than ``<log>``, or (with
        ``errors="raise"``) a trace without ``concept:name``; the message names file, line and trace.
    MissingColumnError
        A mapped attribute that no trace or event has.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from salesproc.load import LoadOptions
    >>> from salesproc.load._xes import read_xes
    >>> xes = \'\'\'<log xes.version="1.0">
    ...  <trace><string key="concept:name" value="P1"/>
    ...   <date key="planned" value="2024-02-01T00:00:00+00:00"/>
    ...   <date key="done" value="2024-02-10T00:00:00+00:00"/>
    ...   <event><string key="concept:name" value="Kick-off"/>
    ...    <string key="lifecycle:transition" value="start"/>
    ...    <date key="time:timestamp" value="2024-01-05T09:00:00+01:00"/></event>
    ...   <event><string key="concept:name" value="Kick-off"/>
    ...    <string key="lifecycle:transition" value="complete"/>
    ...    <date key="time:timestamp" value="2024-01-05T11:00:00+01:00"/></event>
    ...  </trace>
    ... </log>\'\'\'
    >>> opts = LoadOptions(kind="project", mapping={"target_date": "planned", "closed": "done"})
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = pathlib.Path(d) / "log.xes"
    ...     _ = p.write_text(xes)
    ...     h = read_xes(p, options=opts)
    >>> h.cases[["case_id", "outcome"]].to_dict("records")
    [{'case_id': 'P1', 'outcome': 'late'}]
    >>> h.events["timestamp"].tolist()
    [Timestamp('2024-01-05 10:00:00+0000', tz='UTC')]
    >>> dict(h.report.skipped)
    {'lifecycle transition not kept (start)': 1}
    """
    options = LoadOptions() if options is None else options
    path = Path(path)
    source = str(path)
    keep = _lifecycle_set(options.lifecycle)
    fast = _read_fast(path, options)
    if fast is not None:
        try:
            return _history(fast, source, options, keep)
        except ParameterError:
            raise
        except (SalesprocError, _xes_fast.Unsupported):
            pass  # the expat reader says where (file, line, trace), or reads what r4pm cannot give
    return _history(_parse(path, source), source, options, keep)
