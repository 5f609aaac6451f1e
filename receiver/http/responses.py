"""The one rendering of an error the receiver answers with."""

from __future__ import annotations

from starlette.responses import JSONResponse

from receiver.errors import HTTPError


def error_response(exc: HTTPError) -> JSONResponse:
    """An ``HTTPError`` as its status, ``{"error", "reason"}``, and a close if it asks for one."""
    headers = {"connection": "close"} if exc.close_connection else None
    return JSONResponse({"error": exc.message, "reason": exc.reason}, status_code=exc.status, headers=headers)
