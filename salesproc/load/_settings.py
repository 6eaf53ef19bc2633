"""The team's settings file: how its export is read, kept beside the data so nobody types it again.

One small TOML file, ``salesproc.toml``, in the team's folder records the :class:`LoadOptions`
(mapping, outcome rules, milestones, time zone, decimal mark, texts that mean "no value"...) and
the source file::

    # salesproc settings: how this team's export is read.
    source = "deals.csv"
    tz = "Europe/Berlin"
    milestones = "Qualify|Proposal|Negotiation"

    [mapping]
    case_id = "Deal ID"
    name = "Stage"

    [outcome_events]
    won = ["Closed Won"]
    lost = ["Closed Lost"]

:func:`find_settings` looks for it in the current folder (then the data file's folder),
:func:`read_settings` checks every key and value once, and :func:`write_settings` writes it
atomically, never over an existing file unless asked to.

Examples
--------
>>> import tempfile, pathlib
>>> from salesproc.load import LoadOptions
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> opts = LoadOptions(mapping={"case_id": "Deal ID"}, outcome_events={"won": ["Signed"]}, tz="Europe/Berlin")
>>> path = write_settings(d, opts, source=d / "deals.csv")
>>> path.name, find_settings(d) == path
('salesproc.toml', True)
>>> s = read_settings(path)
>>> s.options.mapping, s.options.outcome_events, s.options.tz, s.source.name
({'case_id': 'Deal ID'}, {'won': ['Signed']}, 'Europe/Berlin', 'deals.csv')
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from salesproc._io import atomic_write_text
from salesproc.errors import OverwriteError, SalesprocError, SettingsError
from salesproc.load._options import LoadOptions

__all__ = ["SETTINGS_FILE", "Settings", "find_settings", "read_settings", "settings_dict", "write_settings"]

#: The settings file's name, in the team's folder.
SETTINGS_FILE = "salesproc.toml"

_HEADER = (
    "# salesproc settings: how this team's export is read (written by salesproc; edit freely).\n"
    "# Every salesproc command run in this folder uses them; options on the command line win.\n"
    "# Keys: source and the options of salesproc.load_history (mapping, outcome_events, milestones, tz, ...).\n"
)


@dataclass(frozen=True)
class Settings:
    """A settings file read: the loading options, the source file (if recorded) and where it was read."""

    options: LoadOptions
    source: Path | None = None
    path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain values (what a template's provenance records)."""
        return settings_dict(self.options, source=self.source)


# --- finding ------------------------------------------------------------------------------------------


def find_settings(start_dir: str | Path | None = None, *, data_file: str | Path | None = None) -> Path | None:
    """The settings file in ``start_dir`` (default: the current folder), else in ``data_file``'s folder.

    Returns ``None`` when neither holds one.
    """
    folders = [Path(start_dir) if start_dir is not None else Path()]
    if data_file is not None:
        folders.append(Path(data_file).parent)
    for folder in folders:
        cand = folder / SETTINGS_FILE
        if cand.is_file():
            return cand
    return None


# --- checking each key --------------------------------------------------------------------------------


def _fail(path: Path, key: str, value: Any, expected: str, fix: str) -> SettingsError:
    return SettingsError(
        f"{path}: the key {key!r} holds {value!r}. Expected: {expected}. Fix: {fix}"
    )


def _str(path: Path, key: str, value: Any, example: str) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(path, key, value, "a text in quotes", f"write it as {key} = {json.dumps(example)}.")
    return value


def _str_table(path: Path, key: str, value: Any, example: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _fail(path, key, value, "a table of texts", f"write it as [{key}] followed by lines such as {example}.")
    return {str(k): v for k, v in value.items()}


def _mapping(path: Path, key: str, value: Any) -> dict[str, str] | str:
    from salesproc.load._presets import PRESETS, check_mapping

    if isinstance(value, str):
        if value not in PRESETS:
            raise _fail(path, key, value, f"a preset ({', '.join(sorted(PRESETS))}) or a table of columns",
                        'write [mapping] followed by lines such as case_id = "Deal ID".')
        return value
    table = _str_table(path, key, value, 'case_id = "Deal ID"')
    try:
        check_mapping(table)
    except SalesprocError as exc:
        raise SettingsError(f"{path}: the key 'mapping': {exc}") from None
    return table


def _outcome_values(path: Path, key: str, value: Any) -> dict[str, str]:
    table = _str_table(path, key, value, '"Closed Won" = "won"')
    bad = {k: v for k, v in table.items() if v not in ("won", "lost", "open")}
    if bad:
        label, found = next(iter(bad.items()))
        raise _fail(path, f"{key}.{label}", found, "won, lost or open", f'write "{label}" = "won" (or "lost", "open").')
    return table


def _outcome_events(path: Path, key: str, value: Any) -> dict[str, list[str]]:
    example = 'won = ["Closed Won"]'
    if not isinstance(value, dict):
        raise _fail(path, key, value, "a table of outcome -> event names",
                    f"write it as [{key}] followed by lines such as {example}.")
    out: dict[str, list[str]] = {}
    for outcome, names in value.items():
        names = [names] if isinstance(names, str) else names
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise _fail(path, f"{key}.{outcome}", value[outcome], "an event name or a list of them",
                        f"write it as {example}.")
        out[str(outcome)] = names
    return out


def _milestones(path: Path, key: str, value: Any) -> str | list[str]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    text = _str(path, key, value, "Qualify|Proposal|Negotiation")
    try:
        re.compile(text)
    except re.error as exc:
        raise _fail(path, key, value, f"a regular expression ({exc})", "escape special characters such as ( or [.") from None
    return text


def _tz(path: Path, key: str, value: Any) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    text = _str(path, key, value, "Europe/Amsterdam")
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail(path, key, value, "an IANA time zone such as UTC or Europe/Amsterdam",
                    'write tz = "UTC" or the zone your CRM exports in.') from None
    return text


def _choice(*allowed: str) -> Callable[[Path, str, Any], str]:
    def check(path: Path, key: str, value: Any) -> str:
        if value not in allowed:
            raise _fail(path, key, value, " or ".join(repr(a) for a in allowed),
                        f"write {key} = {json.dumps(allowed[0])}.")
        return str(value)

    return check


def _bool(path: Path, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, key, value, "true or false (no quotes)", f"write {key} = true.")
    return value


def _sheet(path: Path, key: str, value: Any) -> str | int:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _fail(path, key, value, "a sheet name or number", f'write {key} = "Deals" or {key} = 0.')
    return value


def _texts(path: Path, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(path, key, value, "a list of texts", f'write {key} = ["n/a", "-"].')
    return tuple(value)


def _lifecycle(path: Path, key: str, value: Any) -> str | list[str]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return _str(path, key, value, "complete")


_CHECKS: dict[str, Callable[[Path, str, Any], Any]] = {
    "mapping": _mapping,
    "kind": _choice("deal", "project"),
    "errors": _choice("raise", "skip"),
    "tz": _tz,
    "outcome_values": _outcome_values,
    "outcome_events": _outcome_events,
    "milestones": _milestones,
    "dayfirst": _bool,
    "date_format": lambda p, k, v: _str(p, k, v, "%d.%m.%Y"),
    "encoding": lambda p, k, v: _str(p, k, v, "utf-8"),
    "delimiter": lambda p, k, v: _str(p, k, v, ";"),
    "decimal": _choice(".", ","),
    "sheet": _sheet,
    "lifecycle": _lifecycle,
    "na_values": _texts,
}


def _plain(path: Path, key: str, value: Any, default: Any) -> Any:
    """An option this module has no check for (a newer one): a value of its default's type."""
    if default is not None and not isinstance(value, type(default)):
        raise _fail(path, key, value, f"a value like {default!r}", f"write {key} = {json.dumps(default)}.")
    return value


#: Names people reach for, and the key they mean.
_ALIASES = {"timezone": "tz", "time_zone": "tz", "columns": "mapping", "preset": "mapping", "file": "source",
            "data": "source", "path": "source", "outcomes": "outcome_events", "na": "na_values", "sep": "delimiter"}

# --- reading --------------------------------------------------------------------------------------


def read_settings(path: str | Path) -> Settings:
    """The settings file at ``path`` (a ``salesproc.toml``, or a folder holding one), checked.

    Every key must be ``source`` or an option of :func:`salesproc.load_history`; an unknown key is
    a :class:`~salesproc.errors.SettingsError` naming the closest valid one. ``source`` is read
    relative to the settings file's folder.
    """
    p = Path(path)
    if p.is_dir():
        p = p / SETTINGS_FILE
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"{p}: no such settings file. Fix: check the path, or write one with "
                            "`salesproc info DATA ... --save-settings`.") from None
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start}). Fix: save it as UTF-8.") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{p}: not valid TOML ({exc}). Expected: lines such as tz = \"UTC\". "
                            "Fix: correct that line (texts need quotes).") from None
    fields = {f.name: f for f in dataclasses.fields(LoadOptions)}
    valid = sorted([*fields, "source"])
    changes: dict[str, Any] = {}
    source: Path | None = None
    for key, value in raw.items():
        if key == "source":
            source = p.parent / _str(p, key, value, "deals.csv")
            continue
        if key not in fields:
            close = [_ALIASES[key.lower()]] if key.lower() in _ALIASES else difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}?" if close else "remove it."
            raise SettingsError(f"{p}: unknown key {key!r}. Expected one of: {', '.join(valid)}. Fix: {hint}")
        check = _CHECKS.get(key)
        default = fields[key].default
        changes[key] = check(p, key, value) if check else _plain(p, key, value, default)
    return Settings(options=LoadOptions().replace(**changes), source=source, path=p)


# --- writing --------------------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to a settings file")


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def settings_dict(options: LoadOptions, *, source: str | Path | None = None) -> dict[str, Any]:
    """``options`` (and the source file) as plain values: texts, lists and tables.

    Options left at ``None`` are left out. A milestone rule must be a text (a regular expression)
    or a list of names: a function cannot be written down, and is a
    :class:`~salesproc.errors.SettingsError`.

    Examples
    --------
    >>> from salesproc.load import LoadOptions
    >>> d = settings_dict(LoadOptions(milestones="Qualify|Proposal"), source="deals.csv")
    >>> d["source"], d["milestones"], d["kind"], "mapping" in d
    ('deals.csv', 'Qualify|Proposal', 'deal', False)
    """
    out: dict[str, Any] = {} if source is None else {"source": str(source)}
    for f in dataclasses.fields(options):
        value = getattr(options, f.name)
        if value is None:
            continue
        if isinstance(value, re.Pattern):
            value = value.pattern
        if callable(value):
            raise SettingsError(
                f"the option {f.name!r} is a function ({value!r}), which a settings file cannot hold. "
                "Expected: a regular expression or a list of names. Fix: give it as a text, "
                "e.g. milestones='Qualify|Proposal'."
            )
        if isinstance(value, Mapping):
            value = {str(k): (v if isinstance(v, str) else list(v)) for k, v in value.items()}
        elif isinstance(value, tuple | set | frozenset):
            value = list(value)
        out[f.name] = value
    return out


def _toml_text(values: Mapping[str, Any]) -> str:
    lines = [_HEADER]
    tables = {k: v for k, v in values.items() if isinstance(v, Mapping)}
    for key, value in values.items():
        if key not in tables:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}\n")
    for key, table in tables.items():
        lines.append(f"\n[{_toml_key(key)}]\n")
        lines.extend(f"{_toml_key(str(k))} = {_toml_value(v)}\n" for k, v in table.items())
    return "".join(lines)


def write_settings(
    path: str | Path, options: LoadOptions, *, source: str | Path | None = None, overwrite: bool = False
) -> Path:
    """Write ``options`` (and the source file) as the settings file ``path`` (a folder: its ``salesproc.toml``).

    The file is written atomically; an existing one is kept (an
    :class:`~salesproc.errors.OverwriteError`) unless ``overwrite=True``. ``source`` is written
    relative to the settings file's folder when it lies inside it. Returns the path written.
    """
    p = Path(path)
    if p.is_dir() or not p.suffix:
        p = p / SETTINGS_FILE
    if source is not None:
        src = Path(source)
        try:
            source = src.resolve().relative_to(p.parent.resolve()).as_posix()
        except ValueError:
            source = src.resolve().as_posix()
    text = _toml_text(settings_dict(options, source=source))
    try:
        return atomic_write_text(p, text, overwrite=overwrite)
    except OverwriteError:
        raise OverwriteError(
            f"{p} exists: the team's settings are kept. Fix: pass overwrite=True "
            "(on the command line: --overwrite-settings) to replace them, or edit the file."
        ) from None
