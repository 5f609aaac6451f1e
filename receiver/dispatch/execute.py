"""Calling one handler: async ones on the event loop, sync ones in a thread, both under a timeout."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import threading
from collections.abc import Callable
from typing import Any

from receiver.handlers.context import Context
from receiver.handlers.prediction import Prediction
from receiver.handlers.registry import Handler


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


async def call(handler: Handler, prediction: Prediction, ctx: Context, limit: float) -> None:
    """Run the handler to completion; raise ``HandlerTimedOut`` past ``limit`` seconds.

    A sync handler that times out keeps running in its thread (Python cannot stop a thread); its result is
    ignored and the attempt counts as failed.
    """
    scope = asyncio.timeout(limit)
    try:
        async with scope:
            if handler.is_async:
                result = await handler.func(prediction, ctx)
            else:
                result = await _in_thread(handler.func, prediction, ctx)
            if inspect.isawaitable(result):
                await result
    except TimeoutError:
        if scope.expired():
            raise HandlerTimedOut(f"the handler did not finish within its timeout of {limit:g} s") from None
        raise
