"""Text the submitter's commands print: tables of models, inputs and predictions, and summaries."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from receiver.timestamps import utc_text
from submitter.catalog import MODELS, ModelSpec
from submitter.outcomes import BatchSummary, ReconcileCounts, Submission


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [header, ["-" * width for width in widths], *rows]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def models() -> str:
    rows = [(m.id, m.kind, ", ".join(s.name for s in m.inputs if s.required), m.name) for m in MODELS.values()]
    footer = "\nOther model ids are accepted too, sent without local validation. Details: wavehook models MODEL"
    return table(("model", "kind", "required inputs", "name"), rows) + footer


def model(spec: ModelSpec) -> str:
    rows = [
        (
            s.name,
            s.type,
            "yes" if s.required else "no",
            "-" if s.default is None else _value(s.default),
            s.allowed() or "-",
            s.description,
        )
        for s in spec.inputs
    ]
    head = f"{spec.name}\n{spec.id} ({spec.kind}, output: {spec.output})\n{spec.description}\n\n"
    return head + table(("input", "type", "required", "default", "allowed", "description"), rows)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


when = utc_text


PROMPT_SHOWN = 40


def prompt_start(row: dict[str, Any]) -> str:
    """The start of the prediction's prompt, on one line; ``-`` without one."""
    inputs = row.get("input")
    if isinstance(inputs, str):
        try:
            inputs = json.loads(inputs)
        except ValueError:
            inputs = None
    prompt = inputs.get("prompt") if isinstance(inputs, dict) else None
    if not isinstance(prompt, str) or not prompt.strip():
        return "-"
    text = " ".join(prompt.split())
    return text if len(text) <= PROMPT_SHOWN else text[: PROMPT_SHOWN - 1] + "…"


def predictions(rows: Sequence[dict[str, Any]]) -> str:
    body = [
        (
            r["id"],
            r.get("status") or "-",
            r.get("model") or "-",
            prompt_start(r),
            when(r.get("submitted_at")),
            when(r.get("updated_at")),
        )
        for r in rows
    ]
    return table(("id", "status", "model", "prompt", "submitted (UTC)", "updated (UTC)"), body)


def outcomes(rows: Sequence[dict[str, Any]], open_ids: Sequence[str]) -> str:
    """A batch's end: each job's final status and where its output is (the kept copy, else the provider's URL),
    or its error; then the ones still open."""
    body = []
    for row in rows:
        kept = [d.get("location") or d["path"] for d in row.get("downloads") or []]
        where = kept[0] if kept else (row.get("outputs") or ["-"])[0]
        body.append((row["id"], row.get("status") or "-", row.get("error") or where))
    counts = {status: sum(1 for r in rows if r.get("status") == status) for status in ("completed", "failed")}
    other = len(rows) - sum(counts.values())
    head = f"{counts['completed']} completed, {counts['failed']} failed" + (f", {other} other" if other else "")
    head += f", {len(open_ids)} still open" if open_ids else ""
    lines = [head, table(("prediction", "status", "output (or error)"), body)]
    lines += [f"still open: {prediction_id}" for prediction_id in open_ids]
    return "\n".join(lines)


def prediction(row: dict[str, Any]) -> str:
    lines = [
        f"{row['id']}  {row.get('status') or '-'}  {row.get('model') or '-'}",
        f"  reference: {row.get('reference') or '-'}",
        f"  submitted: {when(row.get('submitted_at'))}  updated: {when(row.get('updated_at'))}",
    ]
    if row.get("error"):
        lines.append(f"  error: {row['error']}")
    lines += [f"  output: {url}" for url in row.get("outputs") or []]
    for event in row.get("events", []):
        lines.append(f"  event {event['id']}: {event['status']} via {event['source']} at {when(event['received_at'])}")
    for run in row.get("handler_runs", []):
        lines.append(f"  run {run['id']}: {run['handler']} {run['state']} (attempts {run['attempts']})")
    return "\n".join(lines)


def submission(result: Submission) -> str:
    if result.outcome == "resolved":
        lost = "the answer was lost, the task found by lookup"
        return f"submitted {result.prediction_id} to {result.model} ({lost}; reference {result.reference})"
    return f"submitted {result.prediction_id} to {result.model} (reference {result.reference})"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{number} {reason.replace('_', ' ')}" for reason, number in sorted(counts.items()))


def batch(summary: BatchSummary) -> str:
    text = (
        f"{summary.total} job(s): {summary.submitted} submitted, {summary.resolved} found by lookup, "
        f"{summary.skipped} already sent, {summary.unknown} unknown, {summary.failed} failed"
    )
    lines = [text]
    if summary.retried:
        lines.append(f"requests sent again: {_counts(summary.retried)}")
    if summary.ambiguous:
        lines.append(
            f"doubtful submits looked up: {_counts(summary.ambiguous)}; {summary.resent} sent again (no task found)"
        )
    return "\n".join([*lines, *(f"  {problem}" for problem in summary.problems)])


def reconcile(counts: ReconcileCounts) -> str:
    return (
        f"checked {counts.checked}: {counts.missed} missed webhook(s) ingested, {counts.progressed} progressed, "
        f"{counts.open} still open, {counts.gone} gone, {counts.errors} error(s); doubtful submits: "
        f"{counts.resolved} found, {counts.not_created} not created, {counts.still_unknown} still unknown"
        + (
            f" ({counts.too_recent} sent too recently to look up: their request may still be under way; run "
            "reconcile again once the provider timeouts have passed, 70 s by default)"
            if counts.too_recent
            else ""
        )
    )
