"""Kept so that ``import salesproc.backtest`` still works: the code lives in :mod:`salesproc.review.backtest`."""

from salesproc.review.backtest import (
    BacktestResult,
    Metrics,
    TemplateComparison,
    backtest,
    compare_templates,
)

__all__ = ['BacktestResult', 'Metrics', 'TemplateComparison', 'backtest', 'compare_templates']
