"""Checking inputs as the provider would, with the submitter's catalog of documented models.

Models the catalog does not know are accepted whatever their inputs, as the provider's other models are.
Inputs a documented model's page does not list are accepted and logged with a did-you-mean (the provider
takes the extra fields real clients send), or refused with the rest when the sandbox runs ``--strict-inputs``.
"""

from __future__ import annotations

from typing import Any

import structlog

from sandbox.envelope import InvalidRequest
from submitter.errors import ValidationError
from submitter.validation import unknown_inputs, validate

logger = structlog.get_logger()


def check(model_id: str, payload: dict[str, Any], *, strict: bool = False) -> None:
    """Raise ``InvalidRequest`` (400) naming every problem; the inputs themselves are stored as submitted."""
    try:
        validate(model_id, payload, allow_extra=not strict)
    except ValidationError as exc:
        raise InvalidRequest(f"Invalid inputs for model {model_id}: {'; '.join(exc.problems)}") from None
    unknown = unknown_inputs(model_id, payload)
    if unknown:
        logger.warning("unknown_inputs_accepted", model=model_id, problems=unknown)
