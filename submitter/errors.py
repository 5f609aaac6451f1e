"""Errors the submitter raises; nothing above the provider client sees an ``httpx`` exception.

WavehookError (receiver.errors)
└── SubmitterError
    ├── ValidationError         inputs break the model's documented constraints (.problems: every one)
    ├── UploadError             a local file given as an image cannot be uploaded (missing, type, size)
    ├── NotConfigured           a setting the operation needs is missing (API key, public URL)
    ├── BatchError              the batch file has problems (.problems: each, by line); nothing was sent
    ├── AmbiguousId             a shortened prediction id that several predictions' ids start with
    ├── WaitTimeout             no final status within the time allowed; the prediction goes on
    ├── NotCreated              a doubtful submit was looked up: no task was created, so it may be sent again
    └── ProviderError           the provider answered with an error, or could not be reached
        ├── AuthenticationError 401/403: the API key is missing, wrong or lacks the right
        ├── RateLimited         429 (after the retries allowed)
        ├── ProviderUnavailable 5xx, or no connection (after the retries allowed)
        ├── TaskNotFound        404 for a task: it never existed, or the provider deleted it (after 7 days)
        └── AmbiguousSubmit     the submit may have created a task; look it up, never re-send blindly
"""

from __future__ import annotations

from receiver.errors import WavehookError


class SubmitterError(WavehookError):
    """Base class of every error the submitter raises on purpose."""


class ValidationError(SubmitterError):
    """Inputs that the model's catalog entry refuses; ``problems`` lists every one, as sentences."""

    def __init__(self, model_id: str, problems: list[str]) -> None:
        self.model_id = model_id
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{len(problems)} invalid input(s) for {model_id}:\n{lines}")


class UploadError(SubmitterError):
    """A local file cannot be uploaded; the message names the field and the path."""


class NotConfigured(SubmitterError):
    """A setting is missing; the message names the environment variable."""


class BatchError(SubmitterError):
    """The batch file has problems; ``problems`` lists each, by line, and nothing was sent."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{len(problems)} problem(s) in the batch, nothing was sent:\n{lines}")


class AmbiguousId(SubmitterError):
    """A shortened prediction id that more than one prediction's id starts with."""


class WaitTimeout(SubmitterError):
    """No final status within the time allowed; the prediction goes on, and its webhook may still come."""


class NotCreated(SubmitterError):
    """A submit whose answer was lost or an error was resolved by a lookup: the provider created no task."""


class ProviderError(SubmitterError):
    """The provider refused a request; ``status`` is the HTTP status (0 without a response)."""

    def __init__(self, message: str, *, status: int = 0, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class AuthenticationError(ProviderError):
    pass


class RateLimited(ProviderError):
    pass


class ProviderUnavailable(ProviderError):
    pass


class TaskNotFound(ProviderError):
    """The provider has no such task (never created, or deleted after its 7 days)."""


class AmbiguousSubmit(ProviderError):
    """The submit request may have reached the provider: the task may exist. ``reference`` finds it;
    ``cause`` is ``no_answer`` (timeout, dropped connection) or ``server_error`` (a 5xx other than 503)."""

    def __init__(self, message: str, *, reference: str | None = None, cause: str = "no_answer") -> None:
        super().__init__(message)
        self.reference = reference
        self.cause = cause
