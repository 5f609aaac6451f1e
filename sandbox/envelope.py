"""The provider's response shape: ``{"code", "message", "data"}`` for success and failure alike.

ApiError                 status = 500, rendered as {"code": 500, "message": <sentence>, "data": null}
├── InvalidRequest       status = 400  (inputs the model refuses, malformed JSON, bad query values)
├── BadApiKey            status = 401  (no or wrong bearer token)
├── UnknownResource      status = 404
├── UploadTooLarge       status = 413
├── TooManyRequests      status = 429, with a Retry-After header (the fault `rate_limit`)
└── ServerFault          status = 500, 502 or 503 (the fault `server_error`)

(Named apart from the receiver's and the submitter's errors, so that no class name means two things.)
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse


class ApiError(Exception):
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.headers: dict[str, str] = {}


class InvalidRequest(ApiError):
    status = 400


class BadApiKey(ApiError):
    status = 401


class UnknownResource(ApiError):
    status = 404


class UploadTooLarge(ApiError):
    status = 413


class TooManyRequests(ApiError):
    status = 429

    def __init__(self, retry_after: float) -> None:
        seconds = max(0, round(retry_after))
        super().__init__(f"Too many requests: the rate limit was reached; retry after {seconds} s")
        self.headers = {"Retry-After": str(seconds)}


class ServerFault(ApiError):
    def __init__(self, status: int) -> None:
        text = {500: "Internal server error", 502: "Bad gateway", 503: "Service temporarily unavailable"}
        super().__init__(f"{text.get(status, 'Server error')} (sandbox fault server_error)")
        self.status = status


def ok(data: Any) -> JSONResponse:
    return JSONResponse({"code": 200, "message": "success", "data": data})


def failure(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": status, "message": message, "data": None}, status_code=status, headers=headers)


def error_response(exc: ApiError) -> JSONResponse:
    return failure(exc.status, exc.message, exc.headers)


async def provider_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def starlette_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return failure(exc.status_code, exc.detail)
