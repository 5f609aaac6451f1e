"""The receiver's ASGI application: ``create_app(settings)`` builds everything in its constructor."""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import time
from collections.abc import AsyncIterator, Callable

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from receiver import correlation
from receiver.dashboard import routes as dashboard
from receiver.dispatch.service import dispatching_in_web
from receiver.errors import HTTPError
from receiver.handlers.registry import Handlers, load_handlers
from receiver.http import auth, connections, health, openapi, predictions, runs, webhook
from receiver.http.metrics import Metrics, metrics
from receiver.http.responses import error_response, internal_error
from receiver.http.state import ReceiverState
from receiver.ingest import Ingestor, Router, no_handlers
from receiver.media_store import open_media_store
from receiver.refusals import Refusals
from receiver.settings import Settings
from receiver.signature import Verifier
from receiver.store.ledger import open_ledger
from receiver.store.location import describe

logger = structlog.get_logger()


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPError)
    return error_response(exc)


async def _starlette_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    reason = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse({"error": exc.detail, "reason": reason}, status_code=exc.status_code)


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unexpected_error", error_type=type(exc).__name__)
    return error_response(internal_error())


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    route: Router = no_handlers,
    handlers: Handlers | None = None,
) -> Starlette:
    """``handlers``: enqueue runs for them on ingest and, unless WAVEHOOK_DISPATCH_IN_WEB=false, run them here."""
    if handlers is not None and route is no_handlers:
        route = handlers.route
    verifier = Verifier(settings.require_secrets(), tolerance_seconds=settings.tolerance_seconds, clock=clock)
    app_metrics = Metrics(multiprocess_dir=settings.metrics_dir)
    media = open_media_store(settings)
    refusals = Refusals(clock=clock)

    @contextlib.asynccontextmanager
    async def lifespan(_app: object) -> AsyncIterator[None]:
        # The state goes on the receiver's own app, not on the one running the lifespan: a host application
        # that mounts the receiver runs this from its own lifespan.
        ledger = await open_ledger(settings)
        try:
            keys = correlation.Keys.of(
                [s.reveal() for s in settings.correlation_secrets], await ledger.correlation_secret()
            )
            ingestor = Ingestor(ledger, terminal_statuses=settings.terminal_statuses, route=route, clock=clock)
            state = ReceiverState(
                settings=settings,
                verifier=verifier,
                ledger=ledger,
                ingestor=ingestor,
                metrics=app_metrics,
                media=media,
                correlation_secret=keys.signing,
                correlation_keys=keys,
                session_secret=await ledger.session_secret(),
                clock=clock,
                refusals=refusals,
            )
            logger.info("receiver_started", ledger=describe(settings.db), media=media.description, pid=os.getpid())
            async with dispatching_in_web(ledger, handlers, settings, clock=clock) as dispatcher:
                state.dispatcher = dispatcher
                receiver_app.state.receiver = state
                try:
                    yield
                finally:
                    del receiver_app.state.receiver
        finally:
            await ledger.close()

    endpoint = webhook.WebhookEndpoint()
    receiver_app = Starlette(
        routes=[
            Route(correlation.WEBHOOK_PATH, endpoint, methods=["POST"]),
            Route("/healthz", health.healthz, methods=["GET"]),
            Route("/readyz", health.readyz, methods=["GET"]),
            Route("/api/predictions", predictions.list_predictions, methods=["GET"]),
            Route("/api/predictions/{prediction_id:str}", predictions.get_prediction, methods=["GET"]),
            Route("/api/summary", predictions.summary, methods=["GET"]),
            Route("/api/runs", runs.list_runs, methods=["GET"]),
            Route("/api/runs/replay-dead", runs.replay_dead, methods=["POST"]),
            Route("/api/runs/replay", runs.replay_prediction, methods=["POST"]),
            Route("/api/runs/{run_id:str}", runs.get_run, methods=["GET"]),
            Route("/api/runs/{run_id:str}/replay", runs.replay_run, methods=["POST"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route(openapi.PATH, openapi.openapi, methods=["GET"]),
            *dashboard.routes(),
        ],
        middleware=[
            Middleware(webhook.WebhookFastPath, path=correlation.WEBHOOK_PATH, endpoint=endpoint),
            Middleware(auth.AccessControl, admin_token=settings.admin_token, clock=clock),
        ],
        exception_handlers={
            HTTPError: _http_error,
            HTTPException: _starlette_error,
            Exception: _unexpected,
        },
        lifespan=lifespan,
    )
    return receiver_app


def serving_app(settings: Settings, handlers: Handlers) -> Starlette:
    """The app of a process that only serves it (``wavehook serve``), not of a library user's application."""
    app = create_app(settings, handlers=handlers)
    # The server's protocol answers deliveries itself, without the ASGI stack: the same answers in less time.
    connections.answer_directly(correlation.WEBHOOK_PATH, functools.partial(webhook.respond, app))
    # What start-up built lives as long as the server: out of the collector's sight, each full collection
    # walks only what requests leave behind (a few µs a delivery, and shorter pauses).
    gc.freeze()
    return app


def create_app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory`` (each of several worker processes): settings from the environment."""
    from receiver import logs

    settings = Settings.from_env(os.environ)
    logs.configure(log_format=settings.log_format, level=settings.log_level)
    return serving_app(settings, load_handlers(settings))
