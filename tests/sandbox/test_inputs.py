"""The sandbox refuses inputs as the five documented models' tables say (shared/seeds), one case per constraint,
and accepts every boundary value those tables allow."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import structlog
from starlette.testclient import TestClient

IMG = "https://example.com/cat.png"
WAVER = "bytedance/waver-1.0"
REF = "bytedance/seedance-v1-lite/reference-to-video"
I2V = "bytedance/dreamina-v3.0/image-to-video-1080p"
T2V = "bytedance/seedance-v1-lite-t2v-480p"
PRO = "bytedance/dreamina-v3.0-pro/text-to-video"

VALID: dict[str, dict[str, Any]] = {
    WAVER: {"image": IMG, "prompt": "a fox"},
    REF: {"prompt": "a fox", "reference_images": [IMG]},
    I2V: {"prompt": "a fox", "image": IMG},
    T2V: {"prompt": "a fox"},
    PRO: {"prompt": "a fox"},
}

# (model, changes to its valid inputs (None removes the field), the field the 400 must name)
REFUSED = [
    (WAVER, {"image": None}, "image is required"),
    (WAVER, {"prompt": None}, "prompt is required"),
    (WAVER, {"image": "cat.png"}, "image="),
    (WAVER, {"seed": -2}, "seed=-2"),
    (WAVER, {"seed": 2147483648}, "seed=2147483648"),
    (WAVER, {"steps": 30}, "steps is not an input"),
    (REF, {"prompt": None}, "prompt is required"),
    (REF, {"reference_images": None}, "reference_images is required"),
    (REF, {"reference_images": []}, "reference_images=[]"),
    (REF, {"reference_images": [IMG] * 5}, "reference_images="),
    (REF, {"reference_images": ["not a url"]}, "reference_images="),
    (REF, {"duration": 1}, "duration=1"),
    (REF, {"duration": 13}, "duration=13"),
    (REF, {"camera_fixed": "yes"}, "camera_fixed="),
    (REF, {"seed": -2}, "seed=-2"),
    (I2V, {"prompt": None}, "prompt is required"),
    (I2V, {"image": None}, "image is required"),
    (I2V, {"duration": 10}, "duration=10"),
    (I2V, {"seed": 2147483648}, "seed=2147483648"),
    (T2V, {"prompt": None}, "prompt is required"),
    (T2V, {"prompt": ""}, "prompt="),
    (T2V, {"aspect_ratio": "2:1"}, "aspect_ratio="),
    (T2V, {"duration": 4}, "duration=4"),
    (T2V, {"duration": 11}, "duration=11"),
    (T2V, {"duration": "5"}, "duration="),
    (T2V, {"camera_fixed": 1}, "camera_fixed=1"),
    (T2V, {"seed": -2}, "seed=-2"),
    (PRO, {"prompt": None}, "prompt is required"),
    (PRO, {"aspect_ratio": "5:4"}, "aspect_ratio="),
    (PRO, {"seed": 2147483648}, "seed=2147483648"),
    (PRO, {"duration": 5}, "duration is not an input"),
]

ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    (WAVER, {"seed": -1}),
    (WAVER, {"seed": 2147483647}),
    (REF, {"reference_images": [IMG] * 4}),
    (REF, {"duration": 2, "camera_fixed": True, "seed": 0}),
    (REF, {"duration": 12}),
    (I2V, {"duration": 5, "seed": -1}),
    *[(T2V, {"aspect_ratio": ratio}) for ratio in ("21:9", "16:9", "4:3", "1:1", "3:4", "9:16", "9:21")],
    (T2V, {"duration": 5}),
    (T2V, {"duration": 10, "camera_fixed": False, "seed": 2147483647}),
    *[(PRO, {"aspect_ratio": ratio}) for ratio in ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "9:21")],
]


def inputs_for(model: str, changes: dict[str, Any]) -> dict[str, Any]:
    merged = {**VALID[model], **changes}
    return {name: value for name, value in merged.items() if value is not None}


@pytest.mark.parametrize(("model", "changes", "named"), REFUSED)
def test_inputs_outside_the_table_are_refused_400(
    sandbox_app: Callable[..., TestClient], model: str, changes: dict[str, Any], named: str
) -> None:
    """Each constraint of the model's table, broken alone, answers 400 in the error envelope naming the field
    (inputs the table does not list only with strict_inputs)."""
    response = sandbox_app(strict_inputs=True).post(f"/api/v3/{model}", json=inputs_for(model, changes))
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["code"], body["data"]) == (400, None)
    assert body["message"].startswith(f"Invalid inputs for model {model}: ")
    assert named in body["message"]


@pytest.mark.parametrize(("model", "changes"), [*((m, {}) for m in VALID), *ACCEPTED])
def test_inputs_within_the_table_are_accepted(
    sandbox_app: Callable[..., TestClient], model: str, changes: dict[str, Any]
) -> None:
    """The minimal valid inputs of each model, and every boundary value its table allows, are accepted."""
    client = sandbox_app(queue_seconds=60)
    response = client.post(f"/api/v3/{model}", json=inputs_for(model, changes))
    assert response.status_code == 200, response.text
    assert response.json()["data"]["status"] == "created"


def test_every_problem_is_listed_at_once(sandbox_app: Callable[..., TestClient]) -> None:
    """Several broken constraints give one 400 naming each of them."""
    response = sandbox_app().post(f"/api/v3/{T2V}", json={"duration": 50, "aspect_ratio": "2:1"})
    message = response.json()["message"]
    assert all(part in message for part in ("prompt is required", "duration=50", "aspect_ratio="))


def test_validation_can_be_switched_off(sandbox_app: Callable[..., TestClient]) -> None:
    """With validate_inputs off, inputs the table refuses are accepted, as for a model without a table."""
    response = sandbox_app(validate_inputs=False).post(f"/api/v3/{T2V}", json={"duration": 50})
    assert response.status_code == 200


def test_unknown_inputs_are_accepted_and_logged_with_a_did_you_mean(sandbox_app: Callable[..., TestClient]) -> None:
    """By default an input the page does not list (negative_prompt, a misspelt durration) is accepted, stored as
    sent, and logged with a did-you-mean; a broken documented constraint is still refused."""
    client = sandbox_app(queue_seconds=60)
    sent = {"prompt": "a fox", "negative_prompt": "blur", "durration": 6}
    with structlog.testing.capture_logs() as logs:
        response = client.post(f"/api/v3/{T2V}", json=sent)
    assert response.status_code == 200, response.text
    task = client.app.state.sandbox.tasks.get(response.json()["data"]["id"])  # type: ignore[attr-defined]
    assert task.input == sent
    (warning,) = [entry for entry in logs if entry["event"] == "unknown_inputs_accepted"]
    assert warning["problems"][0].startswith(f"negative_prompt is not an input of {T2V}")
    assert "durration is not an input" in warning["problems"][1]
    assert "did you mean duration?" in warning["problems"][1]
    refused = client.post(f"/api/v3/{T2V}", json={**sent, "duration": 50})
    assert refused.status_code == 400
    assert "durration" not in refused.json()["message"]


def test_strict_inputs_refuse_unknown_inputs_with_a_did_you_mean(sandbox_app: Callable[..., TestClient]) -> None:
    """With strict_inputs, an unlisted input is a 400 naming it, its likely meaning and the model's inputs."""
    response = sandbox_app(strict_inputs=True).post(f"/api/v3/{T2V}", json={"prompt": "a fox", "durration": 6})
    assert response.status_code == 400
    assert "durration is not an input of" in response.json()["message"]
    assert "did you mean duration?" in response.json()["message"]
