"""Refusing inputs as the provider would, with the submitter's catalog of documented models.

Models the catalog does not know are accepted whatever their inputs, as the provider's other models are.
"""

from __future__ import annotations

from typing import Any

from sandbox.envelope import InvalidRequest
from submitter.errors import ValidationError
from submitter.validation import validate


def check(model_id: str, payload: dict[str, Any]) -> None:
    """Raise ``InvalidRequest`` (400) naming every problem; the inputs themselves are stored as submitted."""
    try:
        validate(model_id, payload)
    except ValidationError as exc:
        raise InvalidRequest(f"Invalid inputs for model {model_id}: {'; '.join(exc.problems)}") from None
