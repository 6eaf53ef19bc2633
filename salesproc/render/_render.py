"""Reports people want to read: checklists, close plans, deal and pipeline reviews.

:func:`render_report` turns a :class:`~salesproc.template.ProcessTemplate`, a
:class:`~salesproc.plan.Plan`, a :class:`~salesproc.review.Review` (the pipeline) or one
:class:`~salesproc.review.DealReview` into self-contained HTML (inline CSS, charts as inline SVG,
print-friendly), Markdown (for wikis and CRM notes) or PDF (WeasyPrint, the optional ``pdf`` extra).
:func:`render_batch` writes one report per open deal plus an ``index.html`` that links them, fast,
in a dated run folder. :func:`export_table` writes CSV or XLSX that a spreadsheet cannot run.

Templates are Jinja2. Your own ones are searched first, in the working directory's ``templates/``
folder (or ``template_dir``); the built-in ones (``process``, ``checklist``, ``plan``,
``deal_review``, ``pipeline_review``, each as ``.html.j2`` and ``.md.j2``, sharing
``base.html.j2``) are in the repository's ``templates/reports/`` to copy and adapt. User templates
render in Jinja's sandbox and see plain data only (see :mod:`salesproc.render._context`). Filters:
``date``, ``days``, ``duration``, ``pct``, ``pct_ci``, ``money``, ``num``, ``md`` and ``slug``.

To change a part of a built-in report, extend it: ``{% extends "builtin/deal_review.html.j2" %}``
always names the built-in template, and a template that extends its own name (your
``deal_review.html.j2`` starting with ``{% extends "deal_review.html.j2" %}``) gets the built-in
one too. A template that fails while rendering (``{{ 1/0 }}``) is a
:class:`~salesproc.errors.ReportTemplateError` naming its file and line.

Output is safe by construction: HTML is autoescaped, Markdown escapes every value, file names made
from deal ids are slugs confined to the output folder, every write is atomic, and an existing file
is never silently replaced. A PDF reads no local file and reaches no server: a template that points
at one (an image, stylesheet, font or attachment by ``file://`` or ``http://``) is refused with an
:class:`~salesproc.errors.UnsafeTemplateError` and nothing is written (see
:mod:`salesproc.render._pdf`). A batch is made in a staging folder and moved into place once complete
(see :mod:`salesproc.render._run`).
"""

from __future__ import annotations

import multiprocessing
import os
import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import jinja2
import pandas as pd
from jinja2.sandbox import SecurityError

from salesproc._io import atomic_write_bytes, atomic_write_text
from salesproc.errors import (
    OverwriteError,
    ReportTemplateError,
    UnsafeTemplateError,
)
from salesproc.render._charts import ReportCanvas
from salesproc.render._context import (
    checklist_context,
    deal_context,
    kind_of,
    pipeline_context,
    plan_context,
    process_context,
)
from salesproc.render._env import BUILTIN_TEMPLATES, Flavour, builtin_dir, environment
from salesproc.render._paths import confine, unique_slugs
from salesproc.render._pdf import html_to_pdf
from salesproc.render._run import MANIFEST, RunFolder, abandon_run, publish_run, start_run
from salesproc.template._template import ProcessTemplate

if TYPE_CHECKING:
    from salesproc.review._review import DealReview, Review

__all__ = ["BatchResult", "export_table", "render_batch", "render_report", "report_context"]

Format = Literal["html", "md", "pdf"]
FORMATS: tuple[str, ...] = ("html", "md", "pdf")
_DEFAULT_TEMPLATE = {"process": "process", "plan": "plan", "deal": "deal_review", "pipeline": "pipeline_review"}
_EXT = {"html": "html", "md": "md", "pdf": "pdf"}
_CANVAS: ReportCanvas | None = None


def _canvas() -> ReportCanvas:
    """This process's reusable chart canvas."""
    global _CANVAS
    if _CANVAS is None:
        _CANVAS = ReportCanvas()
    return _CANVAS


# --- templates -------------------------------------------------------------------------------------------


def _user_dirs(template_dir: str | Path | None) -> tuple[str, ...]:
    if template_dir is not None:
        d = Path(template_dir)
        if not d.is_dir():
            raise ReportTemplateError(
                f"{d}: no such template folder. Fix: pass template_dir= an existing folder of .j2 templates, "
                "or leave it out to use ./templates/ and the built-in templates."
            )
        return (str(d.resolve()),)
    d = Path.cwd() / "templates"
    return (str(d.resolve()),) if d.is_dir() else ()


def _resolve(
    template: str | Path | None, kind: str, flavour: Flavour, template_dir: str | Path | None
) -> tuple[jinja2.Environment, str, tuple[str, ...]]:
    """The environment and template name to render, and the user folders searched."""
    dirs = _user_dirs(template_dir)
    if template is None:
        name = f"{_DEFAULT_TEMPLATE[kind]}.{flavour}.j2"
    else:
        p = Path(template)
        if isinstance(template, Path) or (p.suffix == ".j2" and (os.sep in str(template) or p.is_file())):
            if not p.is_file():
                raise ReportTemplateError(f"{p}: no such template file. Fix: check the path.")
            dirs = (str(p.resolve().parent), *dirs)
            name = p.name
        else:
            name = str(template) if str(template).endswith(".j2") else f"{template}.{flavour}.j2"
    return environment(flavour, dirs, sandboxed=bool(dirs)), name, dirs


def _searched(dirs: Sequence[str]) -> str:
    where = [*dirs, str(builtin_dir() or "the built-in templates")]
    return ", ".join(where)


def _render(env: jinja2.Environment, name: str, context: Mapping[str, Any], dirs: Sequence[str]) -> str:
    try:
        tpl = env.get_template(name)
        return tpl.render(context)
    except jinja2.TemplateNotFound as exc:
        missing = exc.name if exc.name != name else name
        raise ReportTemplateError(
            f"no report template {missing!r} (searched {_searched(dirs)}). Built-in templates: "
            f"{', '.join(BUILTIN_TEMPLATES)} (as .html.j2 and .md.j2). Fix: pass one of those names, "
            "or put your template in ./templates/ or pass template_dir=."
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise ReportTemplateError(
            f"{exc.filename or exc.name or name}, line {exc.lineno}: template syntax error: {exc.message}. "
            "Fix: correct the template (Jinja2 syntax)."
        ) from None
    except SecurityError as exc:
        raise UnsafeTemplateError(
            f"{name}: the template tried something the sandbox forbids ({exc}). User templates may read "
            "the report's data but not Python internals. Fix: remove that expression from the template."
        ) from None
    except jinja2.UndefinedError as exc:
        raise ReportTemplateError(
            f"{name}: {exc.message}. The report's data has: {', '.join(sorted(context))}. "
            "Fix: use a name the report has (guard optional ones with `is defined`)."
        ) from None
    except RecursionError:
        raise ReportTemplateError(
            f"{template_file(env, name)}: the template extends, includes or imports itself, directly or "
            "through others (found a circle; expected each template to build on a different one). To build "
            "on the built-in template of the same name, write {% extends \"builtin/<name>\" %} (a template "
            "extending its own name gets the built-in one). Fix: break the circle."
        ) from None
    except ReportTemplateError:
        raise
    except Exception as exc:  # a filter or expression failed while rendering: {{ 1/0 }}, {{ "x" + 1 }}
        raise ReportTemplateError(
            f"{_where(exc, env, name)}: the template failed while rendering: {type(exc).__name__}: {exc}. "
            "Expected an expression that works on the report's data. Nothing was written. "
            "Fix: correct or remove that expression."
        ) from None


def template_file(env: jinja2.Environment, name: str) -> str:
    """The file a template name resolves to (for messages), else the name."""
    try:
        return env.get_template(name).filename or name
    except Exception:  # only for a message
        return name


def _where(exc: BaseException, env: jinja2.Environment, name: str) -> str:
    """``file, line N`` of the innermost template frame of ``exc``'s traceback (Jinja rewrites the
    traceback so that template lines appear as frames), else the template's file."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith(".j2")]
    if frames:
        return f"{frames[-1].filename}, line {frames[-1].lineno}"
    return template_file(env, name)


# --- one report --------------------------------------------------------------------------------------------


def _deal_template(deal: DealReview, process: ProcessTemplate | None) -> ProcessTemplate:
    t = process if process is not None else getattr(deal, "template", None)
    if not isinstance(t, ProcessTemplate):
        raise TypeError(
            "The 'process' parameter of render_report is needed for a DealReview made without its template. "
            "Fix: render_report(review[case_id], process=review.template)."
        )
    return t


def report_context(
    obj: Any,
    *,
    template: str | Path | None = None,
    charts: bool = True,
    process: ProcessTemplate | None = None,
    links: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The data a report template sees for ``obj`` (see :mod:`salesproc.render._context`).

    Use it to write your own templates: every key of the result is a variable in the template.

    Examples
    --------
    >>> from salesproc.template import ProcessTemplate, Milestone
    >>> t = ProcessTemplate(name="Our deals", milestones=[Milestone(name="Qualify", order=1)])
    >>> ctx = report_context(t, charts=False)
    >>> sorted(ctx)
    ['charts', 'links', 'process', 'report', 'version', 'words']
    >>> ctx["report"]["title"], [m["name"] for m in ctx["process"]["milestones"]]
    ('Our deals v1', ['Qualify'])
    """
    kind = kind_of(obj)
    canvas = _canvas() if charts else None
    name = Path(str(template)).name if template is not None else ""
    if name.startswith("checklist") and kind in ("process", "deal"):
        if kind == "deal":
            ctx = checklist_context(obj, template=_deal_template(obj, process))
        else:
            ctx = checklist_context(obj)
    elif kind == "process":
        ctx = process_context(obj, canvas=canvas)
    elif kind == "plan":
        ctx = plan_context(obj, canvas=canvas)
    elif kind == "deal":
        ctx = deal_context(obj, template=_deal_template(obj, process), canvas=canvas)
    else:
        ctx = pipeline_context(obj, canvas=canvas, charts=charts)
    if links:
        ctx["links"] = dict(links)
    return ctx


def render_report(
    obj: Any,
    *,
    template: str | Path | None = None,
    format: Format = "html",
    out: str | Path | None = None,
    overwrite: bool = False,
    template_dir: str | Path | None = None,
    process: ProcessTemplate | None = None,
) -> str | bytes:
    """Render a report of ``obj`` as HTML, Markdown or PDF; write it to ``out`` if given.

    Parameters
    ----------
    obj
        A :class:`~salesproc.template.ProcessTemplate` ("our process on one page", or its milestone
        checklist with ``template="checklist"``), a :class:`~salesproc.plan.Plan` (close plan /
        mutual action plan), a :class:`~salesproc.review.Review` (pipeline review) or one
        :class:`~salesproc.review.DealReview` (deal review, or its checklist).
    template
        A built-in template name (``process``, ``checklist``, ``plan``, ``deal_review``,
        ``pipeline_review``), the name of your own template in the template folder
        (``my_review`` finds ``my_review.html.j2``), or a path to a ``.j2`` file. Default: the
        built-in one for ``obj``.
    format
        ``"html"`` (self-contained: inline CSS and SVG charts), ``"md"`` or ``"pdf"`` (needs
        ``pip install 'salesproc[pdf]'``).
    out
        Write the report here too, atomically. An existing file is an
        :class:`~salesproc.errors.OverwriteError` unless ``overwrite=True``.
    overwrite
        Replace ``out`` if it exists.
    template_dir
        Where your templates are (default: ``./templates/`` when it exists). Searched before the
        built-in templates; templates found there render in Jinja's sandbox.
    process
        The process template, for a ``DealReview`` that does not carry it.

    Returns
    -------
    str or bytes
        The report's text (bytes for PDF).

    Raises
    ------
    ReportTemplateError
        The template is missing, invalid, or uses data the report does not have.
    UnsafeTemplateError
        The template tried to reach Python internals (sandbox).
    MissingDependencyError
        PDF output without WeasyPrint or its system libraries.

    Examples
    --------
    >>> import salesproc
    >>> from salesproc.template import ProcessTemplate, Milestone
    >>> t = ProcessTemplate(name="Our deals", milestones=[
    ...     Milestone(name="Qualify", order=1, p50_days=5, p80_days=9, exit_criteria=["Budget confirmed"]),
    ...     Milestone(name="Proposal", order=2, p50_days=10, p80_days=20)])
    >>> md = salesproc.render_report(t, template="checklist", format="md")
    >>> print(md.splitlines()[0])
    # Our deals v1
    >>> "- [ ] Exit: Budget confirmed" in md
    True
    >>> html = salesproc.render_report(t)
    >>> html.startswith("<!DOCTYPE html>") and "<svg" in html
    True
    """
    if format not in FORMATS:
        raise ValueError(f"The 'format' parameter of render_report must be one of {list(FORMATS)}. Got {format!r} instead.")
    kind = kind_of(obj)
    flavour: Flavour = "md" if format == "md" else "html"
    env, name, dirs = _resolve(template, kind, flavour, template_dir)
    ctx = report_context(obj, template=name, charts=flavour == "html", process=process)
    text = _render(env, name, ctx, dirs)
    if format == "pdf":
        data = html_to_pdf(text, source=template_file(env, name))
        if out is not None:
            atomic_write_bytes(out, data, overwrite=overwrite)
        return data
    if out is not None:
        atomic_write_text(out, text, overwrite=overwrite)
    return text


# --- many reports -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchResult:
    """What :func:`render_batch` wrote: the run folder, the index and one report per deal and format."""

    run_dir: Path
    index: Path
    reports: Mapping[str, tuple[Path, ...]]
    seconds: float
    workers: int

    @property
    def files(self) -> list[Path]:
        """Every file written, the index first (and the run's manifest last)."""
        out = [self.index]
        for paths in self.reports.values():
            out += list(paths)
        extra = [p for p in sorted(self.run_dir.glob("index.*")) if p != self.index]
        manifest = [self.run_dir / MANIFEST] if (self.run_dir / MANIFEST).is_file() else []
        return out + extra + manifest

    def __len__(self) -> int:
        return len(self.reports)

    def __repr__(self) -> str:
        return (
            f"<BatchResult {len(self.reports):,} deal reports in {self.run_dir} "
            f"({self.seconds:.1f} s, {self.workers} worker{'s' if self.workers != 1 else ''})>"
        )


@dataclass(frozen=True)
class _Job:
    review: Any
    run_dir: Path
    formats: tuple[str, ...]
    template_dir: str | None


_JOB: _Job | None = None


def _init_worker(job: _Job) -> None:
    global _JOB
    _JOB = job


def _render_deals(chunk: Sequence[tuple[str, str]]) -> list[tuple[str, tuple[str, ...]]]:
    """Render and write the reports of ``chunk`` (case id, slug); runs in a worker or in-process."""
    job = _JOB
    assert job is not None
    review = job.review
    process = review.template
    out: list[tuple[str, tuple[str, ...]]] = []
    envs = {}
    for fmt in job.formats:
        flavour: Flavour = "md" if fmt == "md" else "html"
        envs[fmt] = _resolve(None, "deal", flavour, job.template_dir)
    with _canvas().session():
        for cid, slug in chunk:
            out.append(_render_deal(job, envs, process, review[cid], cid, slug))
    return out


def _render_deal(job: _Job, envs: Mapping[str, Any], process: ProcessTemplate, deal: Any, cid: str,
                 slug: str) -> tuple[str, tuple[str, ...]]:
    """One deal's reports, in every format asked for (the HTML context and chart are shared)."""
    ctx_html: dict[str, Any] | None = None
    written = []
    for fmt in job.formats:
        env, name, dirs = envs[fmt]
        if fmt == "md":
            ctx = deal_context(deal, template=process, canvas=None)
            ctx["links"] = {"index": "../index.md"}
        else:
            if ctx_html is None:
                ctx_html = deal_context(deal, template=process, canvas=_canvas())
                ctx_html["links"] = {"index": "../index.html"}
            ctx = ctx_html
        text = _render(env, name, ctx, dirs)
        path = confine(job.run_dir, f"deals/{slug}.{_EXT[fmt]}")
        # into the staging folder: atomic, without an fsync per file (reports that can be made again)
        if fmt == "pdf":
            atomic_write_bytes(path, html_to_pdf(text, source=template_file(env, name)), durable=False)
        else:
            atomic_write_text(path, text, durable=False)
        written.append(str(path))
    return cid, tuple(written)


def _chunks(items: Sequence[tuple[str, str]], size: int) -> list[Sequence[tuple[str, str]]]:
    """``items`` cut into consecutive chunks of ``size``."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def render_batch(
    review: Review,
    out_dir: str | Path,
    *,
    formats: Iterable[str] = ("html",),
    overwrite: bool = False,
    progress: bool = True,
    workers: int = 2,
    template_dir: str | Path | None = None,
) -> BatchResult:
    """Write one report per open deal, with its chart, plus an ``index.html`` linking them.

    Reports go to a new run folder ``out_dir/review-YYYY-MM-DD/`` (the review's ``as_of``; ``-2``,
    ``-3``... if that exists, so earlier runs are kept), deal reports to its ``deals/`` folder under
    file names slugged from the case ids (a case id such as ``../../etc/passwd`` becomes
    ``etc-passwd.html``; nothing is ever written outside the run folder). Every report is made in a
    staging folder beside it and moved in once all are made: a run that fails (a template that
    raises, a kill) leaves no half-made run folder. The run folder's ``.salesproc-run.json`` lists
    the files the run wrote (see :mod:`salesproc.render._run`).

    Parameters
    ----------
    review
        A pipeline review (:func:`salesproc.review_deals`).
    out_dir
        The folder that receives the run folder.
    formats
        Any of ``"html"``, ``"md"``, ``"pdf"``. The index is written as HTML, and as Markdown
        (``index.md``) when Markdown reports are asked for.
    overwrite
        Write into ``review-YYYY-MM-DD/`` even if it exists, replacing the reports in it and removing
        those the previous run wrote and this one does not (deals no longer open); other files in
        the folder are kept.
    progress
        Show a progress bar (tqdm, on stderr).
    workers
        Processes drawing and writing reports (each keeps one reusable chart canvas); 1 renders
        in this process.
    template_dir
        Your templates (default ``./templates/`` when it exists), searched first.

    Returns
    -------
    BatchResult

    Examples
    --------
    >>> import salesproc, tempfile
    >>> h, truth = salesproc.synthetic_history(400, seed=4)
    >>> review = salesproc.review_deals(h, salesproc.derive_template(h, as_of=truth.as_of), as_of=truth.as_of)
    >>> run = salesproc.render_batch(review, tempfile.mkdtemp(), progress=False, workers=1)
    >>> run.run_dir.name == f"review-{truth.as_of:%Y-%m-%d}", len(run) == len(review)
    (True, True)
    >>> run.index.name
    'index.html'
    """
    fmts = _check_batch(review, formats, workers)
    t0 = time.perf_counter()
    tdir = _user_dirs(template_dir)  # a missing template folder fails before any folder is made
    run = start_run(Path(out_dir), f"review-{review.as_of:%Y-%m-%d}", overwrite=overwrite)
    try:
        job, pairs = _start_job(review, run, fmts, tdir[0] if template_dir is not None and tdir else None)
        n_workers = _n_workers(workers, len(pairs))
        if n_workers == 1:
            results = _render_here(job, pairs, progress)
        else:
            results = _render_in_pool(job, pairs, n_workers, progress)
        indexes = _write_index(review, run.staging, pairs, fmts, template_dir)
        publish_run(run, [*indexes, *(p for paths in results.values() for p in paths)])
    except BaseException:
        abandon_run(run)
        raise
    ordered = {cid: tuple(run.published(p) for p in results[cid]) for cid, _ in pairs}
    seconds = round(time.perf_counter() - t0, 3)
    return BatchResult(run.final, run.published(indexes[0]), ordered, seconds, n_workers)


def _check_batch(review: Review, formats: Iterable[str], workers: int) -> tuple[str, ...]:
    """Check render_batch's parameters (and that PDF output works, if asked for); the formats, once each."""
    from salesproc.review._review import Review

    if not isinstance(review, Review):
        raise TypeError(
            f"The 'review' parameter of render_batch must be a Review (salesproc.review_deals). "
            f"Got {type(review).__name__} instead."
        )
    fmts = tuple(dict.fromkeys(formats))
    bad = [f for f in fmts if f not in FORMATS]
    if bad or not fmts:
        raise ValueError(
            f"The 'formats' parameter of render_batch must hold some of {list(FORMATS)}. Got {list(formats)!r} instead."
        )
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"The 'workers' parameter of render_batch must be a positive integer. Got {workers!r} instead.")
    if "pdf" in fmts:
        _check_pdf()
    return fmts


def _start_job(
    review: Review, run: RunFolder, fmts: tuple[str, ...], template_dir: str | None
) -> tuple[_Job, list[tuple[str, str]]]:
    """Make the staging folder's ``deals/``; the workers' job and each deal's (case id, file slug)."""
    ids = review.case_ids
    slugs = unique_slugs(ids)
    for s in slugs:  # slugs cannot escape; the check is cheap insurance (and catches a planted symlink)
        confine(run.final, f"deals/{s}.html")
    (run.staging / "deals").mkdir()
    return _Job(review, run.staging, fmts, template_dir), list(zip(ids, slugs))


def _n_workers(workers: int, n_deals: int) -> int:
    """How many processes to use: at most ``workers`` and the CPUs, one per 50 deals, 1 for a single deal."""
    n_workers = max(1, min(workers, (n_deals + 49) // 50, os.cpu_count() or 1))
    return 1 if n_deals < 2 else n_workers


def _progress_bar(total: int, progress: bool) -> Any:
    """A tqdm progress bar over the deal reports (on stderr; disabled unless ``progress``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not progress, unit="deal", desc="deal reports")


def _collect(done: Sequence[tuple[str, tuple[str, ...]]], results: dict[str, tuple[Path, ...]]) -> None:
    """Add the paths written for each deal of ``done`` to ``results``."""
    for cid, paths in done:
        results[cid] = tuple(Path(p) for p in paths)


def _render_here(job: _Job, pairs: Sequence[tuple[str, str]], progress: bool) -> dict[str, tuple[Path, ...]]:
    """Render every deal's reports in this process, 25 deals at a time."""
    results: dict[str, tuple[Path, ...]] = {}
    bar = None
    try:
        _init_worker(job)
        bar = _progress_bar(len(pairs), progress)
        for chunk in _chunks(pairs, 25):
            _collect(_render_deals(chunk), results)
            bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    return results


def _render_in_pool(
    job: _Job, pairs: Sequence[tuple[str, str]], n_workers: int, progress: bool
) -> dict[str, tuple[Path, ...]]:
    """Render every deal's reports in ``n_workers`` (forked) processes, in chunks that keep them all busy."""
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
    size = max(5, min(40, len(pairs) // (n_workers * 8) or 5))
    results: dict[str, tuple[Path, ...]] = {}
    bar = None
    try:
        with ctx.Pool(n_workers, initializer=_init_worker, initargs=(job,)) as pool:
            bar = _progress_bar(len(pairs), progress)
            for done in pool.imap_unordered(_render_deals, _chunks(pairs, size)):
                _collect(done, results)
                bar.update(len(done))
    finally:
        if bar is not None:
            bar.close()
    return results


def _write_index(
    review: Review,
    run_dir: Path,
    pairs: Sequence[tuple[str, str]],
    fmts: tuple[str, ...],
    template_dir: str | Path | None,
) -> list[Path]:
    """Write ``index.html`` (and ``index.md`` with Markdown reports), linking every deal's report;
    the paths written, ``index.html`` first."""
    links_html = {cid: f"deals/{s}.html" for cid, s in pairs} if "html" in fmts else {}
    links_pdf = {cid: f"deals/{s}.pdf" for cid, s in pairs} if "pdf" in fmts and "html" not in fmts else {}
    env, name, dirs = _resolve(None, "pipeline", "html", template_dir)
    ctx_index = report_context(review, links=links_html or links_pdf)
    written = [atomic_write_text(confine(run_dir, "index.html"), _render(env, name, ctx_index, dirs), durable=False)]
    if "md" in fmts:
        env, name, dirs = _resolve(None, "pipeline", "md", template_dir)
        ctx_md = report_context(review, charts=False, links={cid: f"deals/{s}.md" for cid, s in pairs})
        written.append(atomic_write_text(confine(run_dir, "index.md"), _render(env, name, ctx_md, dirs), durable=False))
    return written


def _check_pdf() -> None:
    """Fail early (before any file is written) when PDF output cannot work."""
    html_to_pdf("<p>salesproc</p>")


# --- tables -------------------------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula gets a leading ``'``; anything else is kept.

    >>> neutralise("=HYPERLINK(\\"http://x\\")"), neutralise("-1+2"), neutralise("ok"), neutralise(-3)
    ('\\'=HYPERLINK("http://x")', "'-1+2", 'ok', -3)
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _table(obj: Any) -> pd.DataFrame:
    """``obj`` if a DataFrame, else its ``to_frame()`` table."""
    if isinstance(obj, pd.DataFrame):
        return obj
    to_frame = getattr(obj, "to_frame", None)
    frame = to_frame() if callable(to_frame) else None
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(
            "The 'df' parameter of export_table must be a DataFrame or a result with a to_frame() table "
            f"(a Review, a Plan). Got {type(obj).__name__} instead."
        )
    return frame


def export_table(
    df: pd.DataFrame | Review | Any, path: str | Path, *, overwrite: bool = False, sheet_name: str = "data"
) -> Path:
    """Write ``df`` as CSV or XLSX (by the file's suffix), safe to open in a spreadsheet.

    ``df`` is a DataFrame, or a result with a ``to_frame()`` table (a
    :class:`~salesproc.review.Review`, a :class:`~salesproc.plan.Plan`...), whose table is written.

    Text cells (and column names) starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
    return get a leading ``'`` so that no spreadsheet runs them as formulas (CSV/formula injection).
    Numbers stay numbers. Time-zone-aware dates are written in UTC. The write is atomic and an
    existing file is an :class:`~salesproc.errors.OverwriteError` unless ``overwrite=True``. The
    input frame is not changed.

    Examples
    --------
    >>> import pandas as pd, tempfile, pathlib
    >>> df = pd.DataFrame({"deal": ["=cmd|' /C calc'!A0", "ACME"], "amount": [-5.0, 10.0]})
    >>> p = export_table(df, pathlib.Path(tempfile.mkdtemp()) / "deals.csv")
    >>> print(p.read_text())
    deal,amount
    '=cmd|' /C calc'!A0,-5.0
    ACME,10.0
    <BLANKLINE>
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise ValueError(f"The 'path' parameter of export_table must end in .csv or .xlsx. Got {str(p)!r} instead.")
    frame = _table(df)
    if p.exists() and not overwrite:
        raise OverwriteError(f"{p} exists. Fix: choose another path or pass overwrite=True.")
    safe = frame.copy()
    safe.columns = [neutralise(str(c)) for c in safe.columns]
    for c in safe.columns:
        col = safe[c]
        if isinstance(col.dtype, pd.DatetimeTZDtype):
            safe[c] = col.dt.tz_convert("UTC").dt.tz_localize(None)
        elif not pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_datetime64_any_dtype(col):
            safe[c] = col.astype(object).map(neutralise)
    if suffix == ".csv":
        # CRLF rows (RFC 4180): a cell holding a line break or carriage return is quoted, not split
        return atomic_write_text(p, safe.to_csv(index=False, lineterminator="\r\n"), overwrite=overwrite)
    import io

    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as xw:
        safe.to_excel(xw, sheet_name=sheet_name[:31], index=False)
    return atomic_write_bytes(p, buf.getvalue(), overwrite=overwrite)
