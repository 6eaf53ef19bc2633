"""salesproc: run a sales process the way good delivery teams run projects.

Load past deals and projects, derive the team's own process template from its wins and losses,
plan backwards from a goal, review open deals, and render reports.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

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
from salesproc.template import ProcessTemplate, diff_templates, load_template, save_template

try:
    __version__ = version("salesproc")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = [
    "Goal",
    "History",
    "HistorySummary",
    "InputError",
    "InvalidValueError",
    "LoadReport",
    "MissingColumnError",
    "Plan",
    "ProcessTemplate",
    "SalesprocError",
    "__version__",
    "derive_template",
    "diff_templates",
    "directly_follows",
    "load_history",
    "load_sample_deals",
    "load_sample_projects",
    "load_template",
    "plan_backwards",
    "plot_plan",
    "save_template",
    "synthetic_history",
]
