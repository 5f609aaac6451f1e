"""What a verified delivery says: the prediction fields a body carries, parsed once, outside the writer."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable
from typing import Any

import orjson

from receiver.errors import BadRequest


@dataclasses.dataclass(frozen=True, slots=True)
class Delivery:
    """A verified delivery (or a reconciled result) ready for the ledger."""

    webhook_id: str
    body: bytes
    body_sha256: str
    prediction_id: str
    status: str | None
    model: str | None
    fields: dict[str, str | None]  # JSON-encoded columns: input, outputs, error, ...
    webhook_timestamp: int | None = None
    reference: str | None = None
    source: str = "webhook"


_JSON_FIELDS = ("input", "outputs", "has_nsfw_contents", "timings")
# Stored as text columns as they come (the JSON fields above are re-encoded as ASCII JSON instead).
_TEXT_FIELDS = ("status", "model", "error", "created_at")
_CHECKED_TEXT = ("id", *_TEXT_FIELDS)
# Opening brackets a body may hold for the fast parse: far below any parser's nesting limit.
_SHALLOW = 256


def _compact_encoder() -> Callable[[Any], str]:
    """``json.dumps(value, separators=(",", ":"))``, the same text, made once instead of on every call.

    ``json.dumps`` with any non-default argument builds a new encoder per call: for the four small values of
    each delivery that costs more than the encoding itself. The C encoder ``json.dumps`` itself would build is
    made here once, without the circular-reference check (a value from ``json.loads`` has no cycles).
    """
    encoder = json.JSONEncoder(separators=(",", ":"))
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator (another Python implementation): the encoder made once
        return encoder.encode
    iterencode = make(None, encoder.default, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True)
    return lambda value: "".join(iterencode(value, 0))


encode_compact = _compact_encoder()


def load_json(body: bytes) -> Any:
    """``json.loads`` whose every failure is the one ``BadRequest`` (``invalid_json``)."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}", reason="invalid_json") from None
    except RecursionError:
        raise BadRequest("body is not valid JSON: arrays or objects nested too deeply", reason="invalid_json") from None


def _load_prediction(body: bytes) -> tuple[Any, dict[str, str | None]]:
    """The parsed body and its JSON columns, exactly as ``json.loads`` and ``json.dumps`` make them.

    orjson parses a delivery in a third of ``json.loads``' time, and where both accept a body they agree, with
    one exception: orjson reads an integer beyond 64 bits as a float, which ``json.dumps`` writes with ``e+``.
    So a column holding ``e+`` (or a body orjson refuses: NaN, a byte order mark, UTF-16, a lone surrogate,
    anything not an object) is parsed again by ``json.loads``, which decides. Bodies with many brackets go
    straight to ``json.loads``: it alone says how deep is too deep.
    """
    if body.count(b"{") + body.count(b"[") <= _SHALLOW:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            _check_shapes(data)
            columns = _columns(data)
            if not any(text is not None and "e+" in text for text in columns.values()):
                # orjson holds no NaN, infinity or lone surrogate, and no integer beyond 64 bits as an integer.
                return data, columns
    data = load_json(body)
    if not isinstance(data, dict):
        return data, {}
    _check_shapes(data)
    for name in _JSON_FIELDS:
        _check_values(data.get(name), name)
    return data, _columns(data)


# What the ledger's JSON columns may hold: anything else is not a prediction a reader could show.
_SHAPES: dict[str, tuple[Any, Any, str]] = {
    "input": (dict, None, "an object"),
    "outputs": (list, str, "an array of URL strings"),
    "has_nsfw_contents": (list, bool, "an array of booleans"),
    "timings": (dict, None, "an object"),
}
_MAX_INTEGER = 2**64


def _check_shapes(data: dict[str, Any]) -> None:
    for name, (container, item, wanted) in _SHAPES.items():
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, container) or (item is not None and not all(isinstance(x, item) for x in value)):
            raise BadRequest(f'body field "{name}" must be {wanted}', reason="invalid_field")


def _check_values(value: Any, path: str) -> None:
    """Refuse what ``json.loads`` accepts but JSON cannot carry back out: NaN, infinities (``1e999``), lone
    surrogates, and integers beyond 64 bits, anywhere inside a stored field."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, dict):
            for key, inner in item.items():
                if not is_text(key):
                    raise BadRequest(
                        f'body field "{where}" holds a key that is not Unicode text', reason="invalid_text"
                    )
                stack.append((inner, f"{where}.{key}"))
        elif isinstance(item, list):
            stack.extend((inner, f"{where}[{index}]") for index, inner in enumerate(item))
        elif isinstance(item, str):
            if not item.isascii() and not is_text(item):
                raise BadRequest(
                    f'body field "{where}" holds a lone surrogate escape, which is not Unicode text',
                    reason="invalid_text",
                )
        elif isinstance(item, float) and not math.isfinite(item):
            raise BadRequest(f'body field "{where}" is not a finite number', reason="invalid_number")
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) >= _MAX_INTEGER:
            raise BadRequest(f'body field "{where}" is an integer beyond 64 bits', reason="invalid_number")


def _columns(data: dict[str, Any]) -> dict[str, str | None]:
    return {name: None if (value := data.get(name)) is None else encode_compact(value) for name in _JSON_FIELDS}


def is_text(value: str) -> bool:
    """False for strings SQLite cannot store as text: JSON escapes such as ``\\ud800`` decode to lone surrogates."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse(
    body: bytes,
    *,
    webhook_id: str,
    webhook_timestamp: int | None = None,
    reference: str | None = None,
    source: str = "webhook",
) -> Delivery:
    """Parse a prediction object; raise ``BadRequest`` naming what is wrong with it."""
    data, fields = _load_prediction(body)
    if not isinstance(data, dict):
        raise BadRequest(
            f"body must be a JSON object (a prediction), not {type(data).__name__}", reason="not_an_object"
        )
    prediction_id = data.get("id")
    if not isinstance(prediction_id, str) or not prediction_id.strip():
        raise BadRequest('body field "id" must be a non-empty string', reason="missing_id")
    for name in _CHECKED_TEXT:
        value = data.get(name)
        # ASCII is always text: the encode in is_text is only needed for the rest.
        if isinstance(value, str) and not value.isascii() and not is_text(value):
            raise BadRequest(
                f'body field "{name}" holds a lone surrogate escape, which is not Unicode text',
                reason="invalid_text",
            )
    status = data.get("status")
    model = data.get("model")
    error = data.get("error")
    fields["error"] = error if isinstance(error, str) and error else None
    created_at = data.get("created_at")
    fields["provider_created_at"] = created_at if isinstance(created_at, str) else None
    return Delivery(
        webhook_id=webhook_id,
        body=body,
        body_sha256=hashlib.sha256(body).hexdigest(),
        prediction_id=prediction_id,
        status=status if isinstance(status, str) and status else None,
        model=model if isinstance(model, str) and model else None,
        fields=fields,
        webhook_timestamp=webhook_timestamp,
        reference=reference,
        source=source,
    )


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def decode_column(name: str, raw: str | None) -> Any:
    """A stored JSON column as every reader may rely on, whatever an older version let in: the shape ingest
    requires (else ``None``; list items of another type dropped), no NaN or infinity (``None`` instead), no
    lone surrogate (U+FFFD instead). A listing must never fail on one odd row."""
    if raw is None:
        return None
    try:
        value = _scrubbed(json.loads(raw))
    except (ValueError, RecursionError):
        return None
    container, item, _wanted = _SHAPES.get(name, (object, None, ""))
    if not isinstance(value, container):
        return None
    if item is not None:
        value = [x for x in value if isinstance(x, item)]
    return value


def _scrubbed(value: Any) -> Any:
    if isinstance(value, dict):
        return {_scrubbed(key): _scrubbed(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_scrubbed(inner) for inner in value]
    if isinstance(value, str):
        return value if value.isascii() or is_text(value) else text_of(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def text_of(value: str) -> str:
    """``value`` with each lone surrogate replaced by U+FFFD, so that it can be encoded as UTF-8."""
    return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
