"""The rendering layer: filters, template search path and sandbox, every report in HTML, Markdown
and PDF, batch runs, output safety and spreadsheet exports."""

from __future__ import annotations

import csv
import importlib.abc
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from markupsafe import Markup
from render_data import (
    ACTIVITY,
    HOSTILE_IDS,
    MILESTONE,
    OWNER,
    SCRIPT,
    TRAVERSAL,
    Fixture,
    hostile_review,
    small_plan,
    small_review,
)

from salesproc.errors import (
    MissingDependencyError,
    OverwriteError,
    ReportTemplateError,
    SalesprocError,
    UnsafePathError,
    UnsafeTemplateError,
)
from salesproc.render import export_table, render_batch, render_report
from salesproc.render._env import (
    BUILTIN_TEMPLATES,
    builtin_dir,
    f_date,
    f_days,
    f_duration,
    f_money,
    f_pct,
    f_pct_ci,
    md_escape,
)
from salesproc.render._paths import confine, new_run_dir, slugify, unique_slugs
from salesproc.template import Rate

ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.fixture(scope="module")
def fx() -> Fixture:
    return small_review()


@pytest.fixture(scope="module")
def hostile() -> Fixture:
    return hostile_review()


@pytest.fixture()
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in an empty folder: no ./templates/ of the checkout is picked up."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


# --- filters ------------------------------------------------------------------------------------


def test_filters_format_dates_days_percentages_intervals_and_money() -> None:
    assert f_date(pd.Timestamp("2024-03-05 23:30", tz="UTC")) == "2024-03-05"
    assert f_date("2024-03-05T14:00:00+00:00") == "2024-03-05"
    assert f_date(pd.NaT) == f_date(None) == f_date(float("nan")) == "—"
    assert f_date(pd.Timestamp("2024-03-05"), "%d %b %Y") == "05 Mar 2024"
    assert (f_days(1), f_days(0.6), f_days(12.4), f_days(3.46, 1)) == ("1 day", "1 day", "12 days", "3.5 days")
    assert (f_duration(0.5), f_duration(13.6), f_duration(14), f_duration(56.8), f_duration(109.8)) == (
        "under a day", "14 days", "2 weeks", "8 weeks", "3.6 months")
    assert (f_pct(0.4237), f_pct(0.4237, 1), f_pct(-0.14, signed=True), f_pct(None)) == ("42%", "42.4%", "-14%", "—")
    rate = Rate(k=475, n=1338, rate=0.355, low=0.3298, high=0.381)
    assert f_pct_ci(rate) == f_pct_ci({"rate": 0.355, "low": 0.3298, "high": 0.381}) == "36% [33–38%]"
    assert f_pct_ci(0.1814, 0.1116, 0.2487, signed=True) == "+18% [+11%, +25%]"
    assert f_pct_ci(-0.1414, (-0.2235, -0.0607)) == "-14% [-22%, -6%]"
    assert f_pct_ci(0.5) == "50%" and f_pct_ci(None, 0.1, 0.2) == "—"
    assert (f_money(1234567.8), f_money(-950, "$"), f_money(2_345_000, "€", compact=True), f_money(None)) == (
        "1,234,568", "-$950", "€2.3M", "—")
    assert f_money(12, "<b>") == "&lt;b&gt;12"  # a currency string is text, not markup
    assert all(isinstance(f(0.5), Markup) for f in (f_days, f_duration, f_pct, f_pct_ci, f_money))


def test_markdown_escape_leaves_no_link_html_emphasis_or_table_break() -> None:
    text = "<script>x</script> *bold* _it_ [a](javascript:x) `code` a|b ~s~ \\"
    out = md_escape(text)
    assert out == r"\<script\>x\</script\> \*bold\* \_it\_ \[a\](javascript:x) \`code\` a\|b \~s\~ \\"
    assert md_escape("# heading\nsecond\r\nthird") == r"\# heading second third"
    assert md_escape("- item") == r"\- item" and md_escape("0.1.0 and 3. x") == "0.1.0 and 3. x"
    assert md_escape(None) == "" and md_escape(Markup("**kept**")) == "**kept**"


# --- the template search path and the sandbox ---------------------------------------------------


def test_builtin_templates_live_in_the_repository_templates_folder() -> None:
    root = Path(__file__).resolve().parents[1] / "templates" / "reports"
    assert builtin_dir() == root
    for name in BUILTIN_TEMPLATES:
        for flavour in ("html", "md"):
            assert (root / f"{name}.{flavour}.j2").is_file()
    assert (root / "base.html.j2").is_file() and (root / "base.md.j2").is_file()


def test_the_working_directory_templates_folder_overrides_a_builtin_template(fx: Fixture, in_tmp: Path) -> None:
    (in_tmp / "templates").mkdir()
    (in_tmp / "templates" / "checklist.md.j2").write_text(
        '{% extends "base.md.j2" %}{% block content %}OUR CHECKLIST: '
        '{{ checklist|map(attribute="name")|join(" > ") }}{% endblock %}'
    )
    md = render_report(fx.template, template="checklist", format="md")
    assert "OUR CHECKLIST: " + " > ".join(fx.template.milestone_names) in md
    assert md.startswith(f"# {fx.template.name} v1")  # the built-in base layout still applies
    # other reports still come from the built-in templates
    assert "## Milestones" in render_report(fx.template, format="md")


def test_a_template_folder_or_file_can_be_given(fx: Fixture, in_tmp: Path) -> None:
    folder = in_tmp / "team"
    folder.mkdir()
    (folder / "short.md.j2").write_text("{{ report.title }}: {{ process.milestones|length }} milestones")
    assert render_report(fx.template, template="short", format="md", template_dir=folder) == (
        f"{fx.template.name} v1: {len(fx.template.milestones)} milestones")
    one = in_tmp / "one.html.j2"
    one.write_text("<p>{{ deal.case_id }} {{ deal.probability|pct }}</p>")
    d = fx.review[fx.review.case_ids[0]]
    assert render_report(d, template=one) == f"<p>{d.case_id} {d.probability:.0%}</p>"
    with pytest.raises(ReportTemplateError, match="no such template folder"):
        render_report(fx.template, template_dir=in_tmp / "missing")
    with pytest.raises(ReportTemplateError, match="no such template file"):
        render_report(fx.template, template=in_tmp / "missing.html.j2")


@pytest.mark.parametrize(
    "expression",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ report.__class__ }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
        "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    ],
)
def test_user_templates_cannot_escape_the_sandbox(fx: Fixture, in_tmp: Path, expression: str) -> None:
    (in_tmp / "templates").mkdir()
    (in_tmp / "templates" / "evil.html.j2").write_text(f"<p>{expression}</p>")
    with pytest.raises(UnsafeTemplateError, match=r"evil.html.j2: the template tried something the sandbox forbids") as e:
        render_report(fx.template, template="evil")
    assert isinstance(e.value, ReportTemplateError) and isinstance(e.value, SalesprocError)


def test_template_errors_say_what_and_where(fx: Fixture, in_tmp: Path) -> None:
    with pytest.raises(ReportTemplateError, match=r"no report template 'nope.html.j2' \(searched .*templates/reports\)"):
        render_report(fx.template, template="nope")
    (in_tmp / "templates").mkdir()
    (in_tmp / "templates" / "bad.md.j2").write_text("first line\n{% if %}\n")
    with pytest.raises(ReportTemplateError, match=r"bad.md.j2, line 2: template syntax error"):
        render_report(fx.template, template="bad", format="md")
    (in_tmp / "templates" / "typo.md.j2").write_text("{{ proces.name }}")
    with pytest.raises(ReportTemplateError, match=r"typo.md.j2: 'proces' is undefined\. The report's data has: "
                                                  r"charts, links, process, report, version, words"):
        render_report(fx.template, template="typo", format="md")
    (in_tmp / "templates" / "missing_base.md.j2").write_text('{% extends "nothere.md.j2" %}')
    with pytest.raises(ReportTemplateError, match=r"no report template 'nothere\.md\.j2'"):
        render_report(fx.template, template="missing_base", format="md")


# --- each report ----------------------------------------------------------------------------------


def test_our_process_on_one_page(fx: Fixture, in_tmp: Path) -> None:
    t = fx.template
    html = render_report(t)
    md = render_report(t, format="md")
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "Content-Security-Policy" in html and "<script" not in html
    assert html.count("<svg") == 1 and 'role="img"' in html  # the durations chart, inline
    for m in t.milestones:
        assert f"<b>{m.name}</b>" in html
        assert f"| **{m.name}** | {m.owner_role} | {m.p50_days:.0f} days | {m.p80_days:.0f} days |" in md
    for a in t.critical_activities:
        ev = a.evidence
        effect = f"{ev.risk_difference:+.0%} [{ev.ci[0]:+.0%}, {ev.ci[1]:+.0%}]"
        assert effect in html and effect in md
    for a in t.warnings:
        assert a.name in html and a.name in md
    assert t.provenance.data_fingerprint in html and t.provenance.data_fingerprint in md
    ct = t.cycle_time
    assert ct is not None and "Time to a win" in html


def test_the_milestone_checklist_of_a_template(fx: Fixture, in_tmp: Path) -> None:
    t = fx.template
    md = render_report(t, template="checklist", format="md")
    heads = [line for line in md.splitlines() if line.startswith("## ")]
    assert heads == [*(f"## {i}. {name}" for i, name in enumerate(t.milestone_names, start=1)), "## For the analyst"]
    for a in t.critical_activities:
        assert any(line.startswith(f"- [ ] {a.name} ({a.requirement})") and f"reaching {a.milestone}" in line
                   for line in md.splitlines())
    for a in t.warnings:
        assert f"- [ ] Avoid: {a.name}" in md
    html = render_report(t, template="checklist")
    assert html.count('<span class="box" aria-label="to do">☐</span>') == md.count("- [ ] ")


def test_the_milestone_checklist_of_one_deal_ticks_what_it_has_done(fx: Fixture, in_tmp: Path) -> None:
    # a deal that has reached a later milestone and has gaps
    d = next(fx.review[c] for c in fx.review.case_ids if fx.review[c].milestone_order >= 3 and fx.review[c].gaps)
    md = render_report(d, template="checklist", format="md")
    lines = md.splitlines()
    reached = dict(d.reached)
    for i, name in enumerate(fx.template.milestone_names, start=1):
        head = next(line for line in lines if line.startswith(f"## {i}. {name}"))
        if i == d.milestone_order:
            assert head.endswith("(in progress)")
        elif i < d.milestone_order:
            assert head.endswith(f"(reached {reached[name]:%Y-%m-%d})" if name in reached else "(skipped)")
        else:
            assert head == f"## {i}. {name}"
    for g in d.gaps:
        assert any(line.startswith(f"- [ ] {g.activity} (") and f"**{g.status}**" in line for line in lines)
    done = dict(d.done)
    for a in fx.template.critical_activities:
        if a.name in done:
            assert any(line.startswith(f"- [x] {a.name} (") and f"done {done[a.name]:%Y-%m-%d}" in line for line in lines)


def test_a_deal_review(fx: Fixture, in_tmp: Path) -> None:
    d = next(fx.review[c] for c in fx.review.case_ids if fx.review[c].flags and fx.review[c].actions)
    html = render_report(d)
    md = render_report(d, format="md")
    assert f"<h1>{d.case_id}</h1>" in html and md.startswith(f"# {d.case_id}\n")
    assert f'data-test="probability">{d.probability:.0%}<' in html
    assert f"{d.probability:.0%} (likely between {d.probability_low:.0%} and {d.probability_high:.0%})" in md
    for f in d.flags:  # the flag in plain words on the page, with its numbers in the analyst's fold
        assert f"<span class=\"badge high\">{f.label}</span> {Markup.escape(f.text)}</li>" in html
        assert str(Markup.escape(f.reason)) in html.split('<details class="analyst"')[1]
    for a in d.actions:
        assert a.what in md and f"by {a.by:%Y-%m-%d}" in md
    for g in d.gaps:
        assert str(Markup.escape(g.activity)) in html
    # the chart: the template's milestones, this deal's current one in bold, its days in it
    svg = re.search(r"<svg.*?</svg>", html, re.S)
    assert svg is not None
    for name in fx.template.milestone_names:
        assert f">{name}</text>" in svg.group(0)
    assert f'font-weight="bold" fill="#222222">{d.milestone}</text>' in svg.group(0)
    assert f">{d.days_in_milestone:.0f} d (usually {d.milestone_p50:.0f})</text>" in svg.group(0)


def test_a_deal_review_needs_its_template(fx: Fixture, in_tmp: Path) -> None:
    d = fx.review[fx.review.case_ids[0]]
    bare = replace(d, template=None)
    with pytest.raises(TypeError, match=r"render_report\(review\[case_id\], process=review.template\)"):
        render_report(bare)
    assert render_report(bare, process=fx.template, format="md") == render_report(d, format="md")


def test_the_pipeline_review_lists_every_open_deal_most_at_risk_first(fx: Fixture, in_tmp: Path) -> None:
    md = render_report(fx.review, format="md")
    rows = [line for line in md.splitlines() if re.match(r"\| \d+ \| ", line)]
    assert [r.split(" | ")[1] for r in rows] == fx.review.case_ids
    html = render_report(fx.review)
    assert html.count("<tr><td class=\"num\">") == len(fx.review)
    assert html.count("<svg") == 2  # stage ageing, risk against amount
    s = fx.review.summary()
    assert f"**Open deals:** {s['open_deals']:,} ({s['flagged']:,} flagged)" in md


def test_a_close_plan(fx: Fixture, in_tmp: Path) -> None:
    p = small_plan(fx)
    md = render_report(p, format="md")
    html = render_report(p)
    assert md.startswith(f"# Plan: Order form signed ({p.case_id})")
    assert "| Seller owner | Dana (AE) |" in md and "| Buyer owner | Sam (CFO) |" in md
    assert p.message in html and f"{p.probability:.0%}" in html
    for it in p.items:
        mark = "[x]" if it.done else "[ ]"
        assert any(line.startswith(f"- {mark} ") and it.name in line for line in md.splitlines())
    assert "<svg" in html  # the Gantt chart
    assert p.to_markdown() == md and p.to_html() == html  # Plan's own exports are these reports


def test_inputs_are_left_unchanged(fx: Fixture, in_tmp: Path) -> None:
    t_before = fx.template.model_dump()
    frame_before = fx.review.to_frame()
    d = fx.review[fx.review.case_ids[1]]
    d_copy = replace(d)
    for obj in (fx.template, fx.review, d):
        render_report(obj)
        render_report(obj, format="md")
    assert fx.template.model_dump() == t_before
    pd.testing.assert_frame_equal(fx.review.to_frame(), frame_before)
    assert d == d_copy


def test_reports_are_written_atomically_and_never_silently_replaced(fx: Fixture, in_tmp: Path) -> None:
    out = in_tmp / "out" / "process.md"
    text = render_report(fx.template, format="md", out=out)
    assert out.read_text(encoding="utf-8") == text
    with pytest.raises(OverwriteError, match="exists"):
        render_report(fx.template, format="md", out=out)
    render_report(fx.template, template="checklist", format="md", out=out, overwrite=True)
    assert out.read_text(encoding="utf-8").splitlines()[1].startswith("_What to have done")
    assert sorted(p.name for p in out.parent.iterdir()) == ["process.md"]  # no temporary files left


def test_bad_objects_and_formats_are_refused(fx: Fixture) -> None:
    with pytest.raises(TypeError, match=r"must be a ProcessTemplate, a Plan, a Review or a DealReview\. Got DataFrame"):
        render_report(fx.review.to_frame())
    with pytest.raises(ValueError, match=r"'format' parameter of render_report must be one of \['html', 'md', 'pdf'\]"):
        render_report(fx.template, format="docx")  # type: ignore[arg-type]


# --- PDF ------------------------------------------------------------------------------------------


def test_a_pdf_deal_review_is_a_real_pdf(fx: Fixture, in_tmp: Path) -> None:
    d = next(fx.review[c] for c in fx.review.case_ids if fx.review[c].actions)
    out = in_tmp / "deal.pdf"
    data = render_report(d, format="pdf", out=out)
    assert isinstance(data, bytes) and data.startswith(b"%PDF-") and out.read_bytes() == data
    assert shutil.which("pdftotext") and shutil.which("pdftoppm"), "poppler-utils is needed (.ci/run installs it)"
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], check=True, capture_output=True, text=True).stdout
    assert d.case_id in text and "Corrective action plan" in text and "Milestone checklist" in text
    assert d.actions[0].what in " ".join(text.split())
    assert all(name in text for name in fx.template.milestone_names)  # the chart's labels made it into the PDF
    ARTIFACTS.mkdir(exist_ok=True)
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(out), str(ARTIFACTS / "deal-review-pdf")],
                   check=True)
    assert (ARTIFACTS / "deal-review-pdf-1.png").stat().st_size > 5_000


def test_pdf_without_weasyprint_says_what_to_install(fx: Fixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # import fails as if not installed
    with pytest.raises(MissingDependencyError, match=r"needs WeasyPrint, which is not installed .*Fix: pip install "
                                                     r"'salesproc\[pdf\]' .*apt-get install libpango-1.0-0 libpangoft2-1.0-0"):
        render_report(fx.template, format="pdf")


class _NoPango(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):  # type: ignore[no-untyped-def]
        if name == "weasyprint":
            raise OSError("cannot load library 'libpango-1.0-0': libpango-1.0-0: cannot open shared object file")
        return None


def test_pdf_without_pango_names_the_system_libraries(fx: Fixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "weasyprint", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_NoPango(), *sys.meta_path])
    with pytest.raises(MissingDependencyError, match=r"system libraries, which are missing \(cannot load library "
                                                     r"'libpango-1.0-0'.*apt-get install libpango-1.0-0 libpangoft2-1.0-0"):
        render_report(fx.template, format="pdf")
    with pytest.raises(MissingDependencyError):  # a batch fails before writing anything
        render_batch(fx.review, Path("unused-never-created"), formats=("pdf",), progress=False)
    assert not Path("unused-never-created").exists()


def test_a_pdf_batch_writes_one_pdf_per_deal_and_links_them(in_tmp: Path) -> None:
    few = small_review(60, 7)  # a handful of open deals: PDFs take a while each
    run = render_batch(few.review, in_tmp, formats=("pdf",), progress=False, workers=2)
    pdfs = sorted((run.run_dir / "deals").glob("*.pdf"))
    assert len(pdfs) == len(few.review) > 0 and all(p.read_bytes().startswith(b"%PDF-") for p in pdfs)
    index = run.index.read_text(encoding="utf-8")
    assert all(f'href="deals/{p.name}"' in index for p in pdfs)


# --- batches ----------------------------------------------------------------------------------------


def test_a_batch_writes_one_report_per_open_deal_and_an_index_that_links_them(fx: Fixture, in_tmp: Path) -> None:
    run = render_batch(fx.review, in_tmp / "reports", formats=("html", "md"), progress=False, workers=1)
    assert run.run_dir == in_tmp / "reports" / f"review-{fx.as_of:%Y-%m-%d}"
    assert list(run.reports) == fx.review.case_ids
    deals = sorted((run.run_dir / "deals").iterdir())
    assert len(deals) == 2 * len(fx.review)
    index = run.index.read_text(encoding="utf-8")
    index_md = (run.run_dir / "index.md").read_text(encoding="utf-8")
    slugs = unique_slugs(fx.review.case_ids)
    for cid, slug in zip(fx.review.case_ids, slugs):
        assert f'<a href="deals/{slug}.html">{cid}</a>' in index
        assert f"[{cid}](deals/{slug}.md)" in index_md
        page = (run.run_dir / "deals" / f"{slug}.html").read_text(encoding="utf-8")
        assert f"<h1>{cid}</h1>" in page and '<a href="../index.html">' in page and "<svg" in page
    assert set(run.files) == _files(run.run_dir)


def test_batch_runs_go_to_new_dated_folders_unless_told_to_overwrite(fx: Fixture, in_tmp: Path) -> None:
    first = render_batch(fx.review, in_tmp, progress=False, workers=1)
    second = render_batch(fx.review, in_tmp, progress=False, workers=1)
    stem = f"review-{fx.as_of:%Y-%m-%d}"
    assert (first.run_dir.name, second.run_dir.name) == (stem, f"{stem}-2")
    marker = first.run_dir / "notes.txt"
    marker.write_text("kept")
    again = render_batch(fx.review, in_tmp, progress=False, workers=1, overwrite=True)
    assert again.run_dir == first.run_dir and marker.read_text() == "kept"
    assert sorted(p.name for p in in_tmp.iterdir()) == [stem, f"{stem}-2"]


def test_two_workers_write_the_same_reports_as_one(fx: Fixture, in_tmp: Path) -> None:
    one = render_batch(fx.review, in_tmp / "a", progress=False, workers=1)
    two = render_batch(fx.review, in_tmp / "b", progress=False, workers=2)
    assert two.workers == 2
    for cid in fx.review.case_ids:
        assert one.reports[cid][0].read_bytes() == two.reports[cid][0].read_bytes()
    assert one.index.read_bytes() == two.index.read_bytes()


def test_the_progress_bar_shows_unless_switched_off(fx: Fixture, in_tmp: Path, capsys: pytest.CaptureFixture) -> None:
    render_batch(fx.review, in_tmp / "quiet", progress=False, workers=1)
    assert capsys.readouterr().err == ""
    render_batch(fx.review, in_tmp / "loud", progress=True, workers=1)
    err = capsys.readouterr().err
    assert "deal reports: 100%" in err and f"{len(fx.review)}/{len(fx.review)}" in err


def test_hostile_names_stay_text_and_inside_the_output_folder(hostile: Fixture, in_tmp: Path) -> None:
    out = in_tmp / "out"
    run = render_batch(hostile.review, out, formats=("html", "md"), progress=False, workers=2)
    # nothing outside the run folder; the traversal id became a plain slug inside it
    assert _files(in_tmp) == _files(run.run_dir)
    assert (run.run_dir / "deals" / f"{slugify(TRAVERSAL)}.html").is_file() and slugify(TRAVERSAL) == "etc-passwd"
    names = [p.name for p in (run.run_dir / "deals").iterdir()]
    assert all(re.fullmatch(r"[a-z0-9-]+\.(html|md)", n) for n in names)
    for cid in HOSTILE_IDS:
        html = run.reports[cid][0].read_text(encoding="utf-8")
        md = run.reports[cid][1].read_text(encoding="utf-8")
        assert "<script" not in html and "<img" not in html
        assert not any(h.startswith("javascript:") for h in re.findall(r'href="([^"]*)"', html))
        assert f"<h1>{Markup.escape(cid)}</h1>" in html
        # Markdown: every "<" and "](" that came from the data is backslash-escaped
        assert re.search(r"(?<!\\)<", md) is None and re.search(r"(?<!\\)\]\(javascript:", md) is None
    index = run.index.read_text(encoding="utf-8")
    assert "<script" not in index and "<img" not in index
    assert str(Markup.escape(OWNER)) in index and str(Markup.escape(SCRIPT)) in index
    # a "$" in a milestone name is a dollar in every chart, never mathtext
    charts = re.findall(r"<svg.*?</svg>", index, re.S)
    assert len(charts) == 2 and all(str(Markup.escape(MILESTONE)) in c for c in charts[:1])
    deal_chart = re.search(r"<svg.*?</svg>", run.reports[SCRIPT][0].read_text(encoding="utf-8"), re.S)
    assert deal_chart is not None and f">{Markup.escape(MILESTONE)}</text>" in deal_chart.group(0)
    deal_md = run.reports[SCRIPT][1].read_text(encoding="utf-8")
    assert md_escape(ACTIVITY) in deal_md and md_escape(SCRIPT) in deal_md


def test_paths_cannot_leave_the_output_folder(tmp_path: Path) -> None:
    root = tmp_path / "out"
    root.mkdir()
    assert confine(root, "deals/a.html") == root.resolve() / "deals" / "a.html"
    for bad in ("../x.html", "deals/../../x.html", "/etc/passwd"):
        with pytest.raises(UnsafePathError, match="would be written outside the output folder"):
            confine(root, bad)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (root / "deals").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="resolves to"):
        confine(root, "deals/a.html")
    assert [slugify(s) for s in ("Café Noir / EMEA", "..", "CON", "a" * 100)] == [
        "cafe-noir-emea", slugify(".."), slugify("CON"), "a" * 60]
    assert re.fullmatch(r"x-[0-9a-f]{8}", slugify("..")) and re.fullmatch(r"con-[0-9a-f]{8}", slugify("CON"))
    assert new_run_dir(root, "review-2024-01-01").name == "review-2024-01-01"


def test_a_planted_symlink_cannot_redirect_an_overwriting_batch(fx: Fixture, in_tmp: Path) -> None:
    run = new_run_dir(in_tmp / "out", f"review-{fx.as_of:%Y-%m-%d}")
    outside = in_tmp / "outside"
    outside.mkdir()
    (run / "deals").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError):
        render_batch(fx.review, in_tmp / "out", progress=False, workers=1, overwrite=True)
    assert list(outside.iterdir()) == []


def test_render_batch_refuses_bad_arguments(fx: Fixture, in_tmp: Path) -> None:
    with pytest.raises(TypeError, match="must be a Review"):
        render_batch(fx.template, in_tmp)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"'formats' parameter of render_batch must hold some of"):
        render_batch(fx.review, in_tmp, formats=("docx",))
    with pytest.raises(ValueError, match=r"'workers' parameter of render_batch must be a positive integer. Got 0"):
        render_batch(fx.review, in_tmp, workers=0)
    assert list(in_tmp.iterdir()) == []


# --- spreadsheet exports -------------------------------------------------------------------------------


def _hostile_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "deal": ["=HYPERLINK(\"http://evil\",\"x\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tx", "\rx", "ACME"],
            "amount": [-5.0, 1.5, 0.0, 2.0, 3.0, 4.0, 5.0],
            "when": pd.to_datetime(["2024-01-02 03:04:05+00:00"] * 7, utc=True),
        }
    ).rename(columns={"amount": "=amount"})


def test_csv_exports_cannot_carry_formulas(in_tmp: Path) -> None:
    df = _hostile_frame()
    before = df.copy()
    path = export_table(df, in_tmp / "pipeline.csv")
    pd.testing.assert_frame_equal(df, before)
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["deal", "'=amount", "when"]
    assert [r[0] for r in rows[1:]] == ["'=HYPERLINK(\"http://evil\",\"x\")", "'+cmd|' /C calc'!A0", "'-2+3", "'@SUM(A1)",
                                        "'\tx", "'\rx", "ACME"]
    assert [float(r[1]) for r in rows[1:]] == [-5.0, 1.5, 0.0, 2.0, 3.0, 4.0, 5.0]  # numbers stay numbers
    assert rows[1][2] == "2024-01-02 03:04:05"
    with pytest.raises(OverwriteError):
        export_table(df, path)
    export_table(df.head(1), path, overwrite=True)
    assert len(pd.read_csv(path)) == 1


def test_xlsx_exports_cannot_carry_formulas(in_tmp: Path) -> None:
    import openpyxl

    path = export_table(_hostile_frame(), in_tmp / "pipeline.xlsx")
    ws = openpyxl.load_workbook(path).active
    assert ws is not None
    cells = [c for row in ws.iter_rows() for c in row]
    assert not any(c.data_type == "f" for c in cells)
    assert [ws.cell(row=i, column=1).value for i in range(2, 6)] == [
        "'=HYPERLINK(\"http://evil\",\"x\")", "'+cmd|' /C calc'!A0", "'-2+3", "'@SUM(A1)"]
    assert ws.cell(row=1, column=2).value == "'=amount" and ws.cell(row=2, column=2).value == -5
    assert ws.cell(row=2, column=3).value == pd.Timestamp("2024-01-02 03:04:05").to_pydatetime()
    with pytest.raises(ValueError, match=r"must end in .csv or .xlsx"):
        export_table(_hostile_frame(), in_tmp / "pipeline.ods")
