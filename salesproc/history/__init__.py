"""salesproc.history."""

from salesproc.history._history import (
    CASE_COLUMNS,
    EVENT_COLUMNS,
    OUTCOMES,
    STATUS_OF_OUTCOME,
    History,
    HistorySummary,
    LoadReport,
)

__all__ = ['CASE_COLUMNS', 'EVENT_COLUMNS', 'OUTCOMES', 'STATUS_OF_OUTCOME', 'History', 'HistorySummary', 'LoadReport']
