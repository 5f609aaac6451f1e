"""The receiver mounted under ``/wavehook`` in a host Starlette or FastAPI application, by the README's recipe:
the lifespan runs, deliveries are accepted and recorded, the dashboard's links, static files and fragments
carry the prefix, and the host's logging is left alone."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import structlog
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from receiver.http.app import create_app
from receiver.settings import Settings
from tests.receiver.web_support import BASE, LOOPBACK
from tests.support import prediction_body, signed_headers

PREFIX = "/wavehook"


def host_starlette(receiver: Starlette) -> Starlette:
    """A user's own Starlette app with a lifespan of its own, entering the receiver's."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with receiver.router.lifespan_context(app):
            yield

    async def home(_request: Any) -> PlainTextResponse:
        return PlainTextResponse("the host's own page")

    return Starlette(routes=[Route("/", home), Mount(PREFIX, app=receiver)], lifespan=lifespan)


def host_fastapi(receiver: Starlette) -> Any:
    """A user's FastAPI app: the receiver's lifespan passed as its own, the receiver mounted."""
    fastapi = pytest.importorskip("fastapi")
    app = fastapi.FastAPI(lifespan=receiver.router.lifespan_context)

    @app.get("/")
    def home() -> dict[str, str]:
        return {"page": "the host's own page"}

    app.mount(PREFIX, receiver)
    return app


HOSTS = {"starlette": host_starlette, "fastapi": host_fastapi}


@pytest.fixture(params=sorted(HOSTS))
def mounted(
    request: pytest.FixtureRequest, settings_factory: Callable[..., Settings]
) -> Iterator[tuple[TestClient, Settings]]:
    settings = settings_factory()
    host = HOSTS[request.param](create_app(settings))
    with TestClient(host, client=LOOPBACK, base_url=BASE, follow_redirects=False) as client:
        yield client, settings


def test_a_mounted_receiver_accepts_and_records_deliveries(mounted: tuple[TestClient, Settings], secret: str) -> None:
    """A signed delivery to /wavehook/webhooks/wavespeed is accepted (200) and in the ledger's API after."""
    client, _settings = mounted
    body = prediction_body("p1", "completed")
    headers = signed_headers(secret, body, webhook_id="w1")
    answer = client.post(f"{PREFIX}/webhooks/wavespeed", content=body, headers=headers)
    assert (answer.status_code, answer.json()) == (200, {"received": True, "duplicate": False})
    again = client.post(f"{PREFIX}/webhooks/wavespeed", content=body, headers=headers)
    assert again.json()["duplicate"] is True
    unsigned = client.post(f"{PREFIX}/webhooks/wavespeed", content=body)
    assert unsigned.status_code == 401
    found = client.get(f"{PREFIX}/api/predictions/p1")
    assert (found.status_code, found.json()["status"]) == (200, "completed")
    assert client.get(f"{PREFIX}/readyz").json() == {"ready": True}
    assert client.get("/").status_code == 200  # the host's own routes are untouched


def test_the_mounted_dashboard_links_under_its_prefix(mounted: tuple[TestClient, Settings], secret: str) -> None:
    """Every link, form, script, style and live fragment of the pages points under the prefix, and works there."""
    client, _settings = mounted
    body = prediction_body("p1", "completed")
    client.post(f"{PREFIX}/webhooks/wavespeed", content=body, headers=signed_headers(secret, body, webhook_id="w1"))
    for page in (f"{PREFIX}/", f"{PREFIX}/predictions/p1", f"{PREFIX}/dead"):
        html = client.get(page).text
        targets = re.findall(r'(?:href|src|action|data-live|data-replay)="([^"]+)"', html)
        local = [target for target in targets if target.startswith("/")]
        assert local, page
        assert all(target.startswith(f"{PREFIX}/") for target in local), (page, local)
        for target in local:
            if "/api/runs/" not in target and not target.endswith("/metrics"):
                assert client.get(target).status_code == 200, target
    fragments = client.get(f"{PREFIX}/fragments/index").json()["sections"]
    assert f'href="{PREFIX}/predictions/p1"' in fragments["rows"]
    assert client.get(f"{PREFIX}/static/app.js").status_code == 200


def test_an_unstarted_receiver_says_why(settings_factory: Callable[..., Settings], secret: str) -> None:
    """Mounted without running its lifespan, the receiver answers 503 saying so, never a 500."""
    host = Starlette(routes=[Mount(PREFIX, app=create_app(settings_factory()))])
    with TestClient(host, client=LOOPBACK, base_url=BASE) as client:
        body = prediction_body("p1")
        answer = client.post(
            f"{PREFIX}/webhooks/wavespeed", content=body, headers=signed_headers(secret, body, webhook_id="w1")
        )
        assert (answer.status_code, answer.json()["reason"]) == (503, "not_started")
        assert "lifespan" in answer.json()["error"]
        assert client.get(f"{PREFIX}/api/predictions").status_code == 503


def test_the_library_factory_leaves_the_hosts_logging_and_collector_alone(
    settings_factory: Callable[..., Settings],
) -> None:
    """``create_app`` and its lifespan neither reconfigure logging nor freeze the garbage collector."""
    import gc

    root = logging.getLogger()
    before = (list(root.handlers), root.level, structlog.get_config()["processors"])
    frozen = gc.get_freeze_count()
    with TestClient(host_starlette(create_app(settings_factory())), client=LOOPBACK, base_url=BASE):
        pass
    assert (list(root.handlers), root.level, structlog.get_config()["processors"]) == before
    assert gc.get_freeze_count() == frozen
