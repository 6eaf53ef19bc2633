"""salesproc: run a sales process the way good delivery teams run projects.

Load past deals and projects, derive the team's own process template from its wins and losses,
plan backwards from a goal, review open deals, and render reports.

The package's folders follow the data flow, one step each, and import only from the steps
before them (the layers contract in ``pyproject.toml``, checked by ``make test``)::

    load -> history -> derive -> template -> plan | review -> render -> workshop
"""

from __future__ import annotations

from salesproc._version import __version__

# through the old module path (salesproc/backtest.py): importing that module later would otherwise
# replace the function salesproc.backtest with the module of the same name
from salesproc.backtest import BacktestResult, backtest, compare_templates
from salesproc.datasets import load_sample_deals, load_sample_projects, synthetic_history
from salesproc.derive import derive_template, directly_follows
from salesproc.errors import (
    InputError,
    InvalidValueError,
    MissingColumnError,
    SalesprocError,
)
from salesproc.history import History, HistorySummary, LoadReport
from salesproc.load import load_history
from salesproc.plan import Goal, Plan, plan_backwards, plot_plan
from salesproc.render import export_table, render_batch, render_report
from salesproc.review import DealReview, Review, review_deals
from salesproc.template import ProcessTemplate, diff_templates, load_template, save_template
from salesproc.template.edit import (
    accept_activity,
    merge_milestones,
    move_milestone,
    reject_activity,
    rename_milestone,
    set_activity,
    set_milestone,
)
from salesproc.workshop import backtest_versions, open_workshop

__all__ = [
    "BacktestResult",
    "DealReview",
    "Goal",
    "History",
    "HistorySummary",
    "InputError",
    "InvalidValueError",
    "LoadReport",
    "MissingColumnError",
    "Plan",
    "ProcessTemplate",
    "Review",
    "SalesprocError",
    "__version__",
    "accept_activity",
    "backtest",
    "backtest_versions",
    "compare_templates",
    "derive_template",
    "diff_templates",
    "directly_follows",
    "export_table",
    "load_history",
    "load_sample_deals",
    "load_sample_projects",
    "load_template",
    "merge_milestones",
    "move_milestone",
    "open_workshop",
    "plan_backwards",
    "plot_plan",
    "reject_activity",
    "rename_milestone",
    "render_batch",
    "render_report",
    "review_deals",
    "save_template",
    "set_activity",
    "set_milestone",
    "synthetic_history",
]
