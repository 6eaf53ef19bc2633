"""A batch run's folder: made in a staging folder, moved into place whole, and knowing its own files.

:func:`start_run` claims the run folder (``review-YYYY-MM-DD``, ``-2``...; see
:func:`salesproc.render._paths.new_run_dir`) and makes a staging folder beside it
(``.review-YYYY-MM-DD.<random>.tmp``) where every report is rendered. :func:`publish_run` moves the
staged reports into the run folder only once all of them are made: a new run folder by one rename, an
existing one (``overwrite``) file by file. :func:`abandon_run` removes the staging folder, and the
claimed run folder if this run made it, so a failed run leaves nothing half-made.

Each run writes a manifest (``.salesproc-run.json``) listing the files it wrote. Re-rendering with
``overwrite`` removes the files the previous run wrote and this one does not (the reports of deals no
longer open), and nothing else: a file you put in the run folder stays. A folder without a manifest
(made by an older salesproc) loses nothing.

A run killed with ``kill -9`` leaves its staging folder; the next run into the same output folder
removes such orphans once they are an hour old (:func:`salesproc._io.sweep_orphans`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from salesproc._io import _mode_for, atomic_write_text, sweep_orphans
from salesproc._version import __version__
from salesproc.render._paths import confine, new_run_dir

__all__ = ["MANIFEST", "RunFolder", "abandon_run", "owned_files", "publish_run", "start_run"]

#: The file in a run folder that lists what the run wrote (relative paths).
MANIFEST = ".salesproc-run.json"

# the only names a manifest may make us delete: the index and the deal reports
_OWNED = re.compile(r"^(index\.(html|md)|deals/[a-z0-9-]+\.(html|md|pdf))$")


@dataclass(frozen=True)
class RunFolder:
    """Where a run's reports go (``final``), where they are made (``staging``), and whether this
    run created ``final`` (so that a failed run removes it)."""

    final: Path
    staging: Path
    created: bool

    def published(self, path: str | Path) -> Path:
        """Where the staged file ``path`` is once published."""
        return self.final / Path(path).relative_to(self.staging)


def start_run(out_dir: Path, stem: str, *, overwrite: bool) -> RunFolder:
    """Claim the run folder ``out_dir/stem`` (or the next free ``stem-N``; reused with ``overwrite``)
    and make its staging folder, after removing the orphans of killed runs."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sweep_orphans(out, prefix=f".{stem.split('-', 1)[0]}-")  # staging folders of killed runs
    existed = overwrite and (out / stem).is_dir()
    final = new_run_dir(out, stem, overwrite=overwrite)
    if existed:
        sweep_orphans(final)
        sweep_orphans(final / "deals")
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)).resolve()
    staging.chmod(_mode_for(final, default=0o777))  # mkdtemp makes 0700: the run folder's own mode
    return RunFolder(final, staging, created=not existed)


def owned_files(folder: Path) -> set[str]:
    """The files a previous run recorded in ``folder``'s manifest (none without one)."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    files = data.get("files") if isinstance(data, dict) else None
    return {f for f in files if isinstance(f, str) and _OWNED.match(f)} if isinstance(files, list) else set()


def publish_run(run: RunFolder, written: Iterable[Path]) -> None:
    """Move the staged files ``written`` into the run folder, with the manifest; remove the files
    the previous run wrote there and this one did not."""
    rels = sorted(Path(p).relative_to(run.staging).as_posix() for p in written)
    manifest = json.dumps({"written_by": f"salesproc {__version__}", "files": rels}, indent=1) + "\n"
    atomic_write_text(run.staging / MANIFEST, manifest, durable=False)
    if run.created and _swap_in(run):
        return
    previous = owned_files(run.final)
    for rel in [*rels, MANIFEST]:
        confine(run.final, rel)  # a planted symlink cannot send a report elsewhere
        (run.final / rel).parent.mkdir(exist_ok=True)
        os.replace(run.staging / rel, run.final / rel)  # replaces a link itself, never its target
    for rel in sorted(previous - set(rels)):
        confine(run.final, rel)
        with contextlib.suppress(FileNotFoundError):
            (run.final / rel).unlink()
    shutil.rmtree(run.staging, ignore_errors=True)


def _swap_in(run: RunFolder) -> bool:
    """Rename the staging folder onto the (empty) run folder this run claimed; whether it worked
    (not if something appeared in it meanwhile)."""
    try:
        os.rename(run.staging, run.final)  # POSIX: an empty folder is replaced in one step
        return True
    except OSError:
        pass
    try:
        run.final.rmdir()
    except OSError:
        return False
    os.rename(run.staging, run.final)
    return True


def abandon_run(run: RunFolder) -> None:
    """After a failure: remove the staging folder, and the run folder if this run made it (and it is
    still empty)."""
    shutil.rmtree(run.staging, ignore_errors=True)
    if run.created:
        with contextlib.suppress(OSError):
            run.final.rmdir()
