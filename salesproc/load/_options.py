"""The options every loader shares: how rows become cases, whatever the source.

``load_history`` takes them as keywords and hands them on as one :class:`LoadOptions`; the readers
of each source (SQL, XES, CRM snapshots and stage histories, project milestone tables) take that
object instead of repeating the same keywords, and hand :meth:`LoadOptions.build_kwargs` to the
event-log builder.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Errors", "LoadOptions", "MilestoneRule"]

Errors = Literal["raise", "skip"]
MilestoneRule = str | Iterable[str] | Callable[[str], bool] | re.Pattern[str] | None

#: The options that the event-log builder takes (the rest say how a file is read).
BUILD_FIELDS = (
    "kind", "errors", "tz", "outcome_values", "outcome_events", "milestones", "dayfirst", "date_format",
    "sla_days", "finish_events",
)


@dataclass(frozen=True)
class LoadOptions:
    """How a team's export is read and turned into a history (the keywords of
    :func:`salesproc.load_history`, as one object that can be kept and passed on).

    Parameters
    ----------
    mapping
        Canonical name -> the source's column name, or a preset name (see ``load_history``).
    kind
        ``"deal"`` or ``"project"`` for cases whose kind is not in the data.
    errors
        ``"raise"`` stops at the first bad row; ``"skip"`` skips and counts such rows.
    tz
        Time zone of timestamps written without an offset.
    outcome_values, outcome_events
        Extra outcome labels; outcomes from terminal events.
    sla_days
        Projects: a service-level target in days (``10``: "resolved within 10 days"); a project
        without a ``target_date`` is due ``sla_days`` after it was created.
    finish_events
        Projects: the event names that mark a project (a ticket) as finished; it is closed at its
        first such event, on time or late by its due date. A single name or several (kept as a tuple).
    milestones
        Which event names are milestones when the data has no ``type`` column.
    dayfirst, date_format
        How dates are written (``date_format``: a strftime format, or ``"epoch_s"``, ``"epoch_ms"``
        or ``"excel"`` for dates written as numbers).
    encoding, delimiter, decimal, sheet, lifecycle
        Reading options for files (``lifecycle`` for XES). ``decimal=None`` (the default) reads each
        column of numbers with the decimal mark its own values prove.
    na_values
        Texts that mean "no value" in CSV and Excel files; by default only empty cells (``NA``
        stays text: North America).

    Examples
    --------
    >>> from salesproc.load import LoadOptions
    >>> opts = LoadOptions(kind="project", errors="skip")
    >>> opts.build_kwargs()["kind"], opts.replace(tz="Europe/Berlin").tz
    ('project', 'Europe/Berlin')
    >>> import io, salesproc
    >>> csv = io.StringIO("case_id,name,timestamp\\nP1,Kick-off,2024-01-02\\n")
    >>> salesproc.load_history(csv, options=opts).cases["kind"].tolist()
    ['project']
    """

    mapping: Mapping[str, str] | str | None = None
    kind: str = "deal"
    errors: Errors = "raise"
    tz: str = "UTC"
    outcome_values: Mapping[str, str] | None = None
    outcome_events: Mapping[str, Iterable[str]] | None = None
    milestones: MilestoneRule = None
    dayfirst: bool = False
    date_format: str | None = None
    encoding: str = "utf-8"
    delimiter: str | None = None
    decimal: str | None = None
    sheet: str | int | None = None
    lifecycle: str | Iterable[str] | None = "complete"
    na_values: tuple[str, ...] | None = None
    sla_days: float | None = None
    finish_events: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        names = self.finish_events
        if names is not None and not isinstance(names, tuple):
            # one name, or a list read from a settings file: kept as a tuple, so that options compare equal
            object.__setattr__(self, "finish_events", (names,) if isinstance(names, str) else tuple(names))

    def build_kwargs(self) -> dict[str, Any]:
        """The options the event-log builder takes, as keywords."""
        return {name: getattr(self, name) for name in BUILD_FIELDS}

    def replace(self, **changes: Any) -> LoadOptions:
        """A copy with some options changed."""
        return dataclasses.replace(self, **changes)

    def as_kwargs(self) -> dict[str, Any]:
        """Every option, as the keywords of ``load_history``."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
