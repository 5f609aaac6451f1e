"""The provider's response shape: ``{"code", "message", "data"}`` for success and failure alike.

ProviderError            status = 500, rendered as {"code": 500, "message": <sentence>, "data": null}
├── InvalidRequest       status = 400  (inputs the model refuses, malformed JSON, bad query values)
├── Unauthorized         status = 401  (no or wrong bearer token)
├── NotFound             status = 404
├── PayloadTooLarge      status = 413
├── TooManyRequests      status = 429, with a Retry-After header (the fault `rate_limit`)
└── ServerFault          status = 500, 502 or 503 (the fault `server_error`)
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse


class ProviderError(Exception):
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.headers: dict[str, str] = {}


class InvalidRequest(ProviderError):
    status = 400


class Unauthorized(ProviderError):
    status = 401


class NotFound(ProviderError):
    status = 404


class PayloadTooLarge(ProviderError):
    status = 413


class TooManyRequests(ProviderError):
    status = 429

    def __init__(self, retry_after: float) -> None:
        seconds = max(0, round(retry_after))
        super().__init__(f"Too many requests: the rate limit was reached; retry after {seconds} s")
        self.headers = {"Retry-After": str(seconds)}


class ServerFault(ProviderError):
    def __init__(self, status: int) -> None:
        text = {500: "Internal server error", 502: "Bad gateway", 503: "Service temporarily unavailable"}
        super().__init__(f"{text.get(status, 'Server error')} (sandbox fault server_error)")
        self.status = status


def ok(data: Any) -> JSONResponse:
    return JSONResponse({"code": 200, "message": "success", "data": data})


def failure(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": status, "message": message, "data": None}, status_code=status, headers=headers)


def error_response(exc: ProviderError) -> JSONResponse:
    return failure(exc.status, exc.message, exc.headers)


async def provider_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProviderError)
    return error_response(exc)


async def starlette_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return failure(exc.status_code, exc.detail)
