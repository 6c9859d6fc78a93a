"""Review sessions (statuses, history, autosave, locks, audit) and mask QA (checks, metrics,
reports).

Qt-free: the review and QA widgets, the ``review`` and ``qa`` commands and scripts all call these.
"""

from napari_medseg.review.metrics import LabelMetrics, compare
from napari_medseg.review.qa import CaseQA, Flag, QAOptions, check_mask, qa_case, run_qa
from napari_medseg.review.session import STATUSES, OpenedCase, ReviewSession, TransitionError

__all__ = [
    "STATUSES",
    "CaseQA",
    "Flag",
    "LabelMetrics",
    "OpenedCase",
    "QAOptions",
    "ReviewSession",
    "TransitionError",
    "check_mask",
    "compare",
    "qa_case",
    "run_qa",
]
