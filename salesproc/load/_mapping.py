"""Column mappings: which column of a source holds each canonical field, a preset's shape, and
the hand-off of a mapped table to the builder for that shape (event log, CRM snapshot, stage
history, milestone table). Shared by every table-like source: files and SQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import pandas as pd

from salesproc.errors import EmptyInputError, InputError, MissingColumnError, ParameterError
from salesproc.history._history import History
from salesproc.load._build import build_history
from salesproc.load._crm import snapshot_history, stage_history
from salesproc.load._options import LoadOptions
from salesproc.load._presets import Preset, check_mapping, detect_preset, get_preset, preset_options
from salesproc.load._projects import milestone_table_history

__all__ = ["REQUIRED_EVENT_COLUMNS", "apply_mapping", "from_table", "resolve_mapping", "suggest_mapping"]

# what export columns holding a canonical field are often called, best guess first
_COLUMN_GUESSES: dict[str, tuple[str, ...]] = {
    "case_id": (
        "case id", "case", "caseid", "deal id", "deal", "opportunity id", "opportunity", "project id",
        "project", "ticket id", "id", "case:concept:name",
    ),
    "name": (
        "activity", "stage", "step", "milestone", "event", "task", "phase", "status", "action",
        "concept:name",
    ),
    "timestamp": (
        "time", "date", "when", "datetime", "date time", "timestamp", "time:timestamp", "changed at",
        "entered", "changed", "start",
    ),
}


REQUIRED_EVENT_COLUMNS = ("case_id", "name", "timestamp")


def resolve_mapping(
    mapping: Mapping[str, str] | str | None, columns: list[str]
) -> tuple[dict[str, str], Preset | None]:
    """Canonical -> source column, and the preset when one was named or detected."""
    if mapping is None:
        preset = detect_preset(columns)
        return resolve_mapping(preset.name, columns) if preset else ({}, None)
    if isinstance(mapping, str):
        preset = get_preset(mapping)
        present = set(columns)
        required = set(preset.options.get("required", REQUIRED_EVENT_COLUMNS))
        # a preset's optional columns may be absent from a given export
        return {k: v for k, v in preset.mapping.items() if v in present or k in required}, preset
    if not isinstance(mapping, Mapping):
        raise ParameterError(
            f"The 'mapping' parameter must be a dict or a preset name. Got {type(mapping).__name__} instead."
        )
    check_mapping(mapping)
    if "preset" in mapping:
        # a preset whose column names differ in this export: {"preset": "crm-snapshot", "stage": "Stage"}
        base = get_preset(str(mapping["preset"]))
        own = {str(k): str(v) for k, v in mapping.items() if k != "preset"}
        merged = {**dict(base.mapping), **own}
        present = set(columns)
        required = set(base.options.get("required", REQUIRED_EVENT_COLUMNS))
        cols = {k: v for k, v in merged.items() if v in present or k in required or k in own}
        return cols, base
    return {str(k): str(v) for k, v in mapping.items()}, None


def _norm_col(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", str(name).strip().lower())


def suggest_mapping(
    mapping: Mapping[str, str], present: list[str], needed: Iterable[str] = REQUIRED_EVENT_COLUMNS
) -> dict[str, str]:
    """A mapping the user can copy: theirs with absent columns replaced by the likeliest present ones.

    Examples
    --------
    >>> suggest_mapping({}, ["Deal ID", "Stage", "Date", "Amount"])
    {'case_id': 'Deal ID', 'name': 'Stage', 'timestamp': 'Date'}
    >>> suggest_mapping({"case_id": "Deal", "name": "Stage"}, ["deal", "Stage", "When"])
    {'case_id': 'deal', 'name': 'Stage', 'timestamp': 'When'}
    """
    import difflib

    by_norm = {_norm_col(c): c for c in reversed(present)}
    taken = {c for c in mapping.values() if c in present}
    out: dict[str, str] = {}
    for canon in dict.fromkeys([*mapping, *needed]):
        col = mapping.get(canon)
        if col in present:
            out[canon] = col
            continue
        guess = None
        wanted = [col] if col is not None else []
        for cand in [*wanted, canon, *_COLUMN_GUESSES.get(canon, ())]:
            hit = by_norm.get(_norm_col(cand))
            if hit is not None and hit not in taken:
                guess = hit
                break
        if guess is None and col is not None:
            free = [c for c in present if c not in taken]
            close = difflib.get_close_matches(_norm_col(col), [_norm_col(c) for c in free], n=1, cutoff=0.6)
            guess = by_norm[close[0]] if close else None
        out[canon] = guess or "<your column>"
        if guess:
            taken.add(guess)
    return out


def apply_mapping(
    df: pd.DataFrame,
    mapping: Mapping[str, str],
    *,
    source: str,
    required: Iterable[str] = REQUIRED_EVENT_COLUMNS,
) -> pd.DataFrame:
    """Rename the source's columns to canonical names; a missing column gets a helpful error.

    The error lists the columns present and a whole mapping to copy, with the absent names replaced
    by the likeliest present columns.
    """
    present = [str(c) for c in df.columns if c != "_row"]
    required = list(required)
    for canon, col in mapping.items():
        if col not in present:
            raise MissingColumnError(
                col, canonical=canon, present=present, source=source,
                suggest=suggest_mapping(mapping, present, required),
            )
    rename = {col: canon for canon, col in mapping.items()}
    clash = [c for c in present if c in rename.values() and c not in rename]
    out = df.drop(columns=clash).rename(columns=rename) if clash else df.rename(columns=rename)
    for canon in required:
        if canon not in out.columns:
            raise MissingColumnError(
                canon, canonical=canon, present=present, source=source,
                suggest=suggest_mapping(mapping, present, required),
            )
    return out


def from_table(df: pd.DataFrame, source: str, *, options: LoadOptions) -> History:
    """A history from a table of rows, read with the shape its mapping (``options.mapping``) says.

    ``options.decimal`` is the decimal mark the table's numbers use (None: the mark each column's
    values prove). A preset's own options fill those the user left as None (see :func:`preset_options`).
    """
    if len(df) == 0:
        raise EmptyInputError(f"{source}: the table has a header but no rows. Fix: export the data again.")
    names = pd.Index([str(c) for c in df.columns])
    if names.has_duplicates:
        twice = names[names.duplicated()][0]
        raise InputError(
            f"{source}: the column {twice!r} appears {int((names == twice).sum())} times in the header. "
            "Fix: rename the repeats so that each column name is unique."
        )
    cols, preset = resolve_mapping(options.mapping, [str(c) for c in df.columns])
    shape = preset.shape if preset else "events"
    opts, keywords = preset_options(preset, options)
    if shape == "events":
        mapped = apply_mapping(df, cols, source=source)
        return build_history(
            mapped, source=source, decimal=opts.decimal, column_names=cols, **opts.build_kwargs()
        )
    if shape == "snapshot":
        return snapshot_history(df, cols, source=source, options=opts, **keywords)
    if shape == "stage_history":
        return stage_history(df, cols, source=source, options=opts, **keywords)
    if shape == "milestones":
        return milestone_table_history(df, cols, source=source, options=opts, **keywords)
    raise InputError(f"preset {preset.name if preset else '?'} has an unknown shape {shape!r}")
