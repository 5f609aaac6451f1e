"""The demo's view of its jobs: progress lines as the provider and the ledger see them, and the final table.

The provider's side (created, processing) is read from its list endpoint, the way a person would look at the
provider's dashboard; everything else comes from the receiver's JSON API, i.e. from the ledger.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import click
import httpx

from receiver.statuses import TERMINAL_STATUSES

POLL_SECONDS = 0.2
FINAL = frozenset(TERMINAL_STATUSES)
COLOURS = {
    "completed": "green",
    "saved": "green",
    "failed": "red",
    "refused": "red",
    "timed out": "red",
    "retrying": "yellow",
    "not saved": "red",
}


@dataclasses.dataclass
class DemoJob:
    model: str
    inputs: dict[str, Any]
    expected: str = "completed"
    prediction_id: str | None = None
    status: str | None = None  # as the ledger has it
    seconds: float | None = None  # submitted -> final status in the ledger
    output: str | None = None  # the saved file, else what became of it
    saved: bool = False
    settled: bool = False
    seen: set[str] = dataclasses.field(default_factory=set)

    @property
    def as_expected(self) -> bool:
        return self.status == self.expected and (self.saved or self.expected != "completed")


def shown_path(path: str) -> str:
    """A path relative to the working directory when it is below it, else as it is."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


class Progress:
    def __init__(
        self, jobs: list[DemoJob], *, sandbox_url: str, receiver_url: str, api_key: str, started: float
    ) -> None:
        self.jobs = jobs
        self.sandbox_url = sandbox_url
        self.receiver_url = receiver_url
        self.api_key = api_key
        self.started = started

    def say(self, job: DemoJob, label: str, detail: str = "") -> None:
        job.seen.add(label)
        elapsed = time.monotonic() - self.started
        tag = click.style(f"{label:<10}", fg=COLOURS.get(label))
        click.echo(f"{elapsed:6.1f}s  {tag}  {job.model:<46} {detail}".rstrip())

    def submitted(self, job: DemoJob, prediction_id: str) -> None:
        job.prediction_id = prediction_id
        self.say(job, "submitted", f"task {prediction_id}, recorded in the ledger")

    def problem(self, job: DemoJob, text: str) -> None:
        job.settled = True
        job.output = text.splitlines()[0]
        self.say(job, "refused", job.output)

    def watch(self, *, deadline: float) -> None:
        """Poll until every job is settled (final in the ledger, its output saved) or the deadline passes."""
        with httpx.Client(timeout=5.0) as http:
            while True:
                provider = self._provider_statuses(http)
                for job in self.jobs:
                    if not job.settled and job.prediction_id is not None:
                        self._update(job, provider.get(job.prediction_id), self._ledger(http, job.prediction_id))
                if all(job.settled for job in self.jobs):
                    return
                if time.monotonic() > deadline:
                    for job in self.jobs:
                        if not job.settled:
                            late = "output not saved in time" if job.status == "completed" else "did not end in time"
                            job.output = job.output or late
                            self.say(job, "timed out", f"last seen {job.status or 'not in the ledger'}")
                    return
                time.sleep(POLL_SECONDS)

    def _provider_statuses(self, http: httpx.Client) -> dict[str, str]:
        response = http.post(
            f"{self.sandbox_url}/api/v3/predictions",
            json={"page": 1, "page_size": 100},
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        return {item["id"]: item["status"] for item in response.json()["data"]["items"]}

    def _ledger(self, http: httpx.Client, prediction_id: str) -> dict[str, Any]:
        response = http.get(f"{self.receiver_url}/api/predictions/{prediction_id}")
        if response.status_code == 404:
            return {}
        response.raise_for_status()
        item: dict[str, Any] = response.json()
        return item

    def _update(self, job: DemoJob, provider_status: str | None, item: dict[str, Any]) -> None:
        if provider_status == "processing" and "processing" not in job.seen:
            self.say(job, "processing", "at the provider")
        status = item.get("status")
        if status not in FINAL:
            return
        if status not in job.seen:
            job.status = status
            if item.get("completed_at") and item.get("submitted_at"):
                job.seconds = item["completed_at"] - item["submitted_at"]
            error = f": {item['error']}" if item.get("error") else ""
            self.say(job, status, f"webhook verified and stored in the ledger{error}")
        if status != "completed":
            job.settled = True
            return
        self._check_download(job, item)

    def _check_download(self, job: DemoJob, item: dict[str, Any]) -> None:
        downloads = item.get("downloads") or []
        runs = [run for run in item.get("handler_runs", []) if run.get("handler") == "download_outputs"]
        if downloads:
            job.output, job.saved, job.settled = shown_path(downloads[0]["path"]), True, True
            self.say(job, "saved", job.output)
            return
        failing = next((run["last_error"] for run in runs if run.get("last_error")), None)
        if failing and "retrying" not in job.seen:
            self.say(job, "retrying", f"download_outputs: {failing}")
        if not runs or any(run.get("state") == "dead" for run in runs):
            job.settled = True
            job.output = (item.get("outputs") or ["no output"])[0] if not runs else "download failed"
            self.say(job, "not saved", (runs[0].get("last_error") or "") if runs else "no download handler is on")


def render_table(jobs: list[DemoJob]) -> str:
    header = ("model", "expected", "final", "seconds", "output")
    rows = [
        (
            job.model,
            job.expected,
            job.status or "-",
            f"{job.seconds:.1f}" if job.seconds is not None else "-",
            job.output or "-",
        )
        for job in jobs
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(4)]
    lines = []
    for row in (header, *rows):
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].ljust(widths[2]), row[3].rjust(widths[3])]
        lines.append("  ".join([*cells, row[4]]))
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
