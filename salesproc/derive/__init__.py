"""salesproc.derive."""

from salesproc.derive._derive import (
    derive_template,
    directly_follows,
    milestone_order,
)

__all__ = ['derive_template', 'directly_follows', 'milestone_order']
