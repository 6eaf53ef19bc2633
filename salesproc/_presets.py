"""Named column mappings (and loader options) for exports that teams really have."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Preset", "PRESETS", "get_preset", "detect_preset"]


@dataclass(frozen=True)
class Preset:
    """A mapping from canonical names to an export's columns, plus the loader options it implies.

    ``shape`` says how rows become a history: ``events`` (one row per event), ``snapshot`` (one row
    per case with its current stage and stage dates), ``stage_history`` (one row per stage change),
    ``milestones`` (one row per planned/actual milestone).
    """

    name: str
    mapping: Mapping[str, str]
    shape: str = "events"
    options: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""


PRESETS: dict[str, Preset] = {}


def register(preset: Preset) -> Preset:
    PRESETS[preset.name] = preset
    return preset


register(
    Preset(
        name="xes-csv",
        mapping={
            "case_id": "case:concept:name",
            "name": "concept:name",
            "timestamp": "time:timestamp",
            "owner": "org:resource",
            "role": "org:group",
        },
        description="A flat CSV export of an XES log (pm4py style): case attributes prefixed 'case:'.",
    )
)


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(
            f"The 'mapping' parameter must be a dict or one of the presets {sorted(PRESETS)}. "
            f"Got {name!r} instead."
        ) from None


def detect_preset(columns: list[str]) -> Preset | None:
    """A preset whose required columns are all present, for files with no canonical columns."""
    cols = set(columns)
    if {"case_id", "name", "timestamp"} <= cols:
        return None
    for p in PRESETS.values():
        needed = [p.mapping[k] for k in ("case_id", "name", "timestamp") if k in p.mapping]
        if p.shape == "events" and needed and set(needed) <= cols:
            return p
    return None
