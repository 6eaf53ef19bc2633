"""Property: a table written in any supported format and dialect loads back as written, or fails
with a named error (issue 17).

Random small deal tables (case ids such as ``NA``, ``N/A`` and ``null`` among them, names, dates,
outcomes, amounts, segments) are written as CSV (``,`` ``;`` tab ``|`` delimiters, decimal point
or decimal comma, with or without thousands separators, every value quoted or only where needed,
UTF-8 with and without a byte order mark, UTF-16, cp1252 read with ``encoding=``), as Excel
``.xlsx`` and as Parquet. Loading gives back every case with its values, every event with its
date, and counts every row (read = loaded + skipped); where the file does not say what its numbers
mean (amounts such as ``1,234`` only) the load stops with an :class:`InputError` naming file, row,
column and the fix.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import salesproc
from salesproc.errors import InputError

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# the texts that other tools read as missing, and text a CSV must quote
SPECIAL_IDS = ["NA", "N/A", "null", "NULL", "None", "nan", "NaN", "#N/A", "-", "n/a", "0", "007"]
ID_CHARS = "abcXYZ019 -_/éüß,;|\"'"
SEGMENTS = ["NA", "N/A", "null", "EU", "Nord-Süd", "Ünited; \"Kingdom\"", None]
NAMES = ["Qualify", "Proposal", "Négociation", "NA"]


@dataclass(frozen=True)
class Case:
    case_id: str
    events: tuple[tuple[str, dt.date], ...]  # (name, date): names distinct within a case
    outcome: str
    cents: int
    segment: str | None


ids = st.one_of(
    st.sampled_from(SPECIAL_IDS),
    st.text(alphabet=ID_CHARS, min_size=1, max_size=8).map(str.strip).filter(bool),
)
dates = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2030, 12, 31))


@st.composite
def cases(draw: st.DrawFn, *, whole: bool = False) -> list[Case]:
    """1-5 cases of 1-3 events each; ``whole`` amounts are whole units (cents 0)."""
    case_ids = draw(st.lists(ids, min_size=1, max_size=5, unique=True))
    out = []
    for cid in case_ids:
        names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
        events = tuple((n, draw(dates)) for n in names)
        units = draw(st.integers(0, 10_000_000))
        cents = units * 100 if whole else units * 100 + draw(st.integers(0, 99))
        outcome = draw(st.sampled_from(["won", "lost", "open"]))
        out.append(Case(cid, events, outcome, cents, draw(st.sampled_from(SEGMENTS))))
    return out


def written(cents: int, *, decimal: str, thousands: bool, whole: bool) -> str:
    """An amount as a spreadsheet would write it."""
    units, rest = divmod(cents, 100)
    sep = "," if decimal == "." else "."
    head = f"{units:,}".replace(",", sep) if thousands else str(units)
    return head if whole else f"{head}{decimal}{rest:02d}"


def rows(table: list[Case]) -> list[dict[str, object]]:
    return [
        {
            "case_id": c.case_id, "name": n, "timestamp": d, "outcome": c.outcome, "amount": c.cents / 100,
            "segment": c.segment,
        }
        for c in table
        for n, d in c.events
    ]


def check_loaded(h: salesproc.History, table: list[Case]) -> None:
    """Every case and event as written, every row counted."""
    r = h.report
    assert r.rows_read == r.rows_loaded + sum(r.skipped.values())
    assert r.rows_read == sum(len(c.events) for c in table) and not r.skipped
    got = h.cases.set_index(h.cases["case_id"].astype(str))
    assert sorted(got.index) == sorted(c.case_id for c in table)
    for c in table:
        row = got.loc[c.case_id]
        assert row["outcome"] == c.outcome
        assert row["amount"] == pytest.approx(c.cents / 100, abs=1e-9)
        assert (row["segment"] if pd.notna(row["segment"]) else None) == c.segment
    ev = h.events.assign(case_id=h.events["case_id"].astype(str), name=h.events["name"].astype(str))
    have = sorted(zip(ev["case_id"], ev["name"], ev["timestamp"].dt.date))
    assert have == sorted((c.case_id, n, d) for c in table for n, d in c.events)


def check_named_error(exc: InputError, source: str) -> None:
    """A refusal names the file, the row and the column, and says how to fix it."""
    msg = str(exc)
    assert source in msg and re.search(r"row \d+", msg) and "column '" in msg and "Fix:" in msg


@dataclass(frozen=True)
class Dialect:
    delimiter: str
    decimal: str
    thousands: bool
    whole: bool
    quote_all: bool
    encoding: str  # how the file is written
    given_encoding: str | None  # what load_history is told (None: its default)


dialects = st.builds(
    Dialect,
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    decimal=st.sampled_from([".", ","]),
    thousands=st.booleans(),
    whole=st.booleans(),
    quote_all=st.booleans(),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]),
    given_encoding=st.none(),
).map(lambda d: d if d.encoding != "cp1252" else Dialect(**{**d.__dict__, "given_encoding": "cp1252"}))


def csv_text(table: list[Case], d: Dialect) -> str:
    out = io.StringIO()
    quoting = csv.QUOTE_ALL if d.quote_all else csv.QUOTE_MINIMAL
    w = csv.writer(out, delimiter=d.delimiter, quoting=quoting, lineterminator="\n")
    w.writerow(["case_id", "name", "timestamp", "outcome", "amount", "segment"])
    for case in table:
        amount = written(case.cents, decimal=d.decimal, thousands=d.thousands, whole=d.whole)
        for name, date in case.events:
            w.writerow([case.case_id, name, date.isoformat(), case.outcome, amount, case.segment or ""])
    return out.getvalue()


def reads_two_ways(table: list[Case], d: Dialect) -> bool:
    """Whether no amount tells the decimal mark: whole numbers, some with one thousands separator
    (1,234 is 1234 or 1.234), none with two (1,234,567 can only be a million)."""
    units = [c.cents // 100 for c in table]
    return d.whole and d.thousands and any(u >= 1_000 for u in units) and all(u < 1_000_000 for u in units)


@SETTINGS
@given(table=cases(), d=dialects, errors=st.sampled_from(["raise", "skip"]))
def test_csv_in_every_dialect_round_trips(table: list[Case], d: Dialect, errors: str) -> None:
    if d.whole:
        table = [Case(c.case_id, c.events, c.outcome, c.cents // 100 * 100, c.segment) for c in table]
    with tempfile.TemporaryDirectory() as folder:
        p = Path(folder) / "deals.csv"
        p.write_bytes(csv_text(table, d).encode(d.encoding))
        kwargs = {"encoding": d.given_encoding} if d.given_encoding else {}
        if reads_two_ways(table, d):
            with pytest.raises(InputError) as info:
                salesproc.load_history(p, errors=errors, **kwargs)  # type: ignore[arg-type]
            check_named_error(info.value, "deals.csv")
            assert "decimal=" in str(info.value)
            h = salesproc.load_history(p, errors=errors, decimal=d.decimal, **kwargs)  # type: ignore[arg-type]
        else:
            h = salesproc.load_history(p, errors=errors, **kwargs)  # type: ignore[arg-type]
        check_loaded(h, table)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=cases(), date_cells=st.booleans())
def test_excel_round_trips(table: list[Case], date_cells: bool) -> None:
    df = pd.DataFrame(rows(table))
    df["timestamp"] = pd.to_datetime(df["timestamp"]) if date_cells else df["timestamp"].map(dt.date.isoformat)
    with tempfile.TemporaryDirectory() as folder:
        p = Path(folder) / "deals.xlsx"
        df.to_excel(p, index=False)
        if any(c.case_id == "#N/A" for c in table):  # openpyxl writes that text as Excel's error value
            with pytest.raises(InputError, match="Excel error #N/A") as info:
                salesproc.load_history(p)
            check_named_error(info.value, "deals.xlsx")
            return
        check_loaded(salesproc.load_history(p), table)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=cases(), errors=st.sampled_from(["raise", "skip"]))
def test_parquet_round_trips(table: list[Case], errors: str) -> None:
    df = pd.DataFrame(rows(table))
    df["timestamp"] = pd.to_datetime(df["timestamp"])
    with tempfile.TemporaryDirectory() as folder:
        p = Path(folder) / "deals.parquet"
        df.to_parquet(p)
        check_loaded(salesproc.load_history(p, errors=errors), table)  # type: ignore[arg-type]


@SETTINGS
@given(table=cases(), d=dialects)
def test_a_cell_that_is_no_number_is_named_or_counted(table: list[Case], d: Dialect) -> None:
    # the first case's amount spoilt (on each of its rows): raise names file, row and column; skip
    # loads the rest and counts the rows
    text = csv_text(table, d)
    lines = text.split("\n")
    for i in range(1, 1 + len(table[0].events)):
        cells = next(csv.reader([lines[i]], delimiter=d.delimiter))
        cells[4] = "twelve"
        buf = io.StringIO()
        csv.writer(buf, delimiter=d.delimiter, lineterminator="").writerow(cells)
        lines[i] = buf.getvalue()
    with tempfile.TemporaryDirectory() as folder:
        p = Path(folder) / "deals.csv"
        p.write_bytes("\n".join(lines).encode(d.encoding))
        kwargs = {"encoding": d.given_encoding} if d.given_encoding else {}
        try:
            salesproc.load_history(p, **kwargs)  # type: ignore[arg-type]
        except InputError as exc:
            check_named_error(exc, "deals.csv")
        else:
            pytest.fail("a spoilt amount loaded without a word")
        try:
            h = salesproc.load_history(p, errors="skip", **kwargs)  # type: ignore[arg-type]
        except InputError as exc:  # the mark cannot be told from the other amounts
            check_named_error(exc, "deals.csv")
            assert "decimal=" in str(exc)
            return
        r = h.report
        assert r.rows_read == r.rows_loaded + sum(r.skipped.values()) == sum(len(c.events) for c in table)
        first = table[0]
        assert sum(r.skipped.values()) == len(first.events)  # the case is skipped with all its rows
        assert first.case_id not in set(h.cases["case_id"].astype(str))
