"""Output-path safety: slugs from untrusted names, confinement to an output folder, run folders."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

from salesproc.errors import UnsafePathError

__all__ = ["confine", "new_run_dir", "slugify", "unique_slugs"]

_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def slugify(text: str, *, max_len: int = 60) -> str:
    """A file-name-safe slug: lower-case ASCII letters, digits and single dashes.

    Accents are folded (``Café`` -> ``cafe``), everything else becomes a dash; dots and slashes
    never survive, so a slug can never name a parent folder. Empty results become a short hash.

    Examples
    --------
    >>> slugify("ACME Corp. — Renewal 2025")
    'acme-corp-renewal-2025'
    >>> slugify("../../etc/passwd")
    'etc-passwd'
    >>> slugify("///")
    'x-884a6325'
    """
    folded = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode("ascii")
    slug = _NOT_SLUG.sub("-", folded.lower()).strip("-")[:max_len].strip("-")
    if not slug or slug in _RESERVED:
        slug = (slug + "-" if slug else "x-") + hashlib.md5(str(text).encode("utf-8")).hexdigest()[:8]
    return slug


def unique_slugs(names: list[str], *, max_len: int = 60) -> list[str]:
    """Slugs for ``names``, made unique: a slug shared by different names gets a short hash suffix.

    >>> unique_slugs(["A/B", "a b", "C"])
    ['a-b-e649fc2c', 'a-b-0cc9cd4d', 'c']
    """
    base = [slugify(n, max_len=max_len) for n in names]
    counts: dict[str, set[str]] = {}
    for n, s in zip(names, base):
        counts.setdefault(s, set()).add(n)
    out = []
    seen: set[str] = set()
    for n, s in zip(names, base):
        if len(counts[s]) > 1 or s in seen:
            s = f"{s}-{hashlib.md5(n.encode('utf-8')).hexdigest()[:8]}"
            k = 2
            while s in seen:  # pragma: no cover - an md5 prefix collision
                s = f"{s}-{k}"
                k += 1
        seen.add(s)
        out.append(s)
    return out


def confine(root: Path, name: str | Path) -> Path:
    """``root / name``, resolved, or :class:`UnsafePathError` when it would leave ``root``.

    >>> import tempfile; root = Path(tempfile.mkdtemp())
    >>> confine(root, "deals/a.html") == root.resolve() / "deals" / "a.html"
    True
    >>> confine(root, "../../etc/passwd")
    Traceback (most recent call last):
    ...
    salesproc.errors.UnsafePathError: ../../etc/passwd would be written outside the output folder ...
    """
    base = Path(root).resolve()
    target = (base / name).resolve()
    if not target.is_relative_to(base):
        raise UnsafePathError(
            f"{name} would be written outside the output folder {base} (it resolves to {target}). "
            "Fix: report names are made from slugs; pass a plain file name."
        )
    return target


def new_run_dir(out_dir: Path, stem: str, *, overwrite: bool = False) -> Path:
    """Create and return ``out_dir/stem``, or ``stem-2``, ``stem-3``... if taken (reuse it with ``overwrite``).

    The folder is claimed with an exclusive ``mkdir``, so two runs at once never share a folder.

    >>> import tempfile; d = Path(tempfile.mkdtemp())
    >>> [new_run_dir(d, "review-2024-03-01").name for _ in range(3)]
    ['review-2024-03-01', 'review-2024-03-01-2', 'review-2024-03-01-3']
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    first = confine(out, slugify(stem, max_len=80) if stem != slugify(stem, max_len=80) else stem)
    if overwrite:
        first.mkdir(exist_ok=True)
        return first
    k = 1
    while True:
        cand = first if k == 1 else first.with_name(f"{first.name}-{k}")
        try:
            cand.mkdir()
        except FileExistsError:
            k += 1
            continue
        return cand
