"""``wavehook verify`` and ``wavehook serve``'s refusals, through click's runner."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support import ROOT
from wavehook.cli import main

VECTORS = ROOT / "tests" / "vectors"
VECTOR = json.loads((VECTORS / "signature-v3.json").read_text())
BODY_FILE = VECTORS / "signature-v3-body.json"


def verify_args(*extra: str, signature: str = VECTOR["webhook_signature"], body: Path = BODY_FILE) -> list[str]:
    return [
        "verify",
        str(body),
        "--id",
        VECTOR["webhook_id"],
        "--timestamp",
        VECTOR["webhook_timestamp"],
        "--signature",
        signature,
        *extra,
    ]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_verify_vector_valid_with_now_pinned(runner: CliRunner) -> None:
    """``--now`` pins the clock: the vector is valid and the command exits 0."""
    result = runner.invoke(
        main, verify_args("--now", VECTOR["webhook_timestamp"]), env={"WAVESPEED_WEBHOOK_SECRET": VECTOR["secret"]}
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("valid")


def test_verify_vector_valid_with_huge_tolerance(runner: CliRunner) -> None:
    """A tolerance wider than the vector's age makes it valid on today's clock; --secret overrides the env."""
    args = verify_args("--tolerance", str(10**10), "--secret", VECTOR["secret"])
    result = runner.invoke(main, args, env={"WAVESPEED_WEBHOOK_SECRET": "whsec_b3RoZXI"})
    assert result.exit_code == 0, result.output


def test_verify_stale_vector_exits_1(runner: CliRunner) -> None:
    """On today's clock the vector is refused as stale with exit status 1."""
    result = runner.invoke(main, verify_args("--secret", VECTOR["secret"]))
    assert result.exit_code == 1
    assert "invalid (stale_timestamp)" in result.output


def test_verify_names_the_base64_mistake(runner: CliRunner) -> None:
    """A signature made with the base64-decoded key is reported invalid, naming that mistake."""
    raw = VECTOR["hmac_key_utf8"]
    key = base64.b64decode(raw + "=" * (-len(raw) % 4))
    content = f"{VECTOR['webhook_id']}.{VECTOR['webhook_timestamp']}.".encode() + BODY_FILE.read_bytes()
    wrong = "v3," + hmac.new(key, content, hashlib.sha256).hexdigest()
    args = verify_args("--now", VECTOR["webhook_timestamp"], "--secret", VECTOR["secret"], signature=wrong)
    result = runner.invoke(main, args)
    assert result.exit_code == 1
    assert "invalid (signature_mismatch)" in result.output
    assert "base64-decoded" in result.output
    assert VECTOR["hmac_key_utf8"] not in result.output


def test_verify_names_the_reserialised_body(runner: CliRunner, tmp_path: Path) -> None:
    """A body file holding the JSON re-serialised is reported invalid, naming re-serialisation."""
    body = tmp_path / "body.json"
    body.write_text(json.dumps(json.loads(BODY_FILE.read_bytes()), indent=2))
    args = verify_args("--now", VECTOR["webhook_timestamp"], "--secret", VECTOR["secret"], body=body)
    result = runner.invoke(main, args)
    assert result.exit_code == 1
    assert "re-serialised" in result.output


def test_verify_refuses_an_empty_secret(runner: CliRunner) -> None:
    """A secret that is only 'whsec_' is a usage error naming --secret."""
    result = runner.invoke(main, verify_args("--secret", "whsec_"))
    assert result.exit_code == 2
    assert "--secret" in result.output


def test_serve_without_secret_refuses_and_says_how_to_get_one(runner: CliRunner, tmp_path: Path) -> None:
    """Without WAVESPEED_WEBHOOK_SECRET, serve exits 2 and names the provider call that returns the secret."""
    result = runner.invoke(main, ["serve"], env={"WAVESPEED_WEBHOOK_SECRET": "", "WAVEHOOK_DB": str(tmp_path / "x.db")})
    assert result.exit_code == 2
    assert "WAVESPEED_WEBHOOK_SECRET" in result.output
    assert "GET /api/v3/webhook/secret" in result.output
    assert not (tmp_path / "x.db").exists()


def test_serve_refuses_bad_settings(runner: CliRunner) -> None:
    """A malformed setting is a usage error naming the variable."""
    env = {"WAVESPEED_WEBHOOK_SECRET": "whsec_abc", "WAVEHOOK_TOLERANCE_SECONDS": "soon"}
    result = runner.invoke(main, ["serve"], env=env)
    assert result.exit_code == 2
    assert "WAVEHOOK_TOLERANCE_SECONDS" in result.output


def test_serve_hands_uvicorn_a_frozen_app_with_the_collector_back_on(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Start-up runs with the garbage collector paused; uvicorn is handed the app with what start-up built frozen
    out of the collector's sight, the collector on again, and the server settings of ``uvicorn_options``."""
    import gc
    import logging

    import structlog
    import uvicorn

    from receiver.http.connections import GuardedProtocol

    handed: dict[str, object] = {}

    def run(app: object, **options: object) -> None:
        handed.update(app=app, options=options, collecting=gc.isenabled(), frozen=gc.get_freeze_count())

    monkeypatch.setattr(uvicorn, "run", run)
    config, handlers = structlog.get_config(), logging.getLogger().handlers
    env = {"WAVESPEED_WEBHOOK_SECRET": VECTOR["secret"], "WAVEHOOK_DB": str(tmp_path / "w.db")}
    try:
        result = runner.invoke(main, ["serve", "--port", "0"], env=env)
    finally:
        gc.unfreeze()
        structlog.configure(**config)
        logging.getLogger().handlers = handlers
    assert result.exit_code == 0, result.output
    assert handed["collecting"] is True
    assert isinstance(handed["frozen"], int)
    assert handed["frozen"] > 10_000
    assert not isinstance(handed["app"], str)  # one process: the app built here, not a factory's name
    options = handed["options"]
    assert isinstance(options, dict)
    assert (options["http"], options["port"], options["factory"]) == (GuardedProtocol, 0, False)
