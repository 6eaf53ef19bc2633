"""PDF output through WeasyPrint, which reads nothing the report does not hold.

WeasyPrint fetches whatever a page points at: stylesheets, images, fonts and ``<a rel="attachment">``
files, from ``file://`` and ``http://`` URLs alike. A user template could use that to copy a local
file into the PDF or to make the machine rendering it call a server. Every fetch therefore goes
through :class:`GuardedFetcher`, which serves ``data:`` URLs (inline content, no I/O) and the
package's own template assets, and refuses everything else. A refused URL stops the PDF: nothing is
written and :class:`~salesproc.errors.UnsafeTemplateError` names the template and the URL. Refusing
loudly rather than leaving the resource out is the safer of the two: a report that silently lacks
its logo or its attachment is mistaken for the real one.

The built-in templates reference no URL at all: CSS is inline, charts are inline SVG and links
(``<a href>``) are never fetched.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from salesproc.errors import MissingDependencyError, ReportTemplateError, UnsafeTemplateError
from salesproc.render._env import builtin_dir

__all__ = ["PDF_INSTALL", "allowed_url", "html_to_pdf"]

PDF_INSTALL = (
    "pip install 'salesproc[pdf]' (WeasyPrint) and its system libraries: "
    "apt-get install libpango-1.0-0 libpangoft2-1.0-0"
)


def allowed_url(url: str) -> bool:
    """Whether a PDF may read ``url``: a ``data:`` URL, or a file among the package's own templates.

    Examples
    --------
    >>> allowed_url("data:image/png;base64,iVBORw0KGgo="), allowed_url("file:///etc/passwd")
    (True, False)
    >>> allowed_url("http://127.0.0.1:8000/logo.png"), allowed_url("https://example.com/x.css")
    (False, False)
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "data":
        return True
    if scheme != "file" or parts.netloc not in ("", "localhost"):
        return False
    assets = builtin_dir()
    if assets is None:  # pragma: no cover - zipped installs
        return False
    try:
        target = Path(unquote(parts.path)).resolve()
    except (OSError, ValueError):
        return False
    return target.is_relative_to(assets.resolve())


def _weasyprint() -> Any:
    """The ``weasyprint`` module, or a :class:`MissingDependencyError` saying what to install."""
    try:
        import weasyprint
    except ImportError as exc:
        raise MissingDependencyError(
            f"PDF output needs WeasyPrint, which is not installed ({exc}). Fix: {PDF_INSTALL}."
        ) from None
    except OSError as exc:  # WeasyPrint is there but cannot load pango
        raise MissingDependencyError(
            f"PDF output needs WeasyPrint's system libraries, which are missing ({exc}). Fix: {PDF_INSTALL}."
        ) from None
    return weasyprint


class _Refused(ValueError):
    """A URL the PDF may not read (raised inside WeasyPrint, reported by :func:`html_to_pdf`)."""


def _fetcher(weasyprint: Any, refused: list[str]) -> Any:
    """A WeasyPrint URL fetcher that serves :func:`allowed_url` URLs only and notes the others."""
    base = getattr(getattr(weasyprint, "urls", None), "URLFetcher", None)
    if base is None:  # WeasyPrint < 66: a plain function returning a dict
        def fetch_old(url: str, *args: Any, **kwargs: Any) -> Any:
            if not allowed_url(url):
                refused.append(url)
                raise _Refused(url)
            return weasyprint.default_url_fetcher(url, *args, **kwargs)

        return fetch_old

    class GuardedFetcher(base):  # type: ignore[misc, valid-type]
        """WeasyPrint's fetcher, for :func:`allowed_url` URLs only."""

        def fetch(self, url: str, headers: Any = None) -> Any:
            if not allowed_url(url):
                refused.append(url)
                raise _Refused(url)
            return super().fetch(url, headers)

    # fail_on_errors: the first refusal stops the rendering (nothing more is fetched or laid out)
    return GuardedFetcher(fail_on_errors=True, allowed_protocols=("data", "file"))


def html_to_pdf(html: str, *, source: str = "the report template") -> bytes:
    """PDF bytes of an HTML report (WeasyPrint, imported on first use); ``source`` names the
    template in errors.

    Raises
    ------
    UnsafeTemplateError
        The page points at a local file or a network address (see the module's notes).
    MissingDependencyError
        WeasyPrint or its system libraries are missing.
    """
    weasyprint = _weasyprint()
    refused: list[str] = []
    fatal: type[BaseException] = getattr(getattr(weasyprint, "urls", None), "FatalURLFetchingError", _Refused)
    data: bytes | None = None
    with contextlib.suppress(fatal):
        data = bytes(weasyprint.HTML(string=html, url_fetcher=_fetcher(weasyprint, refused)).write_pdf())
    if refused:
        shown = ", ".join(repr(u) for u in dict.fromkeys(refused))
        raise UnsafeTemplateError(
            f"{source}: the PDF would read {shown}. Found a reference to a local file or a network address "
            "(an image, stylesheet, font or <a rel=\"attachment\">); expected only inline content: PDF reports "
            "read no files and reach no servers, so that a template cannot copy a file into a report or call out. "
            "Nothing was written. Fix: remove that reference from the template, or inline the resource as a "
            "data: URL (e.g. <img src=\"data:image/png;base64,...\">)."
        )
    if data is None:
        raise ReportTemplateError(
            f"{source}: WeasyPrint could not read a data: URL in the page. Expected well-formed data: URLs. "
            "Fix: check the data: URLs in the template (media type and base64 content)."
        )
    return data
