"""Handlers for the benchmark's dispatch phases, loaded with ``WAVEHOOK_HANDLERS=bench.handlers``.

Each run appends ``<prediction id> <wall-clock start>`` to ``BENCH_HANDLER_LOG``; runs for the model
``bench/slow`` then sleep ``BENCH_HANDLER_SLEEP`` seconds, keeping a dispatcher slot busy.
"""

from __future__ import annotations

import asyncio
import os
import time

from bench.deliveries import SLOW_MODEL
from receiver.handlers import Context, Prediction, on

_LOG = os.environ.get("BENCH_HANDLER_LOG")
_SLEEP = float(os.environ.get("BENCH_HANDLER_SLEEP", "0"))


@on("*", status="completed", name="bench_record_start")
async def record_start(prediction: Prediction, ctx: Context) -> None:
    started = time.time()
    if _LOG:
        # One O_APPEND write per line: lines from concurrent runs never interleave.
        fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{prediction.id} {started:.6f}\n".encode())
        finally:
            os.close(fd)
    if prediction.model == SLOW_MODEL:
        await asyncio.sleep(_SLEEP)
