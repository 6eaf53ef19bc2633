"""Small file helpers: atomic writes, never-overwrite naming, and clean-up after a killed writer.

Every write goes through a temporary file or folder beside its target (``.<name>.<random>.tmp``),
renamed into place once complete. A process killed mid-write (``kill -9``, a power cut) leaves that
temporary behind: :func:`sweep_orphans` removes ours once they are older than :data:`ORPHAN_AGE`, and
every durable write sweeps the orphans of the file it writes, every :func:`atomic_dir` those of its
folder, and a batch of reports its whole run folder (which it owns). A kill between the two
renames of :func:`atomic_dir` leaves the previous copy as ``.<name>.old``:
:func:`recover_half_swap` puts it back (with a warning saying so).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from salesproc.errors import OverwriteError

__all__ = [
    "ORPHAN_AGE",
    "atomic_dir",
    "atomic_write_bytes",
    "atomic_write_text",
    "next_version_path",
    "recover_half_swap",
    "sweep_orphans",
    "write_next_version",
]

#: Seconds after which a temporary file or folder of ours is an orphan of a killed writer.
ORPHAN_AGE = 3600.0

# mkstemp/mkdtemp names: our prefix ".<name>.", 8 random characters, our ".tmp" suffix
_ORPHAN = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def atomic_write_bytes(path: str | Path, data: bytes, *, overwrite: bool = False, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename.

    A reader never sees a half-written file; an existing file is replaced only with ``overwrite``.
    ``durable=False`` skips the fsync (still atomic; for many small files that can be regenerated)
    and the sweep of orphaned temporary files (a batch sweeps its folders once, at its start).
    """
    p = Path(path)
    if p.exists() and not overwrite:
        raise OverwriteError(f"{p} exists. Fix: choose another path or pass overwrite=True.")
    p.parent.mkdir(parents=True, exist_ok=True)
    if durable:
        sweep_orphans(p.parent, prefix=f".{p.name}.")
    tmp = _write_temp(p, data, durable=durable)
    try:
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


def _write_temp(p: Path, data: bytes, *, durable: bool) -> str:
    """A complete temporary copy of ``data`` beside ``p`` (``.<name>.<random>.tmp``), with the mode
    a plain ``open()`` would give ``p``; its path."""
    mode = _mode_for(p, default=0o666)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        os.fchmod(fd, mode)  # mkstemp makes 0600: give the file the mode a plain open() would
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


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


# --- orphans of killed writers -----------------------------------------------------------------------


def _newest_mtime(entry: os.DirEntry[str]) -> float:
    """When ``entry`` last changed; for a folder, also its direct subfolders (a batch still writing
    into ``deals/`` is not an orphan however old its top folder is)."""
    newest = entry.stat(follow_symlinks=False).st_mtime
    if entry.is_dir(follow_symlinks=False):
        with contextlib.suppress(OSError), os.scandir(entry.path) as it:
            for sub in it:
                if sub.is_dir(follow_symlinks=False):
                    newest = max(newest, sub.stat(follow_symlinks=False).st_mtime)
    return newest


def sweep_orphans(
    folder: str | Path, *, prefix: str = ".", max_age: float = ORPHAN_AGE, now: float | None = None
) -> list[Path]:
    """Remove the temporary files and folders our atomic writes left in ``folder`` when killed.

    Only names of our own pattern (``.<name>.<8 random characters>.tmp``) starting with ``prefix``
    (``".report.html."``: the temporaries of ``report.html`` alone) that have not changed for
    ``max_age`` seconds are removed; a write in progress, and anything else in the folder, is left
    alone. Returns what was removed.

    Examples
    --------
    >>> import os, tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for name in (".report.html.k2x9_q0a.tmp", ".report.html.fresh123.tmp", "notes.tmp"):
    ...     _ = (d / name).write_text("x")
    >>> os.utime(d / ".report.html.k2x9_q0a.tmp", (0, 0))  # a writer killed long ago
    >>> [p.name for p in sweep_orphans(d)]
    ['.report.html.k2x9_q0a.tmp']
    >>> sorted(p.name for p in d.iterdir())
    ['.report.html.fresh123.tmp', 'notes.tmp']
    """
    d = Path(folder)
    cutoff = (time.time() if now is None else now) - max_age
    removed: list[Path] = []
    try:
        entries = list(os.scandir(d))
    except OSError:
        return removed
    for entry in entries:
        if not (entry.name.startswith(prefix) and _ORPHAN.match(entry.name)):
            continue
        with contextlib.suppress(OSError):
            if _newest_mtime(entry) >= cutoff:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


# --- folders -----------------------------------------------------------------------------------------


def _old_copy(p: Path) -> Path:
    return p.with_name(f".{p.name}.old")


def recover_half_swap(path: str | Path) -> bool:
    """Undo a swap of :func:`atomic_dir` that a kill stopped between its two renames.

    :func:`atomic_dir` replaces a folder by renaming it to ``.<name>.old`` and the new copy to
    ``<name>``. A process killed between the two leaves no ``<name>`` and the previous copy in
    ``.<name>.old``: that copy is renamed back (the interrupted save is lost) and a warning says
    so. Returns whether anything was restored.

    Examples
    --------
    >>> import tempfile, pathlib, warnings
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / ".history.old").mkdir()
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     recover_half_swap(d / "history")
    True
    >>> (d / "history").is_dir(), "Restored the previous copy" in str(caught[0].message)
    (True, True)
    """
    p = Path(path)
    old = _old_copy(p)
    if p.exists() or not old.is_dir():
        return False
    try:
        old.rename(p)
    except FileExistsError:  # another process restored it first
        return False
    warnings.warn(
        f"{p} was missing and {old} held its previous copy: a save into {p} was interrupted between "
        f"its two renames (the process was killed). Found: {old.name}; expected: {p.name}. Restored the "
        f"previous copy to {p}; the interrupted save is lost. Fix: nothing to do unless you need that "
        "save; then save again.",
        RuntimeWarning,
        stacklevel=2,
    )
    return True


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``path`` only once the block succeeds.

    The swap is two renames (``path`` to ``.<name>.old``, the new folder to ``path``); a kill
    between them is repaired on the next use by :func:`recover_half_swap`.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    recover_half_swap(p)
    sweep_orphans(p.parent, prefix=f".{p.name}.")
    mode = _mode_for(p, default=0o777)
    tmp = Path(tempfile.mkdtemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent))
    try:
        tmp.chmod(mode)  # mkdtemp makes 0700: give the folder the mode a plain mkdir() would
        yield tmp
        if p.exists():
            old = _old_copy(p)
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


# --- versioned names ---------------------------------------------------------------------------------


def _version_base(p: Path) -> tuple[str, str]:
    """``(stem without its .vN, suffix)`` of ``p``."""
    stem, suffix = p.stem, p.suffix
    if "." in stem:
        head, tail = stem.rsplit(".", 1)
        if tail.startswith("v") and tail[1:].isdigit():
            return head, suffix
    return stem, suffix


def _versions(p: Path) -> Iterator[Path]:
    """``p``, then ``stem.v2.suffix``, ``stem.v3.suffix``..."""
    yield p
    base, suffix = _version_base(p)
    n = 2
    while True:
        yield p.with_name(f"{base}.v{n}{suffix}")
        n += 1


def next_version_path(path: str | Path) -> Path:
    """``path`` if free, else ``stem.v2.suffix``, ``stem.v3.suffix``... (the first free one).

    Only a prediction: another process may take that name before you write it. To write, use
    :func:`write_next_version`, which claims the name atomically.
    """
    return next(c for c in _versions(Path(path)) if not c.exists())


def write_next_version(path: str | Path, data: bytes | str, *, durable: bool = True) -> Path:
    """Write ``data`` to ``path``, or to the first free ``stem.v2.suffix``, ``stem.v3.suffix``...

    The name is claimed atomically (a hard link of a complete temporary file, which fails if the
    name exists), so any number of processes writing at once each get their own version and none
    fails or replaces another's file. Returns the path written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> [write_next_version(d / "pipeline.csv", "a,b\\n").name for _ in range(3)]
    ['pipeline.csv', 'pipeline.v2.csv', 'pipeline.v3.csv']
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if durable:
        sweep_orphans(p.parent, prefix=f".{p.name}.")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = _write_temp(p, raw, durable=durable)
    try:
        for cand in _versions(p):
            if cand.exists():
                continue
            if _claim(tmp, cand):
                return cand
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    raise AssertionError("unreachable")  # pragma: no cover - _versions never ends


def _claim(tmp: str, cand: Path) -> bool:
    """Give ``tmp``'s content the name ``cand`` if nobody has it (atomically); whether it worked."""
    try:
        os.link(tmp, cand)
        return True
    except FileExistsError:
        return False
    except OSError:  # no hard links here (some network or FAT folders): claim with O_EXCL, then replace
        try:
            os.close(os.open(cand, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            return False
        os.replace(tmp, cand)
        return True
