"""The rest of the provider's surface, against a real ``wavehook sandbox`` process: the multipart upload, sync
mode's timeout answer, balance, the models listing, 404s, cancelled/timeout outcomes, created_at's precision
and the policy on inputs a model's page does not list."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import wavespeed

from sandbox.media import png
from tests.support import Process, wait_for

pytestmark = pytest.mark.integration
AUTH = {"Authorization": "Bearer sandbox-key"}
T2V = "bytedance/seedance-v1-lite-t2v-480p"


def api(sandbox: Process, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {**AUTH, **kwargs.pop("headers", {})}
    return httpx.request(method, f"{sandbox.url}{path}", headers=headers, timeout=10, **kwargs)  # type: ignore[attr-defined]


def status(sandbox: Process) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{sandbox.url}/_sandbox/status", timeout=5).json()  # type: ignore[attr-defined]
    return answer


def result(sandbox: Process, task_id: str) -> dict[str, Any]:
    data: dict[str, Any] = api(sandbox, "GET", f"/api/v3/predictions/{task_id}/result").json()["data"]
    return data


def test_multipart_upload_answers_the_documented_shape_and_serves_the_file(
    sandbox_factory: Callable[..., Process],
) -> None:
    """POST /api/v3/media/upload/binary with the field `file` stores it and answers type, download_url, filename
    and size; the URL serves the bytes; no task is started."""
    sandbox = sandbox_factory()
    answer = api(sandbox, "POST", "/api/v3/media/upload/binary", files={"file": ("cat.png", png(), "image/png")})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["code"], body["message"]) == (200, "success")
    data = body["data"]
    assert (data["type"], data["filename"], data["size"]) == ("image", "cat.png", len(png()))
    download = httpx.get(data["download_url"])
    assert (download.content, download.headers["content-type"]) == (png(), "image/png")
    video = api(sandbox, "POST", "/api/v3/media/upload/binary", files={"file": ("clip.mp4", b"\0" * 64)})
    assert video.json()["data"]["type"] == "video"  # typed by the file name when the part has no type
    assert status(sandbox)["tasks"] == 0


def test_upload_cap_and_bad_uploads_are_refused_clearly(sandbox_factory: Callable[..., Process]) -> None:
    """--max-upload-mb bounds both uploads (413 naming the limit); a missing field or a non-media file is a 400."""
    sandbox = sandbox_factory(max_upload_mb=1)
    big = b"\0" * (1024 * 1024 + 1)
    too_big = api(sandbox, "POST", "/api/v3/media/upload/binary", files={"file": ("big.mp4", big, "video/mp4")})
    assert (too_big.status_code, too_big.json()["code"]) == (413, 413)
    assert "1048576 bytes" in too_big.json()["message"]
    ticket = api(sandbox, "POST", "/api/v3/media/uploads", json={"filename": "big.mp4", "size": len(big)})
    assert ticket.status_code == 413
    missing = api(sandbox, "POST", "/api/v3/media/upload/binary", files={"other": ("a.png", png(), "image/png")})
    assert (missing.status_code, "field `file`" in missing.json()["message"]) == (400, True)
    text = api(sandbox, "POST", "/api/v3/media/upload/binary", files={"file": ("a.txt", b"hi", "text/plain")})
    assert (text.status_code, "text/plain is not supported" in text.json()["message"]) == (400, True)


def test_api_paths_are_never_model_ids_and_unknown_paths_are_404(sandbox_factory: Callable[..., Process]) -> None:
    """POSTs under /api/v3/media/ or /api/v3/predictions/ that no route serves, and GETs of unknown paths, answer
    404 in the envelope; none starts a task."""
    sandbox = sandbox_factory()
    for method, path in [
        ("POST", "/api/v3/media/upload/other"),
        ("POST", "/api/v3/media"),
        ("POST", "/api/v3/predictions/abc/cancel"),
        ("GET", "/api/v3/no/such/thing"),
        ("GET", "/api/v3/predictions"),
        ("GET", "/nowhere"),
    ]:
        answer = api(sandbox, method, path, json={"prompt": "x"} if method == "POST" else None)
        assert (answer.status_code, answer.json()["code"], answer.json()["data"]) == (404, 404, None), path
    assert status(sandbox)["tasks"] == 0


def test_sync_mode_times_out_as_the_provider_answers_and_the_task_carries_on(
    sandbox_factory: Callable[..., Process],
) -> None:
    """Past --sync-timeout, enable_sync_mode answers 200 with the task, code 5004 and "Sync mode timed out"
    naming where to query it; the task then completes. The official SDK takes its sync-timeout path on it."""
    sandbox = sandbox_factory(sync_timeout=0.2, run_time=1.5)
    answer = api(sandbox, "POST", f"/api/v3/{T2V}", json={"prompt": "a slow fox", "enable_sync_mode": True})
    assert answer.status_code == 200
    data = answer.json()["data"]
    assert data["code"] == 5004
    assert data["status"] in ("created", "processing")
    assert data["error"].startswith("Sync mode timed out after 0.2 s")
    assert data["urls"]["get"] in data["error"]
    wait_for(lambda: result(sandbox, data["id"])["status"] == "completed", timeout=10, what="the task to complete")
    sdk: Any = wavespeed.Client(api_key="sandbox-key", base_url=sandbox.url)  # type: ignore[attr-defined]
    with contextlib.redirect_stdout(io.StringIO()):
        with pytest.raises(RuntimeError, match=r"Sync mode timed out \(task_id: [0-9a-f]{32}\)"):
            sdk.run(T2V, {"prompt": "another slow fox"}, enable_sync_mode=True, timeout=10)
        outcome = sdk.run_no_throw(T2V, {"prompt": "a third"}, enable_sync_mode=True, timeout=10)
    assert (outcome["status"], outcome["outputs"]) == ("processing", None)
    fast = sandbox_factory(sync_timeout=10)
    done = api(fast, "POST", f"/api/v3/{T2V}", json={"prompt": "a quick fox", "enable_sync_mode": True})
    assert (done.json()["data"]["status"], len(done.json()["data"]["outputs"])) == ("completed", 1)


def test_balance_and_models_listing(sandbox_factory: Callable[..., Process]) -> None:
    """Both balance paths answer the configured amount; the models listing gives each catalogued model with its
    request schema (required fields, ranges, choices, defaults) in the shape the provider's clients read."""
    sandbox = sandbox_factory(balance=12.5)
    assert api(sandbox, "GET", "/api/v3/balance").json()["data"] == {"balance": 12.5}
    assert api(sandbox, "GET", "/api/v3/account/balance").json()["data"] == {"balance": 12.5, "currency": "USD"}
    assert api(sandbox, "GET", "/api/v3/balance", headers={"Authorization": ""}).status_code == 401
    models = {m["model_id"]: m for m in api(sandbox, "GET", "/api/v3/models").json()["data"]}
    assert len(models) == 5
    t2v = models[T2V]
    assert (t2v["type"], t2v["name"]) == ("text-to-video", "Bytedance Seedance V1 Lite T2V 480p")
    schema = t2v["api_schema"]["api_schemas"][0]["request_schema"]
    assert schema["required"] == ["prompt", "duration"]
    assert schema["x-order-properties"] == ["prompt", "aspect_ratio", "duration", "camera_fixed", "seed"]
    assert schema["properties"]["duration"] == {
        "type": "integer",
        "description": "The duration of the generated media in seconds.",
        "default": 5,
        "minimum": 5,
        "maximum": 10,
    }
    assert "9:21" in schema["properties"]["aspect_ratio"]["enum"]
    refs = models["bytedance/seedance-v1-lite/reference-to-video"]["api_schema"]["api_schemas"][0]
    assert refs["request_schema"]["properties"]["reference_images"]["maxItems"] == 4


def test_cancel_and_timeout_faults_end_tasks_so(sandbox_factory: Callable[..., Process]) -> None:
    """The faults cancel and timeout end a task `cancelled` or `timeout`, with an error and no output; the
    official SDK reports both as failures."""
    sandbox = sandbox_factory()
    ids = {}
    for fault in ("cancel", "timeout"):
        answer = api(sandbox, "POST", f"/api/v3/{T2V}", json={"prompt": "x"}, headers={"X-Sandbox-Faults": fault})
        ids[fault] = answer.json()["data"]["id"]
    for fault, expected in (("cancel", "cancelled"), ("timeout", "timeout")):
        final = wait_for(
            lambda task=ids[fault]: (data := result(sandbox, task))["status"] not in ("created", "processing") and data,
            timeout=10,
            what=f"the {fault} task to end",
        )
        assert (final["status"], final["outputs"]) == (expected, [])
        assert f"fault `{fault}`" in final["error"]
    sdk: Any = wavespeed.Client(api_key="sandbox-key", base_url=sandbox.url)  # type: ignore[attr-defined]
    with contextlib.redirect_stdout(io.StringIO()), pytest.raises(RuntimeError, match="cancelled"):
        sdk.run(T2V, {"prompt": "x [sandbox:cancel]"}, poll_interval=0.02, timeout=10)


def test_created_at_precision_is_the_documented_one_or_as_configured(sandbox_factory: Callable[..., Process]) -> None:
    """created_at has milliseconds by default, as the provider's docs show; --created-at-digits 6 gives six
    digits, and the list filters agree with the value shown (created_before it excludes the task)."""
    default = sandbox_factory()
    shown = api(default, "POST", f"/api/v3/{T2V}", json={"prompt": "x"}).json()["data"]["created_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", shown)
    micro = sandbox_factory(created_at_digits=6)
    task = api(micro, "POST", f"/api/v3/{T2V}", json={"prompt": "x"}).json()["data"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", task["created_at"])

    def listed(**filters: str) -> list[str]:
        items = api(micro, "POST", "/api/v3/predictions", json=filters).json()["data"]["items"]
        return [item["id"] for item in items]

    assert listed(created_after=task["created_at"]) == [task["id"]]
    assert listed(created_before=task["created_at"]) == []


def test_unknown_inputs_accepted_by_default_refused_when_strict(sandbox_factory: Callable[..., Process]) -> None:
    """An input the page does not list (negative_prompt, as the official MCP server sends) is accepted and kept
    as sent; with --strict-inputs it is a 400 naming it with a did-you-mean."""
    sent = {"prompt": "a fox", "negative_prompt": "blur", "durration": 6}
    lenient = sandbox_factory()
    answer = api(lenient, "POST", f"/api/v3/{T2V}", json=sent)
    assert answer.status_code == 200, answer.text
    (item,) = api(lenient, "POST", "/api/v3/predictions", json={}).json()["data"]["items"]
    assert item["input"] == sent
    strict = sandbox_factory(strict_inputs=True)
    refused = api(strict, "POST", f"/api/v3/{T2V}", json=sent)
    assert refused.status_code == 400
    assert "negative_prompt is not an input of" in refused.json()["message"]
    assert "durration is not an input of" in refused.json()["message"]
    assert "did you mean duration?" in refused.json()["message"]
    assert status(strict)["tasks"] == 0
