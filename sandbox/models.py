"""``GET /api/v3/models``: the model listing, in the shape the provider's own clients read (``model_id``,
``name``, ``description``, ``type``, ``api_schema.api_schemas[0].request_schema``), built from the catalog
of documented models. Prices are not documented for them, so there is no ``base_price``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from sandbox.api import authorize
from sandbox.envelope import ok
from submitter.catalog import MODELS, InputSpec, ModelSpec


def _property(spec: InputSpec) -> dict[str, Any]:
    prop: dict[str, Any] = {"type": spec.type, "description": spec.description}
    if spec.default is not None:
        prop["default"] = spec.default
    if spec.minimum is not None:
        prop["minimum"], prop["maximum"] = spec.minimum, spec.maximum
    if spec.choices:
        prop["enum"] = list(spec.choices)
    if spec.type == "array":
        prop["items"] = {"type": "string"}
        prop["minItems"], prop["maxItems"] = spec.min_items, spec.max_items
    return prop


def listing(model: ModelSpec) -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {spec.name: _property(spec) for spec in model.inputs},
        "required": [spec.name for spec in model.inputs if spec.required],
        "x-order-properties": list(model.input_names),
    }
    return {
        "model_id": model.id,
        "name": model.name,
        "description": model.description,
        "type": model.kind,
        "api_schema": {
            "api_schemas": [
                {"type": "model_run", "method": "POST", "api_path": f"/api/v3/{model.id}", "request_schema": schema}
            ]
        },
    }


async def list_models(request: Request) -> JSONResponse:
    authorize(request)
    return ok([listing(model) for model in MODELS.values()])
