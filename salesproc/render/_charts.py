"""Small, fast charts for reports, drawn with matplotlib and embedded as inline SVG.

Reports in bulk need a chart per deal in a few milliseconds, so these charts avoid what makes
matplotlib slow: one :class:`ReportCanvas` per process keeps its Figure and Axes, removes the
previous chart's artists instead of rebuilding axes, draws bars as one collection per colour and
writes labels as text (``svg.fonttype = 'none'``) with the axis machinery switched off. Output is
deterministic (fixed hash salt, no date or creator metadata), so snapshots are stable.

User text (deal ids, milestone and activity names) is never read as mathtext: the per-deal chart
writes its labels as escaped SVG text itself, and the one-off charts (plan, pipeline) switch
mathtext off for their labels; matplotlib escapes text for XML when it writes the SVG.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import matplotlib
import matplotlib.ticker
from markupsafe import Markup
from matplotlib.axes import Axes
from matplotlib.backends.backend_svg import FigureCanvasSVG, RendererSVG
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

__all__ = [
    "MilestoneBar",
    "ReportCanvas",
    "figure_svg",
    "pipeline_chart",
    "plan_chart",
    "svg_markup",
]

SVG_RC: Any = {
    "svg.fonttype": "none",
    "svg.hashsalt": "salesproc",
    "svg.image_inline": True,
    "font.family": "DejaVu Sans",
    "font.size": 8.0,
    "path.simplify": True,
}

COLORS = {
    "p80": "#dbe7ea",
    "p50": "#a9c8cf",
    "done": "#2f7d6d",
    "current": "#d9822b",
    "late": "#c0392b",
    "todo": "#b8b8b8",
    "text": "#222222",
    "muted": "#6b6b6b",
}

_XML_HEAD = re.compile(r"^.*?(?=<svg\b)", re.DOTALL)
_SIZE = re.compile(r'<svg([^>]*?)\swidth="([\d.]+)pt"\sheight="([\d.]+)pt"')
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)


def svg_markup(svg: str, *, label: str = "chart") -> Markup:
    """An SVG document cut down to an inline ``<svg>`` element: no XML header, no metadata,
    responsive size, ``role="img"`` and an accessible label."""
    body = _XML_HEAD.sub("", svg, count=1)
    body = _METADATA.sub("", body)
    esc = Markup.escape(label)

    def size(m: re.Match[str]) -> str:
        w, h = float(m.group(2)), float(m.group(3))
        return (
            f'<svg{m.group(1)} width="{w:g}pt" height="{h:g}pt" role="img" aria-label="{esc}" '
            'preserveAspectRatio="xMinYMin meet" class="chart"'
        )

    body = _SIZE.sub(size, body, count=1)
    return Markup(body.strip())


def figure_svg(fig: Figure, *, label: str = "chart") -> Markup:
    """``fig`` as inline SVG markup (deterministic)."""
    buf = io.StringIO()
    with matplotlib.rc_context(SVG_RC):
        if not isinstance(fig.canvas, FigureCanvasSVG):
            FigureCanvasSVG(fig)
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return svg_markup(buf.getvalue(), label=label)


@dataclass(frozen=True)
class MilestoneBar:
    """One row of a milestone chart: the template's p50/p80 days and (for a deal) the actual days.

    ``state`` is ``done``, ``current``, ``todo`` or ``skipped``.
    """

    name: str
    p50: float | None
    p80: float | None
    actual: float | None = None
    state: str = "todo"


class _SVGRenderer(RendererSVG):
    """matplotlib's SVG renderer with text metrics cached across charts.

    matplotlib caches text metrics per renderer, and every chart gets a new renderer; a batch draws
    the same milestone names a thousand times, so measuring each string once saves half the time.
    """

    _metrics: ClassVar[dict[tuple[Any, ...], tuple[float, float, float]]] = {}

    def get_text_width_height_descent(self, s: str, prop: Any, ismath: Any) -> tuple[float, float, float]:
        key = (s, hash(prop), ismath)
        hit = self._metrics.get(key)
        if hit is None:
            if len(self._metrics) > 20_000:
                self._metrics.clear()
            hit = self._metrics[key] = super().get_text_width_height_descent(s, prop, ismath)
        return hit


class ReportCanvas:
    """One reusable Figure for a worker's per-deal charts (never pyplot).

    The Figure, its Axes and one bar collection are made once; each chart only moves the bars, is
    drawn straight to an SVG renderer (no ``savefig`` round trip), and gets its labels as SVG text.
    """

    WIDTH = 6.2
    ROW = 0.27
    PAD = 0.36

    def __init__(self) -> None:
        with matplotlib.rc_context(SVG_RC):
            self.fig = Figure(figsize=(self.WIDTH, 2.0), dpi=72)
            FigureCanvasSVG(self.fig)
            self.ax: Axes = self.fig.add_axes((0.24, 0.16, 0.62, 0.8))
            self.ax.set_axis_off()
            self._bars = PolyCollection([], edgecolors="none")
            self.ax.add_collection(self._bars, autolim=False)
        self._session = 0

    @contextlib.contextmanager
    def session(self) -> Iterator[ReportCanvas]:
        """Apply the SVG settings once for many charts (a batch worker's whole chunk)."""
        with matplotlib.rc_context(SVG_RC):
            self._session += 1
            try:
                yield self
            finally:
                self._session -= 1

    def _draw(self, label: str, labels: Sequence[tuple[float, float, str, str, dict[str, str]]] = ()) -> Markup:
        """Draw the figure to SVG, then add ``labels`` (x, y in data units, text, anchor, style)
        as SVG text: a fixed set of labels costs matplotlib a layout each, and a batch draws
        thousands; SVG lays text out itself."""
        buf = io.StringIO()
        w, h = self.fig.get_size_inches()
        renderer = _SVGRenderer(w * 72, h * 72, buf, None, 72, metadata={"Date": None, "Creator": None})
        self.fig.draw(renderer)
        renderer.finalize()
        svg = buf.getvalue()
        if labels:
            height = h * 72
            pts = self.ax.transData.transform([(x, y) for x, y, *_ in labels])
            nodes = []
            for (px, py), (_, _, text, anchor, style) in zip(pts, labels):
                size = float(style.get("size", 8))
                # presentation attributes, not a `font:` shorthand: every SVG renderer (WeasyPrint too) reads them
                nodes.append(
                    f'<text x="{px:.1f}" y="{height - py + size * 0.35:.1f}" text-anchor="{anchor}" '
                    f'font-family="DejaVu Sans, sans-serif" font-size="{size:g}" '
                    f'font-weight="{style.get("weight", "normal")}" fill="{style.get("color", COLORS["text"])}">'
                    f"{Markup.escape(text)}</text>"
                )
            svg = svg.replace("</svg>", ' <g class="labels">\n  ' + "\n  ".join(nodes) + "\n </g>\n</svg>", 1)
        return svg_markup(svg, label=label)

    def milestone_chart(
        self,
        bars: Sequence[MilestoneBar],
        *,
        label: str = "time in each milestone",
        unit: str = "d",
    ) -> Markup:
        """Horizontal bars per milestone: p80 (light), p50 (darker) and, where given, the actual
        days (a thin bar, orange in the current milestone, red once past its p80; an arrow when
        it runs off the scale)."""
        if not self._session:
            with self.session():
                return self.milestone_chart(bars, label=label, unit=unit)
        n = max(len(bars), 1)
        h = self.PAD + self.ROW * n
        self.fig.set_size_inches(self.WIDTH, h)
        ax = self.ax
        ax.set_position((0.24, 0.12 / h, 0.62, (h - 0.24) / h))
        p80 = [b.p80 or 0.0 for b in bars]
        p50 = [b.p50 or 0.0 for b in bars]
        longest = max([*p80, *p50, 1.0])
        # the scale follows the template; an actual bar longer than 1.6x the longest p80 is cut
        # (with an arrow) so that one stale deal does not flatten the chart
        cap = longest * 1.6
        top = max([longest, *(min(b.actual, cap) for b in bars if b.actual is not None)])
        xmax = top * 1.04
        verts: list[list[tuple[float, float]]] = []
        colors: list[str] = []
        labels: list[tuple[float, float, str, str, dict[str, str]]] = []

        def rect(i: int, w: float, half: float) -> list[tuple[float, float]]:
            return [(0.0, i - half), (w, i - half), (w, i + half), (0.0, i + half)]

        for i in range(len(bars)):
            verts.append(rect(i, p80[i], 0.36))
            colors.append(COLORS["p80"])
            verts.append(rect(i, p50[i], 0.36))
            colors.append(COLORS["p50"])
        for i, b in enumerate(bars):
            if b.actual is None:
                continue
            late = b.state == "current" and b.p80 is not None and b.actual >= b.p80
            verts.append(rect(i, min(b.actual, cap), 0.13))
            colors.append(COLORS["late"] if late else COLORS.get(b.state, COLORS["todo"]))
            if b.actual > cap:
                labels.append((cap, i, " ▶", "start", {"size": "7", "color": COLORS["late"]}))
        self._bars.set_verts(verts)
        self._bars.set_facecolor(colors)
        for i, b in enumerate(bars):
            labels.append((-0.015 * xmax, i, _short(b.name, 30), "end", {
                "weight": "bold" if b.state == "current" else "normal",
                "color": COLORS["muted"] if b.state == "skipped" else COLORS["text"],
            }))
            if b.actual is not None:
                txt = f"{b.actual:.0f} {unit} (usually {b.p50:.0f})" if b.p50 else f"{b.actual:.0f} {unit}"
            else:
                txt = f"{b.p50:.0f}–{b.p80:.0f} {unit}" if b.p50 and b.p80 else ""
            if txt:
                labels.append((xmax * 1.01, i, txt, "start", {"size": "7", "color": COLORS["muted"]}))
        ax.set_xlim(0, xmax)
        ax.set_ylim(n - 0.5, -0.5)
        return self._draw(label, labels)


def _short(text: Any, max_len: int) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= max_len else s[: max_len - 1] + "…"


# --- one-off charts (one per report, so the usual axes machinery is fine) -----------------------------


def plan_chart(plan: Any) -> Markup:
    """The plan's Gantt chart (:func:`salesproc.plan.plot_plan`, which reads names as plain text)
    as inline SVG."""
    from salesproc.plan._plan import plot_plan

    with matplotlib.rc_context(SVG_RC):
        fig = Figure(figsize=(7.5, 1.5 + 0.3 * max(len(plan.items), 1)), layout="constrained")
        FigureCanvasSVG(fig)
        plot_plan(plan, ax=fig.subplots())
        return figure_svg(fig, label="Plan: latest safe dates for each milestone and activity")


def pipeline_chart(review: Any) -> dict[str, Markup]:
    """The pipeline's two summary charts from :mod:`salesproc.charts`: ``ageing`` (days in the
    current milestone against the template's p50/p80) and ``risk`` (risk against amount).

    User text (deal ids, milestone names) is never read as mathtext here; amounts are labelled
    plainly (20k, 1.5M).
    """
    from salesproc.charts import plot_risk_amount, plot_stage_ageing

    out: dict[str, Markup] = {}
    with matplotlib.rc_context({**SVG_RC, "text.parse_math": False}):
        n = len(review.template.milestones)
        fig = Figure(figsize=(5.6, 0.42 * max(n, 2) + 1.3), layout="constrained")
        FigureCanvasSVG(fig)
        ax = plot_stage_ageing(review, ax=fig.add_subplot())
        ax.set_xlabel("days in current milestone\n(grey: half move on by then, orange: 8 in 10 do, red: stalled)",
                      fontsize=7.5)
        ax.set_title("")
        out["ageing"] = figure_svg(fig, label="Days each open deal has spent in its current milestone")
        fig2 = Figure(figsize=(5.6, 3.4), layout="constrained")
        FigureCanvasSVG(fig2)
        ax2 = plot_risk_amount(review, ax=fig2.add_subplot())
        if ax2.get_xscale() == "log":
            ax2.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_compact))
            ax2.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax2.set_title("")
        out["risk"] = figure_svg(fig2, label="Risk of not winning against amount, one dot per open deal")
    return out


def _compact(value: float, _pos: Any = None) -> str:
    """Axis amounts: 500, 20k, 1.5M."""
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= div:
            return f"{value / div:g}{suffix}"
    return f"{value:g}"
