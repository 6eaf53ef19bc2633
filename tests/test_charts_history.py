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


# --- names are text, never mathtext ---------------------------------------------------------------

DOLLAR_NAMES = {"Qualify": "$100k deal", "Discovery": "a$b$c", "Solution": "50% $ off",
                "Proposal": r"Q$\x$ deal", "Champion identified": "Champion $$ found"}


def _svg_text(ax: object) -> str:
    """The Axes' figure as SVG with text kept as text (so a label can be read back as written)."""
    import io

    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    fig = ax.figure  # type: ignore[attr-defined]
    FigureCanvasSVG(fig)
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buf, format="svg")  # mathtext would fail here ("Unknown symbol: \x") or set "a<i>b</i>c"
    return buf.getvalue()


def test_a_dollar_in_a_name_is_a_dollar_in_every_chart(history: salesproc.History) -> None:
    from xml.sax.saxutils import escape

    from salesproc.charts import plot_calibration, plot_risk_amount, plot_stage_ageing

    h = history.rename_events(DOLLAR_NAMES)
    t = salesproc.derive_template(h)
    review = salesproc.review_deals(h, t, as_of="2023-12-31")
    milestones = [DOLLAR_NAMES.get(n, n) for n in ("Qualify", "Discovery", "Solution", "Proposal")]
    frame = review.to_frame().assign(case_id=lambda f: [milestones[i % 4] for i in range(len(f))])
    drawn = {
        "funnel": plot_funnel(t),
        "time": plot_time_in_milestone(t),
        "effects": plot_activity_effects(t, top=20),
        "ageing": plot_stage_ageing(review),
        "risk": plot_risk_amount(frame, label_top=len(frame)),
    }
    for name in ("funnel", "time", "ageing"):  # the milestone names, as written
        assert [x.get_text() for x in drawn[name].get_yticklabels()][:4] == milestones, name
    assert {x.get_text() for x in drawn["risk"].texts} == set(milestones)
    assert any(x.get_text().startswith("Champion $$ found (by ") for x in drawn["effects"].get_yticklabels())
    for name, ax in drawn.items():  # and drawn as written: no mathtext error, no italics, every dollar kept
        svg = _svg_text(ax)
        for label in [x.get_text() for x in (ax.texts if name == "risk" else ax.get_yticklabels())]:
            assert escape(label) in svg, (name, label)
    metrics = type("M", (), {"name": "a$b$c", "ece": 0.01, "calibration": _calibration()})()
    ax = plot_calibration(metrics)
    assert escape("a$b$c (ECE 0.010)") in _svg_text(ax)


def _calibration() -> object:
    import pandas as pd

    return pd.DataFrame({"predicted": [0.2, 0.8], "observed": [0.25, 0.7],
                         "observed_low": [0.1, 0.5], "observed_high": [0.4, 0.85]})
