"""The table of named bad inputs to ``POST /webhooks/wavespeed`` and the answer each one gets.

Each case starts from one valid signed delivery and spoils one thing. ``docs/bad-inputs.md`` holds the same
table, rendered by ``markdown_table()``; regenerate it with ``.venv/bin/python -m tests.receiver.bad_inputs``.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
from collections.abc import Mapping
from types import MappingProxyType

from tests.conftest import SECRET
from tests.support import prediction_body, sign

NOW = 1_790_000_000  # the app under test runs on this fixed clock
ID = "evt_2f1c9a"
PREDICTION = "pred_7e4b21"
BODY = prediction_body(PREDICTION)
LIMIT = 1024 * 1024  # the default body limit
OTHER_SECRET = "whsec_c29tZS1vdGhlci1hY2NvdW50cy1zZWNyZXQ="
REF = "job-0001"
Headers = dict[str, str | bytes]
FROZEN: Mapping[str, str | None] = MappingProxyType({})


@dataclasses.dataclass(frozen=True)
class Sent:
    """One request: the headers exactly as sent (values may be raw bytes), the body, the query string."""

    headers: Headers
    body: bytes = BODY
    query: str = ""  # "{token}" is replaced by the ledger's correct token for REF
    method: str = "POST"
    chunked: bool = False  # stream the body without Content-Length


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    what: str  # the bad input, in words (the doc's second column)
    sent: Sent
    status: int
    reason: str  # the JSON answer's "reason"; "accepted" for a 200
    quarantine: str | None = None  # the quarantine reason the delivery is kept under, if any
    mentions: str = ""  # a word the error must contain: the header, field or parameter at fault


def headers(body: bytes = BODY, *, webhook_id: str = ID, timestamp: str = str(NOW), signature: str = "") -> Headers:
    """Headers of a delivery signed correctly (unless ``signature`` is given) over exactly these values."""
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": signature or sign(SECRET, webhook_id, timestamp, body),
        "content-type": "application/json",
    }


def signed(
    body: bytes = BODY, *, webhook_id: str = ID, timestamp: str = str(NOW), change: Mapping[str, str | None] = FROZEN
) -> Sent:
    """A correctly signed delivery; ``change`` then replaces headers (a ``None`` value drops one)."""
    sent = headers(body, webhook_id=webhook_id, timestamp=timestamp)
    for name, value in change.items():
        if value is None:
            sent.pop(name, None)
        else:
            sent[name] = value
    return Sent(sent, body)


def digest(key: bytes, webhook_id: str = ID, timestamp: str = str(NOW), body: bytes = BODY) -> str:
    return hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def json_body(value: object) -> bytes:
    return json.dumps(value).encode()


KEY = SECRET.removeprefix("whsec_").encode()
GOOD = digest(KEY)
BAD = digest(b"not the secret")


def _header_cases() -> list[Case]:
    names = ("webhook-id", "webhook-timestamp", "webhook-signature")
    missing = [
        Case(f"missing-{h}", f"no `{h}` header", signed(change={h: None}), 401, "missing_header", mentions=h)
        for h in names
    ]
    empty = [
        Case(f"empty-{h}", f"`{h}` present but empty", signed(change={h: ""}), 401, "missing_header", mentions=h)
        for h in names
    ]
    utf8_id = Sent({**headers(), "webhook-id": "évt-1".encode(), "webhook-signature": "v3," + digest(KEY, "évt-1")})
    return [
        *missing,
        *empty,
        Case("blank-webhook-id", "`webhook-id` of spaces only", signed(webhook_id="   "), 401, "missing_header"),
        Case(
            "long-webhook-id",
            "`webhook-id` of 257 characters, signed",
            signed(webhook_id="e" * 257),
            401,
            "malformed_header",
            mentions="webhook-id",
        ),
        Case(
            "control-char-webhook-id",
            "`webhook-id` holding a DEL character, signed",
            signed(webhook_id="evt\x7f1"),
            401,
            "malformed_header",
            mentions="webhook-id",
        ),
        Case(
            "non-ascii-webhook-id",
            "`webhook-id` of UTF-8 bytes, signed over those bytes (ids are ASCII; the header is read as Latin-1)",
            utf8_id,
            401,
            "signature_mismatch",
        ),
    ]


def _timestamp_cases() -> list[Case]:
    table = [
        # name, what is sent, the timestamp signed and sent, reason (and quarantine reason when signed validly)
        ("non-integer-timestamp", "`webhook-timestamp: soon`", "soon", "invalid_timestamp"),
        ("negative-timestamp", "`webhook-timestamp: -1790000000`", "-1790000000", "invalid_timestamp"),
        ("float-timestamp", "`webhook-timestamp: 1790000000.5`", "1790000000.5", "invalid_timestamp"),
        ("iso-timestamp", "`webhook-timestamp` as ISO 8601 text", "2026-09-21T10:13:20Z", "invalid_timestamp"),
        ("plus-sign-timestamp", "`webhook-timestamp: +1790000000`", "+1790000000", "invalid_timestamp"),
        ("huge-timestamp", "`webhook-timestamp` of 400 digits, signed", "9" * 400, "invalid_timestamp"),
        ("millisecond-timestamp", "`webhook-timestamp` in milliseconds, signed", str(NOW * 1000), "future_timestamp"),
        ("stale-timestamp", "signed 301 s before the receiver's clock", str(NOW - 301), "stale_timestamp"),
        ("future-timestamp", "signed 301 s after the receiver's clock", str(NOW + 301), "future_timestamp"),
    ]
    kept = {"stale_timestamp", "future_timestamp"}  # only a genuine (validly signed) delivery is kept
    cases = [
        Case(name, what, signed(timestamp=value), 401, reason, reason if reason in kept else None, "webhook-timestamp")
        for name, what, value, reason in table
    ]
    stale_forged = Sent(headers(timestamp=str(NOW - 301), signature="v3," + BAD))
    return [
        *cases,
        Case(
            "non-ascii-digit-timestamp",
            "`webhook-timestamp: 1790000000²` (a digit to `isdigit()`, not to `int()`)",
            Sent({**headers(), "webhook-timestamp": f"{NOW}²".encode("latin-1")}),
            401,
            "invalid_timestamp",
            mentions="webhook-timestamp",
        ),
        Case(
            "stale-and-badly-signed",
            "301 s old and signed with another secret",
            stale_forged,
            401,
            "signature_mismatch",
        ),
    ]


def _signature_cases() -> list[Case]:
    b64_key = base64.b64decode(SECRET.removeprefix("whsec_") + "==")
    table = [
        # name, what is sent, the webhook-signature header, reason, a word the error names
        (
            "v1-scheme",
            "`webhook-signature: v1,<base64>` (Standard Webhooks)",
            "v1," + base64.b64encode(bytes.fromhex(GOOD)).decode(),
            "unsupported_scheme",
            "v1",
        ),
        ("bare-hex-signature", "the hex digest without `v3,`", GOOD, "malformed_header", "webhook-signature"),
        ("empty-v3-signature", "`webhook-signature: v3,`", "v3,", "malformed_header", "webhook-signature"),
        ("non-hex-signature", "`v3,` and 64 characters that are not hex", "v3," + "z" * 64, "malformed_header", "hex"),
        ("short-signature", "`v3,` and 63 hex digits", "v3," + GOOD[:63], "malformed_header", "64"),
        ("long-signature", "`v3,` and 65 hex digits", "v3," + GOOD + "0", "malformed_header", "64"),
        (
            "nine-signatures",
            "nine `v3,` entries, the valid one last (at most eight are read)",
            " ".join(["v3," + "0" * 64] * 8 + ["v3," + GOOD]),
            "malformed_header",
            "at most 8",
        ),
        (
            "oversized-signature-header",
            "a `webhook-signature` header of 1,025 characters",
            "v1," + "A" * 1022,
            "malformed_header",
            "1024",
        ),
        (
            "wrong-secret",
            "signed with another account's secret",
            sign(OTHER_SECRET, ID, str(NOW), BODY),
            "signature_mismatch",
            "webhook-signature",
        ),
        (
            "prefix-in-key",
            "the `whsec_` prefix kept in the HMAC key",
            "v3," + digest(SECRET.encode()),
            "signature_mismatch",
            "",
        ),
        (
            "base64-decoded-key",
            "the secret base64-decoded as the key (the v1 habit)",
            "v3," + digest(b64_key),
            "signature_mismatch",
            "",
        ),
    ]
    cases = [
        Case(name, what, Sent(headers(signature=value)), 401, reason, mentions=word)
        for name, what, value, reason, word in table
    ]
    cases.append(
        Case(
            "tampered-body",
            "one byte of the signed body changed",
            Sent(headers(), BODY.replace(b"fox", b"fix", 1)),
            401,
            "signature_mismatch",
        )
    )
    more = [
        (
            "signed-other-id",
            "signature over another `webhook-id`",
            sign(SECRET, "evt_other", str(NOW), BODY),
            "signature_mismatch",
        ),
        (
            "signed-other-timestamp",
            "signature over another timestamp",
            sign(SECRET, ID, str(NOW - 1), BODY),
            "signature_mismatch",
        ),
        (
            "several-signatures-none-valid",
            "two `v3` signatures, neither valid",
            f"v3,{BAD} v3,{'0' * 64}",
            "signature_mismatch",
        ),
        (
            "tab-in-signature",
            "the valid signature split by a tab",
            "v3," + GOOD[:30] + "\t" + GOOD[30:],
            "malformed_header",
        ),
    ]
    return cases + [Case(name, what, Sent(headers(signature=value)), 401, reason) for name, what, value, reason in more]


def _accepted_cases() -> list[Case]:
    table = [
        (
            "uppercase-hex-signature",
            "the valid digest in upper-case hex: accepted",
            Sent(headers(signature="v3," + GOOD.upper())),
        ),
        (
            "valid-among-several",
            "a wrong `v3` signature, then the valid one: accepted",
            Sent(headers(signature=f"v3,{BAD} v3,{GOOD}")),
        ),
        (
            "v1-beside-v3",
            "a `v1` signature beside the valid `v3` one: accepted",
            Sent(headers(signature=f"v1,aGVsbG8= v3,{GOOD}")),
        ),
        (
            "text-plain-content-type",
            "`Content-Type: text/plain`; the signature is what counts: accepted",
            signed(change={"content-type": "text/plain"}),
        ),
        (
            "reference-with-its-token",
            "`?ref=` with its correct `token`: accepted",
            Sent(headers(), query=f"ref={REF}&token={{token}}"),
        ),
    ]
    return [Case(name, what, sent, 200, "accepted") for name, what, sent in table]


def _body_cases() -> list[Case]:
    def body(name: str, what: str, raw: bytes, reason: str, mentions: str = "") -> Case:
        return Case(name, what, signed(raw), 400, reason, reason, mentions=mentions)

    envelope = json_body({"code": 200, "message": "success", "data": json.loads(BODY)})
    return [
        body("empty-body", "an empty body, signed", b"", "invalid_json", "JSON"),
        body("not-json", "a form-encoded body, signed", b"id=pred_1&status=completed", "invalid_json", "JSON"),
        body("truncated-json", "the body cut in half, signed", BODY[: len(BODY) // 2], "invalid_json", "JSON"),
        body("non-utf8-body", "JSON holding a byte that is not UTF-8, signed", b'{"id": "pred\xff"}', "invalid_json"),
        body("deeply-nested-json", "100,000 nested arrays, signed", b"[" * 100_000, "invalid_json", "nested"),
        body("json-array", "a JSON array of one prediction, signed", b"[" + BODY + b"]", "not_an_object", "list"),
        body("json-string", "a JSON string, signed", b'"completed"', "not_an_object", "str"),
        body("json-null", "`null`, signed", b"null", "not_an_object"),
        body("json-number", "`42`, signed", b"42", "not_an_object"),
        body(
            "envelope",
            "the API envelope `{code, message, data}` instead of the prediction, signed",
            envelope,
            "missing_id",
            '"id"',
        ),
        body(
            "missing-id",
            'a prediction without `"id"`, signed',
            json_body({"status": "completed"}),
            "missing_id",
            '"id"',
        ),
        body("numeric-id", '`"id": 12345`, signed', json_body({"id": 12345}), "missing_id", '"id"'),
        body("null-id", '`"id": null`, signed', json_body({"id": None}), "missing_id", '"id"'),
        body("empty-id", '`"id": ""`, signed', json_body({"id": ""}), "missing_id", '"id"'),
        body("blank-id", '`"id": "   "`, signed', json_body({"id": "   "}), "missing_id", '"id"'),
        body(
            "surrogate-id",
            '`"id": "\\ud800"` (a lone surrogate escape), signed',
            b'{"id": "\\ud800"}',
            "invalid_text",
            '"id"',
        ),
        body(
            "surrogate-in-input",
            'a lone surrogate escape inside `"input"`, signed',
            b'{"id": "pred_1", "input": {"prompt": "\\ud800"}}',
            "invalid_text",
            '"input.prompt"',
        ),
        body(
            "nan-timing",
            '`"timings": {"inference": NaN}` (also `1e999`, which parses as infinity), signed',
            b'{"id": "pred_1", "timings": {"inference": NaN}}',
            "invalid_number",
            '"timings.inference"',
        ),
        body(
            "huge-integer",
            'a 400-digit integer inside `"timings"`, signed',
            b'{"id": "pred_1", "timings": {"inference": ' + b"9" * 400 + b"}}",
            "invalid_number",
            "64 bits",
        ),
        body(
            "outputs-not-urls",
            '`"outputs": 5` (also `[{}]`; likewise `has_nsfw_contents`, `input`, `timings` of the wrong type), signed',
            json_body({"id": "pred_1", "outputs": 5}),
            "invalid_field",
            '"outputs"',
        ),
        body(
            "surrogate-status",
            'a lone surrogate escape in `"status"`, signed',
            b'{"id": "pred_1", "status": "\\udfff"}',
            "invalid_text",
            '"status"',
        ),
    ]


def _size_cases() -> list[Case]:
    big = b" " * (LIMIT + 1)
    superscript = Sent({**headers(), "content-length": "²".encode("latin-1")})
    table = [
        # name, what is sent, the request, status, reason, a word the error names
        ("body-over-limit", "1 MiB + 1 byte, Content-Length declared", signed(big), 413, "body_too_large", "limit"),
        (
            "chunked-body-over-limit",
            "1 MiB + 1 byte, chunked (no Content-Length)",
            dataclasses.replace(signed(big), chunked=True),
            413,
            "body_too_large",
            "limit",
        ),
        (
            "huge-content-length",
            "`Content-Length` of 5,000 digits",
            signed(change={"content-length": "9" * 5000}),
            413,
            "body_too_large",
            "Content-Length",
        ),
        (
            "non-numeric-content-length",
            "`Content-Length: abc`",
            signed(change={"content-length": "abc"}),
            400,
            "bad_content_length",
            "Content-Length",
        ),
        (
            "negative-content-length",
            "`Content-Length: -1`",
            signed(change={"content-length": "-1"}),
            400,
            "bad_content_length",
            "Content-Length",
        ),
        (
            "superscript-content-length",
            "`Content-Length: ²` (a digit to `isdigit()`, not to `int()`)",
            superscript,
            400,
            "bad_content_length",
            "Content-Length",
        ),
    ]
    return [Case(name, what, sent, status, reason, mentions=word) for name, what, sent, status, reason, word in table]


def _correlation_cases() -> list[Case]:
    def query(name: str, what: str, value: str, status: int, reason: str, mentions: str) -> Case:
        # Signed by the provider, so kept in quarantine like any other signed refusal.
        return Case(name, what, Sent(headers(), query=value), status, reason, quarantine=reason, mentions=mentions)

    zeros = "0" * 32
    return [
        query(
            "wrong-token", "`?ref=job-0001&token=` 32 zeros", f"ref={REF}&token={zeros}", 401, "token_mismatch", "token"
        ),
        query("non-ascii-token", "`?ref=job-0001&token=é`", f"ref={REF}&token=%C3%A9", 401, "token_mismatch", "token"),
        query("ref-without-token", "`?ref=job-0001` alone", f"ref={REF}", 401, "token_mismatch", "token"),
        query("token-without-ref", "`?token=…` alone", f"token={zeros}", 400, "missing_ref", "ref"),
        query("long-ref", "`?ref=` of 129 characters", "ref=" + "r" * 129 + "&token=x", 400, "bad_ref", "ref"),
    ]


def _method_cases() -> list[Case]:
    return [
        Case("get-method", "`GET` instead of `POST`", Sent({}, b"", method="GET"), 405, "method_not_allowed"),
        Case(
            "put-method",
            "`PUT` of a signed delivery",
            dataclasses.replace(signed(), method="PUT"),
            405,
            "method_not_allowed",
        ),
    ]


CASES: list[Case] = [
    *_header_cases(),
    *_timestamp_cases(),
    *_signature_cases(),
    *_body_cases(),
    *_size_cases(),
    *_correlation_cases(),
    *_method_cases(),
    *_accepted_cases(),
]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table() -> str:
    """The table as ``docs/bad-inputs.md`` shows it."""
    lines = ["| case | what is sent | answer | reason | kept in quarantine as |", "|---|---|---|---|---|"]
    for case in CASES:
        lines.append(
            f"| `{case.name}` | {_cell(case.what)} | {case.status} | `{case.reason}` | "
            f"{f'`{case.quarantine}`' if case.quarantine else '—'} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
