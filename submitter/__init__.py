"""The client side: the model catalog and validation, the provider client, submission, batches, reconciling."""

from __future__ import annotations

from typing import TYPE_CHECKING

from receiver.faces import lazy

if TYPE_CHECKING:
    from submitter.blocking import Submitter
    from submitter.catalog import MODELS, ModelSpec, get_model
    from submitter.errors import SubmitterError, ValidationError
    from submitter.outcomes import BatchSummary, ReconcileCounts, Submission
    from submitter.reconcile import reconcile_once
    from submitter.service import AsyncSubmitter
    from submitter.validation import validate

__all__ = [
    "MODELS",
    "AsyncSubmitter",
    "BatchSummary",
    "ModelSpec",
    "ReconcileCounts",
    "Submission",
    "Submitter",
    "SubmitterError",
    "ValidationError",
    "get_model",
    "reconcile_once",
    "validate",
]
__getattr__, __dir__ = lazy(
    __name__,
    {
        "AsyncSubmitter": "submitter.service",
        "BatchSummary": "submitter.outcomes",
        "MODELS": "submitter.catalog",
        "ModelSpec": "submitter.catalog",
        "ReconcileCounts": "submitter.outcomes",
        "Submission": "submitter.outcomes",
        "Submitter": "submitter.blocking",
        "SubmitterError": "submitter.errors",
        "ValidationError": "submitter.errors",
        "get_model": "submitter.catalog",
        "reconcile_once": "submitter.reconcile",
        "validate": "submitter.validation",
    },
)
