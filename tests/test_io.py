"""Atomic writes keep the permissions a user expects (a plain ``open()`` or the replaced file's),
versioned names are claimed atomically, and what a killed writer leaves behind is cleaned up."""

from __future__ import annotations

import multiprocessing
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from salesproc._io import (
    ORPHAN_AGE,
    atomic_dir,
    atomic_write_text,
    next_version_path,
    recover_half_swap,
    sweep_orphans,
    write_next_version,
)


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_a_new_file_gets_the_umask_mode_not_0600(tmp_path: Path, umask_022: None) -> None:
    out = atomic_write_text(tmp_path / "report.md", "# hi\n")
    assert _mode(out) == 0o644


def test_an_overwritten_file_keeps_its_mode(tmp_path: Path, umask_022: None) -> None:
    p = tmp_path / "shared.csv"
    p.write_text("a\n")
    p.chmod(0o664)
    atomic_write_text(p, "b\n", overwrite=True)
    assert p.read_text() == "b\n" and _mode(p) == 0o664


def test_an_atomic_folder_gets_the_umask_mode(tmp_path: Path, umask_022: None) -> None:
    with atomic_dir(tmp_path / "history") as d:
        (d / "x").write_text("1")
    assert _mode(tmp_path / "history") == 0o755


# --- versioned names, claimed atomically -------------------------------------------------------------


def _race(target: Callable[[int], Path], n: int) -> list[Path]:
    """Run ``target(i)`` for ``i`` in range(n) in n threads released at once; their results."""
    barrier = threading.Barrier(n)
    out: list[Path | BaseException] = [Path()] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = target(i)
        except BaseException as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = [o for o in out if isinstance(o, BaseException)]
    assert not errors, errors
    return [o for o in out if isinstance(o, Path)]


def test_concurrent_writers_each_get_their_own_version(tmp_path: Path) -> None:
    base = tmp_path / "pipeline-review-2024-03-31.csv"
    base.write_text("first run\n")
    for _ in range(5):  # the old way, predict then write, is what lost the race (".v3.csv exists")
        written = _race(lambda i: write_next_version(base, f"run {i}\n"), 8)
        assert len(set(written)) == 8
        for p in written:
            assert p.read_text().startswith("run ")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["pipeline-review-2024-03-31.csv", *(f"pipeline-review-2024-03-31.v{n}.csv"
                                                                for n in range(2, 42))])
    assert next_version_path(base).name == "pipeline-review-2024-03-31.v42.csv"


def _write_after(barrier: Any, path: Path, text: str, queue: Any) -> None:
    barrier.wait()
    queue.put(write_next_version(path, text).name)


def test_concurrent_processes_each_get_their_own_version(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    barrier, queue = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_write_after, args=(barrier, tmp_path / "out.csv", f"run {i}", queue))
             for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert sorted(queue.get(timeout=5) for _ in procs) == ["out.csv", "out.v2.csv", "out.v3.csv", "out.v4.csv"]
    assert sorted(p.read_text() for p in tmp_path.iterdir()) == [f"run {i}" for i in range(4)]


# --- what a killed writer leaves behind ----------------------------------------------------------------


def _age(p: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(p, (t, t))


def test_a_write_removes_the_orphans_of_a_killed_write_of_the_same_file(tmp_path: Path) -> None:
    old = tmp_path / ".report.html.k2x9_q0a.tmp"  # what `kill -9` during atomic_write_text leaves
    fresh = tmp_path / ".report.html.abcdefgh.tmp"  # a write in progress elsewhere
    other = tmp_path / ".notes.md.zzzzzzzz.tmp"  # another file's: not this write's business
    mine = tmp_path / "draft.tmp"  # the user's own
    for p in (old, fresh, other, mine):
        p.write_text("partial")
        _age(p, 2 * ORPHAN_AGE)
    _age(fresh, 10)
    atomic_write_text(tmp_path / "report.html", "<p>done</p>")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["report.html", fresh.name, other.name, mine.name])
    assert [p.name for p in sweep_orphans(tmp_path)] == [other.name]  # a whole-folder sweep takes it


def test_an_atomic_folder_removes_orphaned_temporary_folders(tmp_path: Path) -> None:
    orphan = tmp_path / ".history.a1b2c3d4.tmp"
    (orphan / "sub").mkdir(parents=True)
    (orphan / "sub" / "events.parquet").write_text("half")
    for p in (orphan / "sub", orphan):
        _age(p, 2 * ORPHAN_AGE)
    with atomic_dir(tmp_path / "history") as d:
        (d / "x").write_text("1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history"]


def test_a_folder_swap_killed_between_its_renames_is_restored(tmp_path: Path) -> None:
    target = tmp_path / "history"
    with atomic_dir(target) as d:
        (d / "events.parquet").write_text("v1")
    target.rename(tmp_path / ".history.old")  # killed after the first rename, before the second
    restored = r"history was missing and .*\.history\.old held its previous copy.*Restored the previous copy"
    with pytest.warns(RuntimeWarning, match=restored), atomic_dir(target) as d:
        (d / "events.parquet").write_text("v2")
    assert (target / "events.parquet").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history"]
    assert recover_half_swap(target) is False  # nothing to do in the normal state
