"""What the dashboard shows of a ledger row: durations, status colours, media kinds, safe links."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from receiver import timestamps
from receiver.delivery import text_of
from receiver.statuses import TERMINAL_STATUSES

STATUS_ORDER = ("created", "processing", *TERMINAL_STATUSES)
_STATUS_TONE = {
    "created": "wait",
    "processing": "run",
    "completed": "ok",
    "failed": "bad",
    "cancelled": "warn",
    "timeout": "warn",
    # handler run states
    "pending": "wait",
    "running": "run",
    "succeeded": "ok",
    "dead": "bad",
}
_VIDEO = (".mp4", ".webm", ".mov", ".m4v")
_IMAGE = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".avif")


def tone(status: str | None) -> str:
    """The colour family of a status badge."""
    return _STATUS_TONE.get(status or "", "other")


def status_sort_key(status: str) -> tuple[int, str]:
    return (STATUS_ORDER.index(status) if status in STATUS_ORDER else len(STATUS_ORDER), status)


def parse_iso(text: str | None) -> float | None:
    moment = timestamps.parse_iso(text)
    return None if moment is None else moment.timestamp()


def started_at(prediction: Mapping[str, Any]) -> float | None:
    """When the job began, as well as the ledger knows: our submit, else the provider's clock, else first sight."""
    found = prediction.get("submitted_at") or parse_iso(prediction.get("provider_created_at"))
    return float(found) if found else prediction.get("first_seen_at")


def completion_seconds(prediction: Mapping[str, Any]) -> float | None:
    start, end = started_at(prediction), prediction.get("completed_at")
    if start is None or end is None:
        return None
    return max(0.0, float(end) - start)


def duration(seconds: float | None) -> str:
    """``420 ms``, ``4.2 s``, ``42 s``, ``3 min 5 s``, ``2 h 7 min``; an em dash when unknown."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def timestamp(value: float | None) -> str:
    """UTC ISO 8601 for ``<time datetime>`` and titles (the page turns it into local, relative text)."""
    if value is None:
        return ""
    return timestamps.iso_utc(float(value), timespec="seconds")


def safe_url(url: object) -> str | None:
    """Only http(s) URLs become links or media sources: a ``javascript:`` output must never be clickable."""
    if not isinstance(url, str) or urlsplit(url).scheme.lower() not in {"http", "https"}:
        return None
    return url


def media_kind(url: str, content_type: str | None = None) -> str:
    """``video``, ``image`` or ``link``, from the content type when known, else from the URL's path."""
    if content_type:
        major = content_type.split("/", 1)[0].lower()
        if major in {"video", "image"}:
            return major
    path = urlsplit(url).path.lower()
    if path.endswith(_VIDEO):
        return "video"
    if path.endswith(_IMAGE):
        return "image"
    return "link"


def pretty_json(value: object) -> str:
    """Indented JSON; NaN and infinities as JSON writes them, lone surrogates as U+FFFD (a page is UTF-8)."""
    try:
        return text_of(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True))
    except (TypeError, ValueError, RecursionError):  # keys of mixed types, nesting too deep to indent
        return text_of(repr(value))


def pretty_body(body: str) -> str:
    """A stored delivery body, indented when it is JSON, as received otherwise."""
    try:
        return pretty_json(json.loads(body))
    except (ValueError, RecursionError):
        return text_of(body)


def short_id(value: str, keep: int = 12) -> str:
    return value if len(value) <= keep + 1 else f"{value[:keep]}…"


def outputs(prediction: Mapping[str, Any], *, base: str = "") -> list[dict[str, Any]]:
    """Each output with its local copy when one was downloaded (served from ``{base}/media/{download id}``)."""
    local = {d["url"]: d for d in prediction.get("downloads", [])}
    found: list[dict[str, Any]] = []
    for url in prediction.get("outputs") or []:
        if not isinstance(url, str):
            continue
        download = local.get(url)
        remote = safe_url(url)
        source = f"{base}/media/{download['id']}" if download else remote
        if source is None:
            continue
        content_type = download.get("content_type") if download else None
        found.append(
            {
                "remote": remote,
                "src": source,
                "kind": media_kind(url, content_type),
                "download": download,
            }
        )
    return found


def _event_title(event: Mapping[str, Any]) -> str:
    status = event.get("status") or "no status"
    if event["source"] == "webhook":
        return f"Webhook · {status}"
    if event["source"] == "reconcile":
        return f"Reconciled · {status} (its webhook never came)"
    return f"{event['source']} · {status}"


def timeline(prediction: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Everything that happened to a prediction, oldest first: submit, deliveries, refusals, handler attempts."""
    items: list[dict[str, Any]] = []
    if prediction.get("submitted_at"):
        items.append({"at": prediction["submitted_at"], "kind": "submit", "title": "Submitted", "notes": []})
    for event in prediction.get("events", []):
        notes = ["applied" if event["applied"] else "stored, not applied (status did not move forward)"]
        if event["duplicates"]:
            notes.append(f"repeated {event['duplicates']}×")
        if event["conflict"]:
            notes.append("conflict: another body under the same webhook-id")
        items.append(
            {
                "at": event["received_at"],
                "kind": "conflict" if event["conflict"] else event["source"],
                "title": _event_title(event),
                "notes": notes,
                "webhook_id": event["webhook_id"],
                "body": event["body"],
            }
        )
    for kept in prediction.get("quarantined", []):
        items.append(
            {
                "at": kept["received_at"],
                "kind": "quarantine",
                "title": f"Quarantined · {kept['reason']}",
                "notes": [kept["detail"], *([f"seen {kept['count']}×"] if kept["count"] > 1 else [])],
                "webhook_id": kept["webhook_id"],
                "body": kept["body"],
            }
        )
    for run in prediction.get("handler_runs", []):
        for attempt in run.get("attempt_history", []):
            outcome = attempt.get("outcome") or "running"
            items.append(
                {
                    "at": attempt["started_at"],
                    "kind": "attempt",
                    "tone": tone({"retry": "failed", "timeout": "failed", "lost": "failed"}.get(outcome, outcome)),
                    "title": f"{run['handler']} · attempt {attempt['attempt']} · {outcome}",
                    "notes": [n for n in (duration_ms(attempt.get("duration_ms")), attempt.get("error")) if n],
                }
            )
    return sorted(items, key=lambda item: item["at"])


def duration_ms(value: float | None) -> str | None:
    """Milliseconds as ``duration`` shows seconds; ``None`` for what is not a finite number."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        seconds = value / 1000
    except OverflowError:  # an integer too large to divide as a float
        return None
    return duration(seconds) if math.isfinite(seconds) else None


FILTERS = {
    "tone": tone,
    "duration": duration,
    "timestamp": timestamp,
    "pretty_json": pretty_json,
    "pretty_body": pretty_body,
    "short_id": short_id,
    "duration_ms": duration_ms,
}
