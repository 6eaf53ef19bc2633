"""The whole pipeline on the built-in sample deals: what ``salesproc demo`` runs.

Load the sample deals, derive the team's template, review the open pipeline, render every report
(pipeline index and one review per open deal, in HTML and Markdown), save the template as YAML,
render "our process on one page" and the milestone checklist, plan the pipeline's top deal
backwards (HTML, Markdown and an iCalendar file), and export the pipeline table as CSV, all into
one new run folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

__all__ = ["DemoRun", "run_demo"]


@dataclass(frozen=True)
class DemoRun:
    """Where the demo wrote what (``files`` maps a label to a path)."""

    run_dir: Path
    index: Path
    deals: int
    files: dict[str, Path] = field(default_factory=dict)
    plan_case: str | None = None


def run_demo(
    out_dir: str | Path = "reports",
    *,
    workers: int = 2,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> DemoRun:
    """Run the pipeline on :func:`salesproc.load_sample_deals` and render everything into a new
    run folder under ``out_dir``.

    Examples
    --------
    >>> import tempfile
    >>> run = run_demo(tempfile.mkdtemp(), workers=1, progress=False, echo=lambda s: None)
    >>> sorted(run.files)[:3], run.index.name
    (['checklist.html', 'checklist.md', 'pipeline.csv'], 'index.html')
    """
    # from the steps' own modules, not through the top package (which also re-exports the
    # salesproc.backtest shim of this layer): the layers contract allows only imports downward
    from salesproc.datasets import load_sample_deals
    from salesproc.derive import derive_template
    from salesproc.derive._derive import _default_as_of
    from salesproc.plan import Goal, plan_backwards
    from salesproc.render._paths import slugify
    from salesproc.render._render import export_table, render_batch, render_report
    from salesproc.review import review_deals
    from salesproc.template._template import save_template

    history = load_sample_deals()
    s = history.summary()
    echo(f"Sample deals: {s.cases:,} deals, {s.events:,} events")
    as_of = _default_as_of(history)
    template = derive_template(history, as_of=as_of, name="Sample deals")
    echo(f"Derived {template!r}")
    review = review_deals(history, template, as_of=as_of)
    echo(f"Reviewed {review!r}")
    run = render_batch(review, out_dir, formats=("html", "md"), workers=workers, progress=progress)
    d = run.run_dir
    files: dict[str, Path] = {}
    files["process.yaml"] = save_template(template, d / "process.yaml")
    for fmt in ("html", "md"):
        render_report(template, format=fmt, out=d / f"process.{fmt}")  # type: ignore[arg-type]
        render_report(template, template="checklist", format=fmt, out=d / f"checklist.{fmt}")  # type: ignore[arg-type]
        files[f"process.{fmt}"] = d / f"process.{fmt}"
        files[f"checklist.{fmt}"] = d / f"checklist.{fmt}"
    case = review.case_ids[0] if len(review) else None
    if case is not None:
        top = review[case]
        goal = Goal(
            as_of.normalize() + pd.Timedelta(days=42),
            success="Order form signed",
            measure="countersigned order form received",
            seller_owner=top.owner,
            buyer_owner="the buyer's champion",
        )
        plan = plan_backwards(template, goal=goal, as_of=as_of, case=case, history=history, seed=0)
        stem = f"plan-{slugify(case)}"
        for fmt in ("html", "md"):
            render_report(plan, format=fmt, out=d / f"{stem}.{fmt}")  # type: ignore[arg-type]
            files[f"plan.{fmt}"] = d / f"{stem}.{fmt}"
        files["plan.ics"] = plan.to_ics(d / f"{stem}.ics")
        echo(f"Planned {case} backwards: {plan.headline}")
    files["pipeline.csv"] = export_table(review.to_frame(), d / "pipeline.csv")
    return DemoRun(run_dir=d, index=run.index, deals=len(run), files=files, plan_case=case)
