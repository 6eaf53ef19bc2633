"""salesproc.load: any source a team has (event logs, CRM exports, XES, spreadsheets, SQL) -> History."""

from salesproc.load._load import (
    load_history,
    read_table,
)
from salesproc.load._options import LoadOptions

__all__ = ['LoadOptions', 'load_history', 'read_table']
