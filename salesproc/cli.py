"""The ``salesproc`` command line.

One click group, :func:`main`; each pipeline step is a command of its own in this module
(``info`` and ``demo`` now; ``derive``, ``diff``, ``plan`` and ``review`` join them). Commands that
read past deals or projects take the same loading options through :func:`history_options`, which
hands them a :class:`~salesproc.load.LoadOptions`; ``load_history(path, options=load)`` returns the
validated history.

Errors from salesproc print as one line on stderr (``error: ...``) and exit with code 2; the
message names file, row, column and value and says how to fix it. No traceback is shown: an
exception salesproc did not foresee prints as one line too, with exit code 1
(``SALESPROC_TRACEBACK=1`` shows its traceback). Everything printed goes through one helper,
``_echo``, that shows control characters and bidi overrides from the data escaped (``\\x1b``).
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from salesproc.errors import NoMilestonesError, SalesprocError, example_milestone_rule
from salesproc.history._history import History, HistorySummary
from salesproc.load._options import LoadOptions
from salesproc.load._settings import SETTINGS_FILE, Settings

__all__ = ["LoadOptions", "history_options", "main", "parse_mapping"]

F = TypeVar("F", bound=Callable[..., Any])

EXIT_SALESPROC_ERROR = 2
EXIT_UNEXPECTED = 1


# --- what reaches the terminal -------------------------------------------------------------------
# Data (deal ids, stage names, file names, values) can hold terminal escape sequences, other C0/C1
# control characters, bidi overrides and lone surrogates; printed raw they recolour, rewrite or
# reorder what the terminal shows. Every line this module prints goes through _echo, which shows
# them as Python-style escapes (\x1b, \u202e); values put into a line go through `shown` first.

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSAFE_IN_TEXT = re.compile("(?!\n)" + _UNSAFE.pattern)


_NAMED_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(m: re.Match[str]) -> str:
    char = m.group()
    code = ord(char)
    return _NAMED_ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def shown(value: object) -> str:
    r"""``value`` as text safe to print: control characters, bidi overrides and lone surrogates escaped.

    Examples
    --------
    >>> print(shown("D1\x1b[31m\u202e"))
    D1\x1b[31m\u202e
    >>> print(shown("line\nbreak\tand Müller"))
    line\nbreak\tand Müller
    """
    return _UNSAFE.sub(_escape, str(value))


def _shown_cut(value: object, width: int) -> str:
    r""":func:`shown`, cut to at most ``width`` characters without splitting an escape.

    >>> print(_shown_cut("D\x1b[31m1", 4) + "|" + _shown_cut("D\x1b[31m1", 5))
    D|D\x1b
    """
    out, used = [], 0
    for char in str(value):
        piece = shown(char)
        if used + len(piece) > width:
            break
        out.append(piece)
        used += len(piece)
    return "".join(out)


def _shown_text(text: str) -> str:
    """Lines of text made safe like :func:`shown`, keeping their line breaks."""
    return _UNSAFE_IN_TEXT.sub(_escape, text)


def _echo(text: object = "", *, err: bool = False) -> None:
    """Print one or more lines; the single way this module writes to the terminal."""
    click.echo(_shown_text(str(text)), err=err)


def _json_text(obj: Any) -> str:
    """JSON for the terminal: the characters :func:`shown` escapes become JSON unicode escapes
    (ESC as ``\\u001b``), so the text stays valid JSON that reads back to the same values."""
    return _UNSAFE_IN_TEXT.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(obj, indent=2, ensure_ascii=False))


def _shown_counts(counts: Mapping[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for k, v in counts.items():
        key = shown(k)
        out[ascii(k) if key in out else key] = v  # two names that print alike stay two lines
    return out


def _shown_summary(summary: HistorySummary) -> HistorySummary:
    """The summary with its file name, event names, skip reasons and notes made safe to print."""
    import dataclasses

    return dataclasses.replace(
        summary, source=shown(summary.source), milestones=_shown_counts(summary.milestones),
        activities=_shown_counts(summary.activities), skipped=_shown_counts(summary.skipped),
        notes=tuple(shown(n) for n in summary.notes),
    )


class SalesprocCliError(click.ClickException):
    """A salesproc error shown the command-line way: one clean line, exit code 2."""

    exit_code = EXIT_SALESPROC_ERROR

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {shown(self.format_message())}", file=file or sys.stderr)


class UnexpectedCliError(SalesprocCliError):
    """An exception salesproc did not foresee, shown as one line (exit code 1) instead of a traceback."""

    exit_code = EXIT_UNEXPECTED


class SalesprocGroup(click.Group):
    """A click group that turns :class:`~salesproc.errors.SalesprocError` into a clean message.

    Any other exception (a library's, on input salesproc does not check yet) is shown as one line
    too, naming its type and the command, with exit code 1; ``SALESPROC_TRACEBACK=1`` shows the
    traceback instead.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SalesprocError as exc:
            raise SalesprocCliError(cli_hint(" ".join(str(exc).split()))) from None
        except click.exceptions.ClickException as exc:
            # click's usage errors can quote what was typed ("unexpected extra argument (...)")
            setattr(exc, "message", _shown_text(exc.message))  # noqa: B010 - click types it Final
            raise
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            import os

            if os.environ.get("SALESPROC_TRACEBACK"):
                raise
            command = " ".join(["salesproc", *([ctx.invoked_subcommand] if ctx.invoked_subcommand else [])])
            raise UnexpectedCliError(
                f"{command} stopped on an unexpected {type(exc).__name__}: {' '.join(str(exc).split()) or '(no message)'}. "
                "Expected: a clear salesproc message for any bad input. Fix: check the files and options "
                "given; to see the traceback, run again with SALESPROC_TRACEBACK=1, and please report it."
            ) from None


_KWARG_TO_OPTION: list[tuple[str, str]] = [
    (r"The 'mapping' parameter of load_history", "--mapping"),
    (r"errors='skip'", "--errors skip"),
    (r"dayfirst=True", "--dayfirst"),
    (r"dayfirst=False", "no --dayfirst"),
    (r"date_format='([^']*)'", r"--date-format '\1'"),
    (r"encoding='([^']*)'", r"--encoding \1"),
    (r"decimal='([^']*)'", r"--decimal '\1'"),
    (r"sheet=(<[^>]*>)", r"--sheet \1"),
]


def _mapping_to_options(m: re.Match[str]) -> str:
    import ast

    try:
        pairs = ast.literal_eval(m.group(1))
    except (ValueError, SyntaxError):
        return m.group(0)
    if not isinstance(pairs, dict):
        return m.group(0)
    return " ".join(f"--mapping {k}={_shell_quote(str(v))}" for k, v in pairs.items())


def _shell_quote(text: str) -> str:
    return text if re.fullmatch(r"[\w.:\-]+", text) else "'" + text.replace("'", "'\\''") + "'"


def cli_hint(message: str) -> str:
    """Say a loader's fix in command-line words: ``errors='skip'`` -> ``--errors skip`` and so on.

    Examples
    --------
    >>> cli_hint("Fix: pass dayfirst=True. Or pass errors='skip' to skip such rows.")
    'Fix: pass --dayfirst. Or pass --errors skip to skip such rows.'
    >>> cli_hint("e.g. load_history(..., mapping={'case_id': 'Deal ID', 'name': 'Stage'}).")
    "e.g. --mapping case_id='Deal ID' --mapping name=Stage."
    >>> print(cli_hint("e.g. load_history(..., outcome_values={'Maybe': 'won'|'lost'|'open'}), or fix it."))
    e.g. --outcome-values '{"Maybe": "won"|"lost"|"open"}', or fix it.
    """
    out = re.sub(r"load_history\(\.\.\., ((?:mapping|outcome_values)=\{[^{}]*\})\)", r"\1", message)
    out = re.sub(r"mapping=(\{[^{}]*\})", _mapping_to_options, out)
    out = re.sub(
        r"outcome_values=\{([^{}]*)\}",
        lambda m: "--outcome-values '{" + m.group(1).replace('"', "").replace("'", '"') + "}'",
        out,
    )
    for pattern, option in _KWARG_TO_OPTION:
        out = re.sub(pattern, option, out)
    return out


@click.group(cls=SalesprocGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="salesproc", prog_name="salesproc")
def main() -> None:
    """Run a sales process the way good delivery teams run projects.

    Load past deals or projects, see what they hold, derive your own process template, plan
    backwards and review open deals. Try `salesproc demo` for the built-in sample data.
    """


# --- loading options, shared by every command that reads a history -------------------------------


def parse_mapping(values: Sequence[str]) -> Mapping[str, str] | str | None:
    """``--mapping`` values -> what :func:`salesproc.load_history` takes.

    One preset name (``crm-snapshot``), one JSON object (``{"case_id": "Deal"}``), or one or more
    ``canonical=column`` pairs (``case_id="Deal ID" name=Stage``).

    Examples
    --------
    >>> parse_mapping(["xes-csv"])
    'xes-csv'
    >>> parse_mapping(['{"case_id": "Deal"}'])
    {'case_id': 'Deal'}
    >>> parse_mapping(["case_id=Deal ID", "name=Stage"])
    {'case_id': 'Deal ID', 'name': 'Stage'}
    >>> parse_mapping([]) is None
    True
    """
    from salesproc.load._presets import PRESETS

    if not values:
        return None
    if len(values) == 1 and values[0].lstrip().startswith("{"):
        try:
            obj = json.loads(values[0])
        except json.JSONDecodeError as exc:
            raise click.BadParameter(
                f"not valid JSON ({exc.msg} at character {exc.pos}): {values[0]!r}. "
                """Example: --mapping '{"case_id": "Deal ID", "name": "Stage"}'""",
                param_hint="'--mapping'",
            ) from None
        if not isinstance(obj, dict) or not all(isinstance(v, str) for v in obj.values()):
            raise click.BadParameter(
                f"the JSON must be an object of column names. Got {values[0]!r}.",
                param_hint="'--mapping'",
            )
        return _checked({str(k): v for k, v in obj.items()})
    if len(values) == 1 and "=" not in values[0]:
        name = values[0].strip()
        if name not in PRESETS:
            raise click.BadParameter(
                f"{name!r} is not a preset. Presets: {', '.join(sorted(PRESETS))}. "
                "Or give canonical=column pairs (--mapping case_id='Deal ID') or a JSON object.",
                param_hint="'--mapping'",
            )
        return name
    pairs: dict[str, str] = {}
    for v in values:
        key, sep, col = v.partition("=")
        if not sep or not key.strip() or not col.strip():
            raise click.BadParameter(
                f"{v!r} is not canonical=column. Example: --mapping case_id='Deal ID' --mapping name=Stage "
                "(a preset name or a JSON object must come alone).",
                param_hint="'--mapping'",
            )
        pairs[key.strip()] = col.strip()
    return _checked(pairs)


def _checked(mapping: dict[str, str]) -> dict[str, str]:
    """The mapping, once its keys are known canonical names (as :func:`salesproc.load_history` checks them)."""
    from salesproc.load._presets import check_mapping

    check_mapping(mapping)
    return mapping


def _json_option(value: str, option: str, example: str) -> Any:
    """The JSON value of a command-line option, or a usage error that shows an example."""
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"not valid JSON ({exc.msg}): {value!r}. Example: {option} '{example}'", param_hint=f"'{option}'"
        ) from None


def _parse_outcome_events(value: str | None) -> dict[str, list[str]] | None:
    if value is None:
        return None
    obj = _json_option(value, "--outcome-events", '{"won": ["Closed Won"], "lost": ["Closed Lost"]}')
    if not isinstance(obj, dict):
        raise click.BadParameter(
            f"must be a JSON object of outcome -> event names. Got {value!r}.", param_hint="'--outcome-events'"
        )
    out: dict[str, list[str]] = {}
    for k, v in obj.items():
        names = [v] if isinstance(v, str) else v
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise click.BadParameter(
                f"the value for {k!r} must be an event name or a list of them. Got {v!r}.",
                param_hint="'--outcome-events'",
            )
        out[str(k)] = names
    return out


def _parse_finish_events(values: tuple[str, ...]) -> tuple[str, ...] | None:
    """``--finish-events`` given once or more, each a name or a comma list: the names (None if none)."""
    names = tuple(n.strip() for v in values for n in v.split(",") if n.strip())
    return names or None


def _parse_outcome_values(value: str | None) -> dict[str, str] | None:
    if value is None:
        return None
    obj = _json_option(value, "--outcome-values", '{"Closed Won": "won", "Closed Lost": "lost"}')
    if not isinstance(obj, dict) or not all(isinstance(v, str) for v in obj.values()):
        raise click.BadParameter(
            f"must be a JSON object of label -> outcome. Got {value!r}.", param_hint="'--outcome-values'"
        )
    return {str(k): v for k, v in obj.items()}


def _check_tz(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(
            f"{value!r} is not a time zone. Use an IANA name such as UTC or Europe/Amsterdam."
        ) from None
    return value


def _check_regex(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise click.BadParameter(f"{value!r} is not a regular expression ({exc}).") from None
    return value


def _team_settings(settings_path: str | None, no_settings: bool, data: str | None) -> Settings | None:
    """The settings file a command uses: ``--settings``, else ./salesproc.toml, else one beside the data."""
    from salesproc.load._settings import find_settings, read_settings

    if no_settings:
        if settings_path is not None:
            raise click.UsageError("--settings and --no-settings cannot go together.")
        return None
    path = settings_path or find_settings(data_file=data if data and not Path(data).is_dir() else None)
    ctx = click.get_current_context()
    ctx.meta["salesproc.settings_path"] = settings_path
    return read_settings(path) if path is not None else None


def _given_options(raw: Mapping[str, Any], all_of_them: bool) -> dict[str, Any]:
    """The loading options typed on the command line, parsed (every one when no settings file is used)."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    typed = {ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT, ParameterSource.PROMPT}
    parsers: dict[str, Callable[[Any], Any]] = {
        "mapping": parse_mapping,
        "outcome_events": _parse_outcome_events,
        "outcome_values": _parse_outcome_values,
        "sheet": lambda v: int(v) if isinstance(v, str) and v.isdigit() else v,
        "finish_events": _parse_finish_events,
    }
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if all_of_them or ctx.get_parameter_source(name) in typed:
            out[name] = parsers.get(name, lambda v: v)(value)
    return out


def _load(source: str, options: LoadOptions) -> History:
    """Load ``source`` (a file, or a folder saved by ``History.to_parquet``) with a command's options."""
    from salesproc.load import load_history

    return load_history(source, options=options)


_LOAD_PARAMS = (
    "mapping", "kind", "errors", "tz", "outcome_events", "outcome_values", "milestones", "dayfirst",
    "date_format", "encoding", "decimal", "sheet", "sla_days", "finish_events",
)


def history_options(func: F) -> F:
    """Add the loading options to a command and pass them on as one ``load: LoadOptions`` argument.

    Use it on every command that reads past deals or projects::

        @main.command()
        @click.argument("path")
        @history_options
        def derive(path: str, load: LoadOptions) -> None:
            history = load_history(path, options=load)
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        raw = {k: kwargs.pop(k) for k in _LOAD_PARAMS}
        settings_path, no_settings = kwargs.pop("settings_path"), kwargs.pop("no_settings")
        data_key = next((k for k in ("path", "history_path") if k in kwargs), None)
        settings = _team_settings(settings_path, no_settings, kwargs.get(data_key) if data_key else None)
        base = settings.options if settings is not None else LoadOptions()
        options = base.replace(**_given_options(raw, settings is None))
        if settings is not None:
            _echo(f"settings: {shown(settings.path)}", err=True)
            if data_key and kwargs[data_key] is None and settings.source is not None:
                kwargs[data_key] = str(settings.source)
        return func(*args, load=options, **kwargs)

    decorators = [
        click.option(
            "--settings", "settings_path", metavar="TOML",
            help=f"The team's settings file (how its export is read). Default: ./{SETTINGS_FILE} if it "
            "exists, else one beside the data file; options given on the command line win over it.",
        ),
        click.option("--no-settings", is_flag=True, help=f"Do not read a {SETTINGS_FILE} settings file."),
        click.option(
            "--mapping", "-m", multiple=True, metavar="NAME|JSON|KEY=COLUMN",
            help="How the file's columns map to salesproc's: a preset name (crm-snapshot, salesforce, "
            "hubspot, xes-csv, ...), a JSON object, or canonical=column pairs (repeat the option). "
            "Not needed when the columns are case_id, name, timestamp.",
        ),
        click.option(
            "--kind", type=click.Choice(["deal", "project"]), default="deal", show_default=True,
            help="What the cases are when the data does not say.",
        ),
        click.option(
            "--errors", type=click.Choice(["raise", "skip"]), default="raise", show_default=True,
            help="Stop at the first bad row, or skip bad rows and count them with reasons.",
        ),
        click.option(
            "--tz", default="UTC", show_default=True, callback=_check_tz,
            help="Time zone of timestamps written without an offset.",
        ),
        click.option(
            "--outcome-events", metavar="JSON",
            help="""Events that decide a case's outcome, e.g. '{"won": ["Closed Won"], "lost": ["Closed Lost"]}'.""",
        ),
        click.option(
            "--outcome-values", metavar="JSON",
            help="""Your outcome labels, e.g. '{"Closed Won": "won", "Closed Lost": "lost"}'.""",
        ),
        click.option(
            "--milestones", metavar="REGEX", callback=_check_regex,
            help="Event names that are milestones (a regular expression matched at the start); "
            "the other events are activities.",
        ),
        click.option(
            "--sla-days", type=click.FloatRange(min=0, min_open=True), metavar="DAYS",
            help="Projects: a service-level target, e.g. 10 for 'resolved within 10 days'; a project "
            "without a due date (target_date) is due that many days after it was created.",
        ),
        click.option(
            "--finish-events", multiple=True, metavar="NAME",
            help="Projects: the events that mark a project (ticket) as finished, e.g. Resolved (repeat the "
            "option, or give a comma list); finished by the due date is on time, after it late.",
        ),
        click.option("--dayfirst", is_flag=True, help="Dates such as 31.12.2023 are day-first."),
        click.option("--date-format", metavar="FORMAT", help="Exact date format, e.g. %d.%m.%Y."),
        click.option("--encoding", default="utf-8", show_default=True, help="Text encoding, e.g. cp1252."),
        click.option(
            "--decimal", type=click.Choice([".", ","]),
            help="Decimal mark of numbers (default: ',' for ';'-separated files, else '.').",
        ),
        click.option("--sheet", metavar="NAME|NUMBER", help="Excel sheet to read (default: the first)."),
    ]
    out: Callable[..., Any] = wrapper
    for deco in reversed(decorators):
        out = deco(out)
    return out  # type: ignore[return-value]


# --- commands ----------------------------------------------------------------------------------


def _echo_summary(summary: HistorySummary, as_json: bool) -> None:
    if as_json:
        _echo(_json_text(summary.to_dict()))
    else:
        _echo(str(_shown_summary(summary)))


def _data_path(path: str | None, what: str) -> str:
    """The data file given, or the settings file's ``source``; a usage error naming both ways when neither is."""
    if path is None:
        raise click.UsageError(
            f"give {what}, or save it once with `salesproc info {what} ... --save-settings` "
            f"(a {SETTINGS_FILE} in this folder then names it)."
        )
    return path


@main.command()
@click.argument("path", required=False)
@history_options
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--save-settings", is_flag=True,
              help=f"After a successful load, save how the file was read (PATH and the options) as "
              f"./{SETTINGS_FILE} (or --settings), so later commands need none of them.")
@click.option("--overwrite-settings", is_flag=True, help="With --save-settings: replace an existing settings file.")
def info(path: str | None, load: LoadOptions, as_json: bool, save_settings: bool, overwrite_settings: bool) -> None:
    """What a file of past deals or projects holds.

    Cases by kind and outcome, events, date range, milestones and activities with counts, and
    what was skipped and why. PATH is a CSV/TSV, Excel, Parquet or XES file, or a folder saved by
    History.to_parquet (default: the source named in ./salesproc.toml).

    \b
    Examples:
      salesproc info deals.csv
      salesproc info sales_pipeline.csv --mapping crm-snapshot --json
      salesproc info export.csv -m case_id="Deal ID" -m name=Stage -m timestamp=Date --save-settings
      salesproc info                # reads ./salesproc.toml: the file and how to read it
    """
    data = _data_path(path, "PATH")
    _echo_summary(_load(data, load).summary(), as_json)
    if save_settings:
        from salesproc.load._settings import write_settings

        target = click.get_current_context().meta.get("salesproc.settings_path") or SETTINGS_FILE
        written = write_settings(target, load, source=data, overwrite=overwrite_settings)
        _echo(f"saved settings {shown(written)}", err=as_json)


@main.command()
@click.option("-o", "--output", "output", default="reports", show_default=True, metavar="FOLDER",
              help="Where the run folder of reports goes (a new dated folder each run).")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Processes rendering the deal reports.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the sample data's summary and the files written as JSON.")
def demo(output: str, workers: int, no_progress: bool, as_json: bool) -> None:
    """Run the whole pipeline on the built-in sample deals and render every report.

    Derives the team's process template from the sample deals and saves it, reviews the open
    pipeline, writes the pipeline index and one review per open deal (HTML and Markdown), "our
    process on one page", the milestone checklist, a close plan for the top deal (with an
    iCalendar file) and the pipeline as CSV into a new folder under --output, then says where to
    look.

    \b
    Examples:
      salesproc demo
      salesproc demo -o /tmp/reports --no-progress
    """
    import os

    from salesproc._demo import run_demo
    from salesproc.datasets import load_sample_deals

    summary = load_sample_deals().summary()
    if not as_json:
        _echo(str(_shown_summary(summary)))
        _echo("")
    run = run_demo(output, workers=workers, progress=not no_progress and not as_json,
                   echo=(lambda s: None) if as_json else _echo)

    def show(p: Path) -> str:
        rel = os.path.relpath(p)
        return shown(rel if not rel.startswith("..") else str(p))

    if as_json:
        _echo(_json_text({**summary.to_dict(), "run_dir": str(run.run_dir), "index": str(run.index),
                          "deal_reports": run.deals, "files": {k: str(v) for k, v in run.files.items()}}))
        return
    f = run.files
    rows = [("pipeline review", f"{show(run.index)}  ({run.deals} deal reviews in deals/)"),
            ("our process, 1 page", show(f["process.html"])),
            ("milestone checklist", show(f["checklist.html"]))]
    if "plan.html" in f:
        rows.append((f"close plan, {shown(run.plan_case)}",
                     f"{show(f['plan.html'])}  (calendar: {shown(Path(f['plan.ics']).name)})"))
    rows.append(("process template", f"{show(f['process.yaml'])}  (edit it, then: salesproc review -t "
                                     f"{show(f['process.yaml'])} --history <your deals> -o reports)"))
    width = max(len(label) for label, _ in rows) + 2
    _echo("")
    _echo(f"Reports are in {show(run.run_dir)}/ - start here:")
    for label, where in rows:
        _echo(f"  {(label + ':').ljust(width)}{where}")
    _echo("Markdown versions (.md) sit beside each HTML report; pipeline.csv is safe to open in a spreadsheet.")


def _no_milestones_on_the_command_line(exc: NoMilestonesError, rule: object) -> NoMilestonesError:
    """The same error with the fix said in command-line words: ``--milestones``, or the file's ``type`` column."""
    example = _shell_quote(example_milestone_rule(exc.names))
    if isinstance(rule, str) and not any(re.match(rule, name) for name in exc.names):
        fix = (f"give a --milestones rule that matches the milestone names, e.g. --milestones {example} "
               "(a regular expression matched at the start of the name; `salesproc info` lists the names).")
        return NoMilestonesError(source=exc.source, names=exc.names, outcomes=exc.outcomes, rule=rule,
                                 rule_label="--milestones rule", fix=fix)
    if not exc.names:
        fix = "add the events the cases went through (Qualify, Proposal, ...) to the file: it holds outcome events only."
        return NoMilestonesError(source=exc.source, names=exc.names, outcomes=exc.outcomes, fix=fix)
    unused = " (--milestones is not used when the file has one)" if rule is not None else ""
    fix = (f"the file's 'type' column marks every event an activity{unused}: write 'milestone' in it for "
           f"the milestone events, or drop the column and pass --milestones {example} (a regular "
           "expression matched at the start of the name).")
    return NoMilestonesError(source=exc.source, names=exc.names, outcomes=exc.outcomes, fix=fix)


#: Where ``derive`` saves the template by default (not ``templates/``: that folder holds the team's report templates).
DEFAULT_TEMPLATE = "process.yaml"


@main.command()
@click.argument("path", required=False)
@history_options
@click.option("-o", "--output", "output", default=DEFAULT_TEMPLATE, show_default=True,
              help="Where to save the template (an existing file is kept: a versioned name is used). "
              "Not templates/: that folder holds your report templates.")
@click.option("--as-of", "as_of", metavar="DATE", help="Only use what was known at this date.")
@click.option("--name", default="process", show_default=True, help="The template's name.")
@click.option("--previous", metavar="YAML", help="An earlier, hand-edited template whose edits to keep.")
@click.option("--alpha", type=float, default=0.05, show_default=True, help="False discovery rate for critical activities.")
@click.option("--min-support", type=int, default=20, show_default=True,
              help="Fewest cases with, and without, an activity to judge it.")
@click.option("--overwrite", is_flag=True, help="Replace the output file if it exists.")
def derive(path: str | None, load: LoadOptions, output: str, as_of: str | None, name: str, previous: str | None,
           alpha: float, min_support: int, overwrite: bool) -> None:
    """Derive your process template from past deals or projects and save it as YAML.

    \b
    Examples:
      salesproc derive deals.csv                 # saves process.yaml (then process.v2.yaml...)
      salesproc derive sales_pipeline.csv --mapping crm-snapshot --as-of 2017-12-31
      salesproc derive deals.csv --previous process.yaml   # keeps your edits
      salesproc derive                           # the file and options in ./salesproc.toml

    The template records how the data was read (its provenance's settings).
    """
    from salesproc.derive._derive import derive_template
    from salesproc.load._settings import settings_dict
    from salesproc.template._template import load_template, save_template

    data = _data_path(path, "PATH")
    history = _load(data, load)
    prev = load_template(previous) if previous else None
    try:
        tpl = derive_template(history, as_of=as_of, name=name, previous=prev, alpha=alpha, min_support=min_support,
                              settings=settings_dict(load, source=data))
    except NoMilestonesError as exc:
        raise _no_milestones_on_the_command_line(exc, load.milestones) from None
    written = save_template(tpl, output, overwrite=overwrite)
    _echo(shown(repr(tpl)))
    for m in sorted(tpl.milestones, key=lambda m: m.order):
        p50 = "-" if m.p50_days is None else f"{m.p50_days:.1f}"
        p80 = "-" if m.p80_days is None else f"{m.p80_days:.1f}"
        _echo(f"  {m.order:>2}. {shown(m.name)}  (p50 {p50} d, p80 {p80} d, reached by {m.evidence.reached:,})")
    for a in tpl.activities:
        if a.requirement != "none":
            _echo(f"  {a.requirement:<11} {shown(a.name)} (by {shown(a.milestone)})")
    for c in tpl.caveats:
        _echo(f"  caveat: {shown(c)}")
    for pr in tpl.proposals:
        _echo(f"  proposal: {shown(pr.item)}.{pr.field}: {shown(repr(pr.current))} -> {shown(repr(pr.proposed))} (kept yours)")
    _echo(f"saved {shown(written)}")


@main.command()
@click.argument("a")
@click.argument("b")
@click.option("--json", "as_json", is_flag=True, help="Print the changes as JSON.")
def diff(a: str, b: str, as_json: bool) -> None:
    """What changed between two template files (milestones, durations, critical activities)."""
    from salesproc.template._template import diff_templates, load_template

    d = diff_templates(load_template(a), load_template(b))
    if as_json:
        _echo(_json_text([c.__dict__ for c in d]))
    else:
        _echo(str(d))


# --- plan (issue 4) ------------------------------------------------------------------------------


def _parse_owners(values: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        item, sep, who = v.partition("=")
        if not sep or not item.strip() or not who.strip():
            raise click.BadParameter(
                f"{v!r} is not ITEM=OWNER. Example: --owner 'Proposal=Dana (AE)'.", param_hint="'--owner'"
            )
        out[item.strip()] = who.strip()
    return out


@main.command()
@click.option("--template", "-t", "template_path", default=DEFAULT_TEMPLATE, show_default=True, metavar="YAML",
              help="The process template (from `salesproc derive`).")
@click.option("--target-date", required=True, metavar="DATE", help="The day the goal is due, e.g. 2024-06-30.")
@click.option("--history", "history_path", metavar="PATH",
              help="Past deals or projects: durations and odds come from them (and --case from them).")
@click.option("--case", "case_id", metavar="ID", help="Plan this open case from where it stands (needs --history).")
@click.option("--as-of", "as_of", metavar="DATE",
              help="Today, for the plan. Default: the last date in --history, else the template's as-of date.")
@click.option("--success", default="", help="What success looks like, e.g. 'Order form signed'.")
@click.option("--measure", default="", help="How success is measured.")
@click.option("--seller-owner", help="Who owns the goal on the seller's (delivery team's) side.")
@click.option("--buyer-owner", help="Who owns the goal on the buyer's (customer's) side.")
@click.option("--owner", "owners", multiple=True, metavar="ITEM=OWNER",
              help="Owner of a milestone or activity (repeat the option).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the simulation.")
@click.option("--simulations", type=int, default=10_000, show_default=True, help="Simulated paths.")
@click.option("-o", "--output", "output", default="reports", show_default=True,
              help="Folder for the plan's files (Markdown, HTML, CSV, iCalendar).")
@click.option("--format", "formats", multiple=True, type=click.Choice(["md", "html", "csv", "ics"]),
              help="Which files to write (repeat; default: all four).")
@click.option("--overwrite", is_flag=True, help="Replace files of the same name.")
@history_options
def plan(template_path: str, target_date: str, history_path: str | None, case_id: str | None, as_of: str | None,
         success: str, measure: str, seller_owner: str | None, buyer_owner: str | None, owners: Sequence[str],
         seed: int, simulations: int, output: str, formats: Sequence[str], overwrite: bool,
         load: LoadOptions) -> None:
    """Plan backwards from a target date: latest safe dates, owners, the critical path and honest odds.

    Writes a Markdown and HTML checklist, a CSV and an iCalendar file (a mutual action plan) into
    the --output folder and prints the odds and what must happen this week.

    \b
    Examples:
      salesproc plan -t process.yaml --target-date 2024-06-30 --as-of 2024-04-01
      salesproc plan -t process.yaml --target-date 2024-06-30 --history deals.csv --case D0042

    With a ./salesproc.toml that names the source, --history defaults to it.
    """

    from salesproc.plan._plan import Goal, plan_backwards
    from salesproc.template._template import load_template, slug

    tpl = load_template(template_path)
    if case_id is not None and history_path is None:
        raise click.UsageError("--case needs --history (the file the case comes from).")
    history = _load(history_path, load) if history_path is not None else None
    if as_of is None:
        if history is not None:
            from salesproc.derive._derive import _default_as_of

            as_of = _default_as_of(history).isoformat()
        elif tpl.provenance.as_of:
            as_of = tpl.provenance.as_of
        else:
            raise click.UsageError("give --as-of (the plan's today): the template does not say when it was made.")
    goal = Goal(target_date, success=success, measure=measure, seller_owner=seller_owner, buyer_owner=buyer_owner)
    result = plan_backwards(tpl, as_of=as_of, case=case_id, history=history, goal=goal, seed=seed,
                            owners=_parse_owners(owners), n_simulations=simulations)
    _echo(shown(repr(result)))
    _echo(shown(result.message))
    for label, names in (("overdue", result.overdue), ("this week", result.this_week),
                         ("next two weeks", result.next_two_weeks)):
        for name in names:
            it = result.item(name)
            who = f" ({shown(it.owner)})" if it.owner else ""
            _echo(f"  {label}: {shown(name)} by {it.latest_p80:%Y-%m-%d}{who}")
    folder = Path(output)
    stem = f"plan-{slug(case_id or tpl.name)}-{goal.target_date:%Y-%m-%d}"
    writers = {
        "md": lambda p: result.to_markdown(p, overwrite=overwrite),
        "html": lambda p: result.to_html(p, overwrite=overwrite),
        "csv": lambda p: result.to_csv(p, overwrite=overwrite),
        "ics": lambda p: result.to_ics(p, overwrite=overwrite),
    }
    for fmt in formats or ("md", "html", "csv", "ics"):
        path = folder / f"{stem}.{fmt}"
        writers[fmt](path)
        _echo(f"saved {shown(path)}")


# --- review (issue 5) ----------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _review_rows(frame: Any, top: int) -> list[str]:
    """The pipeline table's first rows as aligned text."""
    lines = [f"{'#':>4}  {'deal':<12} {'milestone':<14} {'days':>5}  {'p [95% interval]':<17} {'amount':>10}  flags / next action"]
    for r in frame.head(top).to_dict("records"):
        amount = "" if r["amount"] != r["amount"] else f"{r['amount']:,.0f}"
        ms = _shown_cut(r["milestone"], 14) if isinstance(r["milestone"], str) else "-"
        p = f"{r['probability']:.0%} [{r['probability_low']:.0%}, {r['probability_high']:.0%}]"
        what = shown(r["flags"] or "")
        if isinstance(r["next_action"], str):
            what += ("; " if what else "") + f"next: {shown(r['next_action'])}"
        lines.append(f"{int(r['rank']):>4}  {_shown_cut(r['case_id'], 12):<12} {ms:<14} "
                     f"{r['days_in_milestone']:>5.0f}  {p:<17} {amount:>10}  {what}")
    return lines


@main.command()
@click.option("--template", "-t", "template_path", default=DEFAULT_TEMPLATE, show_default=True, metavar="YAML",
              help="The process template (from `salesproc derive`).")
@click.option("--history", "history_path", metavar="PATH",
              help="Past and open deals or projects (any file `salesproc info` reads). "
              f"Default: the source named in ./{SETTINGS_FILE}.")
@click.option("--as-of", "as_of", metavar="DATE",
              help="The review date: deals open then are reviewed with what was known then. "
              "Default: the last date in --history.")
@click.option("-o", "--output", "output", metavar="FOLDER",
              help="Write the pipeline table as CSV into this folder (an existing file is kept: a "
              "versioned name is used unless --overwrite).")
@click.option("--top", type=int, default=20, show_default=True, help="How many deals to print, most at risk first.")
@click.option("--overwrite", is_flag=True, help="Replace the CSV file if it exists.")
@click.option("--format", "formats", multiple=True, type=click.Choice(["html", "md", "pdf"]),
              help="With -o: report formats (repeat; default html). pdf needs pip install 'salesproc[pdf]'.")
@click.option("--no-reports", is_flag=True, help="With -o: write the CSV only, no reports.")
@click.option("--report-templates", metavar="FOLDER",
              help="Your report templates (default: ./templates/ if it exists), searched before the built-in ones.")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Processes rendering the deal reports.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@history_options
def review(template_path: str, history_path: str | None, as_of: str | None, output: str | None, top: int,
           overwrite: bool, formats: Sequence[str], no_reports: bool, report_templates: str | None,
           workers: int, no_progress: bool, load: LoadOptions) -> None:
    """Review every open deal: where it stands, its odds with an interval, flags and the next action.

    Prints the pipeline, most at risk first (risk times amount); with -o it also writes the whole
    table as CSV (cells that a spreadsheet would run as formulas are quoted) and renders the
    pipeline review with one report per open deal into a new run folder
    (-o/review-YYYY-MM-DD/index.html), with a progress bar.

    \b
    Examples:
      salesproc review -t process.yaml --history deals.csv --as-of 2024-03-31
      salesproc review -t process.yaml          # the file and options in ./salesproc.toml
      salesproc review -t process.yaml --history sales_pipeline.csv -m crm-snapshot --as-of 2017-12-31 -o reports
    """

    from salesproc.review._review import review_deals
    from salesproc.template._template import load_template

    tpl = load_template(template_path)
    history = _load(_data_path(history_path, "--history"), load)
    if as_of is None:
        from salesproc.derive._derive import _default_as_of

        as_of = _default_as_of(history).isoformat()
    result = review_deals(history, tpl, as_of=as_of)
    frame = result.to_frame()
    _echo(shown(repr(result)))
    for c in result.caveats:
        _echo(f"  caveat: {shown(c)}")
    s = result.summary()
    counts = ", ".join(f"{k.replace('_', ' ')} {s[k]:,}" for k in
                       ("stalled", "slipping", "missing_critical", "single_threaded", "regressed", "close_date_pushed"))
    _echo(f"  flags: {counts}")
    for line in _review_rows(frame, top):
        _echo(line)
    if len(frame) > top:
        _echo(f"  ... {len(frame) - top:,} more (use --top or -o)")
    if output is not None:
        if not no_reports:  # the reports first: a report template that fails leaves no CSV behind
            from salesproc.render._render import render_batch

            run = render_batch(result, output, formats=formats or ("html",), overwrite=overwrite,
                               progress=not no_progress, workers=workers, template_dir=report_templates)
            _echo(f"reports: {shown(run.index)} ({len(run):,} deal reports in {shown(run.run_dir / 'deals')}, "
                  f"{run.seconds:.1f} s)")
        _echo(f"saved {shown(_save_review_table(frame, Path(output), result.as_of, overwrite=overwrite))}")


def _save_review_table(frame: Any, folder: Path, as_of: Any, *, overwrite: bool) -> Path:
    """The pipeline table as CSV, safe to open in a spreadsheet (no cell starts a formula); a new
    version (``.v2.csv``...) is claimed atomically unless ``overwrite``, so runs at once never collide."""
    from salesproc._io import atomic_write_text, write_next_version

    path = folder / f"pipeline-review-{as_of:%Y-%m-%d}.csv"
    safe = frame.copy()
    for col in safe.columns:
        if safe[col].dtype == object or str(safe[col].dtype) in ("str", "string"):
            safe[col] = safe[col].map(lambda v: "'" + v if isinstance(v, str) and v.startswith(_FORMULA_START) else v)
    text = safe.to_csv(index=False)
    return atomic_write_text(path, text, overwrite=True) if overwrite else write_next_version(path, text)


if __name__ == "__main__":  # pragma: no cover
    main()
