"""The one rendering of an error the receiver answers with."""

from __future__ import annotations

from typing import NamedTuple

from starlette.responses import JSONResponse

from receiver.errors import HTTPError, TooManyAttempts


def internal_error(*, close_connection: bool = False) -> HTTPError:
    """What a bug is answered with (its details go to the log, never into the answer)."""
    error = HTTPError("internal error; see the server log")
    error.close_connection = close_connection
    return error


def error_response(exc: HTTPError) -> JSONResponse:
    """An ``HTTPError`` as its status, ``{"error", "reason"}``, a close if it asks for one, and ``Retry-After``
    for a throttled client."""
    headers = {"connection": "close"} if exc.close_connection else {}
    if isinstance(exc, TooManyAttempts):
        headers["retry-after"] = str(exc.retry_after)
    return JSONResponse({"error": exc.message, "reason": exc.reason}, status_code=exc.status, headers=headers)


class Answer(NamedTuple):
    """A complete answer, however it is sent: status, headers (content-length among them) and body."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    @classmethod
    def of_error(cls, exc: HTTPError) -> Answer:
        response = error_response(exc)
        return cls(response.status_code, response.raw_headers, bytes(response.body))
