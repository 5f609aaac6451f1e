"""The client side: the model catalog and validation, the provider client, submission, batches, reconciling."""

from __future__ import annotations

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
