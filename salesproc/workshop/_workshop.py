"""The workshop's working folder: where the notebooks keep the team's data, goal and template versions.

A process-design workshop runs through several notebooks; each picks up where the previous one left
off. :func:`open_workshop` names the folder they share::

    workshop/
        history/            the team's history as loaded in notebook 0 (a History.to_parquet folder)
        goal.yaml           the goal set in notebook 1
        salesproc.toml      how the team's export is read (mapping, outcomes, milestones...; the
                            column mapper's 'Save settings'), the same file the command line reads
        process.yaml        the template derived in notebook 3 (version 1)
        process.v2.yaml     ... and each version the team saved from the template editor
        plans/, reports/    exports and rendered reports

Nothing here reads the clock: ``as_of`` defaults to the last date in the data.

Examples
--------
>>> import tempfile
>>> from salesproc.workshop import open_workshop
>>> ws = open_workshop(tempfile.mkdtemp())
>>> ws.history().report.source  # nothing loaded yet: the built-in sample deals
'salesproc sample deals'
>>> t = ws.template()  # derived from it and saved as the first version
>>> [p.name for p in ws.template_versions()]
['process.yaml']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import yaml

from salesproc._io import atomic_write_text, recover_half_swap
from salesproc.errors import DeriveError, InputError, ParameterError, TemplateError
from salesproc.history._history import History, _ts
from salesproc.load._options import LoadOptions
from salesproc.load._settings import SETTINGS_FILE, Settings, find_settings, read_settings, write_settings
from salesproc.template._template import ProcessTemplate, load_template, save_template

__all__ = ["ReportInputs", "Workshop", "backtest_versions", "open_workshop", "report_inputs", "suggest_target_date"]

TEMPLATE_FILE = "process.yaml"


@dataclass(frozen=True)
class Workshop:
    """A workshop's working folder (make one with :func:`open_workshop`)."""

    folder: Path

    # -- paths ---------------------------------------------------------------------------------
    @property
    def history_dir(self) -> Path:
        return self.folder / "history"

    @property
    def goal_path(self) -> Path:
        return self.folder / "goal.yaml"

    @property
    def template_path(self) -> Path:
        """The first version's file; later versions are saved beside it (``process.v2.yaml``...)."""
        return self.folder / TEMPLATE_FILE

    @property
    def settings_path(self) -> Path:
        """The team's settings file (``salesproc.toml``): how its export is read."""
        return self.folder / SETTINGS_FILE

    @property
    def plans_dir(self) -> Path:
        return self.folder / "plans"

    @property
    def reports_dir(self) -> Path:
        return self.folder / "reports"

    # -- history -------------------------------------------------------------------------------
    def history(self) -> History:
        """The history loaded in notebook 0, or the built-in sample deals if none was.

        A save killed half-way through its folder swap (``history/`` gone, its previous copy in
        ``.history.old``) is repaired first, with a warning: the previous copy is put back rather
        than the sample deals silently taking the team's place. A ``history/`` folder that is
        there but incomplete is an :class:`~salesproc.errors.InputError` naming what is missing.
        """
        recover_half_swap(self.history_dir)
        if self.history_dir.exists():
            try:
                return History.read_parquet(self.history_dir)
            except InputError as exc:
                raise InputError(
                    f"{exc} The workshop keeps the team's history there. Fix: load the team's data again "
                    f"(Workshop.use_history(...)), or remove {self.history_dir} to work on the sample deals."
                ) from None
        from salesproc.datasets import load_sample_deals

        return load_sample_deals()

    def use_history(
        self, source: Any = None, *, mapping: Mapping[str, str] | str | None = None, **options: Any
    ) -> History:
        """Load ``source`` and keep it as the workshop's history.

        ``source=None`` loads the file the workshop's settings file names (:meth:`use_settings`), or,
        with none, goes back to the sample deals (removing the working copy). ``mapping`` and
        ``options`` go to :func:`salesproc.load_history`, over the settings file's options. The
        working copy in ``history/`` is replaced (your source file is never touched).
        """
        settings = self.settings()
        if source is None and settings is not None and settings.source is not None:
            return self.use_settings()
        if settings is not None:
            given = {"mapping": mapping, **options}
            options = {"options": settings.options.replace(**{k: v for k, v in given.items() if v is not None})}
            mapping = None
        if source is None:
            import shutil

            from salesproc.datasets import load_sample_deals

            if self.history_dir.exists():
                shutil.rmtree(self.history_dir)
            return load_sample_deals()
        else:
            from salesproc.load._load import load_history

            h = load_history(source, mapping=mapping, **options)
        self.save_history(h)
        return h

    # -- settings ------------------------------------------------------------------------------
    def settings(self) -> Settings | None:
        """The workshop's settings file, read and checked (``None`` if none was saved)."""
        return read_settings(self.settings_path) if self.settings_path.is_file() else None

    def save_settings(self, options: LoadOptions, *, source: Any = None, overwrite: bool = False) -> Path:
        """Keep how the team's export is read as ``salesproc.toml`` (an existing file only with ``overwrite``)."""
        return write_settings(self.settings_path, options, source=source, overwrite=overwrite)

    def use_settings(self) -> History:
        """Load the source the settings file names, read as it says, and keep it as the workshop's history."""
        s = self.settings()
        if s is None or s.source is None:
            raise InputError(
                f"{self.settings_path}: no settings file naming the team's data (its 'source'). Fix: load the "
                "file with the column mapper and press 'Save settings', or run `salesproc info FILE ... --save-settings`."
            )
        from salesproc.load._load import load_history

        h = load_history(s.source, options=s.options)
        self.save_history(h)
        return h

    def save_history(self, history: History) -> Path:
        """Keep ``history`` as the workshop's history (replacing the working copy)."""
        return history.to_parquet(self.history_dir, overwrite=True)

    def as_of(self, value: Any = None, history: History | None = None) -> pd.Timestamp:
        """``value`` as a UTC timestamp, or (``None``) the last date in the history."""
        if value is not None:
            return _resolve_as_of(value, None)
        return _resolve_as_of(None, history if history is not None else self.history())

    # -- templates -----------------------------------------------------------------------------
    def template_versions(self) -> list[Path]:
        """Saved template files, oldest first (``process.yaml``, ``process.v2.yaml``, ...)."""
        stem, suffix = self.template_path.stem, self.template_path.suffix

        def number(p: Path) -> int | None:
            if p.name == self.template_path.name:
                return 1
            tail = p.name[len(stem) + 1 : -len(suffix)]
            return int(tail[1:]) if tail.startswith("v") and tail[1:].isdigit() else None

        found = [(number(p), p) for p in self.folder.glob(f"{stem}*{suffix}")]
        return [p for n, p in sorted((n, p) for n, p in found if n is not None)]

    def template(self, *, as_of: Any = None, history: History | None = None) -> ProcessTemplate:
        """The latest saved template for the workshop's data; derived and saved first if there is none.

        A saved version counts only if it was derived from the same source as the current history
        (after loading other data, a fresh template is derived and saved as the next version).
        """
        h = history if history is not None else self.history()
        source = h.report.source
        for path in reversed(self.template_versions()):
            try:
                t = load_template(path)
            except TemplateError:
                continue
            if t.provenance.source == source:
                return t
        from salesproc.derive._derive import derive_template

        s = self.settings()
        t = derive_template(h, as_of=self.as_of(as_of, h), name="process", settings=s.to_dict() if s else None)
        versions = self.template_versions()
        if versions:
            t = t.model_copy(update={"version": max(load_template(p).version for p in versions) + 1})
        save_template(t, self.template_path)
        return t

    def latest_template_path(self) -> Path | None:
        versions = self.template_versions()
        return versions[-1] if versions else None

    # -- goal ----------------------------------------------------------------------------------
    def save_goal(self, goal: Any) -> Path:
        """Keep the goal (a :class:`salesproc.plan.Goal`) as ``goal.yaml`` (replacing the previous one)."""
        data = {
            "target_date": f"{goal.target_date:%Y-%m-%d}",
            "success": goal.success,
            "measure": goal.measure,
            "seller_owner": goal.seller_owner,
            "buyer_owner": goal.buyer_owner,
        }
        text = "# the workshop's goal (notebook 01)\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        return atomic_write_text(self.goal_path, text, overwrite=True)

    def current_goal(self, template: ProcessTemplate, as_of: Any, target_date: Any = None) -> Any:
        """The goal to plan for: the saved one (with ``target_date`` instead of its own, if given), or,
        with none saved, a goal due on :func:`suggest_target_date`."""
        return _goal_for(self, template, as_of, target_date)

    def goal(self) -> Any:
        """The goal saved in notebook 1, or ``None``."""
        from salesproc.plan._plan import Goal

        if not self.goal_path.exists():
            return None
        data = yaml.safe_load(self.goal_path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict) or "target_date" not in data:
            raise TemplateError(f"{self.goal_path}: expected target_date, success, measure and owners.")
        return Goal(
            data["target_date"],
            success=str(data.get("success") or ""),
            measure=str(data.get("measure") or ""),
            seller_owner=data.get("seller_owner"),
            buyer_owner=data.get("buyer_owner"),
        )


def _resolve_as_of(value: Any, history: History | None) -> pd.Timestamp:
    """``value`` as a UTC timestamp, or the last date in ``history``."""
    if value is not None:
        t = _ts(value, "as_of")
        assert t is not None
        return t
    assert history is not None
    c, e = history._cases, history._events
    dates = [x for x in (e["timestamp"].max() if len(e) else None, c["closed"].max(), c["created"].max())
             if x is not None and not pd.isna(x)]
    if not dates:
        raise DeriveError("The history holds no dates. Fix: pass as_of='YYYY-MM-DD'.")
    return max(dates)


def _goal_for(ws: Workshop, template: ProcessTemplate, as_of: Any, target_date: Any = None) -> Any:
    from dataclasses import replace

    from salesproc.plan._plan import Goal

    saved = ws.goal()
    if target_date is not None:
        return replace(saved, target_date=target_date) if saved is not None else Goal(target_date)
    return saved if saved is not None else Goal(suggest_target_date(template, as_of))


def open_workshop(folder: str | Path = "workshop") -> Workshop:
    """The workshop's working folder (created if missing).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> ws = open_workshop(pathlib.Path(tempfile.mkdtemp()) / "acme")
    >>> ws.folder.is_dir(), ws.template_path.name
    (True, 'process.yaml')
    """
    p = Path(folder)
    p.mkdir(parents=True, exist_ok=True)
    return Workshop(p)


def suggest_target_date(template: ProcessTemplate, as_of: Any, *, level: str = "p80") -> pd.Timestamp:
    """A realistic target day for a deal starting at ``as_of``: ``as_of`` plus the won cases' cycle
    time at ``level`` (``"p50"`` or ``"p80"``), from the template's evidence.

    Examples
    --------
    >>> from salesproc.template import Duration, ProcessTemplate
    >>> t = ProcessTemplate(cycle_time=Duration(p50=40.0, p80=71.5))
    >>> suggest_target_date(t, "2024-01-10")
    Timestamp('2024-03-22 00:00:00+0000', tz='UTC')
    """
    if level not in ("p50", "p80"):
        raise ParameterError(f"The 'level' parameter of suggest_target_date must be 'p50' or 'p80'. Got {level!r} instead.")
    t = _ts(as_of, "as_of")
    assert t is not None
    days = getattr(template.cycle_time, level, None) if template.cycle_time is not None else None
    if days is None:
        days = sum((getattr(m, f"{level}_days") or 0.0) for m in template.milestones)
    return (t + pd.Timedelta(days=float(days))).ceil("D")


def backtest_versions(
    history: History,
    templates: Mapping[str, ProcessTemplate],
    *,
    cutoff: Any,
    refit: bool = True,
) -> pd.DataFrame:
    """Score template versions on the same past deals: one row per version (AUC, Brier, ECE).

    Each template reviews the deals open at ``cutoff`` (:func:`salesproc.backtest.backtest`). With
    ``refit`` (the default) each is first re-derived from what was known at the cutoff, keeping the
    fields the team edited (``derive_template(..., previous=template)``), so no version profits from
    knowing the outcomes it is scored on. Re-deriving keeps the data's milestones: a renamed or merged
    milestone is scored under the CRM's names.

    Examples
    --------
    >>> import salesproc
    >>> from salesproc.template.edit import reject_activity
    >>> h = salesproc.load_sample_deals()
    >>> v1 = salesproc.derive_template(h)
    >>> v2 = reject_activity(v1, v1.critical_activities[0].name)
    >>> table = backtest_versions(h, {"v1": v1, "v2": v2}, cutoff="2023-10-01")
    >>> table["version"].tolist(), bool(table["auc"].between(0, 1).all())
    (['v1', 'v2'], True)
    """
    from salesproc.derive._derive import derive_template
    from salesproc.review.backtest import backtest

    t_cut = _ts(cutoff, "cutoff")
    rows = []
    for name, tpl in templates.items():
        t = derive_template(history, as_of=t_cut, previous=tpl) if refit else tpl
        bt = backtest(history, cutoff=t_cut, template=t, baseline=False)
        m = bt.metrics
        rows.append({
            "version": name,
            "milestones": len(t.milestones),
            "critical_activities": len(t.critical_activities),
            "deals": m.n,
            "won": m.successes,
            "auc": m.auc,
            "auc_low": m.auc_ci[0],
            "auc_high": m.auc_ci[1],
            "brier": m.brier,
            "ece": m.ece,
        })
    return pd.DataFrame(rows)


class ReportInputs(NamedTuple):
    """What a report run works on: the history, the template and the review date."""

    history: History
    template: ProcessTemplate
    as_of: pd.Timestamp


def report_inputs(
    history: Any = None,
    template: str | Path | ProcessTemplate | None = None,
    as_of: Any = None,
    *,
    mapping: Mapping[str, str] | str | None = None,
    settings: str | Path | bool | None = None,
    outcome_events: Mapping[str, Any] | None = None,
    outcome_values: Mapping[str, str] | None = None,
    milestones: Any = None,
) -> ReportInputs:
    """Turn a report notebook's parameters into its inputs.

    ``history`` is a path (or anything :func:`salesproc.load_history` reads; ``None``: the source
    the settings name, else the sample deals); ``template`` a template file (``None``: derived from
    the history as known at ``as_of``); ``as_of`` the review date (``None``: the last date in the
    data). ``settings`` is the team's settings file (``None``: ./salesproc.toml if there is one;
    ``False``: none); ``mapping``, ``outcome_events``, ``outcome_values`` and ``milestones`` given
    here win over it. Data with no closed case at all is an :class:`~salesproc.errors.InputError`
    that says how to name the outcomes.

    Examples
    --------
    >>> h, t, as_of = report_inputs(as_of="2023-12-31")
    >>> h.report.source, t.provenance.as_of, str(as_of.date())
    ('salesproc sample deals', '2023-12-31T00:00:00+00:00', '2023-12-31')
    """
    from salesproc.derive._derive import derive_template

    found = None if settings is False else (settings if settings not in (None, True) else find_settings())
    s = read_settings(found) if isinstance(found, str | Path) else None
    given = {"mapping": mapping, "outcome_events": outcome_events, "outcome_values": outcome_values,
             "milestones": milestones}
    options = (s.options if s else LoadOptions()).replace(**{k: v for k, v in given.items() if v is not None})
    source = history if history is not None else (s.source if s else None)
    if source is None:
        from salesproc.datasets import load_sample_deals

        h = load_sample_deals()
    else:
        from salesproc.load._load import load_history

        h = _with_closed_cases(load_history(source, options=options))
    t_as_of = _resolve_as_of(as_of, h)
    if template is None:
        from salesproc.load._settings import settings_dict

        tpl = derive_template(h, as_of=t_as_of, settings=settings_dict(options, source=source)
                              if isinstance(source, str | Path) else None)
    elif isinstance(template, ProcessTemplate):
        tpl = template
    else:
        tpl = load_template(template)
    return ReportInputs(h, tpl, t_as_of)


def _with_closed_cases(h: History) -> History:
    """``h``, once it holds a closed case; else an error saying how to tell salesproc the outcomes."""
    outcomes = h.cases["outcome"]
    if len(outcomes) and not (outcomes.notna() & (outcomes != "open")).any():
        raise InputError(
            f"{h.report.source}: every one of its {len(outcomes):,} cases is open: no event or value in it says "
            "which were won and lost, so nothing can be learnt from them. Expected: some closed cases. Fix: "
            "name the events that close a case, e.g. -p outcome_events '{\"won\": [\"Closed Won\"], "
            "\"lost\": [\"Closed Lost\"]}' (or outcome_values for an outcome column), or save them once in "
            f"a {SETTINGS_FILE} (`salesproc info FILE ... --save-settings`, or the column mapper's "
            "'Save settings') and pass -p settings <its path>."
        )
    return h
