"""salesproc.template."""

from salesproc.template._template import (
    Activity,
    ActivityEvidence,
    Dependency,
    Duration,
    Milestone,
    MilestoneEvidence,
    ProcessTemplate,
    Proposal,
    Provenance,
    Rate,
    TemplateDiff,
    diff_templates,
    load_template,
    save_template,
)

__all__ = ['Activity', 'ActivityEvidence', 'Dependency', 'Duration', 'Milestone', 'MilestoneEvidence', 'ProcessTemplate', 'Proposal', 'Provenance', 'Rate', 'TemplateDiff', 'diff_templates', 'load_template', 'save_template']
