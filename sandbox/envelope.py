"""The provider's response shape: ``{"code", "message", "data"}`` for success and failure alike.

ApiError                 status = 500, rendered as {"code": 500, "message": <sentence>, "data": null}
├── InvalidRequest       status = 400  (inputs the model refuses, malformed JSON, bad query values)
├── BadApiKey            status = 401  (no or wrong bearer token)
├── UnknownResource      status = 404
└── UploadTooLarge       status = 413

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


class InvalidRequest(ApiError):
    status = 400


class BadApiKey(ApiError):
    status = 401


class UnknownResource(ApiError):
    status = 404


class UploadTooLarge(ApiError):
    status = 413


def ok(data: Any) -> JSONResponse:
    return JSONResponse({"code": 200, "message": "success", "data": data})


def failure(status: int, message: str) -> JSONResponse:
    return JSONResponse({"code": status, "message": message, "data": None}, status_code=status)


async def provider_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return failure(exc.status, exc.message)


async def starlette_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return failure(exc.status_code, exc.detail)
