"""Reports made from user templates and hostile data stay safe: a PDF reads no local file and calls
no server, a template that fails leaves nothing half-made, a run folder knows its own files, and a
dollar in a name is a dollar in every chart (issue 17)."""

from __future__ import annotations

import http.server
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from markupsafe import Markup
from render_data import Fixture, small_review

import salesproc
from salesproc._io import ORPHAN_AGE
from salesproc.errors import ReportTemplateError, UnsafeTemplateError
from salesproc.render import export_table, render_batch, render_report
from salesproc.render._charts import MilestoneBar, ReportCanvas, pipeline_chart
from salesproc.render._pdf import allowed_url, html_to_pdf
from salesproc.render._run import MANIFEST

SECRET = "TOP-SECRET-4f1c9a"


@pytest.fixture(scope="module")
def fx() -> Fixture:
    return small_review(400, seed=3)


@pytest.fixture()
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in an empty folder: no ./templates/ of the checkout is picked up."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


class _Server:
    """An HTTP server on 127.0.0.1 in a thread that records every request it gets."""

    def __init__(self) -> None:
        hits: list[str] = []
        self.hits = hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                body = b"body { color: red }" if self.path.endswith(".css") else SECRET.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()


@pytest.fixture()
def server() -> Iterator[_Server]:
    s = _Server()
    try:
        yield s
    finally:
        s.httpd.shutdown()
        s.httpd.server_close()


def _pdf_text(path: Path) -> str:
    assert shutil.which("pdftotext"), "poppler-utils is needed (.ci/run installs it)"
    return subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout


# --- 1. a PDF reads no local file and calls no server ---------------------------------------------------

REFERENCES = {
    "attached local file": '<a rel="attachment" href="file://{secret}">notes</a>',
    "local image": '<img src="file://{secret}">',
    "remote image": '<img src="{url}/pixel.png">',
    "remote stylesheet": '<link rel="stylesheet" href="{url}/style.css">',
    "imported stylesheet": '<style>@import url("{url}/import.css");</style>',
    "remote font": "<style>@font-face {{ font-family: x; src: url({url}/font.woff) }} p {{ font-family: x }}</style>",
    "attached remote file": '<a rel="attachment" href="{url}/attach.txt">attachment</a>',
    "css background": '<div style="background: url({url}/bg.png); height: 9px"></div>',
    "svg image": '<svg width="9" height="9"><image href="file://{secret}" width="9" height="9"/></svg>',
    "both": '<a rel="attachment" href="file://{secret}">a</a><img src="{url}/both.png">',
}


@pytest.mark.parametrize("kind", list(REFERENCES))
def test_a_pdf_from_a_user_template_reads_no_local_file_and_calls_no_server(
    fx: Fixture, in_tmp: Path, server: _Server, kind: str
) -> None:
    secret = in_tmp / "secret.txt"
    secret.write_text(SECRET)
    (in_tmp / "templates").mkdir()
    tpl = in_tmp / "templates" / "leaky.html.j2"
    tpl.write_text("<html><body><h1>{{ report.title }}</h1>\n"
                   + REFERENCES[kind].format(secret=secret, url=server.url) + "\n</body></html>")
    out = in_tmp / "leaky.pdf"
    with pytest.raises(UnsafeTemplateError, match=rf"{re.escape(str(tpl))}: the PDF would read '(file|http)://.*"
                       r"expected only inline content.*Nothing was written\. Fix: remove that reference from the "
                       r"template, or inline the resource as a data: URL"):
        render_report(fx.template, template="leaky", format="pdf", out=out)
    time.sleep(0.05)  # a request in flight would have arrived by now
    assert server.hits == []
    assert not out.exists() and sorted(p.name for p in in_tmp.iterdir()) == ["secret.txt", "templates"]


def test_a_pdf_batch_with_a_leaky_template_writes_nothing(fx: Fixture, in_tmp: Path, server: _Server) -> None:
    (in_tmp / "templates").mkdir()
    (in_tmp / "templates" / "deal_review.html.j2").write_text(
        f'{{% extends "deal_review.html.j2" %}}{{% block heading %}}<img src="{server.url}/logo.png">'
        "{{ deal.case_id }}{% endblock %}")
    with pytest.raises(UnsafeTemplateError, match=r"deal_review\.html\.j2: the PDF would read 'http://127\.0\.0\.1"):
        render_batch(fx.review, in_tmp / "out", formats=("pdf",), progress=False, workers=1)
    assert server.hits == [] and list((in_tmp / "out").iterdir()) == []


def test_inline_content_still_makes_a_pdf(fx: Fixture, in_tmp: Path) -> None:
    pixel = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
             "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
    (in_tmp / "templates").mkdir()
    (in_tmp / "templates" / "logo.html.j2").write_text(
        f'<html><body><img src="{pixel}" width="20"><h1>{{{{ report.title }}}}</h1>'
        '<a href="deals/x.html">a link is not fetched</a></body></html>')
    out = in_tmp / "logo.pdf"
    render_report(fx.template, template="logo", format="pdf", out=out)
    text = _pdf_text(out)
    assert fx.template.name in text and "a link is not fetched" in text
    assert render_report(fx.template, format="pdf")[:5] == b"%PDF-"  # the built-in templates need no URL


def test_only_data_urls_and_the_packages_own_files_may_be_read(tmp_path: Path) -> None:
    from salesproc.render._env import builtin_dir

    own = builtin_dir()
    assert own is not None
    assert allowed_url("data:text/plain,hi") and allowed_url((own / "base.html.j2").as_uri())
    for url in ((own / ".." / ".." / "pyproject.toml").as_uri(), "file:///etc/passwd", "file://host/share/x",
                "http://127.0.0.1/x", "https://example.com/x", "ftp://example.com/x", "//example.com/x"):
        assert not allowed_url(url), url
    with pytest.raises(UnsafeTemplateError, match=r"report\.html\.j2: the PDF would read 'file:///etc/passwd'"):
        html_to_pdf('<img src="file:///etc/passwd">', source="report.html.j2")


# --- 2. a template that fails names its file and line, and leaves nothing half-made ----------------------


def test_a_template_that_raises_names_its_file_and_line(fx: Fixture, in_tmp: Path) -> None:
    (in_tmp / "templates").mkdir()
    boom = in_tmp / "templates" / "boom.md.j2"
    boom.write_text("# {{ report.title }}\n\nshare: {{ 1/0 }}\n")
    with pytest.raises(ReportTemplateError, match=rf"{re.escape(str(boom))}, line 3: the template failed while "
                       r"rendering: ZeroDivisionError: division by zero\. .*Fix: correct or remove that expression"):
        render_report(fx.template, template="boom", format="md", out=in_tmp / "boom.md")
    assert not (in_tmp / "boom.md").exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_batch_whose_template_raises_leaves_no_run_folder(fx: Fixture, in_tmp: Path, workers: int) -> None:
    if workers > 1:  # enough open deals for two worker processes (one per 50 deals)
        fx = small_review(1000, seed=7)
        assert len(fx.review) > 50
    (in_tmp / "bad").mkdir()
    tpl = in_tmp / "bad" / "deal_review.md.j2"
    tpl.write_text("{{ deal.case_id }}\n{{ deal.probability / 0 }}\n")
    with pytest.raises(ReportTemplateError, match=rf"{re.escape(str(tpl))}, line 2: .*ZeroDivisionError"):
        render_batch(fx.review, in_tmp / "out", formats=("html", "md"), progress=False, workers=workers,
                     template_dir=in_tmp / "bad")
    assert list((in_tmp / "out").iterdir()) == []
    # an existing run folder that is re-rendered with overwrite is left as it was
    run = render_batch(fx.review, in_tmp / "out", formats=("html", "md"), progress=False, workers=1)
    before = {p: p.read_bytes() for p in run.run_dir.rglob("*") if p.is_file()}
    with pytest.raises(ReportTemplateError, match="ZeroDivisionError"):
        render_batch(fx.review, in_tmp / "out", formats=("html", "md"), progress=False, workers=workers,
                     overwrite=True, template_dir=in_tmp / "bad")
    assert {p: p.read_bytes() for p in run.run_dir.rglob("*") if p.is_file()} == before
    assert [p.name for p in (in_tmp / "out").iterdir()] == [run.run_dir.name]


def test_the_review_command_with_a_failing_template_says_where_and_leaves_no_run_folder(
    fx: Fixture, in_tmp: Path
) -> None:
    from salesproc.cli import main

    fx.history.to_parquet(in_tmp / "history")
    salesproc.save_template(fx.template, in_tmp / "process.yaml")
    (in_tmp / "mine").mkdir()
    (in_tmp / "mine" / "deal_review.html.j2").write_text("<p>{{ deal.case_id }}</p>\n<p>{{ 1/0 }}</p>\n")
    r = CliRunner().invoke(main, ["review", "-t", "process.yaml", "--history", "history", "--as-of",
                                  fx.as_of.isoformat(), "-o", "out", "--report-templates", "mine", "--no-progress",
                                  "--workers", "1"])
    assert r.exit_code != 0, r.output
    assert "deal_review.html.j2, line 2: the template failed while rendering: ZeroDivisionError" in r.output
    assert not any(p.is_dir() for p in (in_tmp / "out").iterdir())


def test_a_user_template_can_extend_the_builtin_of_the_same_name(fx: Fixture, in_tmp: Path) -> None:
    d = fx.review[fx.review.case_ids[0]]
    builtin = render_report(d, process=fx.template)
    (in_tmp / "templates").mkdir()
    (in_tmp / "templates" / "deal_review.html.j2").write_text(
        '{% extends "deal_review.html.j2" %}{% block kicker %}OUR DEAL DESK{% endblock %}')
    html = render_report(d, process=fx.template)
    assert '<div class="kicker">OUR DEAL DESK</div>' in html
    assert html.replace("OUR DEAL DESK", "") == re.sub(r'(<div class="kicker">).*?(</div>)', r"\1\2", builtin, count=1)
    # the explicit name works too, and for Markdown
    (in_tmp / "templates" / "deal_review.md.j2").write_text(
        '{% extends "builtin/deal_review.md.j2" %}{% block footer %}OUR FOOTER{% endblock %}')
    md = render_report(d, process=fx.template, format="md")
    assert md.rstrip().endswith("OUR FOOTER") and f"# {d.case_id}" in md
    # a real circle is an error, not a RecursionError
    (in_tmp / "templates" / "a.md.j2").write_text('{% extends "b.md.j2" %}')
    (in_tmp / "templates" / "b.md.j2").write_text('{% extends "a.md.j2" %}')
    with pytest.raises(ReportTemplateError, match=r"a\.md\.j2: the template extends, includes or imports itself.*"
                       r'\{% extends "builtin/<name>" %\}.*Fix: break the circle'):
        render_report(fx.template, template="a", format="md")


# --- 5. a run folder knows its own files -------------------------------------------------------------


def test_rerendering_with_overwrite_removes_reports_of_deals_no_longer_open(fx: Fixture, in_tmp: Path) -> None:
    first = render_batch(fx.review, in_tmp, formats=("html", "md"), progress=False, workers=1)
    gone = fx.review.case_ids[:3]
    keep = ~fx.history.cases["case_id"].astype(str).isin(gone).to_numpy()
    fewer = salesproc.review_deals(fx.history.select(keep), fx.template, as_of=fx.as_of)
    assert set(fewer.case_ids) == set(fx.review.case_ids) - set(gone)
    (first.run_dir / "notes.txt").write_text("mine")
    (first.run_dir / "deals" / "my-notes.md").write_text("mine too")  # named like a report, not the run's
    again = render_batch(fewer, in_tmp, formats=("html",), progress=False, workers=1, overwrite=True)
    assert again.run_dir == first.run_dir
    on_disk = {p.relative_to(again.run_dir).as_posix() for p in again.run_dir.rglob("*") if p.is_file()}
    written = {p.relative_to(again.run_dir).as_posix() for p in again.files}
    assert on_disk == written | {"notes.txt", "deals/my-notes.md"}
    assert not any(p.suffix == ".md" and p.name != "my-notes.md" for p in (again.run_dir / "deals").iterdir())
    assert not (again.run_dir / "index.md").exists()
    assert set(again.files) == {again.run_dir / p for p in written} and again.run_dir / MANIFEST in again.files


def test_a_run_sweeps_what_a_killed_run_left(fx: Fixture, in_tmp: Path) -> None:
    run = render_batch(fx.review, in_tmp, progress=False, workers=1)
    stale = [in_tmp / f".{run.run_dir.name}.k2x9_q0a.tmp", run.run_dir / "deals" / ".x.html.abcdefgh.tmp",
             run.run_dir / ".index.html.zzzz1111.tmp"]
    stale[0].mkdir()
    (stale[0] / "deals").mkdir()
    (stale[0] / "deals" / "half.html").write_text("<p>")
    for p in stale[1:]:
        p.write_text("<p>")
    fresh = run.run_dir / "deals" / ".y.html.abcdefgh.tmp"
    fresh.write_text("<p>")
    old = time.time() - 2 * ORPHAN_AGE
    for p in [stale[0] / "deals", *stale]:
        os.utime(p, (old, old))
    render_batch(fx.review, in_tmp, progress=False, workers=1, overwrite=True)
    assert [p for p in stale if p.exists()] == [] and fresh.exists()


def test_export_table_takes_a_review_as_its_table(fx: Fixture, in_tmp: Path) -> None:
    a = export_table(fx.review, in_tmp / "review.csv")
    b = export_table(fx.review.to_frame(), in_tmp / "frame.csv")
    assert a.read_bytes() == b.read_bytes()
    assert len(pd.read_csv(a)) == len(fx.review)
    with pytest.raises(TypeError, match=r"'df' parameter of export_table must be a DataFrame or a result with a "
                                        r"to_frame\(\) table \(a Review, a Plan\)\. Got list instead"):
        export_table([1, 2], in_tmp / "x.csv")  # type: ignore[arg-type]


# --- 4. a dollar in a name is a dollar in the report charts ---------------------------------------------

DOLLARS = {"Qualify": "$100k deal", "Discovery": "a$b$c", "Solution": "50% $ off", "Proposal": r"Q$\x$ deal"}


def test_report_charts_draw_dollar_names_as_written() -> None:
    h, truth = salesproc.synthetic_history(300, seed=11)
    h = h.rename_events(DOLLARS)
    t = salesproc.derive_template(h, as_of=truth.as_of)
    review = salesproc.review_deals(h, t, as_of=truth.as_of)
    charts = pipeline_chart(review)
    for name in DOLLARS.values():
        assert f">{Markup.escape(name)}</text>" in charts["ageing"], name
    bars = [MilestoneBar(n, 5.0, 9.0, actual=3.0, state="done") for n in DOLLARS.values()]
    svg = ReportCanvas().milestone_chart(bars)
    for name in DOLLARS.values():
        assert f">{Markup.escape(name)}</text>" in svg, name
    html = render_report(review)
    assert all(str(Markup.escape(n)) in html for n in DOLLARS.values())
