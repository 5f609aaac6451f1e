"""Each catalogued model submitted with ``wavehook submit --wait`` to a real sandbox, its signed webhook taken
by a real ``wavehook serve``, and the ledger holding one merged record; local images uploaded on the way."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from receiver.correlation import redact
from sandbox.media import png
from tests.integration.submitter_support import API_KEY, Loop

pytestmark = pytest.mark.integration


def params(model: str, image: Path) -> list[str]:
    """Inputs for each model, written as a user would type them; images are local files or a JSON array."""
    by_model = {
        "bytedance/waver-1.0": ["-p", f"image={image}", "-p", "seed=7"],
        "bytedance/seedance-v1-lite/reference-to-video": [
            "-p",
            f'reference_images=["{image}", "{image}"]',
            "-p",
            "duration=12",
            "-p",
            "camera_fixed=true",
        ],
        "bytedance/dreamina-v3.0/image-to-video-1080p": ["-p", f"image={image}", "-p", "duration=5"],
        "bytedance/seedance-v1-lite-t2v-480p": ["-p", "aspect_ratio=9:21", "-p", "duration=10"],
        "bytedance/dreamina-v3.0-pro/text-to-video": ["-p", "aspect_ratio=21:9"],
    }
    return ["-p", f"prompt=a red fox in fresh snow, {model}", *by_model[model]]


MODELS = (
    "bytedance/waver-1.0",
    "bytedance/seedance-v1-lite/reference-to-video",
    "bytedance/dreamina-v3.0/image-to-video-1080p",
    "bytedance/seedance-v1-lite-t2v-480p",
    "bytedance/dreamina-v3.0-pro/text-to-video",
)


def test_each_model_completes_end_to_end(loop: Loop, tmp_path: Path) -> None:
    """Each model, submitted from the command line (five at once), completed by the sandbox, delivered signed
    with our reference, and recorded once: the submission's columns and the webhook's outcome in one row."""
    image = tmp_path / "cat.png"
    image.write_bytes(png())
    commands = [["submit", m, *params(m, image), "--wait", "--fallback-after", "1h", "--json"] for m in MODELS]
    for model, result in zip(MODELS, loop.clis(commands), strict=True):
        assert result.returncode == 0, (model, result.stderr)
        out = json.loads(result.stdout)
        submission, final = out["submission"], out["prediction"]
        assert (final["status"], final["model"]) == ("completed", model)
        assert final["id"] == submission["prediction_id"]
        assert final["reference"] == submission["reference"]
        # The ledger's answer masks the correlation token, a per-job credential; the rest of the URL is the same.
        assert final["webhook_url"] == redact(submission["webhook_url"]) != submission["webhook_url"]
        assert final["submitted_at"] is not None
        assert [event["source"] for event in final["events"]] == ["webhook"]
        assert final["events"][0]["reference"] == submission["reference"]
        assert final["input"] == submission["input"]
        assert final["outputs"][0].endswith("/output.mp4")
        images = [value for key, value in final["input"].items() if key in {"image", "reference_images"}]
        for url in [u for value in images for u in (value if isinstance(value, list) else [value])]:
            assert url.startswith(f"{loop.sandbox.url}/media/uploads/")  # type: ignore[attr-defined]
            assert httpx.get(url).content == png()
        assert API_KEY not in result.stdout + result.stderr
    assert API_KEY not in loop.receiver.log()
    assert len(loop.rows("SELECT id FROM predictions")) == len(MODELS)


def test_status_list_failure_and_secret(loop: Loop) -> None:
    """status shows one prediction with its events; list filters by status and model; a task the provider
    fails ends --wait with exit code 1 and its error; secret prints the signing secret."""
    model = "bytedance/dreamina-v3.0-pro/text-to-video"
    done = loop.cli("submit", model, "-p", "prompt=an owl", "--wait", "--json")
    assert done.returncode == 0, done.stderr
    prediction_id = json.loads(done.stdout)["prediction"]["id"]
    status = loop.cli("status", prediction_id)
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith(f"{prediction_id}  completed  {model}")
    assert "via webhook" in status.stdout
    listed = loop.cli("list", "--status", "completed", "--model", model, "--json")
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [prediction_id]
    assert loop.cli("list", "--status", "failed", "--json").stdout == ""
    failed = loop.cli("submit", "bytedance/dreamina-v3.0-pro/text-to-video", "-p", "prompt=x [sandbox:fail]", "--wait")
    assert failed.returncode == 1
    assert "error: Task execution failed" in failed.stdout
    secret = loop.cli("secret")
    assert secret.returncode == 0, secret.stderr
    assert secret.stdout.strip() == loop.receiver.env["WAVESPEED_WEBHOOK_SECRET"]
