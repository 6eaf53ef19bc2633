"""`salesproc derive` and `salesproc diff` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

import salesproc
from salesproc.cli import main


def _sample_csv(tmp_path: Path) -> Path:
    h, _ = salesproc.synthetic_history(2500, seed=21)
    ev = h.events.merge(h.cases[["case_id", "outcome", "closed"]], on="case_id")
    path = tmp_path / "deals.csv"
    ev.to_csv(path, index=False)
    return path


def test_derive_saves_a_template_and_never_overwrites(tmp_path: Path) -> None:
    src = _sample_csv(tmp_path)
    out = tmp_path / "templates" / "process.yaml"
    runner = CliRunner()
    r1 = runner.invoke(main, ["derive", str(src), "-o", str(out), "--name", "team"])
    assert r1.exit_code == 0, r1.output
    assert f"saved {out}" in r1.output
    assert "1. Qualify" in r1.output and "required" in r1.output
    tpl = salesproc.load_template(out)
    assert tpl.name == "team" and tpl.milestone_names[0] == "Qualify"
    r2 = runner.invoke(main, ["derive", str(src), "-o", str(out), "--as-of", "2023-09-01"])
    assert r2.exit_code == 0, r2.output
    v2 = out.with_name("process.v2.yaml")
    assert f"saved {v2}" in r2.output and salesproc.load_template(out) == tpl
    d = runner.invoke(main, ["diff", str(out), str(v2), "--json"])
    assert d.exit_code == 0, d.output
    changes = json.loads(d.output)
    assert any(c["kind"] == "duration_moved" for c in changes)
    same = runner.invoke(main, ["diff", str(out), str(out)])
    assert "no differences" in same.output


def test_derive_errors_are_one_clean_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("case_id,name,timestamp\nA,Qualify,not a date\n")
    r = CliRunner().invoke(main, ["derive", str(bad), "-o", str(tmp_path / "t.yaml")])
    assert r.exit_code == 2
    assert "row 2" in r.output and "timestamp" in r.output and "Traceback" not in r.output
