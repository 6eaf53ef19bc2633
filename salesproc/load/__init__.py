"""salesproc.load: any source a team has (event logs, CRM exports, XES, spreadsheets, SQL) -> History."""

from salesproc.load._load import (
    load_history,
    read_table,
)
from salesproc.load._options import LoadOptions
from salesproc.load._settings import (
    SETTINGS_FILE,
    Settings,
    find_settings,
    read_settings,
    settings_dict,
    write_settings,
)

__all__ = [
    'SETTINGS_FILE', 'LoadOptions', 'Settings', 'find_settings', 'load_history', 'read_settings', 'read_table',
    'settings_dict', 'write_settings',
]
