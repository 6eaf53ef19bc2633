"""The template editor as facilitators use it: served by Voila, clicked in headless Chromium.

Voila serves ``notebooks/template-editor-app.ipynb`` from a temporary folder on 127.0.0.1 (a free
port); Chromium (Debian's, never a downloaded one) renames a milestone and saves; the test then reads
the YAML the click wrote. The screenshot is kept in ``tests/artifacts/``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from _notebook_kernel import ensure_kernel

from salesproc.template import load_template

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "notebooks" / "template-editor-app.ipynb"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"voila exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "api/status", timeout=2):
                return
        except urllib.error.HTTPError:
            return  # any HTTP answer (a redirect to a login page, a 404) means the server is up
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"voila did not answer on {url} within {timeout:.0f} s")


@pytest.fixture
def voila(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Voila serving the app from a fresh folder; stopped (process group) on teardown."""
    ensure_kernel()
    shutil.copy(APP, tmp_path / APP.name)
    port = _free_port()
    log = (tmp_path / "voila.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "voila", APP.name, "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
         "--VoilaConfiguration.show_tracebacks=True"],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_http(url, proc, timeout=60)
        yield url, tmp_path
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
        log.close()


def test_rename_a_milestone_in_the_browser_and_save(voila: tuple[str, Path]) -> None:
    from playwright.sync_api import sync_playwright

    url, folder = voila
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "template-editor.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.set_default_timeout(30_000)
            page.goto(url, timeout=120_000, wait_until="domcontentloaded")
            select = page.locator(".salesproc-milestones select")
            select.wait_for(state="visible", timeout=120_000)
            v1 = folder / "workshop" / "process.yaml"
            assert v1.exists()  # the app derived the first version from the sample deals
            before = load_template(v1)
            second = before.milestone_names[1]
            options = [" ".join(t.split()) for t in select.locator("option").all_inner_texts()]
            assert options[1].startswith(f"2. {second} (")  # e.g. '2. Discovery (11.44–20.34 d)'
            select.select_option(index=1)
            page.locator(".salesproc-rename input").fill(f"{second} call")
            page.locator(".salesproc-rename-button").click()
            page.locator(".salesproc-status", has_text="rename milestone: done").wait_for()
            page.locator(".salesproc-save-button").click()
            diff = page.locator(".salesproc-diff", has_text="process.v2.yaml")
            diff.wait_for()
            assert f"milestone renamed: {second} -> {second} call" in diff.inner_text()
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    v2 = load_template(folder / "workshop" / "process.v2.yaml")
    assert v2.version == 2
    expected = [f"{second} call" if n == second else n for n in before.milestone_names]
    assert v2.milestone_names == expected
    assert v2.milestone(f"{second} call").edited == ["name"]
    assert load_template(v1) == before  # the first version is never overwritten
    assert shot.stat().st_size > 10_000
