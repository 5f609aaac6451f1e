"""Every webhook the sandbox sent, tried, refused to send or gave up on: in memory and as JSON lines.

A test compares this log with the receiver's ledger. Each record has ``seq``, ``at`` (Unix seconds),
``task_id``, ``webhook_id``, ``event_status``, ``kind`` (genuine | duplicate | stale_processing |
bad_signature | stale_timestamp | dropped), ``attempt``, ``faults`` (the task's fault plan), ``timestamp``
(the webhook-timestamp sent), ``body_sha256``, ``url``, ``outcome`` (accepted | refused | error | down |
dropped | gave_up), ``http_status`` and ``error``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

OUTCOMES = ("accepted", "refused", "error", "down", "dropped", "gave_up")


class DeliveryLog:
    def __init__(self, path: Path | None = None) -> None:
        self._records: list[dict[str, Any]] = []
        self._file: IO[str] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 (closed by close())

    def record(self, **fields: Any) -> dict[str, Any]:
        entry = {"seq": len(self._records) + 1, **fields}
        self._records.append(entry)
        if self._file is not None:
            self._file.write(json.dumps(entry, separators=(",", ":")) + "\n")
        return entry

    def query(self, *, task_id: str | None = None, after: int = 0) -> list[dict[str, Any]]:
        """Records with ``seq`` above ``after``, optionally of one task."""
        return [r for r in self._records[after:] if task_id is None or r["task_id"] == task_id]

    def __len__(self) -> int:
        return len(self._records)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class RequestLog(DeliveryLog):
    """The same record keeping for API requests (``sandbox.gateway`` describes a record)."""
