"""The exception tree: every error salesproc raises derives from :class:`SalesprocError`.

Messages follow one shape: what was found, where (file, row as a spreadsheet shows it, column), what
was expected, and how to fix it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "DeriveError",
    "EmptyInputError",
    "EncodingError",
    "InputError",
    "InvalidValueError",
    "MalformedFileError",
    "MissingColumnError",
    "MissingDependencyError",
    "NoClosedCasesError",
    "NoMilestonesError",
    "OverwriteError",
    "ParameterError",
    "PlanError",
    "ReportTemplateError",
    "SalesprocError",
    "SettingsError",
    "TemplateError",
    "UnsafePathError",
    "UnsafeTemplateError",
]


class SalesprocError(Exception):
    """Root of salesproc's errors: ``except SalesprocError`` catches salesproc's errors alone."""


class InputError(SalesprocError, ValueError):
    """A file or table given to a loader cannot be turned into a history."""


class EmptyInputError(InputError):
    """The source holds no rows."""


class EncodingError(InputError):
    """The file's bytes are not in the expected text encoding."""


class MalformedFileError(InputError):
    """The file's structure is broken: XML that is not well formed, a truncated or damaged archive, or
    an element the format requires (such as a trace's ``concept:name``) missing."""


class MissingColumnError(InputError):
    """A column the loader needs is not in the source."""

    def __init__(
        self,
        column: str,
        *,
        canonical: str,
        present: list[str],
        source: str | Path | None = None,
        suggest: Mapping[str, str] | None = None,
    ) -> None:
        self.column = column
        self.canonical = canonical
        self.present = list(present)
        where = f"{source}: " if source is not None else ""
        shown = ", ".join(repr(c) for c in self.present[:30])
        if len(self.present) > 30:
            shown += f", ... ({len(self.present) - 30} more)"
        if suggest:
            # a whole mapping to copy: the user's own entries with the wrong ones put right
            hint = "mapping={" + ", ".join(f"{k!r}: {v!r}" for k, v in suggest.items()) + "}"
        else:
            close = _closest(column, self.present)
            hint = f"mapping={{{canonical!r}: {close or '<your column>'!r}}}"
        needed = f" (needed for {canonical!r})" if column != canonical else ""
        super().__init__(
            f"{where}no column {column!r}{needed}. "
            f"Columns present: {shown}. "
            f"Fix: name the columns that hold the data, e.g. load_history(..., {hint})."
        )


class InvalidValueError(InputError):
    """A cell holds a value that cannot be read (a date, an outcome, an id...)."""

    def __init__(
        self,
        *,
        source: str | Path | None,
        row: int | None,
        column: str,
        value: object,
        expected: str,
        fix: str,
        count: int = 1,
    ) -> None:
        self.source = source
        self.row = row
        self.column = column
        self.value = value
        self.expected = expected
        self.count = count
        where = str(source) if source is not None else "<data>"
        if row is not None:
            where += f", row {row}"
        more = f" ({count - 1} more rows like it)" if count > 1 else ""
        super().__init__(
            f"{where}, column {column!r}: found {value!r}, expected {expected}{more}. Fix: {fix}"
        )


class ParameterError(SalesprocError, ValueError):
    """A parameter has a value salesproc cannot use: the message says which, what it must be, and
    what it got (``The 'errors' parameter must be 'raise' or 'skip'. Got 'ignore' instead.``)."""


class SettingsError(SalesprocError, ValueError):
    """A settings file (``salesproc.toml``: how the team's export is read) cannot be read or used."""


class TemplateError(SalesprocError, ValueError):
    """A process template file or object is invalid."""


class DeriveError(SalesprocError, ValueError):
    """A process template cannot be derived from this history (cases of two kinds, no dates...)."""


class NoMilestonesError(DeriveError):
    """The history holds no milestone events, so there is no process to derive.

    The message lists the event names found with their counts, says what a template needs and how
    to mark milestones (a ``milestones`` rule or a ``type`` column).
    """

    def __init__(
        self,
        *,
        source: str | Path | None,
        names: Mapping[str, int],
        outcomes: Mapping[str, int] | None = None,
        rule: object = None,
        rule_label: str = "milestones rule",
        fix: str | None = None,
    ) -> None:
        self.source = source
        self.names = dict(names)
        self.outcomes = dict(outcomes or {})
        self.rule = rule
        where = f"{source}: " if source is not None else ""
        total = sum(self.names.values()) + sum(self.outcomes.values())
        found = f"found {total:,} events, none of them a milestone"
        if self.names:
            found += f": {_counted(self.names)}"
        if self.outcomes:
            found += f"; {_counted(self.outcomes)} decide outcomes and are never milestones"
        ruled = f" The {rule_label} {rule!r} matches none of the names." if rule is not None else ""
        if fix is None:
            example = example_milestone_rule(self.names)
            fix = (
                f"say which names are milestones, e.g. derive_template(history, milestones={example!r}) "
                "(a regular expression matched at the start of the name, or a list of names); or load "
                f"the file with load_history(..., milestones={example!r}) when it has no 'type' column, "
                "or write 'milestone' in its 'type' column for the milestone events."
            )
        super().__init__(
            f"{where}no milestone events to derive a process template from: {found}.{ruled} "
            "Expected: events marked as milestones (the steps a case reaches, such as Qualify or "
            f"Proposal); the others are activities. Fix: {fix}"
        )


class NoClosedCasesError(SalesprocError, ValueError):
    """The history holds no closed case (every deal or project open): there are no outcomes to learn from.

    Raised once by :func:`salesproc.derive_template` and :func:`salesproc.review_deals` (as a
    ``ReviewError`` too there). The message names the options that give a history its outcomes and
    the most frequent event names that look like outcomes, if any.
    """

    def __init__(
        self,
        *,
        source: str | Path | None,
        kind: str,
        cases: int,
        caller: str,
        as_of: object = None,
        outcome_like: Mapping[str, int] | None = None,
    ) -> None:
        self.source = source
        self.kind = kind
        self.cases = cases
        self.outcome_like = dict(outcome_like or {})
        unit = "deal" if kind == "deal" else "project"
        before = f" before {as_of}" if as_of is not None else ""
        where = f"{source}: " if source is not None else ""
        found = f"{where}{cases:,} {unit}{'s' if cases != 1 else ''}, all open"
        if kind == "deal":
            expected = "deals marked won or lost"
            fix = (
                "map the file's outcome column with mapping={'outcome': '<column>'} (-m outcome=<column>), and "
                "say what unusual labels mean with outcome_values={'Signed': 'won'}; or name the events that "
                "close a deal with outcome_events={'won': ['Closed Won'], 'lost': ['Closed Lost']} "
                "(--outcome-events)."
            )
        else:
            expected = "finished projects, on time or late by a due date, or with an outcome"
            fix = (
                "map a due date with mapping={'target_date': '<column>'} (-m target_date=<column>) or give a "
                "service-level target with sla_days=10 (--sla-days 10), and the finish date with "
                "mapping={'closed': '<column>'} or the events that finish a project with "
                "finish_events=['Resolved'] (--finish-events Resolved), so that finished projects are on time "
                "or late; or map an outcome column (-m outcome=<column>, with outcome_values= for unusual "
                "labels), or name the closing events with outcome_events={'on_time': [...], 'late': [...]}."
            )
        if as_of is not None:
            fix += " Or choose a later date, when some have closed."
        hint = ""
        if self.outcome_like:
            hint = (
                f" Event names that look like outcomes: {_counted(self.outcome_like)}; "
                "name them in outcome_events if they close a case."
            )
        super().__init__(
            f"The history holds no closed cases{before} ({found}): {caller} has no outcomes to learn from. "
            f"Expected: {expected}. Fix: {fix}{hint}"
        )


def _counted(counts: Mapping[str, int], limit: int = 12) -> str:
    """``'Call' (3), 'Demo' (1)`` for the first ``limit`` names, most frequent first."""
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = ", ".join(f"{k!r} ({v:,})" for k, v in top[:limit])
    return shown + (f", ... ({len(top) - limit:,} more names)" if len(top) > limit else "")


def example_milestone_rule(counts: Mapping[str, int]) -> str:
    """A milestones regex naming the two most frequent plain names, else a made-up one."""
    import re

    plain = [k for k, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if re.fullmatch(r"[\w .:-]+", k)]
    return "|".join(plain[:2]) if plain else "Qualify|Proposal"


class PlanError(SalesprocError, ValueError):
    """A plan cannot be made (for example a dependency cycle)."""


class OverwriteError(SalesprocError, FileExistsError):
    """Writing would replace an existing file without ``overwrite=True``."""


class UnsafePathError(SalesprocError, ValueError):
    """An output path would escape its output folder."""


class MissingDependencyError(SalesprocError, ImportError):
    """An optional dependency (or a system library it needs) is not installed."""


class ReportTemplateError(SalesprocError, ValueError):
    """A report template cannot be found, parsed or rendered."""


class UnsafeTemplateError(ReportTemplateError):
    """A report template tried to reach what Jinja's sandbox forbids (Python internals)."""


def _closest(name: str, options: list[str]) -> str | None:
    import difflib

    lowered = {o.lower(): o for o in options}
    hit = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[hit[0]] if hit else None
