"""The Jinja2 environments behind :mod:`salesproc.render`: search path, sandbox and filters.

Templates are searched in the user's folder first (the working directory's ``templates/`` or a
folder given), then among the built-in report templates. The built-in templates live in the
repository's top-level ``templates/reports/`` (so that users can copy and adapt them) and the wheel
ships them as ``salesproc/templates/``; :func:`builtin_loader` finds them in both layouts.

Whenever a user-supplied template can be involved (a user folder exists, or a template path is
given) everything renders in Jinja's sandbox, and any attempt to reach an unsafe attribute
(``__class__``, ``__globals__``...) raises at once instead of quietly printing nothing.

Two output flavours share the filters: HTML, autoescaped, and Markdown, where every value printed
with ``{{ ... }}`` is escaped for Markdown unless it is marked safe (the filters' own output is).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import jinja2
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from markupsafe import Markup

__all__ = [
    "BUILTIN_PREFIX",
    "BUILTIN_TEMPLATES",
    "FILTERS",
    "Flavour",
    "builtin_loader",
    "environment",
    "md_escape",
]

Flavour = Literal["html", "md"]

DASH = "—"

#: The built-in report templates, by short name (``render_report(obj, template="checklist")``).
BUILTIN_TEMPLATES = ("process", "checklist", "plan", "deal_review", "pipeline_review")


# --- where the built-in templates are --------------------------------------------------------------


def _source_templates_dir() -> Path:
    """``<checkout>/templates/reports`` for a source checkout (editable install)."""
    return Path(__file__).resolve().parents[2] / "templates" / "reports"


@functools.cache
def builtin_loader() -> jinja2.BaseLoader:
    """A loader for the built-in report templates, from the wheel or from a source checkout."""
    try:
        # the wheel: pyproject's force-include puts templates/reports at salesproc/templates
        return jinja2.PackageLoader("salesproc", "templates")
    except ValueError:
        pass
    src = _source_templates_dir()
    if src.is_dir():
        return jinja2.FileSystemLoader(str(src))
    raise FileNotFoundError(  # pragma: no cover - only a broken installation gets here
        f"salesproc's built-in report templates are missing (looked in the package's 'templates' "
        f"folder and in {src}). Fix: reinstall salesproc."
    )


def builtin_dir() -> Path | None:
    """The folder of the built-in templates, when they are plain files (always, except zipped installs)."""
    loader = builtin_loader()
    if isinstance(loader, jinja2.PackageLoader):
        return Path(loader._template_root) if loader._template_root else None
    if isinstance(loader, jinja2.FileSystemLoader):
        return Path(loader.searchpath[0])
    return None  # pragma: no cover


# --- filters ---------------------------------------------------------------------------------------


def _missing(x: Any) -> bool:
    if x is None or isinstance(x, jinja2.Undefined):
        return True
    if isinstance(x, float) and math.isnan(x):
        return True
    try:
        import pandas as pd

        return bool(x is pd.NaT or (not isinstance(x, str) and pd.isna(x) is True))
    except (TypeError, ValueError):
        return False


def _to_float(x: Any) -> float | None:
    if isinstance(x, dict):
        x = x.get("rate")
    elif hasattr(x, "rate") and not isinstance(x, (int, float, str)):
        x = x.rate
    if _missing(x):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def f_date(value: Any, fmt: str = "%Y-%m-%d") -> Markup:
    """A date as ``2024-03-05`` (or ``fmt``); a dash when missing.

    >>> f_date("2024-03-05T14:00:00+00:00"), f_date(None)
    (Markup('2024-03-05'), Markup('—'))
    """
    if _missing(value):
        return Markup(DASH)
    if isinstance(value, str):
        import pandas as pd

        try:
            value = pd.Timestamp(value)
        except (TypeError, ValueError):
            return Markup.escape(value)
    if isinstance(value, (datetime, date)):
        return Markup.escape(value.strftime(fmt))
    strftime = getattr(value, "strftime", None)
    if callable(strftime):
        return Markup.escape(strftime(fmt))
    return Markup.escape(str(value))


def f_days(value: Any, digits: int = 0) -> Markup:
    """A number of days: ``12 days``, ``1 day``, ``3.5 days``.

    >>> f_days(12.4), f_days(1), f_days(3.46, 1), f_days(None)
    (Markup('12 days'), Markup('1 day'), Markup('3.5 days'), Markup('—'))
    """
    v = _to_float(value)
    if v is None:
        return Markup(DASH)
    s = f"{v:,.{digits}f}"
    unit = "day" if s in ("1", "-1") else "days"
    return Markup(f"{s} {unit}")


def f_duration(value: Any) -> Markup:
    """Days in words a person reads at a glance: ``6 days``, ``8 weeks``, ``3.6 months``.

    >>> f_duration(0.4), f_duration(6.2), f_duration(56.8), f_duration(110)
    (Markup('under a day'), Markup('6 days'), Markup('8 weeks'), Markup('3.6 months'))
    """
    v = _to_float(value)
    if v is None:
        return Markup(DASH)
    sign = "-" if v < 0 else ""
    d = abs(v)
    if d < 1:
        return Markup("under a day" if not sign else "-under a day")
    if d < 14:
        n = round(d)
        return Markup(f"{sign}{n} day{'s' if n != 1 else ''}")
    if d < 70:
        return Markup(f"{sign}{round(d / 7)} weeks")
    return Markup(f"{sign}{d / 30.44:.1f} months")


def f_pct(value: Any, digits: int = 0, signed: bool = False) -> Markup:
    """A share as a percentage: ``42%`` (``+18%`` with ``signed=True``).

    >>> f_pct(0.4237), f_pct(0.4237, 1), f_pct(0.18, signed=True), f_pct(None)
    (Markup('42%'), Markup('42.4%'), Markup('+18%'), Markup('—'))
    """
    v = _to_float(value)
    if v is None:
        return Markup(DASH)
    sgn = "+" if signed else ""
    return Markup(f"{v:{sgn}.{digits}%}")


def f_pct_ci(value: Any, low: Any = None, high: Any = None, digits: int = 0, signed: bool = False) -> Markup:
    """A share with its interval: ``42% [30–55%]``.

    ``value`` may also be anything with ``rate``/``low``/``high`` (a :class:`salesproc.template.Rate`)
    or a mapping with those keys, or ``(value, low, high)``.

    >>> f_pct_ci(0.42, 0.3, 0.55), f_pct_ci(0.18, 0.11, 0.25, signed=True)
    (Markup('42% [30–55%]'), Markup('+18% [+11%, +25%]'))
    >>> f_pct_ci({"rate": 0.5, "low": 0.2, "high": 0.8}), f_pct_ci(0.5)
    (Markup('50% [20–80%]'), Markup('50%'))
    """
    if isinstance(value, dict):
        value, low, high = value.get("rate", value.get("p")), value.get("low"), value.get("high")
    elif isinstance(value, (tuple, list)) and len(value) == 3:
        value, low, high = value
    elif hasattr(value, "rate") and hasattr(value, "low"):
        value, low, high = value.rate, value.low, value.high
    if isinstance(low, (tuple, list)) and len(low) == 2 and high is None:
        low, high = low
    v, lo, hi = _to_float(value), _to_float(low), _to_float(high)
    if v is None:
        return Markup(DASH)
    main = f_pct(v, digits, signed)
    if lo is None or hi is None:
        return main
    if signed or lo < 0:
        return Markup(f"{main} [{f_pct(lo, digits, True)}, {f_pct(hi, digits, True)}]")
    return Markup(f"{main} [{lo * 100:.{digits}f}–{f_pct(hi, digits)}]")


def f_money(value: Any, currency: str = "", digits: int = 0, compact: bool = False) -> Markup:
    """An amount with thousands separators: ``12,346``, ``$12,346``, compact ``$12.3k``.

    >>> f_money(12345.6), f_money(12345.6, "$"), f_money(2_345_000, "€", compact=True), f_money(None)
    (Markup('12,346'), Markup('$12,346'), Markup('€2.3M'), Markup('—'))
    """
    v = _to_float(value)
    if v is None:
        return Markup(DASH)
    sign = "-" if v < 0 else ""
    a = abs(v)
    cur = Markup.escape(currency)
    if compact and a >= 1000:
        for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
            if a >= div:
                return Markup(f"{sign}{cur}{a / div:.1f}{suffix}")
    return Markup(f"{sign}{cur}{a:,.{digits}f}")


def f_num(value: Any, digits: int = 0) -> Markup:
    """A number with thousands separators, or a dash.

    >>> f_num(1234.567, 1), f_num(float("nan"))
    (Markup('1,234.6'), Markup('—'))
    """
    v = _to_float(value)
    return Markup(DASH) if v is None else Markup(f"{v:,.{digits}f}")


def f_points(value: Any) -> Markup:
    """A change in probability as points: ``+8 points``.

    >>> f_points(0.083), f_points(-0.02), f_points(None)
    (Markup('+8 points'), Markup('-2 points'), Markup('—'))
    """
    v = _to_float(value)
    if v is None:
        return Markup(DASH)
    n = round(v * 100)
    return Markup(f"{n:+d} point{'s' if abs(n) != 1 else ''}")


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")
_MD_LINE_START = re.compile(r"^(\s*)([#+\-=>])")


def md_escape(value: Any) -> Markup:
    r"""Escape text for Markdown: no emphasis, links, raw HTML or table breaks can come from it.

    Backslash-escapes Markdown's active characters, folds line breaks into spaces (so a value never
    breaks a table row) and escapes a leading ``#``, ``-``, ``+`` or ``=``.

    >>> md_escape("<script>alert(1)</script> *big* [x](javascript:alert(1)) a|b")
    Markup('\\<script\\>alert(1)\\</script\\> \\*big\\* \\[x\\](javascript:alert(1)) a\\|b')
    >>> md_escape("# title\nnext")
    Markup('\\# title next')
    """
    if isinstance(value, Markup):
        return value
    if _missing(value):
        return Markup("")
    s = str(value).replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    s = _MD_LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), s)
    return Markup(s)


def f_slug(value: Any) -> Markup:
    """The file-name slug of a value (see :func:`salesproc.render._paths.slugify`)."""
    from salesproc.render._paths import slugify

    return Markup(slugify(str(value)))


FILTERS: dict[str, Callable[..., Any]] = {
    "date": f_date,
    "days": f_days,
    "duration": f_duration,
    "pct": f_pct,
    "pct_ci": f_pct_ci,
    "money": f_money,
    "num": f_num,
    "points": f_points,
    "md": md_escape,
    "slug": f_slug,
}


# --- environments ----------------------------------------------------------------------------------


def _finalize_html(value: Any) -> Any:
    return "" if value is None else value


def _finalize_md(value: Any) -> Any:
    if isinstance(value, Markup):
        return str(value)
    if value is None:
        return ""
    if isinstance(value, str):
        return str(md_escape(value))
    return value


class _Undefined(jinja2.StrictUndefined):
    """Strict (printing or using a missing value fails and names it) but falsy in tests, so that
    ``{% if charts.position %}`` works when the chart is absent."""

    def __bool__(self) -> bool:  # type: ignore[override]
        return False


#: The prefix that names a built-in template even where a user template has the same name:
#: ``{% extends "builtin/deal_review.html.j2" %}``.
BUILTIN_PREFIX = "builtin"


class _BuiltinParent(jinja2.Environment):
    """Resolves a template's reference to its own name (``{% extends "deal_review.html.j2" %}`` in
    the user's ``deal_review.html.j2``) to the built-in template of that name, instead of itself."""

    def join_path(self, template: str, parent: str) -> str:
        if template == parent and template in _builtin_names():
            return f"{BUILTIN_PREFIX}/{template}"
        return template


@functools.cache
def _builtin_names() -> frozenset[str]:
    """The names of the built-in templates (``deal_review.html.j2``...)."""
    return frozenset(builtin_loader().list_templates())


class _Plain(_BuiltinParent):
    """The environment for the built-in templates alone."""


class _Sandbox(_BuiltinParent, SandboxedEnvironment):
    """Jinja's sandbox, failing loudly: reaching an unsafe attribute raises at once."""

    def unsafe_undefined(self, obj: Any, attribute: str) -> jinja2.Undefined:
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe")


@jinja2.pass_environment
def _md_join(env: jinja2.Environment, value: Any, d: str = "", attribute: str | int | None = None) -> Markup:
    """``join`` for Markdown: the template's separator as written, every item escaped."""
    if attribute is not None:
        value = map(jinja2.filters.make_attrgetter(env, attribute), value)
    return Markup(str(d)).join(md_escape(v) for v in value)


def _configure(env: jinja2.Environment, flavour: Flavour) -> jinja2.Environment:
    env.filters.update(FILTERS)
    if flavour == "md":
        env.filters["join"] = _md_join
    env.globals["flavour"] = flavour
    return env


@functools.lru_cache(maxsize=32)
def environment(flavour: Flavour, user_dirs: tuple[str, ...] = (), *, sandboxed: bool = True) -> jinja2.Environment:
    """The environment for ``flavour`` searching ``user_dirs`` first, then the built-in templates.

    ``sandboxed`` is forced on whenever ``user_dirs`` is not empty. ``builtin/<name>`` names the
    built-in template even when a user folder has one of that name, and a template that extends
    (includes, imports) its own name gets the built-in one, so that a user's
    ``deal_review.html.j2`` can start with ``{% extends "deal_review.html.j2" %}`` and override
    blocks of the built-in one.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "checklist.md.j2").write_text('{% extends "checklist.md.j2" %}{% block heading %}Ours{% endblock %}')
    >>> env = environment("md", (str(d),))
    >>> env.get_template("checklist.md.j2").filename == str(d / "checklist.md.j2")
    True
    >>> env.get_template("builtin/checklist.md.j2").filename == str(builtin_dir() / "checklist.md.j2")
    True
    """
    # "builtin/<name>" always means the built-in template; other names are the user's first
    loaders: list[jinja2.BaseLoader] = [jinja2.PrefixLoader({BUILTIN_PREFIX: builtin_loader()})]
    loaders += [jinja2.FileSystemLoader(d) for d in user_dirs]
    loaders.append(builtin_loader())
    loader = jinja2.ChoiceLoader(loaders)
    cls: type[jinja2.Environment] = _Sandbox if (sandboxed or user_dirs) else _Plain
    if flavour in ("html", "md"):  # HTML is autoescaped; Markdown is escaped by its finalize
        html = flavour == "html"
        env = cls(
            loader=loader,
            autoescape=html,
            finalize=_finalize_html if html else _finalize_md,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            undefined=_Undefined,
        )
    else:  # pragma: no cover - guarded by the caller
        raise ValueError(flavour)
    return _configure(env, flavour)
