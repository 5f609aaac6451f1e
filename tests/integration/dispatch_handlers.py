"""Handlers that real ``wavehook serve`` / ``worker`` processes load in the dispatch tests.

Loaded through WAVEHOOK_HANDLERS=tests.integration.dispatch_handlers (with the project root on PYTHONPATH).
Each one appends a line per execution to $DISPATCH_TEST_DIR/effects.log, so a test can count executions
across processes: O_APPEND makes each short line one atomic write.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path

from receiver.handlers import Context, Prediction, RetryLater, on

DIR = Path(os.environ["DISPATCH_TEST_DIR"])  # set by every test that loads this module


def effect(name: str, prediction: Prediction, what: str = "done") -> None:
    line = f"{name}\t{prediction.id}\t{prediction.status}\t{what}\t{os.getpid()}\t{time.time():.3f}\n"
    fd = os.open(DIR / "effects.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@on("bytedance/*", name="effect_async")
async def effect_async(prediction: Prediction, ctx: Context) -> None:
    await asyncio.sleep(random.uniform(0, 0.02))  # widen the window for any double claim
    effect("effect_async", prediction)


@on("bytedance/seedance-*", status="completed", name="effect_sync")
def effect_sync(prediction: Prediction, ctx: Context) -> None:
    time.sleep(random.uniform(0, 0.02))
    effect("effect_sync", prediction)


@on("test/flaky", name="flaky")
async def flaky(prediction: Prediction, ctx: Context) -> None:
    effect("flaky", prediction, f"attempt-{ctx.attempt}")
    if ctx.attempt <= 3:
        raise RuntimeError(f"flaky failure {ctx.attempt}")


@on("test/broken", name="broken")
def broken(prediction: Prediction, ctx: Context) -> None:
    if not (DIR / "fixed").exists():
        raise RuntimeError("broken until the fixed file exists")
    effect("broken", prediction)


@on("test/block", name="blocking")
def blocking(prediction: Prediction, ctx: Context) -> None:
    effect("blocking", prediction, "started")
    deadline = time.monotonic() + 60
    while not (DIR / "gate").exists():
        if time.monotonic() > deadline:
            raise RetryLater("the gate file never appeared")
        time.sleep(0.02)
    effect("blocking", prediction)


@on("test/sleep", name="sleep_async")
async def sleep_async(prediction: Prediction, ctx: Context) -> None:
    effect("sleep_async", prediction, "started")
    await asyncio.sleep(3)
    effect("sleep_async", prediction)


@on("test/sleep", name="sleep_sync")
def sleep_sync(prediction: Prediction, ctx: Context) -> None:
    effect("sleep_sync", prediction, "started")
    time.sleep(3)
    effect("sleep_sync", prediction)
