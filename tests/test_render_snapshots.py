"""Snapshots of the built-in reports, in Markdown and HTML, for a fixed synthetic review.

The review is seeded and dated by the generator (no clock), so the reports are the same on every
run. Inline SVG charts are replaced by a placeholder naming the chart (their geometry is
matplotlib's business and is tested elsewhere), and the package version by ``<version>``.

After an intended change to a template, regenerate and review the diff:

    SALESPROC_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/test_render_snapshots.py
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from render_data import Fixture, small_plan, small_review

import salesproc
from salesproc.render import render_report

SNAPSHOTS = Path(__file__).parent / "__snapshots__" / "render"
UPDATE = os.environ.get("SALESPROC_UPDATE_SNAPSHOTS") == "1"
_SVG = re.compile(r'<svg\b[^>]*?aria-label="([^"]*)".*?</svg>', re.S)


@pytest.fixture(scope="module")
def fx() -> Fixture:
    return small_review()


def _normalise(text: str) -> str:
    text = _SVG.sub(lambda m: f'<svg aria-label="{m.group(1)}"><!-- chart --></svg>', text)
    return text.replace(f"salesproc {salesproc.__version__}", "salesproc <version>")


def _reports(fx: Fixture) -> dict[str, Any]:
    d = fx.review[fx.review.case_ids[0]]
    return {
        "process": (fx.template, None),
        "checklist": (fx.template, "checklist"),
        "deal_review": (d, None),
        "deal_checklist": (d, "checklist"),
        "pipeline_review": (fx.review, None),
        "plan": (small_plan(fx), None),
    }


CASES = [(name, fmt) for name in ("process", "checklist", "deal_review", "deal_checklist", "pipeline_review", "plan")
         for fmt in ("md", "html")]


@pytest.mark.parametrize(("name", "fmt"), CASES, ids=[f"{n}.{f}" for n, f in CASES])
def test_report_matches_its_snapshot(fx: Fixture, name: str, fmt: str, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # built-in templates only
    obj, template = _reports(fx)[name]
    text = _normalise(str(render_report(obj, template=template, format=fmt)))  # type: ignore[arg-type]
    path = SNAPSHOTS / f"{name}.{fmt}"
    if UPDATE or not path.exists():
        assert UPDATE, f"{path} is missing: run with SALESPROC_UPDATE_SNAPSHOTS=1 to create it"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), (
        f"{name}.{fmt} differs from {path}; if the change is intended, rerun with SALESPROC_UPDATE_SNAPSHOTS=1"
    )


def test_rendering_is_deterministic_charts_included(fx: Fixture, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    d = fx.review[fx.review.case_ids[0]]
    for obj in (fx.template, d, fx.review):
        first, second = render_report(obj), render_report(obj)
        assert first == second and "<svg" in str(first)
