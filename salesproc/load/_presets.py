"""Named column mappings (and loader options) for exports that teams really have."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from salesproc.errors import ParameterError
from salesproc.history._schema import CASE_COLUMNS, EVENT_COLUMNS
from salesproc.load._options import BUILD_FIELDS, LoadOptions

__all__ = [
    "EVENT_LOG_KEYS", "PRESETS", "Preset", "check_mapping", "detect_preset", "get_preset", "mapping_keys",
    "preset_options",
]

EVENT_LOG_KEYS: tuple[str, ...] = (
    *EVENT_COLUMNS,
    *(c for c in CASE_COLUMNS if c not in EVENT_COLUMNS and c != "status"),
    "case_owner",
    "expected_close",
)
"""The canonical names an event log's mapping may use: the event and case columns of a history
(``status`` is worked out from the outcome), ``case_owner`` (the case's owner when ``owner`` is
the event's) and ``expected_close`` (an open deal's expected close date)."""

# the canonical names each shape's reader reads (salesproc.load._crm, salesproc.load._projects)
_SHAPE_KEYS: dict[str, tuple[str, ...]] = {
    "events": EVENT_LOG_KEYS,
    "snapshot": ("case_id", "stage", "created", "closed", "amount", "owner", "case_owner", "segment"),
    "stage_history": (
        "case_id", "stage", "timestamp", "created", "closed", "amount", "owner", "case_owner", "segment",
        "is_won", "is_closed",
    ),
    "milestones": (
        "case_id", "name", "planned", "actual", "owner", "case_owner", "target_date", "created", "segment",
        "amount", "outcome",
    ),
}


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
    detect: tuple[str, ...] = ()
    """Columns whose presence (all of them) identifies the export, for files loaded without a mapping."""


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


# --- CRM exports --------------------------------------------------------------------------------
# Each preset's options are passed to its builder (salesproc.load._crm / salesproc._projects); "required"
# lists the canonical names the export must have, "preset" names the preset in error messages.

register(
    Preset(
        name="crm-snapshot",
        mapping={
            "case_id": "opportunity_id",
            "stage": "deal_stage",
            "created": "engage_date",
            "closed": "close_date",
            "amount": "close_value",
            "owner": "sales_agent",
            "segment": "segment",
        },
        shape="snapshot",
        options={
            "required": ["case_id", "stage"],
            "preset": "crm-snapshot",
            "won_stages": ["Won"],
            "lost_stages": ["Lost"],
            "open_stages": ["Prospecting", "Engaging"],
            "created_stage": "Engaging",
        },
        detect=("opportunity_id", "deal_stage", "engage_date", "close_date"),
        description=(
            "A CRM snapshot, one row per opportunity with its current stage (Maven Analytics' "
            "sales_pipeline.csv): opportunity_id, deal_stage (Prospecting > Engaging > Won | Lost), "
            "engage_date (the date the deal entered Engaging: created and an 'Engaging' milestone), "
            "close_date (won/lost date), close_value (amount), sales_agent (owner), optional segment; "
            "other columns (product, account) are case attributes. Opportunities with no date at all "
            "(Prospecting) get the snapshot date (the latest date in the file) as created, "
            "created_known=False."
        ),
    )
)

register(
    Preset(
        name="salesforce",
        mapping={
            "case_id": "OpportunityId",
            "stage": "StageName",
            "timestamp": "CreatedDate",
            "amount": "Amount",
            "closed": "CloseDate",
            "is_won": "IsWon",
            "is_closed": "IsClosed",
            "owner": "CreatedById",
            "case_owner": "OwnerId",
        },
        shape="stage_history",
        options={
            "required": ["case_id", "stage", "timestamp"],
            "preset": "salesforce",
            "won_stages": ["Closed Won"],
            "lost_stages": ["Closed Lost"],
            "case_columns": ["Opportunity Name", "Account Name"],
            "aliases": {"case_id": ["Opportunity ID", "Opportunity.Id"], "stage": ["Stage"]},
        },
        detect=("OpportunityId", "StageName", "CreatedDate"),
        description=(
            "Salesforce OpportunityHistory, one row per change of an opportunity: OpportunityId, "
            "StageName, CreatedDate (when the change happened), Amount, CloseDate (the close date "
            "after the change), IsWon and IsClosed (the opportunity's flags; the latest row decides "
            "the outcome, else the stage 'Closed Won'/'Closed Lost'), CreatedById (who changed it), "
            "optional OwnerId. ExpectedRevenue, Probability, ForecastCategory and other columns stay "
            "as attributes of the stage change; 'Opportunity Name' and 'Account Name' as case "
            "attributes. Adds close_date_changes (times the close date moved later)."
        ),
    )
)

register(
    Preset(
        name="hubspot",
        mapping={
            "case_id": "Record ID",
            "stage": "Deal Stage",
            "timestamp": "Date entered stage",
            "created": "Create Date",
            "closed": "Close Date",
            "amount": "Amount",
            "case_owner": "Deal owner",
            "segment": "Pipeline",
        },
        shape="stage_history",
        options={
            "required": ["case_id", "stage", "timestamp"],
            "preset": "hubspot",
            "won_stages": ["Closed Won"],
            "lost_stages": ["Closed Lost"],
            "stage_labels": {
                "appointmentscheduled": "Appointment Scheduled",
                "qualifiedtobuy": "Qualified To Buy",
                "presentationscheduled": "Presentation Scheduled",
                "decisionmakerboughtin": "Decision Maker Bought-In",
                "contractsent": "Contract Sent",
                "closedwon": "Closed Won",
                "closedlost": "Closed Lost",
            },
            "case_columns": ["Deal Name"],
            "aliases": {"case_id": ["Deal ID"], "owner": ["Deal Owner"], "case_owner": ["Deal Owner"]},
            "wide_pattern": r'^Date entered "(?P<stage>.+?)(?: \([^()]*\))?"$',
        },
        detect=("Deal Name", "Deal Stage", "Pipeline"),
        description=(
            "HubSpot deals with their stage history. Long form, one row per stage change: Record ID "
            "(or Deal ID), Deal Stage (label or internal id such as 'closedwon'), Date entered stage, "
            "Create Date, Close Date, Amount, Deal owner, Pipeline (segment), Deal Name (case "
            "attribute). Wide form, HubSpot's deal export with one row per deal and a "
            "'Date entered \"<stage> (<pipeline>)\"' column per stage, is read as a snapshot. "
            "'Closed Won'/'Closed Lost' are the outcomes."
        ),
    )
)

register(
    Preset(
        name="project-milestones",
        mapping={
            "case_id": "project_id",
            "name": "milestone",
            "planned": "planned_date",
            "actual": "actual_date",
            "owner": "owner",
            "case_owner": "project_owner",
            "target_date": "target_date",
            "created": "start_date",
            "segment": "segment",
        },
        shape="milestones",
        options={
            "required": ["case_id", "name", "planned", "actual"],
            "preset": "project-milestones",
            "case_columns": ["project_name"],
        },
        detect=("project_id", "milestone", "planned_date", "actual_date"),
        description=(
            "A project milestone table, one row per milestone: project_id, milestone, planned_date, "
            "actual_date (empty until achieved), optional owner (of the milestone), project_owner, "
            "target_date (the project's planned end; default: the last milestone's planned date), "
            "start_date, segment, project_name (case attribute). Achieved milestones are events at their actual date with "
            "attributes planned and slip_days; a project whose milestones are all done closed at the "
            "last actual date, on_time or late against its target; otherwise open."
        ),
    )
)


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ParameterError(
            f"The 'mapping' parameter must be a dict or one of the presets {sorted(PRESETS)}. "
            f"Got {name!r} instead."
        ) from None


def detect_preset(columns: list[str]) -> Preset | None:
    """A preset whose required columns are all present, for files with no canonical columns.

    Event-log presets are recognised by their case, name and timestamp columns; the others by
    their ``detect`` columns (exact names specific to one export, e.g. Salesforce's
    ``OpportunityId``, ``StageName`` and ``CreatedDate``).

    Examples
    --------
    >>> detect_preset(["opportunity_id", "sales_agent", "deal_stage", "engage_date", "close_date"]).name
    'crm-snapshot'
    >>> detect_preset(["Deal", "Stage", "Date"]) is None
    True
    """
    cols = set(columns)
    if {"case_id", "name", "timestamp"} <= cols:
        return None
    for p in PRESETS.values():
        needed = [p.mapping[k] for k in ("case_id", "name", "timestamp") if k in p.mapping]
        if p.shape == "events" and needed and set(needed) <= cols:
            return p
    for p in PRESETS.values():
        if p.shape != "events" and p.detect and set(p.detect) <= cols:
            return p
    return None


def preset_options(preset: Preset | None, options: LoadOptions) -> tuple[LoadOptions, dict[str, Any]]:
    """The options a preset's reader runs with, and the keywords of its shape.

    A builder option (``kind``, ``tz``, ``date_format``, ...) is the user's when the user gave one
    (not None), else the preset's. The preset's other options (``won_stages``, ``aliases``, ...)
    are the keywords of its reader; ``required`` is the mapping's, not the reader's.

    Examples
    --------
    >>> demo = Preset("demo", {}, shape="snapshot", options={
    ...     "required": ["case_id"], "won_stages": ["Won"], "date_format": "%d.%m.%Y", "tz": "Europe/Berlin"})
    >>> opts, keywords = preset_options(demo, LoadOptions(tz="UTC"))
    >>> opts.date_format, opts.tz, keywords
    ('%d.%m.%Y', 'UTC', {'won_stages': ['Won']})
    >>> preset_options(demo, LoadOptions(date_format="%Y/%m/%d"))[0].date_format
    '%Y/%m/%d'
    >>> preset_options(None, LoadOptions(kind="project")) == (LoadOptions(kind="project"), {})
    True
    """
    if preset is None:
        return options, {}
    own = {k: v for k, v in preset.options.items() if k != "required"}
    fallback = {k: own.pop(k) for k in BUILD_FIELDS if k in own and getattr(options, k) is None}
    for k in BUILD_FIELDS:
        own.pop(k, None)
    return options.replace(**fallback), own


def mapping_keys(preset: Preset | None) -> list[str]:
    """The canonical names a mapping may use with ``preset`` (None: a plain event log), in a readable order.

    Examples
    --------
    >>> mapping_keys(None)[:4]
    ['case_id', 'name', 'type', 'timestamp']
    >>> mapping_keys(PRESETS["crm-snapshot"])
    ['case_id', 'stage', 'created', 'closed', 'amount', 'owner', 'case_owner', 'segment']
    """
    if preset is None:
        return list(EVENT_LOG_KEYS)
    extra = [*preset.mapping, *preset.options.get("required", ()), *preset.options.get("aliases", {})]
    return list(dict.fromkeys([*_SHAPE_KEYS.get(preset.shape, EVENT_LOG_KEYS), *extra]))


def check_mapping(mapping: Mapping[str, Any], *, function: str = "load_history") -> None:
    """Refuse a mapping whose keys are not canonical names, naming the closest one and the valid ones.

    ``{"preset": "crm-snapshot", "stage": "Stage"}`` is checked against that preset's names. A typo
    such as ``outcom`` would otherwise rename the column to a name nothing reads: the outcome
    column would be ignored and every deal loaded as open.

    Examples
    --------
    >>> check_mapping({"case_id": "Deal", "outcome": "Result"})
    >>> check_mapping({"preset": "crm-snapshot", "stage": "Stage"})
    >>> try:
    ...     check_mapping({"case_id": "Deal", "outcom": "Result"})
    ... except ParameterError as exc:
    ...     print(str(exc)[:118])
    The 'mapping' parameter of load_history has an unknown canonical name: 'outcom' (for the column 'Result'; did you mean
    """
    preset = get_preset(str(mapping["preset"])) if "preset" in mapping else None
    valid = mapping_keys(preset)
    bad = [str(k) for k in mapping if k != "preset" and k not in valid]
    if not bad:
        return
    guesses = {k: _closest_key(k, valid) for k in bad}
    found = ", ".join(
        f"{k!r} (for the column {str(mapping[k])!r}"
        + (f"; did you mean {guesses[k]!r}?" if guesses[k] else "") + _elsewhere(k, preset) + ")"
        for k in bad
    )
    names = "unknown canonical names" if len(bad) > 1 else "an unknown canonical name"
    whose = f" of the preset {preset.name!r}" if preset is not None else ""
    if all(guesses.values()):
        fixed = {str(guesses.get(str(k), k)): v for k, v in mapping.items()}
        fix = f"use the valid names, e.g. load_history(..., mapping={fixed!r})."
    else:
        fix = "use one of the valid names as the key, or leave the column out (unmapped columns are kept as attributes)."
    raise ParameterError(
        f"The 'mapping' parameter of {function} has {names}: {found}. A mapping's keys are "
        "salesproc's names for the data, its values your file's columns; a key salesproc does not know "
        f"would leave its column unread. Expected one of the names{whose}: {', '.join(valid)}. Fix: {fix}"
    )


def _closest_key(key: str, valid: list[str]) -> str | None:
    import difflib

    norm = key.strip().lower().replace(" ", "_").replace("-", "_")
    if norm in valid:
        return norm
    hit = difflib.get_close_matches(norm, valid, n=1, cutoff=0.6)
    return hit[0] if hit else None


def _elsewhere(key: str, preset: Preset | None) -> str:
    """Where ``key`` is a valid name after all: the presets that read it (``stage`` and the like)."""
    if key == "status":
        return "; the status is worked out from the outcome: map your column to 'outcome'"
    others = [p.name for p in PRESETS.values() if p is not preset and key in mapping_keys(p)]
    if not others or key in EVENT_LOG_KEYS:
        return ""
    step = "; in an event log the step is 'name'" if preset is None and key == "stage" else ""
    return f"{step}; {key!r} is read by the presets {', '.join(others)}: add 'preset' to the mapping to use one"
