"""Atomic writes keep the permissions a user expects (a plain ``open()`` or the replaced file's)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from salesproc._io import atomic_dir, atomic_write_text


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
