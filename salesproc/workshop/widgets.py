"""Workshop widgets: thin ipywidgets shells over salesproc's functions.

* :class:`ColumnMapper` previews a file, lets the team say which column holds what, builds the
  ``mapping`` for :func:`salesproc.load_history` and shows the load summary or the loader's error.
* :class:`GoalForm` states the goal: the target date, what success looks like, how it is measured
  and who owns it on each side, as a :class:`salesproc.plan.Goal`.
* :class:`TemplateEditor` edits a process template (reorder, rename and merge milestones; accept or
  reject critical activities; owners, exit criteria and durations) through the pure functions of
  :mod:`salesproc.edit`, and saves each result as a new versioned YAML file with its diff.

Every widget is a plain object whose controls are public attributes: tests (and scripts) set their
values and call ``.click()`` on buttons exactly as a person would, without a browser. Each shows
itself in a notebook (or in Voila) through ``_repr_mimebundle_``; ``.widget`` is the ipywidgets box.
Controls carry CSS classes named ``salesproc-...`` so browser tests can find them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import ipywidgets as W
import pandas as pd

from salesproc.errors import InputError, SalesprocError, TemplateError
from salesproc.history._history import History
from salesproc.load._options import LoadOptions
from salesproc.load._settings import SETTINGS_FILE, read_settings, write_settings
from salesproc.template import edit
from salesproc.template._template import ProcessTemplate, TemplateDiff, diff_templates, save_template

__all__ = [
    "MAPPING_FIELDS",
    "ColumnMapper",
    "GoalForm",
    "TemplateEditor",
    "guess_mapping",
    "guess_preset",
    "preview_table",
]

#: Canonical fields the column mapper offers: (name, required, what it holds).
MAPPING_FIELDS: tuple[tuple[str, bool, str], ...] = (
    ("case_id", True, "the deal's or project's id"),
    ("name", True, "the milestone or activity"),
    ("timestamp", True, "when it happened"),
    ("outcome", False, "won / lost / open (on_time / late / failed for projects)"),
    ("type", False, "milestone or activity"),
    ("owner", False, "who did it"),
    ("role", False, "their role"),
    ("amount", False, "deal value"),
    ("created", False, "when the case was opened"),
    ("closed", False, "when it was closed"),
    ("target_date", False, "planned close or end date"),
    ("segment", False, "market segment"),
    ("case_owner", False, "who owns the case"),
)

_SYNONYMS: dict[str, tuple[str, ...]] = {
    "case_id": ("case_id", "case", "caseid", "case:concept:name", "deal_id", "dealid", "deal",
                "opportunity_id", "opportunityid", "opportunity", "opp_id", "project_id", "project", "id"),
    "name": ("name", "concept:name", "activity", "event", "stage", "milestone", "step", "task", "event_name"),
    "timestamp": ("timestamp", "time:timestamp", "time", "datetime", "date", "event_date", "event_time", "when"),
    "outcome": ("outcome", "case:outcome", "result", "won_lost", "status"),
    "type": ("type", "event_type", "kind_of_event"),
    "owner": ("owner", "org:resource", "resource", "user", "rep"),
    "role": ("role", "org:group", "org:role", "group", "team"),
    "amount": ("amount", "case:amount", "value", "deal_value", "arr", "acv"),
    "created": ("created", "created_date", "created_at", "case:created", "open_date"),
    "closed": ("closed", "close_date", "closed_date", "closed_at", "case:closed"),
    "target_date": ("target_date", "expected_close", "planned_end", "due_date"),
    "segment": ("segment", "case:segment", "market", "region"),
    "case_owner": ("case_owner", "account_owner", "opportunity_owner"),
}

_NONE = ""


def _listed(value: Any) -> list[str]:
    """Names from an option's value (a name, a list of them, or nothing)."""
    if value is None or callable(value) or isinstance(value, re.Pattern):
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _names(text: str) -> list[str]:
    """Comma- or line-separated names, trimmed, empty ones dropped."""
    return [n.strip() for n in re.split(r"[,\n]", text) if n.strip()]


def _pairs(text: str) -> dict[str, str]:
    """``"Closed Won=won, Closed Lost=lost"`` -> ``{"Closed Won": "won", "Closed Lost": "lost"}``."""
    out: dict[str, str] = {}
    for item in _names(text):
        label, eq, outcome = item.rpartition("=")
        if not (eq and label.strip() and outcome.strip()):
            raise InputError(
                f"Outcome values: {item!r} is not a pair. Expected label=outcome, e.g. 'Closed Won=won'. "
                "Fix: write each as label=outcome, separated by commas."
            )
        out[label.strip()] = outcome.strip()
    return out


def _norm(col: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(col).strip().lower())


def guess_mapping(columns: Sequence[str]) -> dict[str, str]:
    """A first guess at which column holds each canonical field, from common column names.

    Each column is used at most once; the earlier fields of :data:`MAPPING_FIELDS` choose first.

    Examples
    --------
    >>> guess_mapping(["Opportunity ID", "Stage", "Date", "Result", "Notes"])
    {'case_id': 'Opportunity ID', 'name': 'Stage', 'timestamp': 'Date', 'outcome': 'Result'}
    """
    by_norm: dict[str, str] = {}
    for c in columns:
        by_norm.setdefault(_norm(c), str(c))
    used: set[str] = set()
    out: dict[str, str] = {}
    for field, _, _ in MAPPING_FIELDS:
        for syn in _SYNONYMS.get(field, (field,)):
            col = by_norm.get(syn)
            if col is not None and col not in used:
                out[field] = col
                used.add(col)
                break
    return out


def guess_preset(columns: Sequence[str]) -> str | None:
    """The name of a known export format (a loader preset) whose id and stage columns are all present.

    Examples
    --------
    >>> guess_preset(["OpportunityId", "StageName", "CreatedDate", "Amount", "IsWon"])
    'salesforce'
    >>> guess_preset(["Deal", "Stage", "When"]) is None
    True
    """
    from salesproc.load._presets import PRESETS

    cols = set(map(str, columns))
    for name, preset in PRESETS.items():
        m = preset.mapping
        step = m.get("name", m.get("stage"))
        if "case_id" in m and step is not None and {m["case_id"], step} <= cols:
            return name
    return None


def preview_table(path: str | Path, *, nrows: int = 5) -> pd.DataFrame:
    """The first ``nrows`` rows of a CSV/TSV, Excel or Parquet file, as text, to see its columns.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "deals.csv"
    >>> _ = p.write_text("Deal;Stage;When\\nA;Qualify;2024-01-02\\nA;Demo;2024-01-09\\n")
    >>> preview_table(p, nrows=1).to_dict("records")
    [{'Deal': 'A', 'Stage': 'Qualify', 'When': '2024-01-02'}]
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file. Fix: check the path (it is read relative to {Path.cwd()}).")
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            batch = next(pq.ParquetFile(p).iter_batches(batch_size=nrows), None)
            df = batch.to_pandas() if batch is not None else pd.DataFrame()
            return df.head(nrows).astype(str)
        if suffix in (".xlsx", ".xlsm", ".xls"):
            return pd.read_excel(p, nrows=nrows, dtype=str)
        with p.open("r", encoding="utf-8-sig", errors="replace") as fh:
            header = fh.readline()
        counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
        sep = max(counts, key=lambda d: counts[d]) if max(counts.values()) > 0 else ","
        return pd.read_csv(p, sep=sep, nrows=nrows, dtype=str, encoding="utf-8-sig",
                           encoding_errors="replace", keep_default_na=False)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise InputError(f"{p}: cannot preview the file ({exc}). Fix: check that it is a CSV, Excel or Parquet file.") from None


def _html_error(msg: str) -> str:
    return (
        "<div class='salesproc-error' style='color:#a11;white-space:pre-wrap;font-family:monospace'>"
        f"{escape(msg)}</div>"
    )


def _html_ok(msg: str) -> str:
    return f"<div class='salesproc-ok' style='white-space:pre-wrap;font-family:monospace'>{escape(msg)}</div>"


class _Shell:
    """Shows ``self.widget`` wherever the object is displayed."""

    widget: W.Widget

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


# --- column mapping -----------------------------------------------------------------------------


class ColumnMapper(_Shell):
    """Preview a file, pick the column that holds each field, load it into a history.

    Parameters
    ----------
    path
        The file to load (CSV/TSV, Excel or Parquet); can also be typed into the widget.
    mapping
        A starting mapping (canonical name -> column) or a preset's name; by default the preset the
        columns match, and a mapping guessed from the column names.
    kind
        ``"deal"`` or ``"project"``.
    on_load
        Called with the :class:`~salesproc.history.History` after each successful load.
    nrows
        Rows shown in the preview.
    settings_path
        The team's settings file (``salesproc.toml``) that 'Save settings' writes. If it exists,
        the mapper starts from it: its source file, mapping, outcome rules and milestone names.
    options
        Other loading options to start from (time zone, decimal mark...); kept when saving.

    Attributes
    ----------
    path_text, preview_button, load_button, errors_choice
        The controls; ``dropdowns`` maps each canonical field to its column dropdown.
    won_text, lost_text, outcome_values_text, milestones_text
        Outcome rules and milestone names: which stage or event names mean won and lost (comma
        separated), the outcome column's values (``Closed Won=won, Closed Lost=lost``), and which
        event names are milestones (comma separated; empty: the data's ``type`` column).
    save_settings_button, overwrite_settings
        Save how the file is read as ``settings_path`` (replacing a saved file only when ticked).
    history
        The last history loaded (``None`` until a load succeeds).
    error
        The loader's last error message (``None`` after a successful load).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "export.csv"
    >>> _ = p.write_text("Opportunity ID,Stage,Date,Result\\nA,Qualify,2024-01-02,won\\n")
    >>> m = ColumnMapper(p)
    >>> m.mapping
    {'case_id': 'Opportunity ID', 'name': 'Stage', 'timestamp': 'Date', 'outcome': 'Result'}
    >>> m.load_button.click()
    >>> len(m.history)
    1
    >>> m.milestones_text.value = "Qualify"
    >>> m.options.milestones
    ['Qualify']
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        mapping: Mapping[str, str] | str | None = None,
        kind: str = "deal",
        on_load: Callable[[History], Any] | None = None,
        nrows: int = 5,
        settings_path: str | Path | None = None,
        options: LoadOptions | None = None,
    ) -> None:
        self.settings_path = Path(settings_path) if settings_path is not None else Path(SETTINGS_FILE)
        saved = read_settings(self.settings_path) if options is None and self.settings_path.is_file() else None
        self.base_options = options or (saved.options if saved else LoadOptions(kind=kind))
        if saved is not None:
            path = path or saved.source
            mapping = mapping if mapping is not None else saved.options.mapping
            kind = saved.options.kind
        self.kind = kind
        self.on_load = on_load
        self.nrows = nrows
        self.history: History | None = None
        self.error: str | None = None
        self.columns: list[str] = []
        self.path_text = W.Text(value=str(path or ""), description="File", placeholder="path/to/export.csv",
                                layout=W.Layout(width="60%"))
        self.path_text.add_class("salesproc-path")
        self.preview_button = W.Button(description="Preview", icon="eye")
        self.preview_button.add_class("salesproc-preview-button")
        self.preview = W.HTML()
        self.dropdowns: dict[str, W.Dropdown] = {}
        for field, _required, help_text in MAPPING_FIELDS:
            dd = W.Dropdown(options=[("(none)", _NONE)], value=_NONE, description=field,
                            description_allow_html=False, tooltip=help_text,
                            style={"description_width": "90px"})
            dd.add_class(f"salesproc-map-{field}")
            self.dropdowns[field] = dd
        from salesproc.load._presets import PRESETS

        self.preset_choice = W.Dropdown(
            options=[("(the columns chosen below)", _NONE)]
            + [(f"{name}: {p.description.split(':')[0].split(',')[0]}", name) for name, p in PRESETS.items()],
            value=_NONE, description="Format", style={"description_width": "90px"},
            layout=W.Layout(width="70%"))
        self.preset_choice.add_class("salesproc-preset")
        self.errors_choice = W.ToggleButtons(options=[("stop at the first bad row", "raise"),
                                                      ("skip bad rows", "skip")], value="raise",
                                            style={"button_width": "auto"})
        self.load_button = W.Button(description="Load", button_style="primary", icon="upload")
        self.load_button.add_class("salesproc-load-button")
        self.result = W.HTML()
        self.result.add_class("salesproc-load-result")
        self._make_outcome_controls(self.base_options)
        self.preview_button.on_click(lambda _: self.refresh_preview())
        self.load_button.on_click(lambda _: self.load())
        req = [self.dropdowns[f] for f, r, _ in MAPPING_FIELDS if r]
        opt = [self.dropdowns[f] for f, r, _ in MAPPING_FIELDS if not r]
        self.widget = W.VBox([
            W.HBox([self.path_text, self.preview_button]),
            self.preview,
            W.HTML("<b>A known export?</b> Pick its format, or leave it and say which column holds what."),
            self.preset_choice,
            W.HTML("<b>Which column holds what?</b> The first three are required."),
            W.HBox([W.VBox(req), W.VBox(opt[: len(opt) // 2]), W.VBox(opt[len(opt) // 2 :])]),
            W.HTML("<b>How does a deal end, and which steps are milestones?</b> Names as they appear in "
                   "the file, comma separated; leave empty when the file says it itself."),
            W.HBox([W.VBox([self.won_text, self.lost_text]), W.VBox([self.outcome_values_text, self.milestones_text])]),
            W.HBox([self.errors_choice, self.load_button]),
            self.result,
            W.HBox([self.save_settings_button, self.overwrite_settings]),
            self.settings_result,
        ])
        if path:
            self.refresh_preview(mapping)

    def _make_outcome_controls(self, start: LoadOptions) -> None:
        """The outcome rules, milestone names and 'Save settings' controls, filled from ``start``."""
        events = dict(start.outcome_events or {})
        rule = start.milestones
        style, lay = {"description_width": "110px"}, W.Layout(width="420px")

        def text(desc: str, value: str, placeholder: str, css: str) -> W.Text:
            t = W.Text(value=value, description=desc, placeholder=placeholder, style=style, layout=lay)
            t.add_class(css)
            return t

        self.won_text = text("Won when", ", ".join(_listed(events.get("won"))), "Closed Won, Signed", "salesproc-won")
        self.lost_text = text("Lost when", ", ".join(_listed(events.get("lost"))), "Closed Lost", "salesproc-lost")
        self.outcome_values_text = text(
            "Outcome values", ", ".join(f"{k}={v}" for k, v in (start.outcome_values or {}).items()),
            "Closed Won=won, Closed Lost=lost", "salesproc-outcome-values")
        self.milestones_text = text(
            "Milestones", ", ".join(_listed(rule)) if not isinstance(rule, str) else rule,
            "Qualify, Proposal, Negotiation", "salesproc-milestones")
        self.save_settings_button = W.Button(description="Save settings", icon="save")
        self.save_settings_button.add_class("salesproc-save-settings")
        self.overwrite_settings = W.Checkbox(value=False, description="replace the saved settings", indent=False)
        self.settings_result = W.HTML()
        self.settings_result.add_class("salesproc-settings-result")
        self.save_settings_button.on_click(lambda _: self.save_settings())

    @property
    def options(self) -> LoadOptions:
        """How the file is read, as the controls say: the mapping, outcome rules, milestones, errors."""
        events = {k: v for k, v in (("won", _names(self.won_text.value)), ("lost", _names(self.lost_text.value))) if v}
        milestones = _names(self.milestones_text.value)
        return self.base_options.replace(
            mapping=self.mapping_argument, kind=self.kind, errors=self.errors_choice.value,
            outcome_events=events or None, outcome_values=_pairs(self.outcome_values_text.value) or None,
            milestones=milestones or None,
        )

    def save_settings(self) -> Path | None:
        """Write how the file is read (and the file's path) as the team's settings file."""
        try:
            written = write_settings(self.settings_path, self.options, source=self.path_text.value.strip() or None,
                                     overwrite=self.overwrite_settings.value)
        except SalesprocError as exc:
            self.settings_result.value = _html_error(str(exc))
            return None
        self.settings_result.value = _html_ok(f"saved {written}: every notebook and command in this folder reads "
                                              "the file this way now.")
        return written

    @property
    def mapping(self) -> dict[str, str]:
        """The mapping the dropdowns describe (canonical name -> column), fields left at "(none)" omitted."""
        return {f: dd.value for f, dd in self.dropdowns.items() if dd.value != _NONE}

    @property
    def mapping_argument(self) -> dict[str, str] | str | None:
        """What :func:`salesproc.load_history` gets as ``mapping``: the chosen format's name, or the
        dropdowns' mapping (``None`` when no column is chosen)."""
        if self.preset_choice.value:
            return str(self.preset_choice.value)
        return self.mapping or None

    def refresh_preview(self, mapping: Mapping[str, str] | str | None = None) -> None:
        """Read the file's first rows, list its columns in the dropdowns and pre-select a mapping."""
        self.error = None
        try:
            df = preview_table(self.path_text.value.strip(), nrows=self.nrows)
        except SalesprocError as exc:
            self.error = str(exc)
            self.preview.value = _html_error(self.error)
            return
        self.columns = [str(c) for c in df.columns]
        self.preview.value = (
            f"<div class='salesproc-preview'><small>First {len(df)} rows of "
            f"{escape(Path(self.path_text.value).name)}</small>{df.to_html(index=False, max_cols=30)}</div>"
        )
        if isinstance(mapping, str):  # a preset's name
            preset: str | None = mapping if mapping in [v for _, v in self.preset_choice.options] else None
            start = guess_mapping(self.columns)
        else:
            preset = guess_preset(self.columns) if mapping is None else None
            start = dict(mapping) if mapping is not None else guess_mapping(self.columns)
        self.preset_choice.value = preset or _NONE
        options = [("(none)", _NONE)] + [(c, c) for c in self.columns]
        for field, dd in self.dropdowns.items():
            dd.options = options
            dd.value = start[field] if start.get(field) in self.columns else _NONE

    def load(self) -> History | None:
        """Load the file with the current mapping; show the summary, or the loader's error."""
        from salesproc.load._load import load_history

        self.error = None
        try:
            h = load_history(self.path_text.value.strip(), options=self.options)
        except SalesprocError as exc:
            self.error = str(exc)
            self.history = None
            self.result.value = _html_error(self.error)
            return None
        self.history = h
        self.result.value = _html_ok(str(h.summary()) + f"\n\nmapping={self.mapping_argument!r}"
                                     "\nPress 'Save settings' to keep how this file is read.")
        if self.on_load is not None:
            self.on_load(h)
        return h


# --- goal -----------------------------------------------------------------------------------------


class GoalForm(_Shell):
    """State the goal: target date, what success looks like, how it is measured, the owners.

    Parameters
    ----------
    goal
        The goal to start from (e.g. the one saved earlier), or ``None``.
    target_date
        The starting target date when there is no ``goal``.
    kind
        ``"deal"`` (owners: seller and buyer) or ``"project"`` (delivery team and customer).
    on_set
        Called with the new :class:`~salesproc.plan.Goal` each time it is set (e.g. to save it).

    Attributes
    ----------
    target_date, success_text, measure_text, seller_owner_text, buyer_owner_text, set_button
        The controls.
    goal
        The goal last set (``None`` until the first).
    error
        The last error message, or ``None``.

    Examples
    --------
    >>> import datetime
    >>> f = GoalForm(target_date="2024-06-30")
    >>> f.success_text.value = "Contract signed"
    >>> f.set_button.click()
    >>> f.goal.target_date.date(), f.goal.success
    (datetime.date(2024, 6, 30), 'Contract signed')
    """

    def __init__(
        self,
        goal: Any = None,
        *,
        target_date: Any = None,
        kind: str = "deal",
        on_set: Callable[[Any], Any] | None = None,
    ) -> None:
        import datetime

        self.on_set = on_set
        self.goal: Any = None
        self.error: str | None = None
        start = goal.target_date if goal is not None else target_date
        day: datetime.date | None = pd.Timestamp(start).date() if start is not None else None
        deal = kind == "deal"
        self.target_date = W.DatePicker(value=day, description="Target date")
        self.target_date.add_class("salesproc-goal-date")
        self.success_text = W.Text(
            value=getattr(goal, "success", "") or "", description="Success is",
            placeholder="Contract signed" if deal else "Go-live accepted by the customer",
            layout=W.Layout(width="60%"))
        self.measure_text = W.Text(
            value=getattr(goal, "measure", "") or "", description="Measured by",
            placeholder="Signed order form in the CRM" if deal else "Acceptance sign-off",
            layout=W.Layout(width="60%"))
        self.seller_owner_text = W.Text(value=getattr(goal, "seller_owner", None) or "",
                                        description="Our owner" if deal else "Delivery")
        self.buyer_owner_text = W.Text(value=getattr(goal, "buyer_owner", None) or "",
                                       description="Their owner" if deal else "Customer")
        for w in (self.success_text, self.measure_text, self.seller_owner_text, self.buyer_owner_text):
            w.style.description_width = "100px"
        self.set_button = W.Button(description="Set the goal", button_style="primary", icon="flag-checkered")
        self.set_button.add_class("salesproc-goal-set")
        self.result = W.HTML()
        self.result.add_class("salesproc-goal-result")
        self.set_button.on_click(lambda _: self.set())
        self.widget = W.VBox([
            self.target_date, self.success_text, self.measure_text,
            W.HBox([self.seller_owner_text, self.buyer_owner_text]),
            self.set_button, self.result,
        ])
        if goal is not None:
            self.goal = goal
            self.result.value = _html_ok(self._describe(goal))

    @staticmethod
    def _describe(goal: Any) -> str:
        owners = " / ".join(x for x in (goal.seller_owner, goal.buyer_owner) if x)
        return (
            f"Goal: {goal.success or 'success'} by {goal.target_date:%Y-%m-%d}"
            + (f", measured by {goal.measure}" if goal.measure else "")
            + (f"; owners: {owners}" if owners else "")
        )

    def set(self) -> Any:
        """Make the :class:`~salesproc.plan.Goal` from the form; show it, or what is missing."""
        from salesproc.plan._plan import Goal

        self.error = None
        if self.target_date.value is None:
            self.error = "Pick a target date: the day the goal is due."
            self.result.value = _html_error(self.error)
            return None
        if not self.success_text.value.strip():
            self.error = "Say what success looks like (e.g. 'Contract signed'): a result, not an activity."
            self.result.value = _html_error(self.error)
            return None
        try:
            goal = Goal(
                str(self.target_date.value),
                success=" ".join(self.success_text.value.split()),
                measure=" ".join(self.measure_text.value.split()),
                seller_owner=self.seller_owner_text.value.strip() or None,
                buyer_owner=self.buyer_owner_text.value.strip() or None,
            )
        except SalesprocError as exc:
            self.error = str(exc)
            self.result.value = _html_error(self.error)
            return None
        self.goal = goal
        self.result.value = _html_ok(self._describe(goal))
        if self.on_set is not None:
            self.on_set(goal)
        return goal


# --- template editor ----------------------------------------------------------------------------


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:g}"


def _short(x: float | None) -> str:
    return "?" if x is None else f"{round(x, 1):g}"


def _parse_days(text: str, what: str) -> float | None:
    s = text.strip().replace(",", ".")
    if not s:
        return None
    try:
        return float(s)
    except ValueError:
        raise TemplateError(
            f"{what}: {text!r} is not a number of days. Fix: type a number such as 7 or 10.5, or leave it empty."
        ) from None


class TemplateEditor(_Shell):
    """Edit a process template and save each result as a new version, with the diff.

    Parameters
    ----------
    template
        The template to edit (derived, or loaded from YAML). It is not changed: edits make new ones.
    path
        The template file (e.g. ``workshop/process.yaml``). Save never overwrites: it writes the
        next free version (``process.v2.yaml``, ``process.v3.yaml``, ...).
    previous
        What the first Save is compared with; default ``template``.

    Attributes
    ----------
    template
        The template as edited so far.
    saved, saved_path
        The last version saved (or ``previous``) and where it was written.
    diff
        The :class:`~salesproc.template.TemplateDiff` of the last Save.
    message
        The last status line (an error message starts with ``"Error:"``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from salesproc.template import Milestone, ProcessTemplate, load_template, save_template
    >>> t = ProcessTemplate(milestones=[Milestone(name="Qualify", order=1), Milestone(name="Demo", order=2)])
    >>> path = save_template(t, pathlib.Path(tempfile.mkdtemp()) / "process.yaml")
    >>> ed = TemplateEditor(t, path=path)
    >>> ed.milestones.value = "Demo"
    >>> ed.rename_text.value = "Discovery"
    >>> ed.rename_button.click()
    >>> ed.save_button.click()
    >>> ed.saved_path.name, load_template(ed.saved_path).milestone_names
    ('process.v2.yaml', ['Qualify', 'Discovery'])
    >>> print(ed.diff)
    v1 -> v2:
      milestone renamed: Demo -> Discovery
    """

    def __init__(
        self,
        template: ProcessTemplate,
        *,
        path: str | Path,
        previous: ProcessTemplate | None = None,
    ) -> None:
        self.template = template
        self.path = Path(path)
        self.saved: ProcessTemplate = previous if previous is not None else template
        self.saved_path: Path | None = None
        self.diff: TemplateDiff | None = None
        self.message = ""
        self._history: list[ProcessTemplate] = []
        self._syncing = False
        lay = W.Layout(width="auto")  # one layout shared by the buttons
        self._make_milestone_controls(lay)
        self._make_activity_controls(lay)
        self._make_save_controls(lay)
        self._connect()
        self.widget = self._layout()
        self.widget.add_class("salesproc-template-editor")
        self._refresh()

    # -- controls ------------------------------------------------------------------------------
    def _make_milestone_controls(self, lay: W.Layout) -> None:
        """Create the milestone list and its controls (move, rename, merge, owner, exits, durations)."""
        self.milestones = W.Select(options=[], rows=8, layout=W.Layout(width="320px"))
        self.milestones.add_class("salesproc-milestones")
        self.up_button = W.Button(description="Up", icon="arrow-up", layout=lay)
        self.up_button.add_class("salesproc-up-button")
        self.down_button = W.Button(description="Down", icon="arrow-down", layout=lay)
        self.down_button.add_class("salesproc-down-button")
        self.rename_text = W.Text(placeholder="new name", description="Rename to")
        self.rename_text.add_class("salesproc-rename")
        self.rename_button = W.Button(description="Rename", layout=lay)
        self.rename_button.add_class("salesproc-rename-button")
        self.merge_into = W.Dropdown(options=[], description="Merge into")
        self.merge_into.add_class("salesproc-merge-into")
        self.merge_button = W.Button(description="Merge", layout=lay)
        self.merge_button.add_class("salesproc-merge-button")
        self.owner_text = W.Text(description="Owner")
        self.owner_text.add_class("salesproc-owner")
        self.exit_text = W.Textarea(description="Exit criteria", placeholder="one per line",
                                    layout=W.Layout(height="70px"))
        self.exit_text.add_class("salesproc-exit-criteria")
        self.p50_text = W.Text(description="p50 days", layout=W.Layout(width="200px"))
        self.p50_text.add_class("salesproc-p50")
        self.p80_text = W.Text(description="p80 days", layout=W.Layout(width="200px"))
        self.p80_text.add_class("salesproc-p80")
        self.apply_milestone_button = W.Button(description="Apply", layout=lay)
        self.apply_milestone_button.add_class("salesproc-apply-milestone")

    def _make_activity_controls(self, lay: W.Layout) -> None:
        """Create the activity list and its controls (requirement, accept, reject, due by, owner, days)."""
        self.activities = W.Select(options=[], rows=8, layout=W.Layout(width="320px"))
        self.activities.add_class("salesproc-activities")
        self.requirement = W.ToggleButtons(options=list(edit.REQUIREMENTS), value="none",
                                           style={"button_width": "105px"})
        self.requirement.add_class("salesproc-requirement")
        self.accept_button = W.Button(description="Accept", button_style="success", icon="check", layout=lay)
        self.accept_button.add_class("salesproc-accept-button")
        self.reject_button = W.Button(description="Reject", button_style="warning", icon="times", layout=lay)
        self.reject_button.add_class("salesproc-reject-button")
        self.activity_milestone = W.Dropdown(options=[("(none)", _NONE)], value=_NONE, description="Due by")
        self.activity_milestone.add_class("salesproc-activity-milestone")
        self.activity_owner = W.Text(description="Owner")
        self.activity_owner.add_class("salesproc-activity-owner")
        self.due_text = W.Text(description="Days before", layout=W.Layout(width="200px"))
        self.due_text.add_class("salesproc-due")
        self.apply_activity_button = W.Button(description="Apply", layout=lay)
        self.apply_activity_button.add_class("salesproc-apply-activity")

    def _make_save_controls(self, lay: W.Layout) -> None:
        """Create Undo and Save, the status line, the diff of the last save and the template's preview."""
        self.undo_button = W.Button(description="Undo", icon="undo", layout=lay)
        self.undo_button.add_class("salesproc-undo-button")
        self.save_button = W.Button(description="Save new version", button_style="primary", icon="save",
                                    layout=lay)
        self.save_button.add_class("salesproc-save-button")
        self.status = W.HTML()
        self.status.add_class("salesproc-status")
        self.preview = W.HTML()
        self.preview.add_class("salesproc-preview")
        self.diff_view = W.HTML()
        self.diff_view.add_class("salesproc-diff")

    def _connect(self) -> None:
        """Connect the lists and buttons to their handlers."""
        self.milestones.observe(lambda _: self._show_milestone(), names="value")
        self.activities.observe(lambda _: self._show_activity(), names="value")
        self.up_button.on_click(lambda _: self._edit_selected(edit.move_milestone, -1))
        self.down_button.on_click(lambda _: self._edit_selected(edit.move_milestone, 1))
        self.rename_button.on_click(lambda _: self._rename())
        self.merge_button.on_click(lambda _: self._merge())
        self.apply_milestone_button.on_click(lambda _: self._apply_milestone())
        self.accept_button.on_click(lambda _: self._accept())
        self.reject_button.on_click(lambda _: self._edit_activity(edit.reject_activity))
        self.apply_activity_button.on_click(lambda _: self._apply_activity())
        self.undo_button.on_click(lambda _: self.undo())
        self.save_button.on_click(lambda _: self.save())

    def _layout(self) -> W.VBox:
        """Arrange the controls: milestones, activities, Undo and Save, status, diff and preview."""
        ms_box = W.HBox([
            self.milestones,
            W.VBox([
                W.HBox([self.up_button, self.down_button]),
                W.HBox([self.rename_text, self.rename_button]),
                W.HBox([self.merge_into, self.merge_button]),
                self.owner_text, self.exit_text,
                W.HBox([self.p50_text, self.p80_text]),
                self.apply_milestone_button,
            ]),
        ])
        act_box = W.HBox([
            self.activities,
            W.VBox([
                self.requirement,
                W.HBox([self.accept_button, self.reject_button]),
                self.activity_milestone, self.activity_owner, self.due_text,
                self.apply_activity_button,
            ]),
        ])
        return W.VBox([
            W.HTML("<h4>Milestones</h4><small>Select one, then move, rename, merge or set its owner, "
                   "exit criteria and usual duration (✎ marks your edits).</small>"),
            ms_box,
            W.HTML("<h4>Activities</h4><small>Accept or reject what the data flagged; "
                   "critical activities come first.</small>"),
            act_box,
            W.HBox([self.undo_button, self.save_button]),
            self.status,
            self.diff_view,
            self.preview,
        ])

    # -- state ---------------------------------------------------------------------------------
    def apply(self, fn: Callable[..., ProcessTemplate], *args: Any, **kwargs: Any) -> bool:
        """Apply an edit ``fn(template, *args, **kwargs)`` from :mod:`salesproc.edit`; False on error."""
        try:
            new = fn(self.template, *args, **kwargs)
        except SalesprocError as exc:
            self._say(f"Error: {exc}")
            return False
        if new is not self.template:
            self._history.append(self.template)
            self.template = new
            self._say(f"{fn.__name__.replace('_', ' ')}: done. Unsaved changes.")
        else:
            self._say("Nothing changed.")
        self._refresh()
        return True

    def undo(self) -> None:
        """Go back one edit."""
        if not self._history:
            self._say("Nothing to undo.")
            return
        self.template = self._history.pop()
        self._say("Undone.")
        self._refresh()

    def save(self) -> Path | None:
        """Write the edited template as the next version beside ``path`` and show the diff."""
        same = self.template.model_copy(update={"version": self.saved.version}) == self.saved
        if same and (self.saved_path is not None or self.path.exists()):
            self._say("No changes since the last save.")
            return None
        new = edit.next_template_version(self.template, self.path, previous=self.saved)
        if self.saved_path is None and not self.path.exists():
            new = self.template
        try:
            written = save_template(new, self.path)
        except (SalesprocError, OSError) as exc:
            self._say(f"Error: could not save: {exc}")
            return None
        self.diff = diff_templates(self.saved, new)
        self.saved, self.template, self.saved_path = new, new, written
        self._history.clear()
        self._say(f"Saved {written}")
        self.diff_view.value = (
            f"<div><b>Saved</b> <code>{escape(written.name)}</code></div>" + self.diff._repr_html_()
        )
        self._refresh()
        return written

    # -- handlers ------------------------------------------------------------------------------
    def _say(self, msg: str) -> None:
        self.message = msg
        self.status.value = _html_error(msg) if msg.startswith("Error") else _html_ok(msg)

    def _selected(self) -> str | None:
        return self.milestones.value or None

    def _edit_selected(self, fn: Callable[..., ProcessTemplate], *args: Any) -> None:
        name = self._selected()
        if name is None:
            self._say("Error: select a milestone first.")
            return
        self.apply(fn, name, *args)

    def _rename(self) -> None:
        name = self._selected()
        if name is None:
            self._say("Error: select a milestone first.")
            return
        new = self.rename_text.value
        if self.apply(edit.rename_milestone, name, new) and new.strip():
            self._select_milestone(" ".join(new.split()))
            self.rename_text.value = ""

    def _merge(self) -> None:
        name, into = self._selected(), self.merge_into.value
        if name is None or not into:
            self._say("Error: select a milestone, and the milestone to merge it into.")
            return
        if name == into:
            self._say("Error: choose a different milestone to merge into.")
            return
        if self.apply(edit.merge_milestones, [name, into], into=into):
            self._select_milestone(into)

    def _apply_milestone(self) -> None:
        name = self._selected()
        if name is None:
            self._say("Error: select a milestone first.")
            return
        try:
            p50 = _parse_days(self.p50_text.value, "p50 days")
            p80 = _parse_days(self.p80_text.value, "p80 days")
        except SalesprocError as exc:
            self._say(f"Error: {exc}")
            return
        self.apply(edit.set_milestone, name, owner_role=self.owner_text.value or None,
                   exit_criteria=self.exit_text.value, p50_days=p50, p80_days=p80)

    def _edit_activity(self, fn: Callable[..., ProcessTemplate], *args: Any, **kwargs: Any) -> None:
        name = self.activities.value
        if not name:
            self._say("Error: select an activity first.")
            return
        self.apply(fn, name, *args, **kwargs)

    def _accept(self) -> None:
        req = self.requirement.value
        self._edit_activity(edit.accept_activity, req if req != "none" else None)

    def _apply_activity(self) -> None:
        try:
            due = _parse_days(self.due_text.value, "days before")
        except SalesprocError as exc:
            self._say(f"Error: {exc}")
            return
        self._edit_activity(edit.set_activity, requirement=self.requirement.value,
                            milestone=self.activity_milestone.value or None,
                            owner_role=self.activity_owner.value or None, due_days_before=due)

    # -- view ----------------------------------------------------------------------------------
    def _select_milestone(self, name: str) -> None:
        if name in [v for _, v in self.milestones.options]:
            self.milestones.value = name

    def _refresh(self) -> None:
        t = self.template
        self._syncing = True
        try:
            ms = sorted(t.milestones, key=lambda m: m.order)
            keep = self.milestones.value
            self.milestones.options = [
                (f"{m.order}. {m.name}"
                 + (f"  ({_short(m.p50_days)}–{_short(m.p80_days)} d)" if m.p50_days is not None else "")
                 + ("  ✎" if m.edited else ""), m.name)
                for m in ms
            ]
            names = [m.name for m in ms]
            self.milestones.value = keep if keep in names else (names[0] if names else None)
            self.merge_into.options = [(n, n) for n in names]
            self.activity_milestone.options = [("(none)", _NONE)] + [(n, n) for n in names]
            rank = {"required": 0, "recommended": 1, "warning": 2, "none": 3}
            acts = sorted(t.activities, key=lambda a: (rank[a.requirement], a.name.lower()))
            keep_a = self.activities.value
            self.activities.options = [
                (f"{a.name} · {a.requirement}" + (f" by {a.milestone}" if a.milestone else "")
                 + ("  ✎" if a.edited else ""), a.name)
                for a in acts
            ]
            anames = [a.name for a in acts]
            self.activities.value = keep_a if keep_a in anames else (anames[0] if anames else None)
        finally:
            self._syncing = False
        self._show_milestone()
        self._show_activity()
        self.preview.value = t._repr_html_()

    def _show_milestone(self) -> None:
        if self._syncing:
            return
        name = self._selected()
        if name is None:
            return
        m = self.template.milestone(name)
        self.owner_text.value = m.owner_role or ""
        self.exit_text.value = "\n".join(m.exit_criteria)
        self.p50_text.value = _fmt(m.p50_days)
        self.p80_text.value = _fmt(m.p80_days)
        others = [n for n in self.template.milestone_names if n != name]
        self.merge_into.options = [(n, n) for n in others]
        self.merge_into.value = others[0] if others else None

    def _show_activity(self) -> None:
        if self._syncing or not self.activities.value:
            return
        a = self.template.activity(self.activities.value)
        self.requirement.value = a.requirement
        self.activity_milestone.value = a.milestone or _NONE
        self.activity_owner.value = a.owner_role or ""
        self.due_text.value = _fmt(a.due_days_before)
