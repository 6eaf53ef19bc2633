"""History and template charts: what is drawn matches the numbers it stands for."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

import salesproc
from salesproc.charts import (
    plot_activity_effects,
    plot_cycle_time,
    plot_funnel,
    plot_outcomes,
    plot_time_in_milestone,
)


@pytest.fixture(scope="module")
def history() -> salesproc.History:
    return salesproc.load_sample_deals()


@pytest.fixture(scope="module")
def template(history: salesproc.History) -> salesproc.ProcessTemplate:
    return salesproc.derive_template(history)


def test_outcome_bars_count_the_cases(history: salesproc.History) -> None:
    ax = plot_outcomes(history)
    c = history.cases
    quarters = c["created"].dt.tz_convert(None).dt.to_period("Q")
    heights: dict[str, float] = {}
    for patch, label in zip(ax.patches, np.repeat(["won", "lost", "open"], len(ax.get_xticks()))):
        heights[label] = heights.get(label, 0.0) + patch.get_height()
    assert heights == {o: float((c["outcome"] == o).sum()) for o in ("won", "lost", "open")}
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(q) for q in sorted(quarters.unique())]
    first_q = quarters == quarters.min()
    won, lost = int((first_q & (c["outcome"] == "won")).sum()), int((first_q & (c["outcome"] == "lost")).sum())
    assert ax.texts[0].get_text() == f"{won / (won + lost):.0%}"


def test_drawing_on_a_given_axes(history: salesproc.History) -> None:
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_cycle_time(history, ax=ax) is ax
    won = history.cases[history.cases["status"] == "success"]
    days = (won["closed"] - won["created"]).dt.total_seconds() / 86_400
    lines = [ln.get_xdata()[0] for ln in ax.get_lines()]
    assert lines == pytest.approx([float(np.quantile(days, 0.5)), float(np.quantile(days, 0.8))])


def test_funnel_widths_are_cases_reached(template: salesproc.ProcessTemplate) -> None:
    ax = plot_funnel(template)
    assert [p.get_width() for p in ax.patches] == [float(m.evidence.reached) for m in template.milestones]
    first = template.milestones[0].evidence
    assert ax.texts[0].get_text() == (
        f"{first.reached:,} · {first.to_next.rate:.0%} moved on · {first.to_success.rate:.0%} won")


def test_time_in_milestone_bars(template: salesproc.ProcessTemplate) -> None:
    ax = plot_time_in_milestone(template)
    n = len(template.milestones)
    widths = [p.get_width() for p in ax.patches]
    assert widths[:n] == pytest.approx([m.p80_days for m in template.milestones])
    assert widths[n:] == pytest.approx([m.p50_days for m in template.milestones])


def test_activity_effects_sorted_and_coloured(template: salesproc.ProcessTemplate) -> None:
    ax = plot_activity_effects(template, top=5)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    tested = [a for a in template.activities if a.evidence is not None and a.evidence.risk_difference is not None]
    top = sorted(tested, key=lambda a: -abs(a.evidence.risk_difference))[:5]
    expect = sorted(top, key=lambda a: a.evidence.risk_difference)
    assert labels == [f"{a.name} (by {a.evidence.milestone})" for a in expect]
    dots = [ln for ln in ax.get_lines() if ln.get_marker() == "o" and len(ln.get_xdata())]
    assert [d.get_xdata()[0] for d in dots] == pytest.approx([a.evidence.risk_difference for a in expect])
    required = {a.name for a in template.activities if a.requirement == "required"}
    colours = {lab.split(" (by")[0]: d.get_color() for lab, d in zip(labels, dots)}
    assert {n for n, col in colours.items() if col == "#27ae60"} == required & set(colours)


def test_empty_inputs_do_not_fail() -> None:
    t = salesproc.ProcessTemplate()
    assert plot_funnel(t).get_yticks().size == 0
    assert plot_activity_effects(t).get_yticks().size == 0
    assert plot_time_in_milestone(t).get_xlim() == (0.0, 1.0)
