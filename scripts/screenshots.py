"""Make the README's screenshots: the pipeline index and a deal review of the sample deals.

    .venv/bin/python scripts/screenshots.py        # or: make screenshots

Renders the built-in sample deals' review (as ``salesproc demo`` does) into a temporary folder,
opens the pages in headless Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright; never
``playwright install``) and writes ``docs/img/pipeline-index.png`` and ``docs/img/deal-review.png``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

import salesproc
from salesproc.derive._derive import _default_as_of

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]


def main() -> None:
    history = salesproc.load_sample_deals()
    as_of = _default_as_of(history)
    template = salesproc.derive_template(history, as_of=as_of, name="Sample deals")
    review = salesproc.review_deals(history, template, as_of=as_of)
    # the deal in the screenshot: the most at-risk one with flags and a corrective action plan
    deal = next(c for c in review.case_ids if review[c].flags and len(review[c].actions) >= 2)
    with tempfile.TemporaryDirectory() as tmp:
        run = salesproc.render_batch(review, tmp, progress=False)
        OUT.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1100, "height": 1250}, device_scale_factor=1)
            page.goto(run.index.as_uri())
            page.screenshot(path=str(OUT / "pipeline-index.png"))
            page.goto(run.reports[deal][0].as_uri())
            page.screenshot(path=str(OUT / "deal-review.png"))
            browser.close()
    for name in ("pipeline-index.png", "deal-review.png"):
        print(f"wrote {(OUT / name).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
