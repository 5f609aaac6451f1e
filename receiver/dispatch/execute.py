"""Calling one handler: async ones on the event loop, sync ones in a thread, both under a timeout."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import threading
from collections.abc import Callable
from typing import Any

import structlog

from receiver.handlers.context import Context
from receiver.handlers.prediction import Prediction
from receiver.handlers.registry import Handler

logger = structlog.get_logger()


class HandlerTimedOut(Exception):
    """The handler did not return within its timeout."""


def _in_thread(func: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
    """Run ``func`` in a daemon thread: a stuck sync handler must not keep a stopping process alive."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def settle(ok: bool, value: Any) -> None:
        if not future.done():
            future.set_result(value) if ok else future.set_exception(value)

    def target() -> None:
        try:
            result = context.run(func, *args)
        except BaseException as exc:
            outcome = (False, exc)
        else:
            outcome = (True, result)
        # The loop may have closed while the handler ran: then nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=target, name=f"wavehook-handler-{args[1].run_id}", daemon=True).start()
    return future


# How long a timed-out (or shut down) handler gets to honour its cancellation before it is left behind.
CANCEL_GRACE_SECONDS = 1.0


async def _invoke(handler: Handler, prediction: Prediction, ctx: Context) -> None:
    if handler.is_async:
        result = await handler.func(prediction, ctx)
    else:
        result = await _in_thread(handler.func, prediction, ctx)
    if inspect.isawaitable(result):
        await result


def _forget(task: asyncio.Future[Any]) -> None:
    """Leave a cancelled handler behind: whenever it ends, its outcome no longer matters to anyone."""
    task.add_done_callback(lambda done: done.cancelled() or done.exception())


async def call(handler: Handler, prediction: Prediction, ctx: Context, limit: float) -> None:
    """Run the handler to completion; raise ``HandlerTimedOut`` past ``limit`` seconds.

    The handler runs as a task of its own, so that a handler which catches its cancellation and carries on
    cannot hold its slot, or a shutdown, beyond ``limit`` (or the grace period) and ``CANCEL_GRACE_SECONDS``:
    it is left behind. A sync handler that times out keeps running in its thread (Python cannot stop a
    thread); its result is ignored and the attempt counts as failed.
    """
    task = asyncio.ensure_future(_invoke(handler, prediction, ctx))
    try:
        done, _pending = await asyncio.wait({task}, timeout=limit)
    except asyncio.CancelledError:
        task.cancel()
        if not task.done():
            _forget(task)
        raise
    if not done:
        task.cancel()
        await asyncio.wait({task}, timeout=CANCEL_GRACE_SECONDS)
        if not task.done():
            logger.error("handler_ignored_cancellation", detail="it caught its cancellation and kept running")
            _forget(task)
        elif not task.cancelled() and task.exception() is None:
            return  # it finished in the meantime after all
        raise HandlerTimedOut(f"the handler did not finish within its timeout of {limit:g} s") from None
    task.result()  # the handler's own exception, if it raised one
