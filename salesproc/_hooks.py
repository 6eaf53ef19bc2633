"""Hooks that let an earlier step of the data flow call a later one without importing it.

A :class:`~salesproc.plan.Plan` can write itself as a report (``plan.to_html()``), but the plan
step must not import the report step, which imports plans. The report step registers its
renderer here when it is imported (``import salesproc`` always imports it), and the plan calls
it through :func:`report_renderer`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["report_renderer", "set_report_renderer"]

_renderer: Callable[..., Any] | None = None


def set_report_renderer(render: Callable[..., Any]) -> None:
    """Register ``render(obj, *, format=, out=, overwrite=)`` (done by :mod:`salesproc.render`)."""
    global _renderer
    _renderer = render


def report_renderer() -> Callable[..., Any]:
    """The registered report renderer; importing :mod:`salesproc.render` registers it."""
    if _renderer is None:  # pragma: no cover - ``import salesproc`` imports salesproc.render first
        raise RuntimeError("No report renderer is registered. Fix: import salesproc.render first.")
    return _renderer
