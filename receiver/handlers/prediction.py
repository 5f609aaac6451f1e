"""What a handler is called with: a read-only ``Prediction``, as the ledger holds it when the run starts."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from receiver.delivery import decode_column
from receiver.timestamps import from_unix, parse_iso


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value


def _timestamp(value: object) -> datetime.datetime | None:
    if isinstance(value, int | float):
        return from_unix(value)
    return parse_iso(value) if isinstance(value, str) else None


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
