"""The shape of a history: its columns, kinds of case, outcomes and statuses, and the time dtype."""

from __future__ import annotations

from typing import Final

__all__ = [
    "CASE_COLUMNS",
    "EVENT_COLUMNS",
    "EVENT_TYPES",
    "KINDS",
    "OUTCOMES",
    "OUTCOMES_BY_KIND",
    "STATUSES",
    "STATUS_OF_OUTCOME",
    "TS_DTYPE",
]

CASE_COLUMNS = [
    "case_id",
    "kind",
    "outcome",
    "status",
    "created",
    "closed",
    "amount",
    "owner",
    "segment",
    "target_date",
]
EVENT_COLUMNS = ["case_id", "name", "type", "timestamp", "owner", "role"]
KINDS = ["deal", "project"]
OUTCOMES = ["won", "lost", "on_time", "late", "failed", "open"]
OUTCOMES_BY_KIND = {"deal": ["won", "lost", "open"], "project": ["on_time", "late", "failed", "open"]}
STATUSES = ["success", "failure", "open"]
EVENT_TYPES = ["milestone", "activity"]
STATUS_OF_OUTCOME = {
    "won": "success",
    "on_time": "success",
    "lost": "failure",
    "late": "failure",
    "failed": "failure",
    "open": "open",
}
TS_DTYPE: Final = "datetime64[ns, UTC]"
