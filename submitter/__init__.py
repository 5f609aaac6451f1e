"""The client side: the model catalog and validation, the provider client, submission, batches, reconciling."""

from __future__ import annotations

from submitter.catalog import MODELS, ModelSpec, get_model
from submitter.errors import SubmitterError, ValidationError
from submitter.validation import validate

__all__ = ["MODELS", "ModelSpec", "SubmitterError", "ValidationError", "get_model", "validate"]
