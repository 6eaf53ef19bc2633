"""Kept so that ``import salesproc.widgets`` still works: the code lives in :mod:`salesproc.workshop.widgets`."""

from salesproc.workshop.widgets import (
    MAPPING_FIELDS,
    ColumnMapper,
    GoalForm,
    TemplateEditor,
    guess_mapping,
    guess_preset,
    preview_table,
)

__all__ = ['MAPPING_FIELDS', 'ColumnMapper', 'GoalForm', 'TemplateEditor', 'guess_mapping', 'guess_preset', 'preview_table']
