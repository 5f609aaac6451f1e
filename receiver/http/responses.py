"""The one rendering of an error the receiver answers with."""

from __future__ import annotations

from starlette.responses import JSONResponse

from receiver.errors import HTTPError, TooManyAttempts


def error_response(exc: HTTPError) -> JSONResponse:
    """An ``HTTPError`` as its status, ``{"error", "reason"}``, a close if it asks for one, and ``Retry-After``
    for a throttled client."""
    headers = {"connection": "close"} if exc.close_connection else {}
    if isinstance(exc, TooManyAttempts):
        headers["retry-after"] = str(exc.retry_after)
    return JSONResponse({"error": exc.message, "reason": exc.reason}, status_code=exc.status, headers=headers)
