"""Small file helpers: atomic writes and never-overwrite naming."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from salesproc.errors import OverwriteError


def atomic_write_bytes(path: str | Path, data: bytes, *, overwrite: bool = False, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename.

    A reader never sees a half-written file; an existing file is replaced only with ``overwrite``.
    ``durable=False`` skips the fsync (still atomic; for many small files that can be regenerated).
    """
    p = Path(path)
    if p.exists() and not overwrite:
        raise OverwriteError(f"{p} exists. Fix: choose another path or pass overwrite=True.")
    p.parent.mkdir(parents=True, exist_ok=True)
    mode = _mode_for(p, default=0o666)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        os.fchmod(fd, mode)  # mkstemp makes 0600: give the file the mode a plain open() would
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        if not overwrite:
            # link() fails if the name appeared meanwhile: no race can overwrite a user's file
            try:
                os.link(tmp, p)
            except FileExistsError:
                raise OverwriteError(
                    f"{p} exists. Fix: choose another path or pass overwrite=True."
                ) from None
            except OSError:
                os.replace(tmp, p)
                return p
            os.unlink(tmp)
        else:
            os.replace(tmp, p)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return p


def _mode_for(path: Path, *, default: int) -> int:
    """The permission bits a new file gets from the umask (``default & ~umask``), or those of the
    file being replaced, so an atomic write changes no one's access."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return default & ~_umask()


def _umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux)."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        status = Path("/proc/self/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o022)  # elsewhere: the classic read (set, then restore)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str, *, overwrite: bool = False, durable: bool = True) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite, durable=durable)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``path`` only once the block succeeds."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    mode = _mode_for(p, default=0o777)
    tmp = Path(tempfile.mkdtemp(prefix=f".{p.name}.", dir=p.parent))
    try:
        tmp.chmod(mode)  # mkdtemp makes 0700: give the folder the mode a plain mkdir() would
        yield tmp
        if p.exists():
            old = p.with_name(f".{p.name}.old")
            if old.exists():
                shutil.rmtree(old)
            p.rename(old)
            tmp.rename(p)
            shutil.rmtree(old)
        else:
            tmp.rename(p)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def next_version_path(path: str | Path) -> Path:
    """``path`` if free, else ``stem.v2.suffix``, ``stem.v3.suffix``... (the first free one)."""
    p = Path(path)
    if not p.exists():
        return p
    stem, suffix = p.stem, p.suffix
    base = stem
    if "." in stem and stem.rsplit(".", 1)[1].startswith("v") and stem.rsplit(".", 1)[1][1:].isdigit():
        base = stem.rsplit(".", 1)[0]
    n = 2
    while True:
        cand = p.with_name(f"{base}.v{n}{suffix}")
        if not cand.exists():
            return cand
        n += 1
