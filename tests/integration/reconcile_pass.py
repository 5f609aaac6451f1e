"""A reconciliation pass as its own process: ``python -m tests.integration.reconcile_pass DB COUNT``.

It ingests every prediction's final result through the one ingest path (the ``Ingestor`` the submitter's
reconciler uses), with the handlers loaded from the environment like any wavehook process, and prints how
many runs it enqueued.
"""

from __future__ import annotations

import os
import sys

from receiver.delivery import parse
from receiver.handlers import load_handlers
from receiver.ingest import Ingestor
from receiver.settings import Settings
from receiver.writer import Writer
from tests.support import prediction_body

MODEL = "bytedance/seedance-v1-lite-t2v-480p"


def final_status(index: int) -> str:
    return "failed" if index % 5 == 0 else "completed"


def main(count: int) -> int:
    settings = Settings.from_env(os.environ)
    handlers = load_handlers(settings)
    writer = Writer(settings.db_path)
    writer.start()
    try:
        ingestor = Ingestor(writer, terminal_statuses=settings.terminal_statuses, route=handlers.route)
        enqueued = 0
        for index in range(count):
            pid = f"pred-{index:03d}"
            body = prediction_body(pid, final_status(index), model=MODEL)
            enqueued += ingestor.ingest_sync(
                parse(body, webhook_id=f"reconcile-{pid}", source="reconcile")
            ).runs_enqueued
        return enqueued
    finally:
        writer.stop()


if __name__ == "__main__":
    print(main(int(sys.argv[1])))
