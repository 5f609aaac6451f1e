"""The sandbox's ASGI application: ``create_app(config)`` builds everything in its constructor."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable
from importlib import resources

import httpx
import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sandbox import admin, api, models, storage
from sandbox.config import SandboxConfig
from sandbox.courier import Courier, RetryPolicy
from sandbox.deliverylog import DeliveryLog, RequestLog
from sandbox.envelope import ApiError, provider_error, starlette_error
from sandbox.gateway import SERVER_SEND_KEY, Gateway
from sandbox.latency import AnswerDelay
from sandbox.media import SAMPLE_MP4
from sandbox.runtime import Sandbox

logger = structlog.get_logger()

ROUTES = [
    Route("/healthz", admin.healthz, methods=["GET"]),
    Route("/_sandbox/status", admin.status, methods=["GET"]),
    Route("/_sandbox/deliveries", admin.deliveries, methods=["GET"]),
    Route("/_sandbox/requests", admin.requests, methods=["GET"]),
    Route("/_sandbox/faults", admin.get_faults, methods=["GET"]),
    Route("/_sandbox/faults", admin.put_faults, methods=["PUT"]),
    Route("/_sandbox/outage", admin.outage, methods=["POST"]),
    Route("/_storage/uploads/{upload_id}", storage.put_upload, methods=["PUT"]),
    Route("/media/uploads/{upload_id}/{filename}", storage.download_upload, methods=["GET"]),
    Route("/media/outputs/{task_id}/{name}", storage.output, methods=["GET"]),
    Route("/api/v3/webhook/secret", api.webhook_secret, methods=["GET"]),
    Route("/api/v3/media/uploads", storage.create_upload, methods=["POST"]),
    Route("/api/v3/media/upload/binary", storage.upload_binary, methods=["POST"]),
    Route("/api/v3/balance", api.balance, methods=["GET"]),
    Route("/api/v3/account/balance", api.balance, methods=["GET"]),
    Route("/api/v3/models", models.list_models, methods=["GET"]),
    Route("/api/v3/predictions", api.list_predictions, methods=["POST"]),
    Route("/api/v3/predictions/{task_id}/result", api.result, methods=["GET"]),
    Route("/api/v3/predictions/{task_id}", api.result, methods=["GET"]),
    # Last: any other path under /api/v3 is a model id, slashes and all, for a POST; any other method on a path
    # no route above serves is a 404 (not a 405, which would say the path exists).
    Route("/api/v3/{model_id:path}", api.submit, methods=["POST", "GET", "PUT", "PATCH", "DELETE"]),
]


class SandboxApp(Starlette):
    """Starlette, keeping the server's own send callable in the scope: the one way a request can be answered by
    closing its connection (the fault ``drop_answer``, ``sandbox.gateway``)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[SERVER_SEND_KEY] = send
        await super().__call__(scope, receive, send)


def create_app(
    config: SandboxConfig,
    *,
    clock: Callable[[], float] = time.time,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        policy = RetryPolicy(
            initial=config.retry_initial,
            maximum=config.retry_max,
            window=config.retry_window,
            timeout=config.delivery_timeout,
        )
        rng = random.Random(config.seed)
        log = DeliveryLog(config.delivery_log)
        requests = RequestLog(config.request_log)
        # A delivery waiting for a free connection is not an attempt yet: no pool timeout.
        timeout = httpx.Timeout(config.delivery_timeout, pool=None)
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
        async with httpx.AsyncClient(transport=transport, timeout=timeout, limits=limits) as client:
            courier = Courier(
                secret=config.secret.reveal(), client=client, log=log, policy=policy, rng=rng, clock=clock
            )
            sandbox = Sandbox(config, courier=courier, log=log, requests=requests, rng=rng, clock=clock)
            with resources.as_file(SAMPLE_MP4) as sample:
                app.state.sandbox = sandbox
                app.state.sample_mp4 = sample
                logger.info(
                    "sandbox_started",
                    webhook_id_mode=config.webhook_id_mode,
                    faults=config.fault_rates,
                    api_faults=config.api_fault_rates,
                )
                try:
                    yield
                finally:
                    await sandbox.close()
                    log.close()
                    requests.close()

    return SandboxApp(
        routes=ROUTES,
        middleware=[Middleware(AnswerDelay, seconds=config.answer_delay), Middleware(Gateway)],
        exception_handlers={ApiError: provider_error, HTTPException: starlette_error},
        lifespan=lifespan,
    )
