"""`salesproc demo` (the README's main command) and the reports of `salesproc review -o`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result
from icalendar import Calendar
from render_data import Fixture, small_review

import salesproc
from salesproc.cli import main
from salesproc.derive._derive import _default_as_of


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_demo_renders_every_report_and_says_where_to_look(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    history = salesproc.load_sample_deals()
    as_of = _default_as_of(history)
    n_open = int((history.cases["outcome"] == "open").sum())
    r = run("demo", "--no-progress", "--workers", "2")
    assert r.exit_code == 0, r.output
    run_dir = Path("reports") / f"review-{as_of:%Y-%m-%d}"
    assert f"Reports are in {run_dir}/ - start here:" in r.stdout
    for line in r.stdout.split("start here:")[1].splitlines()[1:-1]:
        path = line.split(":", 1)[1].split()[0]
        assert Path(path).is_file(), line
    assert len(list((run_dir / "deals").glob("*.html"))) == len(list((run_dir / "deals").glob("*.md"))) == n_open
    index = (run_dir / "index.html").read_text(encoding="utf-8")
    assert index.count('<a href="deals/') == n_open
    # the saved template is the one derived from the sample deals
    saved = salesproc.load_template(run_dir / "process.yaml")
    assert saved.milestone_names == salesproc.derive_template(history, as_of=as_of).milestone_names
    assert saved.name == "Sample deals"
    assert '<div class="kicker">Our process on one page</div>' in (run_dir / "process.html").read_text(encoding="utf-8")
    # a close plan for the pipeline's top deal, with a calendar that parses
    (ics,) = run_dir.glob("plan-*.ics")
    events = Calendar.from_ical(ics.read_bytes()).walk("VEVENT")
    assert events and all("latest safe date" in str(e["SUMMARY"]) for e in events)
    with (run_dir / "pipeline.csv").open(newline="", encoding="utf-8") as fh:
        assert len(list(csv.DictReader(fh))) == n_open
    # a second run never touches the first
    first = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    r2 = run("demo", "--no-progress", "--workers", "1")
    assert r2.exit_code == 0, r2.output
    assert f"Reports are in {run_dir}-2/" in r2.stdout
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == first


def test_demo_json_lists_the_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = run("demo", "--json", "--workers", "1", "-o", "out")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert Path(data["index"]).is_file() and Path(data["run_dir"]).parent == tmp_path / "out"
    assert set(data["files"]) == {"process.yaml", "process.html", "process.md", "checklist.html", "checklist.md",
                                  "plan.html", "plan.md", "plan.ics", "pipeline.csv"}
    assert all(Path(p).is_file() for p in data["files"].values())


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Fixture, Path]:
    fx = small_review()
    folder = tmp_path_factory.mktemp("review-input")
    fx.history.to_parquet(folder / "history")
    salesproc.save_template(fx.template, folder / "process.yaml")
    return fx, folder


def _review_args(fx: Fixture, folder: Path, out: Path, *extra: str) -> list[str]:
    return ["review", "-t", str(folder / "process.yaml"), "--history", str(folder / "history"),
            "--as-of", str(fx.as_of.isoformat()), "-o", str(out), "--top", "3", *extra]


def test_review_renders_the_pipeline_and_every_deal_with_a_progress_bar(
    saved: tuple[Fixture, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fx, folder = saved
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, _review_args(fx, folder, tmp_path / "out", "--format", "html", "--format", "md",
                                              "--workers", "1"))
    assert r.exit_code == 0, r.output
    run_dir = tmp_path / "out" / f"review-{fx.as_of:%Y-%m-%d}"
    assert f"reports: {run_dir / 'index.html'} ({len(fx.review):,} deal reports in {run_dir / 'deals'}" in r.stdout
    assert "deal reports: 100%" in r.stderr
    assert len(list((run_dir / "deals").glob("*.html"))) == len(list((run_dir / "deals").glob("*.md"))) == len(fx.review)
    assert (run_dir / "index.md").is_file()
    table = pd.read_csv(tmp_path / "out" / f"pipeline-review-{fx.as_of:%Y-%m-%d}.csv")
    assert table["case_id"].tolist() == fx.review.case_ids


def test_review_uses_the_teams_own_deal_template(saved: tuple[Fixture, Path], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    fx, folder = saved
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "our-templates"
    mine.mkdir()
    (mine / "deal_review.html.j2").write_text(
        '{% extends "base.html.j2" %}{% block content %}<p class="ours">{{ deal.case_id }} owned by '
        "{{ deal.owner }}</p>{% endblock %}"
    )
    r = CliRunner().invoke(main, _review_args(fx, folder, tmp_path / "out", "--report-templates", str(mine),
                                              "--no-progress", "--workers", "1"))
    assert r.exit_code == 0, r.output
    d = fx.review[fx.review.case_ids[0]]
    pages = sorted((tmp_path / "out").glob("review-*/deals/*.html"))
    assert len(pages) == len(fx.review)
    assert any(f'<p class="ours">{d.case_id} owned by {d.owner}</p>' in p.read_text(encoding="utf-8") for p in pages)
    bad = CliRunner().invoke(main, _review_args(fx, folder, tmp_path / "out2", "--report-templates",
                                                str(tmp_path / "nowhere"), "--no-progress"))
    assert bad.exit_code == 2 and "error: " in bad.output and "no such template folder" in bad.output


def test_review_without_reports_writes_the_csv_only(saved: tuple[Fixture, Path], tmp_path: Path) -> None:
    fx, folder = saved
    r = CliRunner().invoke(main, _review_args(fx, folder, tmp_path / "out", "--no-reports"))
    assert r.exit_code == 0, r.output
    assert [p.name for p in (tmp_path / "out").iterdir()] == [f"pipeline-review-{fx.as_of:%Y-%m-%d}.csv"]


def test_review_runs_at_once_into_one_folder_each_get_their_own_csv(tmp_path: Path) -> None:
    # four `salesproc review -o same` at once: each claims its own version, none fails
    import subprocess
    import sys

    import salesproc

    history = salesproc.load_sample_deals()
    history.to_parquet(tmp_path / "history")
    as_of = history.events["timestamp"].max().date()
    salesproc.save_template(salesproc.derive_template(history, as_of=str(as_of)), tmp_path / "process.yaml")
    args = [sys.executable, "-m", "salesproc", "review", "-t", str(tmp_path / "process.yaml"), "--history",
            str(tmp_path / "history"), "--as-of", str(as_of), "-o", str(tmp_path / "same"), "--no-reports"]
    runs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(4)]
    outs = [(r.wait(timeout=120), r.stdout.read() if r.stdout else "") for r in runs]
    assert all(code == 0 for code, _ in outs), outs
    names = sorted(p.name for p in (tmp_path / "same").iterdir() if not p.name.startswith("."))
    assert names == sorted(
        [f"pipeline-review-{as_of}.csv"] + [f"pipeline-review-{as_of}.v{n}.csv" for n in (2, 3, 4)]
    )
