"""The signature doctor: valid, or exactly why not, naming the usual mistake that reproduces the signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest

from receiver.doctor import diagnose

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
VECTOR = json.loads((VECTORS / "signature-v3.json").read_text())
BODY = (VECTORS / "signature-v3-body.json").read_bytes()
ID, TS, SIG, SECRET = VECTOR["webhook_id"], VECTOR["webhook_timestamp"], VECTOR["webhook_signature"], VECTOR["secret"]


def at_vector_time() -> float:
    return float(TS)


def mac(key: bytes, body: bytes, webhook_id: str = ID, timestamp: str = TS) -> str:
    return "v3," + hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def b64_key(secret: str) -> bytes:
    raw = secret.removeprefix("whsec_")
    return base64.b64decode(raw + "=" * (-len(raw) % 4))


def test_vector_is_valid_with_the_clock_pinned() -> None:
    """The known-answer vector is diagnosed valid when checked at its own time."""
    result = diagnose([SECRET], ID, TS, SIG, BODY, clock=at_vector_time)
    assert (result.valid, result.reason) == (True, "valid")


def test_vector_is_valid_with_a_huge_tolerance() -> None:
    """With a tolerance wider than its age, the vector is valid on today's clock."""
    assert diagnose([SECRET], ID, TS, SIG, BODY, tolerance_seconds=10**10).valid


def test_old_vector_is_stale_and_says_the_signature_is_right() -> None:
    """On today's clock the vector is stale; the doctor says the signature itself matched."""
    result = diagnose([SECRET], ID, TS, SIG, BODY)
    assert (result.valid, result.reason) == (False, "stale_timestamp")
    assert any("signature itself is right" in hint for hint in result.hints)


def test_names_a_base64_decoded_key() -> None:
    """A signature made with the base64-decoded key is explained as that mistake."""
    result = diagnose([SECRET], ID, TS, mac(b64_key(SECRET), BODY), BODY, clock=at_vector_time)
    assert (result.valid, result.reason) == (False, "signature_mismatch")
    assert len(result.hints) == 1
    assert "base64-decoded" in result.hints[0]
    assert "secret #1" in result.hints[0]


def test_names_the_whsec_prefix_kept() -> None:
    """A signature keyed with 'whsec_' still on the secret is explained as that mistake."""
    result = diagnose([SECRET], ID, TS, mac(SECRET.encode(), BODY), BODY, clock=at_vector_time)
    assert [h for h in result.hints if "whsec_ prefix kept" in h]


def test_names_a_reserialised_body() -> None:
    """A body file holding the JSON re-serialised (json.dumps) is explained: the original bytes are compact."""
    reserialised = json.dumps(json.loads(BODY)).encode()
    result = diagnose([SECRET], ID, TS, SIG, reserialised, clock=at_vector_time)
    assert result.reason == "signature_mismatch"
    assert len(result.hints) == 1
    assert "re-serialised" in result.hints[0]
    assert "raw bytes" in result.hints[0]


def test_names_a_body_signed_after_reserialising() -> None:
    """A sender that signed json.dumps of the body instead of the bytes it sent is explained."""
    key = SECRET.removeprefix("whsec_").encode()
    result = diagnose([SECRET], ID, TS, mac(key, json.dumps(json.loads(BODY)).encode()), BODY, clock=at_vector_time)
    assert [h for h in result.hints if "json.dumps defaults" in h]


def test_names_a_trailing_newline() -> None:
    """A body file saved with an extra trailing newline is explained as a whitespace difference."""
    result = diagnose([SECRET], ID, TS, SIG, BODY + b"\n", clock=at_vector_time)
    assert len(result.hints) == 1
    assert "whitespace" in result.hints[0]


def test_points_at_the_second_secret_that_explains_it() -> None:
    """With several secrets, the hint names which one the mistake reproduces, never its value."""
    other = "whsec_b3RoZXItYWNjb3VudA"
    result = diagnose([other, SECRET], ID, TS, mac(b64_key(SECRET), BODY), BODY, clock=at_vector_time)
    assert "secret #2" in result.hints[0]
    text = " ".join(result.hints) + result.message
    for secret in (other, SECRET):
        assert secret.removeprefix("whsec_") not in text


def test_no_known_mistake_says_where_to_look() -> None:
    """When no usual mistake reproduces the signature, the doctor says to check the secret and the bytes."""
    result = diagnose(["whsec_d3JvbmctYWNjb3VudA"], ID, TS, SIG, BODY, clock=at_vector_time)
    assert result.reason == "signature_mismatch"
    assert len(result.hints) == 1
    assert "GET /api/v3/webhook/secret" in result.hints[0]


@pytest.mark.parametrize(
    ("signature", "reason"),
    [("v1,abc", "unsupported_scheme"), ("v3,xyz", "malformed_header"), ("", "missing_header")],
)
def test_header_problems_are_named(signature: str, reason: str) -> None:
    """A header problem is reported with the verifier's reason."""
    assert diagnose([SECRET], ID, TS, signature, BODY, clock=at_vector_time).reason == reason
