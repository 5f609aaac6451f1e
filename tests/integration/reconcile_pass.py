"""A reconciliation pass as its own process: ``python -m tests.integration.reconcile_pass DB COUNT``.

It ingests every prediction's final result through the one ingest path (the ``Ingestor`` the submitter's
reconciler uses) on the ledger ``open_ledger`` opens, with the handlers loaded from the environment like any
wavehook process, and prints how many runs it enqueued.
"""

from __future__ import annotations

import asyncio
import os
import sys

from receiver.delivery import parse
from receiver.handlers import load_handlers
from receiver.ingest import Ingestor
from receiver.settings import Settings
from receiver.store.ledger import open_ledger
from tests.support import prediction_body

MODEL = "bytedance/seedance-v1-lite-t2v-480p"


def final_status(index: int) -> str:
    return "failed" if index % 5 == 0 else "completed"


async def main(count: int) -> int:
    settings = Settings.from_env(os.environ)
    handlers = load_handlers(settings)
    async with await open_ledger(settings) as ledger:
        ingestor = Ingestor(ledger, terminal_statuses=settings.terminal_statuses, route=handlers.route)
        enqueued = 0
        for index in range(count):
            pid = f"pred-{index:03d}"
            body = prediction_body(pid, final_status(index), model=MODEL)
            result = await ingestor.ingest(parse(body, webhook_id=f"reconcile-{pid}", source="reconcile"))
            enqueued += result.runs_enqueued
        return enqueued


if __name__ == "__main__":
    print(asyncio.run(main(int(sys.argv[1]))))
