"""The sandbox's own signer agrees with the independent known-answer vector and with the tests' signer."""

from __future__ import annotations

import json

from sandbox import signing
from tests.support import ROOT, sign

VECTORS = ROOT / "tests" / "vectors"


def test_signer_reproduces_the_known_answer_vector() -> None:
    """The vector's secret, id, timestamp and body give exactly the vector's v3 signature."""
    vector = json.loads((VECTORS / "signature-v3.json").read_text())
    body = (VECTORS / vector["body_file"]).read_bytes()
    signature = signing.sign(vector["secret"], vector["webhook_id"], int(vector["webhook_timestamp"]), body)
    assert signature == vector["webhook_signature"]


def test_headers_carry_id_timestamp_and_signature() -> None:
    """headers() sends the three webhook headers and JSON content type; the prefix whsec_ is optional."""
    headers = signing.headers("whsec_abc", "w1", 1700000000, b"{}")
    assert headers == {
        "content-type": "application/json",
        "webhook-id": "w1",
        "webhook-timestamp": "1700000000",
        "webhook-signature": sign("abc", "w1", 1700000000, b"{}"),
    }
