"""The receiver's ASGI application: ``create_app(settings)`` builds everything in its constructor."""

from __future__ import annotations

import contextlib
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

from receiver import api, auth, dashboard, health, openapi, runs_api, webhook
from receiver.dispatch.service import dispatching_in_web
from receiver.errors import HTTPError, error_response
from receiver.handlers.registry import Handlers, load_handlers
from receiver.ingest import Ingestor, no_handlers
from receiver.metrics import Metrics, metrics
from receiver.reader import Reader
from receiver.settings import Settings
from receiver.signature import Verifier
from receiver.store import connect, open_database
from receiver.store.ingest import Router, get_meta
from receiver.writer import Writer

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
    return JSONResponse({"error": "internal error; see the server log", "reason": "internal_error"}, 500)


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

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        open_database(settings.db_path, busy_timeout_ms=settings.busy_timeout_ms)
        conn = connect(settings.db_path, busy_timeout_ms=settings.busy_timeout_ms)
        try:
            secret = get_meta(conn, "correlation_secret")
        finally:
            conn.close()
        writer = Writer(settings.db_path, busy_timeout_ms=settings.busy_timeout_ms)
        writer.start()
        reader = Reader(settings.db_path, busy_timeout_ms=settings.busy_timeout_ms)
        app.state.settings = settings
        app.state.verifier = verifier
        app.state.writer = writer
        app.state.reader = reader
        app.state.correlation_secret = secret
        app.state.metrics = app_metrics
        app.state.ingestor = Ingestor(writer, terminal_statuses=settings.terminal_statuses, route=route, clock=clock)
        logger.info("receiver_started", db=str(settings.db_path), pid=os.getpid())
        wake = app.state.ingestor.runs_waiting
        try:
            async with dispatching_in_web(writer, handlers, settings, wake=wake, clock=clock) as dispatcher:
                app.state.dispatcher = dispatcher
                yield
        finally:
            writer.stop()
            reader.close()

    endpoint = webhook.WebhookEndpoint()
    return Starlette(
        routes=[
            Route(webhook.PATH, endpoint, methods=["POST"]),
            Route("/healthz", health.healthz, methods=["GET"]),
            Route("/readyz", health.readyz, methods=["GET"]),
            Route("/api/predictions", api.list_predictions, methods=["GET"]),
            Route("/api/predictions/{prediction_id:str}", api.get_prediction, methods=["GET"]),
            Route("/api/summary", api.summary, methods=["GET"]),
            Route("/api/runs", runs_api.list_runs, methods=["GET"]),
            Route("/api/runs/replay-dead", runs_api.replay_dead, methods=["POST"]),
            Route("/api/runs/replay", runs_api.replay_prediction, methods=["POST"]),
            Route("/api/runs/{run_id:str}", runs_api.get_run, methods=["GET"]),
            Route("/api/runs/{run_id:str}/replay", runs_api.replay_run, methods=["POST"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route(openapi.PATH, openapi.openapi, methods=["GET"]),
            *dashboard.routes(),
        ],
        middleware=[
            Middleware(webhook.WebhookFastPath, path=webhook.PATH, endpoint=endpoint),
            Middleware(auth.AccessControl, admin_token=settings.admin_token, clock=clock),
        ],
        exception_handlers={
            HTTPError: _http_error,
            HTTPException: _starlette_error,
            Exception: _unexpected,
        },
        lifespan=lifespan,
    )


def create_app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory`` (several worker processes): settings from the environment."""
    from receiver import logs

    settings = Settings.from_env(os.environ)
    logs.configure(log_format=settings.log_format, level=settings.log_level)
    app = create_app(settings, handlers=load_handlers(settings))
    # What start-up built lives as long as the server: out of the collector's sight, each full collection
    # walks only what requests leave behind (a few µs a delivery, and shorter pauses).
    gc.freeze()
    return app
