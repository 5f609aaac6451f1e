"""``GET /openapi.json``: it describes exactly the JSON API's routes, and is behind the same access rule."""

from __future__ import annotations

import re
from collections.abc import Callable

import schemathesis
from starlette.routing import Route

from receiver.http.app import create_app
from receiver.http.openapi import SPEC
from receiver.settings import Secret, Settings
from tests.receiver.web_support import web_client

TOKEN = "admin-token-for-tests-0123456789"


def api_routes(settings: Settings) -> set[tuple[str, str]]:
    """(method, path) of every JSON API route the app serves, path parameters written as OpenAPI writes them."""
    found = set()
    for route in create_app(settings).routes:
        if isinstance(route, Route) and route.path.startswith("/api/"):
            path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
            found.update((method.lower(), path) for method in route.methods or () if method != "HEAD")
    return found


def test_the_description_names_exactly_the_apps_json_routes(settings_factory: Callable[..., Settings]) -> None:
    """Every /api/ route with its methods is described, and nothing else is."""
    described = {(method, path) for path, item in SPEC["paths"].items() for method in item}
    assert described == api_routes(settings_factory())


def test_every_operation_names_its_success_and_refusals() -> None:
    """Each operation describes its 200 answer and the access refusals (401, 403, 429) as the error shape."""
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "200" in responses, (method, path)
            for status in ("401", "403", "429"):
                schema = responses[status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)


def test_the_description_is_valid_openapi() -> None:
    """schemathesis loads it and finds one operation per described route."""
    schema = schemathesis.openapi.from_dict(SPEC)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(item) for item in SPEC["paths"].values())


def test_it_is_behind_the_same_access_rule_as_the_api(settings_factory: Callable[..., Settings]) -> None:
    """Loopback only without a token; with one, the bearer header (a 401 in JSON, not a login redirect)."""
    with web_client(settings_factory()) as loopback:
        assert loopback.get("/openapi.json").json()["openapi"] == "3.1.0"
    with web_client(settings_factory(), client=("203.0.113.7", 1)) as outsider:
        assert outsider.get("/openapi.json").status_code == 403
    with web_client(settings_factory(admin_token=Secret(TOKEN)), client=("203.0.113.7", 1)) as client:
        assert client.get("/openapi.json").status_code == 401
        assert client.get("/openapi.json", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
