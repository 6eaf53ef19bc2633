"""salesproc.plan."""

from salesproc.plan._plan import (
    Goal,
    Plan,
    PlanItem,
    plan_backwards,
    plot_plan,
)

__all__ = ['Goal', 'Plan', 'PlanItem', 'plan_backwards', 'plot_plan']
