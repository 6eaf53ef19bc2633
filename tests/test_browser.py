"""Rendered reports in a real browser: headless Chromium (Debian's ``chromium`` package) driven by
Playwright's Python API. Never ``playwright install``: the browser is ``/usr/bin/chromium``.

One test opens the pipeline index of a batch run, served on 127.0.0.1, follows a link to a deal
review and checks what a manager sees; one reads a deal review's plain sentences, then opens its
"How this was worked out" fold and finds the statistics; the other renders a history whose deal ids, owners,
activity and milestone names are script-injection payloads and checks, page by page, that no
script ran, no dialog opened, no link leads to ``javascript:`` and nothing was written outside
the output folder. Screenshots go to ``tests/artifacts/`` (git-ignored);
``scripts/screenshots.py`` (``make screenshots``) makes the README's two.
"""

from __future__ import annotations

import functools
import http.server
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from render_data import ACTIVITY, HOSTILE_IDS, OWNER, SCRIPT, TRAVERSAL, hostile_review, small_review

from salesproc.render import render_batch, render_report
from salesproc.render._paths import slugify, unique_slugs

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed: apt-get install -y chromium (.ci/run does)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def _serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on 127.0.0.1 (a free port) for the duration of the block."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _watch(page: Page) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {"dialogs": [], "errors": [], "console": []}

    def on_dialog(dialog: Any) -> None:
        seen["dialogs"].append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))
    page.on("console", lambda msg: seen["console"].append(msg.text) if msg.type == "error" else None)
    return seen


def test_a_manager_opens_the_pipeline_index_and_a_deal_review(browser: Browser, tmp_path: Path) -> None:
    fx = small_review()
    run = render_batch(fx.review, tmp_path / "reports", progress=False, workers=2)
    ARTIFACTS.mkdir(exist_ok=True)
    first = fx.review.case_ids[0]
    slug = unique_slugs(fx.review.case_ids)[0]
    deal = fx.review[first]
    with _serve(run.run_dir) as base:
        page = browser.new_page(viewport={"width": 1100, "height": 1300})
        seen = _watch(page)
        page.goto(base + "index.html")
        assert page.title() == f"{len(fx.review)} open deals as of {fx.as_of:%Y-%m-%d}"
        assert page.locator("h1").inner_text() == page.title()
        rows = page.locator("table.pipeline tbody tr")
        assert rows.count() == len(fx.review)
        assert rows.nth(0).locator("td").nth(1).inner_text() == first
        assert page.locator("svg.chart").count() == 2 and page.locator("svg.chart").first.is_visible()
        page.screenshot(path=str(ARTIFACTS / "pipeline-index.png"))

        page.get_by_role("link", name=first, exact=True).click()
        page.wait_for_load_state()
        assert page.url == f"{base}deals/{slug}.html"
        assert page.locator("h1").inner_text() == first
        assert page.locator("[data-test=probability]").inner_text() == f"{deal.probability:.0%}"
        assert page.get_by_role("heading", name="Corrective action plan").is_visible()
        chart = page.locator("svg.chart")
        assert chart.count() == 1
        box = chart.bounding_box()
        assert box is not None and box["width"] > 400
        labels = chart.locator("text").all_text_contents()
        assert [t for t in labels if t in fx.template.milestone_names] == fx.template.milestone_names
        checklist = page.locator("ol.milestones > li")
        assert checklist.count() == len(fx.template.milestones)
        assert "in progress" in checklist.nth(deal.milestone_order - 1).inner_text()
        page.screenshot(path=str(ARTIFACTS / "deal-review.png"), full_page=True)

        page.get_by_role("link", name="← Pipeline review").click()
        page.wait_for_load_state()
        assert page.url == base + "index.html"
        assert seen == {"dialogs": [], "errors": [], "console": []}
        page.close()
    assert (ARTIFACTS / "deal-review.png").stat().st_size > 20_000


def test_a_hostile_history_runs_no_script_and_writes_only_inside_the_output_folder(
    browser: Browser, tmp_path: Path
) -> None:
    hx = hostile_review()
    passwd = Path("/etc/passwd").stat()
    out = tmp_path / "out"
    run = render_batch(hx.review, out, formats=("html", "md"), progress=False, workers=2)
    written = {p for p in tmp_path.rglob("*") if p.is_file()}
    assert written and all(p.is_relative_to(run.run_dir) for p in written)
    assert Path("/etc/passwd").stat().st_mtime == passwd.st_mtime
    assert run.reports[TRAVERSAL][0] == run.run_dir / "deals" / f"{slugify(TRAVERSAL)}.html"

    page = browser.new_page(viewport={"width": 1100, "height": 1300})
    seen = _watch(page)
    pages = [run.index] + [run.reports[cid][0] for cid in HOSTILE_IDS]
    for path in pages:
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        assert page.evaluate("window.__pwned") is None, path
        assert page.locator("script").count() == 0 and page.locator("img").count() == 0
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
        for href in hrefs:
            assert not href.startswith("javascript:")
            target = Path(re.sub(r"^file://", "", href))
            assert target.resolve().is_relative_to(run.run_dir), href
    # the payloads are on the page, as text
    page.goto(run.index.as_uri())
    for cid in HOSTILE_IDS:
        assert page.get_by_role("link", name=cid, exact=True).count() == 1
    assert OWNER in page.locator("table.pipeline").inner_text()
    page.goto(run.reports[SCRIPT][0].as_uri())
    assert page.locator("h1").inner_text() == SCRIPT
    assert ACTIVITY in page.locator("ol.milestones").inner_text()
    page.screenshot(path=str(ARTIFACTS / "hostile-deal-review.png"), full_page=True)
    # clicking every hostile link still lands inside the run folder, and still runs nothing
    page.goto(run.index.as_uri())
    for cid in HOSTILE_IDS:
        page.get_by_role("link", name=cid, exact=True).click()
        page.wait_for_load_state("load")
        assert Path(page.url.removeprefix("file://")).resolve().is_relative_to(run.run_dir)
        assert page.evaluate("window.__pwned") is None
        page.go_back()
    assert seen["dialogs"] == [] and seen["errors"] == []
    page.close()


def test_a_manager_reads_plain_sentences_and_the_analyst_opens_the_fold(browser: Browser, tmp_path: Path) -> None:
    fx = small_review()
    deal = fx.review[fx.review.case_ids[0]]
    path = tmp_path / "deal.html"
    render_report(deal, out=path)
    page = browser.new_page(viewport={"width": 1100, "height": 1300})
    seen = _watch(page)
    page.goto(path.as_uri())
    summary = page.locator("[data-test=summary]")
    assert summary.is_visible()
    said = summary.inner_text()
    first = deal.actions[0]
    assert f"Chance to win: {deal.chance_text}." in said
    assert f"Why: {deal.reasons[0].text}" in said
    assert f"Next: {first.what} ({first.owner}) by {first.by:%Y-%m-%d}." in said
    for f in deal.flags:
        assert page.locator("li", has_text=f.text).inner_text() == f"{f.label} {f.text}"
    # what a manager sees carries none of the analyst's words; the statistics are folded away
    fold = page.locator("details.analyst")
    assert fold.count() == 1 and fold.get_attribute("open") is None
    visible = page.locator("main").inner_text()
    for word in ("logistic", "Platt", "snapshots", "q=", "n=", "Wilson"):
        assert word not in visible, word
    method = fold.get_by_text("logistic regression", exact=False)
    assert not method.is_visible()
    page.screenshot(path=str(ARTIFACTS / "deal-review-plain.png"), full_page=True)

    fold.locator("summary", has_text="How this was worked out").click()
    assert fold.get_attribute("open") is not None and method.is_visible()
    stats = fold.inner_text()
    assert f"Probability {deal.probability:.1%}, 95% interval [{deal.probability_low:.1%}, {deal.probability_high:.1%}]" in stats
    assert f"n={fx.review.model.snapshots:,} snapshots" in stats and "Platt" in stats and "Wilson 95% interval" in stats
    for g in deal.gaps:
        assert g.evidence in stats
    page.screenshot(path=str(ARTIFACTS / "deal-review-analyst-fold.png"), full_page=True)
    assert seen == {"dialogs": [], "errors": [], "console": []}
    page.close()
