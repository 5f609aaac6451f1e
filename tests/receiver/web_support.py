"""In-process clients of the whole app as a browser or an API client on loopback sees it, and signed deliveries."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import Any

from httpx import Response
from starlette.testclient import TestClient

from receiver.delivery import Delivery
from receiver.handlers.registry import Handlers, Registry
from receiver.http.app import create_app
from receiver.settings import Settings
from receiver.store.records import IngestResult
from tests.support import prediction_body, signed_headers

LOOPBACK = ("127.0.0.1", 50000)
BASE = "http://127.0.0.1:8000"
NOW = 1_800_000_000.0


class Clock:
    """The app's clock, moved by the test."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@contextlib.contextmanager
def web_client(
    settings: Settings,
    *,
    clock: Callable[[], float] | None = None,
    handlers: Handlers | None = None,
    client: tuple[str, int] = LOOPBACK,
    base_url: str = BASE,
) -> Iterator[TestClient]:
    app = create_app(settings, clock=clock or Clock(), handlers=handlers)
    with TestClient(app, client=client, base_url=base_url, follow_redirects=False) as test_client:
        yield test_client


def deliver(
    client: TestClient,
    secret: str,
    prediction_id: str,
    status: str = "completed",
    *,
    webhook_id: str | None = None,
    **fields: Any,
) -> Response:
    """POST a signed delivery (signed at the app's clock) and insist it was accepted."""
    body = prediction_body(prediction_id, status, **fields)
    now = int(client.app.state.receiver.clock())  # type: ignore[attr-defined]
    headers = signed_headers(secret, body, webhook_id=webhook_id or f"{prediction_id}-{status}", timestamp=now)
    response = client.post("/webhooks/wavespeed", content=body, headers=headers)
    assert response.status_code == 200, response.text
    return response


def ingest(client: TestClient, delivery: Delivery) -> IngestResult:
    """Ingest straight through the app's own ingest path, on its event loop (faster than HTTP for many)."""
    app_state: Any = client.app.state.receiver  # type: ignore[attr-defined]
    result: IngestResult = client.portal.call(app_state.ingestor.ingest, delivery)  # type: ignore[union-attr]
    return result


def ledger_call(client: TestClient, method: str, *args: Any, **kwargs: Any) -> Any:
    """Call one method of the app's ledger on its event loop."""
    ledger = client.app.state.receiver.ledger  # type: ignore[attr-defined]
    return client.portal.call(lambda: getattr(ledger, method)(*args, **kwargs))  # type: ignore[union-attr]


def csrf_token(page_html: str) -> str:
    """The CSRF token a dashboard page carries in its meta tag."""
    found = re.search(r'<meta name="csrf-token" content="([^"]*)">', page_html)
    assert found is not None, "the page has no csrf-token meta tag"
    return found.group(1)


def failing_handlers(settings: Settings, name: str = "boom", error: str = "always fails") -> Handlers:
    """One handler for every completed prediction that fails its only attempt, so its run ends up dead."""

    def fail(_prediction: object, _ctx: object) -> None:
        raise RuntimeError(error)

    registry = Registry()
    registry.on("*", status="completed", name=name, max_attempts=1)(fail)
    return registry.select(settings)
