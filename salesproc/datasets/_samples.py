"""Sample histories shipped inside the package, read through the real loader.

The files in ``salesproc/datasets/data/`` are plain canonical event logs (one row per event, with
the case-level columns repeated on every row), so loading them exercises
:func:`salesproc.load_history` exactly as a user's own export would. They were drawn by
:func:`~salesproc.datasets.synthetic_history` (``benchmarks/make_samples.py`` regenerates them):

``sample_deals.csv``
    ``synthetic_history(600, seed=7)``: won, lost and open deals.
``sample_projects.csv``
    ``synthetic_history(300, seed=7, kind="project")``: on-time, late, failed and open projects,
    with their planned end (``target_date``).

Call :func:`~salesproc.datasets.synthetic_history` with the same arguments to get the planted
truth behind a sample.
"""

from __future__ import annotations

import dataclasses
from contextlib import ExitStack
from functools import cache
from importlib.resources import as_file, files
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from salesproc.errors import ParameterError
from salesproc.history._history import History

__all__ = [
    "SAMPLES",
    "event_log_table",
    "example_path",
    "load_sample_deals",
    "load_sample_projects",
    "sample_path",
    "write_event_log_csv",
]

#: sample name -> (file name, the synthetic_history call that drew it, readable source name)
SAMPLES: dict[str, tuple[str, dict[str, object], str]] = {
    "deals": ("sample_deals.csv", {"n_cases": 600, "seed": 7, "kind": "deal"}, "salesproc sample deals"),
    "projects": (
        "sample_projects.csv",
        {"n_cases": 300, "seed": 7, "kind": "project"},
        "salesproc sample projects",
    ),
}

_files = ExitStack()


def sample_path(name: str = "deals") -> Path:
    """The path of a shipped sample file (``"deals"`` or ``"projects"``), e.g. to load it yourself.

    Examples
    --------
    >>> from salesproc.datasets import sample_path
    >>> sample_path("deals").name
    'sample_deals.csv'
    """
    if name not in SAMPLES:
        raise ParameterError(
            f"The 'name' parameter of sample_path must be one of {sorted(SAMPLES)}. Got {name!r} instead."
        )
    res = files("salesproc.datasets") / "data" / SAMPLES[name][0]
    # a real file for installed packages; extracted once (and kept) for zipped ones
    return Path(_files.enter_context(as_file(res)))


def example_path() -> Path:
    """A hand-written 30-deal export in the commonest CRM shape, to try salesproc on a file like yours.

    One row per stage change: ``deal_id, stage, date, owner, amount, close_date``; stages Lead >
    Qualified > Demo > Proposal > Negotiation > Closed Won / Closed Lost (6 won, 8 lost, 16 open).
    ``close_date`` is the expected close of an open deal. Loaded with a column mapping only: the
    Closed Won / Closed Lost stages are read as outcomes.

    Examples
    --------
    >>> import salesproc
    >>> from salesproc.datasets import example_path
    >>> h = salesproc.load_history(
    ...     example_path(), mapping={"case_id": "deal_id", "name": "stage", "timestamp": "date", "amount": "amount"}
    ... )
    >>> h.cases["outcome"].astype(str).value_counts().to_dict()
    {'open': 16, 'lost': 8, 'won': 6}
    """
    res = files("salesproc.datasets") / "data" / "example_stage_history.csv"
    return Path(_files.enter_context(as_file(res)))


@cache
def _load(name: str) -> History:
    from salesproc.load._load import load_history

    h = load_history(sample_path(name))
    report = dataclasses.replace(h.report, source=SAMPLES[name][2])
    return History(h.cases, h.events, report)


def load_sample_deals() -> History:
    """600 synthetic deals (won, lost and open) with milestones and activities.

    The file is a canonical event log read by :func:`salesproc.load_history` with no mapping.
    The deals follow the process described in :mod:`salesproc.datasets._synthetic`;
    ``synthetic_history(600, seed=7)`` returns the same history and its planted truth.

    Examples
    --------
    >>> from salesproc.datasets import load_sample_deals
    >>> h = load_sample_deals()
    >>> len(h), h.report.source
    (600, 'salesproc sample deals')
    >>> sorted(h.cases["outcome"].unique().tolist())
    ['lost', 'open', 'won']
    """
    return _load("deals")


def load_sample_projects() -> History:
    """300 synthetic delivery projects (on time, late, failed and open) with planned end dates.

    ``synthetic_history(300, seed=7, kind="project")`` returns the same history and its planted
    truth.

    Examples
    --------
    >>> from salesproc.datasets import load_sample_projects
    >>> h = load_sample_projects()
    >>> len(h), h.report.source
    (300, 'salesproc sample projects')
    >>> sorted(h.cases["outcome"].unique().tolist())
    ['failed', 'late', 'on_time', 'open']
    """
    return _load("projects")


def event_log_table(history: History, *, timestamps_as_text: bool = True) -> pa.Table:
    """A history as one flat canonical event log: one row per event, case columns repeated.

    Columns: ``case_id, name, type, timestamp, owner, role, outcome, segment``, ``kind`` unless
    all cases are deals, ``amount, created, closed`` (empty while open) and ``target_date`` when
    any case has one. With
    ``timestamps_as_text`` dates are ISO 8601 text in UTC (``2023-01-05T14:03:11Z``), ready for
    :func:`write_event_log_csv`; otherwise they stay timestamps (for Parquet).
    """
    c = history.cases
    e = history.events
    codes = e["case_id"].cat.codes.to_numpy()

    def ts(values: pd.Series) -> pa.Array:
        arr = pa.array(values, from_pandas=True).cast(pa.timestamp("s", tz="UTC"))
        return pc.strftime(arr, format="%Y-%m-%dT%H:%M:%SZ") if timestamps_as_text else arr

    def per_event(col: str) -> pa.Array:
        arr = pa.array(c[col].astype("object") if isinstance(c[col].dtype, pd.CategoricalDtype) else c[col],
                       from_pandas=True)
        return arr.take(pa.array(codes))

    cols: dict[str, pa.Array] = {
        "case_id": pa.array(e["case_id"].astype("str"), from_pandas=True),
        "name": pa.array(e["name"].astype("str"), from_pandas=True),
        "type": pa.array(e["type"].astype("str"), from_pandas=True),
        "timestamp": ts(e["timestamp"]),
        "owner": pa.array(e["owner"], from_pandas=True, type=pa.string()),
        "role": pa.array(e["role"], from_pandas=True, type=pa.string()),
        "outcome": per_event("outcome"),
        "segment": per_event("segment"),
    }
    if (c["kind"] != "deal").any():  # deals are the loader's default kind
        cols["kind"] = per_event("kind")
    amount = c["amount"].to_numpy()
    whole = np.isnan(amount) | (amount == np.round(amount))
    cols["amount"] = (pa.array(amount, from_pandas=True).cast(pa.int64()) if whole.all() else pa.array(amount)).take(
        pa.array(codes)
    )
    for col in ("created", "closed", "target_date"):
        if col == "target_date" and not c[col].notna().any():
            continue
        cols[col] = ts(c[col]).take(pa.array(codes))
    return pa.table(cols)


def write_event_log_csv(history: History, path: str | Path) -> Path:
    """Write :func:`event_log_table` as CSV (UTF-8); values are quoted only if one needs it."""
    return write_table_csv(event_log_table(history), path)


def write_table_csv(table: pa.Table, path: str | Path) -> Path:
    """Write a table as CSV (UTF-8); values are quoted only if one needs it."""
    p = Path(path)
    plain = all(n.isidentifier() for n in table.column_names)
    style = "none"
    with p.open("wb") as fh:
        if plain:
            fh.write((",".join(table.column_names) + "\n").encode("utf-8"))
        try:
            pacsv.write_csv(table, fh, write_options=pacsv.WriteOptions(include_header=not plain, quoting_style=style))
        except pa.ArrowInvalid:  # a value holds a comma, quote or line break: quote text values
            style = "needed"
    if style == "needed":
        pacsv.write_csv(table, p, write_options=pacsv.WriteOptions(quoting_style=style))
    return p
