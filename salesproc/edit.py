"""Kept so that ``import salesproc.edit`` still works: the code lives in :mod:`salesproc.template.edit`."""

from salesproc.template.edit import (
    REQUIREMENTS,
    accept_activity,
    merge_milestones,
    move_milestone,
    next_template_version,
    reject_activity,
    rename_milestone,
    set_activity,
    set_milestone,
)

__all__ = ['REQUIREMENTS', 'accept_activity', 'merge_milestones', 'move_milestone', 'next_template_version', 'reject_activity', 'rename_milestone', 'set_activity', 'set_milestone']
