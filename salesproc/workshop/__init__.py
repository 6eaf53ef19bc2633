"""salesproc.workshop."""

from salesproc.workshop._workshop import (
    ReportInputs,
    Workshop,
    backtest_versions,
    open_workshop,
    report_inputs,
    suggest_target_date,
)

__all__ = ['ReportInputs', 'Workshop', 'backtest_versions', 'open_workshop', 'report_inputs', 'suggest_target_date']
