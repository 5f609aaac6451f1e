"""What a handler receives: a read-only ``Prediction`` and a ``Context`` for the run."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from receiver.delivery import decode_column

if TYPE_CHECKING:
    import httpx

    from receiver.settings import Settings
    from receiver.writer import Writer

# host, port -> the IP addresses the host resolves to
Resolver = Callable[[str, int], Awaitable[list[str]]]


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value


def _timestamp(value: object) -> datetime.datetime | None:
    if isinstance(value, int | float):
        return datetime.datetime.fromtimestamp(value, datetime.UTC)
    if isinstance(value, str) and value:
        try:
            return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class Prediction:
    """A prediction as the ledger holds it when the run starts. Nested values are read-only too."""

    id: str
    model: str | None
    status: str
    input: Mapping[str, Any]
    outputs: tuple[str, ...]
    error: str | None
    has_nsfw_contents: tuple[bool, ...]
    timings: Mapping[str, Any]
    created_at: datetime.datetime | None  # the provider's creation time
    completed_at: datetime.datetime | None  # when the ledger recorded the terminal status
    reference: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any], *, status: str) -> Prediction:
        def column(name: str) -> Any:
            return decode_column(name, row.get(name))

        return cls(
            id=str(row["id"]),
            model=row.get("model"),
            status=status,
            input=_freeze(column("input") or {}),
            outputs=tuple(column("outputs") or ()),
            error=row.get("error") or None,
            has_nsfw_contents=tuple(column("has_nsfw_contents") or ()),
            timings=_freeze(column("timings") or {}),
            created_at=_timestamp(row.get("provider_created_at")),
            completed_at=_timestamp(row.get("completed_at")),
            reference=row.get("reference"),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Context:
    """The run a handler is called for, and the shared resources it may use."""

    run_id: int
    handler: str
    attempt: int
    max_attempts: int
    logger: Any  # a structlog logger bound to run_id, handler, prediction_id, model, attempt
    settings: Settings
    http: httpx.AsyncClient  # the process's one long-lived client
    writer: Writer  # the ledger's group-commit writer, for handlers that record into it
    resolve: Resolver
    clock: Callable[[], float]

    @property
    def last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts
