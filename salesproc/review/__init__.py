"""salesproc.review."""

from salesproc.review._review import (
    Action,
    DealReview,
    Flag,
    Gap,
    PlanSlip,
    Reason,
    Review,
    ReviewError,
    ReviewModel,
    review_deals,
)

__all__ = ['Action', 'DealReview', 'Flag', 'Gap', 'PlanSlip', 'Reason', 'Review', 'ReviewError', 'ReviewModel', 'review_deals']
