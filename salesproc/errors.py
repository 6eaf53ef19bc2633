"""The exception tree: every error salesproc raises derives from :class:`SalesprocError`.

Messages follow one shape: what was found, where (file, row as a spreadsheet shows it, column), what
was expected, and how to fix it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "EmptyInputError",
    "EncodingError",
    "InputError",
    "InvalidValueError",
    "MalformedFileError",
    "MissingColumnError",
    "MissingDependencyError",
    "OverwriteError",
    "ParameterError",
    "PlanError",
    "ReportTemplateError",
    "SalesprocError",
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


class TemplateError(SalesprocError, ValueError):
    """A process template file or object is invalid."""


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
