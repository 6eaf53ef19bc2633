"""salesproc.render: checklists, close plans and deal reviews as HTML, Markdown and PDF."""

from salesproc._hooks import set_report_renderer
from salesproc.render._render import (
    BatchResult,
    export_table,
    render_batch,
    render_report,
    report_context,
)

__all__ = ['BatchResult', 'export_table', 'render_batch', 'render_report', 'report_context']

set_report_renderer(render_report)  # so that Plan.to_html() renders without importing this step
