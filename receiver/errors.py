"""Errors the receiver raises and answers with.

Every error the HTTP layer answers with carries its status as a class attribute and a stable ``reason``
code; one exception handler renders them all as ``{"error": <sentence>, "reason": <code>}``
(``receiver.http.responses.error_response``).

    WavehookError
    ├── ConfigError                 a setting is missing or malformed (start-up, never HTTP)
    └── HTTPError                   status = 500
        ├── BadRequest              status = 400  (signed body unusable, malformed Content-Length)
        ├── Unauthorized            status = 401
        │   ├── SignatureError      the delivery is not provably from the provider, or is too old/new
        │   └── TokenMismatch       the webhook URL's correlation token does not match its reference
        ├── Forbidden               status = 403  (not a loopback client, or a cross-site request)
        ├── NotFound                status = 404
        ├── Conflict                status = 409  (the resource is not in a state that allows the action)
        ├── PayloadTooLarge         status = 413
        ├── TooManyAttempts         status = 429  (too many failed logins or bearer tokens from one client)
        └── StorageUnavailable      status = 503  (the database refused the write: the provider retries)
"""

from __future__ import annotations


class WavehookError(Exception):
    """Base class of every error wavehook raises on purpose."""


class ConfigError(WavehookError):
    """A setting is missing or malformed; the message names the variable and what it expects."""


class HTTPError(WavehookError):
    status = 500
    reason = "internal_error"
    # True when the request body may be left unread: the answer then closes the connection, or the server
    # would go on reading (and discarding) the rest of the body to keep the connection alive.
    close_connection = False

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason


class BadRequest(HTTPError):
    status = 400
    reason = "bad_request"


class Unauthorized(HTTPError):
    status = 401
    reason = "unauthorized"


class SignatureError(Unauthorized):
    """The one error of signature verification; ``reason`` says which check failed.

    ``authentic`` is true only when the HMAC matched and the timestamp alone was refused: such a delivery
    really came from the provider and is worth keeping in quarantine.
    """

    reason = "signature_mismatch"

    def __init__(self, message: str, *, reason: str, authentic: bool = False) -> None:
        super().__init__(message, reason=reason)
        self.authentic = authentic


class TokenMismatch(Unauthorized):
    reason = "token_mismatch"


class Forbidden(HTTPError):
    status = 403
    reason = "forbidden"


class NotFound(HTTPError):
    status = 404
    reason = "not_found"


class Conflict(HTTPError):
    status = 409
    reason = "conflict"


class PayloadTooLarge(HTTPError):
    status = 413
    reason = "body_too_large"
    close_connection = True


class TooManyAttempts(HTTPError):
    status = 429
    reason = "too_many_attempts"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed attempts to authenticate from this client; try again in {retry_after} s")
        self.retry_after = retry_after


class StorageUnavailable(HTTPError):
    status = 503
    reason = "storage_unavailable"
