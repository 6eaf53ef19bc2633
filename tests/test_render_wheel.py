"""The wheel ships the built-in report templates: render from a non-editable install.

Builds the wheel from this checkout (hatchling, no build isolation: no network), installs it
with ``pip install --target`` into a temporary folder, and renders reports in a fresh Python
whose ``salesproc`` comes from that folder, run from a folder with no ``templates/``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json, sys
from pathlib import Path
import salesproc
from salesproc.render._env import builtin_dir
from salesproc.template import Milestone, ProcessTemplate

t = ProcessTemplate(name="Wheel deals", milestones=[
    Milestone(name="Qualify", order=1, p50_days=5, p80_days=9, exit_criteria=["Budget confirmed"]),
    Milestone(name="Proposal", order=2, p50_days=10, p80_days=20)])
html = salesproc.render_report(t)
md = salesproc.render_report(t, template="checklist", format="md")
print(json.dumps({"module": salesproc.__file__, "templates": str(builtin_dir()), "html": html, "md": md}))
"""


def test_the_wheel_renders_reports_from_its_own_templates(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(dist)],
        check=True, capture_output=True, text=True,
    )
    (wheel,) = dist.glob("salesproc-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(n for n in names if n.startswith("salesproc/templates/"))
    source = sorted(f"salesproc/templates/{p.name}" for p in (ROOT / "templates" / "reports").iterdir() if p.is_file())
    assert shipped == source and "salesproc/templates/deal_review.html.j2" in shipped

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, text=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    res = subprocess.run([sys.executable, "-c", SCRIPT], cwd=elsewhere, env=env, check=True, capture_output=True,
                         text=True)
    out = json.loads(res.stdout.splitlines()[-1])
    assert Path(out["module"]).is_relative_to(site)
    assert Path(out["templates"]) == site / "salesproc" / "templates"
    assert out["html"].startswith("<!DOCTYPE html>") and "<b>Qualify</b>" in out["html"] and "<svg" in out["html"]
    assert out["md"].startswith("# Wheel deals v1") and "- [ ] Exit: Budget confirmed" in out["md"]
