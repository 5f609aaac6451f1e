"""``GET /openapi.json``: the JSON API described in OpenAPI 3.1, behind the same access rule as ``/api/``.

Written out here rather than generated: Starlette routes carry no types, and the description is a promise to
the users who generate clients from it. ``tests/receiver/http/test_openapi.py`` holds it to the app's routes, and
schemathesis holds the answers to it.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

PATH = "/openapi.json"
JSON = "application/json"


def _nullable(kind: str | list[str], **extra: Any) -> dict[str, Any]:
    kinds = [kind] if isinstance(kind, str) else kind
    return {"type": [*kinds, "null"], **extra}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _refusals(*statuses: int) -> dict[str, Any]:
    meaning = {
        400: "a parameter is malformed (the error names it)",
        401: "no or a wrong bearer token, or no login (when WAVEHOOK_ADMIN_TOKEN is set)",
        403: "not a loopback client (without WAVEHOOK_ADMIN_TOKEN), or a cross-site request",
        404: "no such prediction or run",
        409: "the run is not in a state that allows the action",
        429: "too many failed attempts to authenticate from this client (see Retry-After)",
    }
    return {str(status): _answer(meaning[status], _ref("Error")) for status in (401, 403, 429, *statuses)}


def _query(name: str, schema: dict[str, Any], description: str, *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def _path(name: str, description: str) -> dict[str, Any]:
    # Any text but a slash (it would name another route); the server itself says what is wrong with the rest.
    schema = {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


_LIMIT = _query("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}, "page size")
_SINCE = _query("since", {"type": "number"}, "Unix seconds: only what changed at or after")
_DRY_RUN = _query("dry_run", {"type": "boolean", "default": False}, "say what would be replayed, change nothing")
_HANDLER = _query("handler", {"type": "string"}, "only runs of this handler")

_PREDICTION = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "string"},
        "model": _nullable("string"),
        "status": _nullable("string"),
        "input": _nullable("object"),
        "outputs": _nullable("array", items={"type": "string"}),
        "error": _nullable("string"),
        "has_nsfw_contents": _nullable("array", items={"type": "boolean"}),
        "timings": _nullable("object"),
        "provider_created_at": _nullable("string"),
        "reference": _nullable("string"),
        "webhook_url": _nullable("string", description="with its correlation token masked"),
        "submitted_at": _nullable("number"),
        "first_seen_at": {"type": "number"},
        "updated_at": {"type": "number"},
        "completed_at": _nullable("number"),
        "last_event_id": _nullable("integer"),
    },
}
_ATTEMPT = {
    "type": "object",
    "required": ["id", "run_id", "attempt", "owner", "started_at"],
    "properties": {
        "id": {"type": "integer"},
        "run_id": {"type": "integer"},
        "attempt": {"type": "integer"},
        "owner": {"type": "string"},
        "started_at": {"type": "number"},
        "finished_at": _nullable("number"),
        "duration_ms": _nullable("number"),
        "outcome": _nullable("string"),
        "error": _nullable("string"),
        "traceback": _nullable("string"),
    },
}
_RUN = {
    "type": "object",
    "required": ["id", "prediction_id", "status", "handler", "state", "attempts"],
    "properties": {
        "id": {"type": "integer"},
        "prediction_id": {"type": "string"},
        "status": {"type": "string"},
        "handler": {"type": "string"},
        "state": {"enum": ["pending", "running", "succeeded", "dead"]},
        "attempts": {"type": "integer"},
        "next_at": {"type": "number"},
        "last_error": _nullable("string"),
        "finished_at": _nullable("number"),
        "attempt_history": {"type": "array", "items": _ref("Attempt")},
    },
}
_STORED_DELIVERY = {
    "type": "object",
    "required": ["webhook_id", "body"],
    "properties": {"webhook_id": {"type": "string"}, "body": {"type": "string", "description": "as received"}},
}
_DETAIL = {
    "allOf": [
        _ref("Prediction"),
        {
            "type": "object",
            "required": ["events", "quarantined", "handler_runs", "downloads"],
            "properties": {
                "events": {"type": "array", "items": _STORED_DELIVERY},
                "quarantined": {"type": "array", "items": _STORED_DELIVERY},
                "handler_runs": {"type": "array", "items": _ref("Run")},
                "downloads": {"type": "array", "items": {"type": "object"}},
            },
        },
    ]
}
_SUMMARY = {
    "type": "object",
    "required": ["predictions", "runs", "quarantined", "missed_webhooks", "dead_runs", "outbox_depth"],
    "properties": {
        "predictions": {"type": "array", "items": {"type": "object", "required": ["model", "status", "count"]}},
        "runs": {"type": "array", "items": {"type": "object", "required": ["handler", "state", "count"]}},
        "quarantined": {"type": "integer"},
        "missed_webhooks": {"type": "integer"},
        "dead_runs": {"type": "integer"},
        "outbox_depth": {"type": "integer"},
        "oldest_pending_age_seconds": _nullable("number"),
        "refused_deliveries": {
            "type": "object",
            "description": "reason -> count, last_at, last_webhook_id of the deliveries answered 4xx",
            "additionalProperties": {"type": "object", "required": ["count"]},
        },
    },
}
_REPLAY = {
    "type": "object",
    "required": ["dry_run", "matched", "replayed", "would_replay", "left_alone"],
    "properties": {
        "dry_run": {"type": "boolean"},
        "matched": {"type": "integer"},
        "replayed": {"type": "array", "items": {"type": "integer"}},
        "would_replay": {"type": "array", "items": {"type": "integer"}},
        "left_alone": {"type": "array", "items": {"type": "object", "required": ["id", "state"]}},
    },
}


def _page(key: str, item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [key, "next_cursor"],
        "properties": {
            key: {"type": "array", "items": _ref(item)},
            "next_cursor": _nullable("string", description="pass back as cursor for the next page"),
        },
    }


SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "wavehook",
        "version": "1",
        "description": "The ledger of predictions, their deliveries and handler runs. Send "
        "'Authorization: Bearer <WAVEHOOK_ADMIN_TOKEN>'; without a token only loopback clients are served.",
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error", "reason"],
                "properties": {"error": {"type": "string"}, "reason": {"type": "string"}},
            },
            "Prediction": _PREDICTION,
            "PredictionDetail": _DETAIL,
            "Attempt": _ATTEMPT,
            "Run": _RUN,
            "Summary": _SUMMARY,
            "ReplayResult": _REPLAY,
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/api/predictions": {
            "get": {
                "summary": "Predictions, most recently updated first",
                "parameters": [
                    _query("status", {"type": "string"}, "only this status"),
                    _query("model", {"type": "string"}, "only this model"),
                    _SINCE,
                    _LIMIT,
                    _query("cursor", {"type": "string"}, "next_cursor of the previous page"),
                ],
                "responses": {"200": _answer("one page", _page("predictions", "Prediction")), **_refusals(400)},
            }
        },
        "/api/predictions/{prediction_id}": {
            "get": {
                "summary": "One prediction with its deliveries, quarantined deliveries, runs and downloads",
                "parameters": [_path("prediction_id", "the provider's task id")],
                "responses": {"200": _answer("the prediction", _ref("PredictionDetail")), **_refusals(404)},
            }
        },
        "/api/summary": {
            "get": {
                "summary": "Counts per model and status, runs per handler and state, the outbox",
                "responses": {"200": _answer("the counts", _ref("Summary")), **_refusals()},
            }
        },
        "/api/runs": {
            "get": {
                "summary": "Handler runs, newest first",
                "parameters": [
                    _query("state", {"enum": ["pending", "running", "succeeded", "dead"]}, "only this state"),
                    _HANDLER,
                    _query("prediction_id", {"type": "string"}, "only runs of this prediction"),
                    _LIMIT,
                    _query("cursor", {"type": "string"}, "next_cursor of the previous page"),
                ],
                "responses": {"200": _answer("one page", _page("runs", "Run")), **_refusals(400)},
            }
        },
        "/api/runs/{run_id}": {
            "get": {
                "summary": "One run with its attempt history",
                "parameters": [_path("run_id", "the run's integer id")],
                "responses": {"200": _answer("the run", _ref("Run")), **_refusals(400, 404)},
            }
        },
        "/api/runs/{run_id}/replay": {
            "post": {
                "summary": "Make a dead or succeeded run pending again",
                "parameters": [_path("run_id", "the run's integer id")],
                "responses": {"200": _answer("what was replayed", _ref("ReplayResult")), **_refusals(400, 404, 409)},
            }
        },
        "/api/runs/replay-dead": {
            "post": {
                "summary": "Replay every dead run (of a handler, since a time)",
                "parameters": [_HANDLER, _SINCE, _DRY_RUN],
                "responses": {"200": _answer("what was replayed", _ref("ReplayResult")), **_refusals(400)},
            }
        },
        "/api/runs/replay": {
            "post": {
                "summary": "Replay the finished runs of one prediction",
                "parameters": [
                    _query("prediction_id", {"type": "string", "minLength": 1}, "the prediction", required=True),
                    _HANDLER,
                    _DRY_RUN,
                ],
                "responses": {"200": _answer("what was replayed", _ref("ReplayResult")), **_refusals(400)},
            }
        },
    },
}


async def openapi(_request: Request) -> JSONResponse:
    return JSONResponse(SPEC)
