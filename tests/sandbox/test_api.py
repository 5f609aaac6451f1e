"""The provider's v3 API as the sandbox serves it, in process: envelope, lifecycle, list, secret, errors."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import SECRET
from tests.sandbox.conftest import T2V, settle, submit
from tests.support import wait_for

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def result(client: TestClient, task_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v3/predictions/{task_id}/result")
    assert response.status_code == 200, response.text
    assert response.json()["code"] == 200
    data: dict[str, Any] = response.json()["data"]
    return data


def test_submit_answers_the_created_prediction_in_the_envelope(sandbox_app: Callable[..., TestClient]) -> None:
    """A submit answers 200 with code/message/data, data being a created prediction with the documented fields."""
    client = sandbox_app(queue_seconds=5)
    response = client.post(f"/api/v3/{T2V}", json={"prompt": "a fox", "duration": 5})
    body = response.json()
    assert (response.status_code, body["code"], body["message"]) == (200, 200, "success")
    data = body["data"]
    assert re.fullmatch(r"[0-9a-f]{32}", data["id"])
    assert data["model"] == T2V
    assert (data["status"], data["outputs"], data["has_nsfw_contents"], data["error"]) == ("created", [], [], "")
    assert data["urls"]["get"] == f"http://testserver/api/v3/predictions/{data['id']}/result"
    assert ISO_MS.match(data["created_at"])
    assert data["timings"] == {"inference": 0}


def test_task_moves_created_processing_completed(sandbox_app: Callable[..., TestClient]) -> None:
    """Polling the result sees created, then processing, then completed with one output and its timings."""
    client = sandbox_app(queue_seconds=0.15, run_seconds=0.25)
    task = submit(client, webhook=None)
    seen: list[str] = []

    def completed() -> dict[str, Any] | None:
        data = result(client, task["id"])
        if not seen or seen[-1] != data["status"]:
            seen.append(data["status"])
        return data if data["status"] == "completed" else None

    final = wait_for(completed, timeout=5, interval=0.01, what="completion")
    assert seen == ["created", "processing", "completed"]
    assert final["outputs"] == [f"http://testserver/media/outputs/{task['id']}/output.mp4"]
    assert final["has_nsfw_contents"] == [False]
    assert final["error"] == ""
    assert 200 <= final["timings"]["inference"] < 2000
    assert final["executionTime"] == final["timings"]["inference"]


@pytest.mark.parametrize(
    ("how", "inputs"),
    [
        ("header", {"prompt": "a fox"}),
        ("prompt", {"prompt": "a fox [sandbox:fail]"}),
    ],
)
def test_a_task_can_be_asked_to_fail(sandbox_app: Callable[..., TestClient], how: str, inputs: dict[str, Any]) -> None:
    """The fault `fail`, by header or by a [sandbox:fail] marker in the prompt, ends the task failed with an error."""
    client = sandbox_app()
    task = submit(client, inputs=inputs, faults="fail" if how == "header" else None, webhook=None)
    settle(client)
    data = result(client, task["id"])
    assert (data["status"], data["outputs"], data["has_nsfw_contents"]) == ("failed", [], [])
    assert "asked to fail" in data["error"]


def test_nsfw_fault_flags_the_output(sandbox_app: Callable[..., TestClient]) -> None:
    """The fault `nsfw` sets has_nsfw_contents to true for the output."""
    client = sandbox_app()
    task = submit(client, faults="nsfw", webhook=None)
    settle(client)
    assert result(client, task["id"])["has_nsfw_contents"] == [True]


def test_sync_mode_answers_once_the_task_ended(sandbox_app: Callable[..., TestClient]) -> None:
    """enable_sync_mode: true holds the submit answer until the task is completed."""
    client = sandbox_app()
    response = client.post(f"/api/v3/{T2V}", json={"prompt": "a fox", "enable_sync_mode": True})
    assert response.json()["data"]["status"] == "completed"


@pytest.mark.parametrize(
    ("headers", "key", "message"),
    [
        ({"Authorization": ""}, None, "Authorization: Bearer"),
        ({"Authorization": "Basic abc"}, None, "Authorization: Bearer"),
        ({"Authorization": "Bearer wrong"}, "right-key", "not valid"),
    ],
)
def test_requests_without_a_valid_key_are_refused_401(
    sandbox_app: Callable[..., TestClient], headers: dict[str, str], key: str | None, message: str
) -> None:
    """No bearer token, another scheme, or a key other than the configured one: 401 in the error envelope."""
    from receiver.settings import Secret

    client = sandbox_app(api_key=Secret(key) if key else None)
    response = client.post(f"/api/v3/{T2V}", json={"prompt": "a fox"}, headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == 401
    assert response.json()["data"] is None
    assert message in response.json()["message"]


@pytest.mark.parametrize(
    ("path", "kwargs", "status", "message"),
    [
        (f"/api/v3/{T2V}", {"content": b"not json"}, 400, "must be JSON"),
        (f"/api/v3/{T2V}", {"json": ["prompt"]}, 400, "JSON object"),
        (f"/api/v3/{T2V}", {"json": {"prompt": "x"}, "headers": {"X-Sandbox-Faults": "explode"}}, 400, "explode"),
        (f"/api/v3/{T2V}", {"json": {"prompt": "x"}, "headers": {"X-Sandbox-Faults": "delay=soon"}}, 400, "delay"),
        ("/api/v3/predictions", {"json": {"page_size": 101}}, 400, "page_size"),
        ("/api/v3/predictions", {"json": {"page": 0}}, 400, "page"),
        ("/api/v3/predictions", {"json": {"created_after": "yesterday"}}, 400, "created_after"),
    ],
)
def test_bad_requests_answer_400_naming_what_is_wrong(
    sandbox_app: Callable[..., TestClient], path: str, kwargs: dict[str, Any], status: int, message: str
) -> None:
    """Malformed bodies, URLs, fault headers and list filters answer 400 whose message names the culprit."""
    response = sandbox_app().post(path, **kwargs)
    assert response.status_code == status
    assert response.json()["code"] == status
    assert message in response.json()["message"]


def test_unknown_task_is_404_in_the_envelope(sandbox_app: Callable[..., TestClient]) -> None:
    """The result of an id the sandbox never issued answers 404 with the error envelope."""
    response = sandbox_app().get("/api/v3/predictions/nope/result")
    assert response.status_code == 404
    assert response.json() == {"code": 404, "message": "prediction 'nope' not found", "data": None}


def test_any_other_model_id_is_accepted_without_validation(sandbox_app: Callable[..., TestClient]) -> None:
    """A model the catalog does not document is accepted with whatever inputs it is given."""
    client = sandbox_app()
    task = submit(client, "bytedance/omni-human/v1.5", {"audio": "x", "whatever": [1, 2]}, webhook=None)
    assert task["model"] == "bytedance/omni-human/v1.5"


def test_list_is_newest_first_filtered_and_paged(sandbox_app: Callable[..., TestClient]) -> None:
    """POST /api/v3/predictions pages newest first and filters by model and status, with the total."""
    client = sandbox_app()
    ids = [submit(client, webhook=None)["id"] for _ in range(3)]
    other = submit(client, "acme/other-model", {"x": 1}, faults="fail", webhook=None)["id"]
    settle(client)
    page = client.post("/api/v3/predictions", json={"page": 1, "page_size": 2}).json()["data"]
    assert (page["page"], page["total"], [i["id"] for i in page["items"]]) == (1, 4, [other, ids[2]])
    page2 = client.post("/api/v3/predictions", json={"page": 2, "page_size": 2}).json()["data"]
    assert [i["id"] for i in page2["items"]] == [ids[1], ids[0]]
    by_model = client.post("/api/v3/predictions", json={"model": T2V}).json()["data"]
    assert by_model["total"] == 3
    failed = client.post("/api/v3/predictions", json={"status": "failed"}).json()["data"]
    assert [i["id"] for i in failed["items"]] == [other]
    later = client.post("/api/v3/predictions", json={"created_after": "2999-01-01T00:00:00Z"}).json()["data"]
    assert later["total"] == 0


def test_webhook_secret_is_served(sandbox_app: Callable[..., TestClient]) -> None:
    """GET /api/v3/webhook/secret answers the signing secret in the envelope, as the provider does."""
    response = sandbox_app().get("/api/v3/webhook/secret")
    assert response.json() == {"code": 200, "message": "success", "data": {"secret": SECRET}}


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "/webhooks/wavespeed", "http://[::1/hook", "http:///x"])
def test_webhook_must_be_an_absolute_http_url(sandbox_app: Callable[..., TestClient], url: str) -> None:
    """A webhook that is not an absolute http(s) URL (or no URL at all) answers 400 naming it; no task is made."""
    client = sandbox_app()
    response = client.post(f"/api/v3/{T2V}", json={"prompt": "x"}, params={"webhook": url})
    assert (response.status_code, f"webhook={url!r}" in response.json()["message"]) == (400, True)
    assert client.get("/_sandbox/status").json()["tasks"] == 0
