"""The weekly deal-review notebook, run in batch with papermill as managers do."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import papermill as pm
from _notebook_kernel import ensure_kernel

from salesproc.datasets import load_sample_deals, sample_path

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "notebooks" / "deal-review-report.ipynb"


def test_report_notebook_with_parameters_writes_the_reports(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    executed = tmp_path / "executed.ipynb"
    pm.execute_notebook(
        str(REPORT), str(executed), kernel_name=ensure_kernel(), cwd=str(tmp_path), progress_bar=False,
        parameters={"history": str(sample_path("deals")), "as_of": "2023-12-31", "output_dir": str(out_dir),
                    "formats": ["html", "md"]},
    )
    nb = nbformat.read(executed, as_version=4)
    assert "injected-parameters" in nb.cells[1].metadata.get("tags", [])

    # the deals open on the review date, known independently of the notebook
    h = load_sample_deals().as_of(pd.Timestamp("2023-12-31", tz="UTC"))
    open_ids = set(h.cases.loc[h.cases["status"] == "open", "case_id"])
    assert len(open_ids) > 20

    run = out_dir / "review-2023-12-31"
    # (.salesproc-run.json lists what the run wrote, so a re-run with overwrite removes only its own stale files)
    assert sorted(p.name for p in run.iterdir()) == [".salesproc-run.json", "deals", "index.html", "index.md",
                                                      "pipeline.csv", "pipeline.html"]
    deal_html = sorted((run / "deals").glob("*.html"))
    deal_md = sorted((run / "deals").glob("*.md"))
    assert len(deal_html) == len(deal_md) == len(open_ids)
    index = (run / "index.html").read_text()
    assert set(re.findall(r'href="deals/([^"]+)\.html"', index)) == {p.stem for p in deal_html}
    table = pd.read_csv(run / "pipeline.csv")
    assert set(table["case_id"]) == open_ids
    assert table["probability"].between(0, 1).all()
    top = str(table["case_id"].iloc[0])
    pipeline = (run / "pipeline.html").read_text()
    assert pipeline.startswith("<!DOCTYPE html>") and top in pipeline
    one = (run / "deals" / f"{top.lower()}.md").read_text()
    assert top in one
    # the notebook printed what it wrote
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert f"{len(open_ids)} deal reports in {run}" in printed


def test_committed_notebooks_are_clean() -> None:
    """Outputs stripped except the cells nbval checks; a 'parameters' cell first that papermill reads."""
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "notebooks.py"), "check"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert names == [
        "00-welcome-and-data.ipynb", "01-start-with-the-end-in-mind.ipynb", "02-learn-from-your-history.ipynb",
        "03-derive-your-template.ipynb", "04-plan-backwards.ipynb", "05-deal-review.ipynb", "06-iterate.ipynb",
        "deal-review-report.ipynb", "template-editor-app.ipynb",
    ]


def test_report_notebook_reads_the_teams_settings_and_names_the_fix_without_outcomes(tmp_path: Path) -> None:
    """A stage history whose closing stages are the team's own words: all open without its settings
    (an error that says how to name the outcomes), reviewed with them (no parameter but settings)."""
    import pytest

    from salesproc.load import LoadOptions, write_settings

    h = load_sample_deals()
    ev = h.events[["case_id", "name", "timestamp"]]
    ends = h.cases.dropna(subset=["closed"])
    ends = ends[ends["outcome"].isin(["won", "lost"])]
    ends = pd.DataFrame({"case_id": ends["case_id"], "timestamp": ends["closed"],
                         "name": ends["outcome"].map({"won": "Signed", "lost": "Walked away"})})
    pd.concat([ev, ends]).rename(columns={"name": "Stage"}).to_csv(tmp_path / "crm.csv", index=False)
    kw = {"kernel_name": ensure_kernel(), "cwd": str(tmp_path), "progress_bar": False}
    params = {"history": "crm.csv", "mapping": {"name": "Stage"}, "as_of": "2023-12-31", "output_dir": "out",
              "formats": ["md"], "milestones": ["Qualify", "Discovery", "Solution", "Proposal", "Negotiation"]}
    with pytest.raises(pm.PapermillExecutionError, match=r"cases is open.*Fix: name the events that close a case"):
        pm.execute_notebook(str(REPORT), str(tmp_path / "bad.ipynb"), parameters=params, **kw)
    write_settings(tmp_path, LoadOptions(mapping={"name": "Stage"}, milestones=params["milestones"],
                                         outcome_events={"won": ["Signed"], "lost": ["Walked away"]}),
                   source=tmp_path / "crm.csv")
    pm.execute_notebook(str(REPORT), str(tmp_path / "ok.ipynb"),
                        parameters={"as_of": "2023-12-31", "output_dir": "out", "formats": ["md"]}, **kw)
    assert (tmp_path / "out" / "review-2023-12-31" / "index.md").exists()
