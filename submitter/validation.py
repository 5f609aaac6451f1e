"""Local validation against the catalog: every problem at once, before any network call.

``validate`` applies the documented defaults, coerces command-line strings to the declared types when asked,
and raises one ``ValidationError`` listing each problem as a sentence naming the field, the value and what
is allowed. A model without a catalog entry is not validated: its inputs come back unchanged.

Inputs a model's page does not list are refused by default (a misspelt ``durration`` would otherwise be sent
and ignored); real clients send extra fields the provider accepts (``negative_prompt``), so
``allow_extra=True`` sends them unchanged. Either way ``unknown_inputs`` names each with a did-you-mean.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

from submitter.catalog import InputSpec, ModelSpec, get_model
from submitter.errors import ValidationError

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_URL_PREFIXES = ("https://", "http://")
_SHOWN = 60


class _Invalid(Exception):
    """One problem with one value; becomes a sentence of the ``ValidationError``."""


def show(value: Any) -> str:
    """A value as a problem sentence shows it: JSON, cut short."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def is_url(value: str) -> bool:
    return value.startswith(_URL_PREFIXES)


def validate(
    model_id: str,
    inputs: Mapping[str, Any],
    *,
    from_strings: bool = False,
    allow_local_paths: bool = False,
    allow_extra: bool = False,
) -> dict[str, Any]:
    """The inputs to send, defaults applied; raise ``ValidationError`` listing every problem.

    ``from_strings``: values typed on a command line (``"5"``, ``"true"``, a JSON array) are converted to
    the declared types first. ``allow_local_paths``: image inputs may name local files (the submitter
    uploads them afterwards); otherwise they must be URLs, as the provider requires. ``allow_extra``: inputs
    the catalog does not list are sent as given instead of refused.
    """
    model = get_model(model_id)
    if model is None:
        return dict(inputs)
    problems: list[str] = []
    result: dict[str, Any] = {}
    for name in inputs:
        if model.input(name) is None:
            if allow_extra:
                result[name] = inputs[name]
            else:
                problems.append(_unknown(model, name))
    for spec in model.inputs:
        if spec.name not in inputs or inputs[spec.name] is None:
            if spec.default is not None:
                result[spec.name] = spec.default
            elif spec.required:
                problems.append(f"{spec.name} is required for {model.id} ({spec.description})")
            continue
        value = inputs[spec.name]
        try:
            value = _coerce(spec, value) if from_strings else value
            result[spec.name] = _check(spec, value, allow_local_paths=allow_local_paths)
        except _Invalid as exc:
            problems.append(f"{spec.name}={show(value)} {exc} for {model.id}")
    if problems:
        raise ValidationError(model.id, problems)
    return result


def unknown_inputs(model_id: str, inputs: Mapping[str, Any]) -> list[str]:
    """A sentence (with a did-you-mean when one is close) for each input the catalog does not list."""
    model = get_model(model_id)
    if model is None:
        return []
    return [_unknown(model, name) for name in inputs if model.input(name) is None]


def _unknown(model: ModelSpec, name: str) -> str:
    known = ", ".join(model.input_names)
    close = difflib.get_close_matches(name, model.input_names, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"{name} is not an input of {model.id}{hint} (its inputs: {known})"


def _coerce(spec: InputSpec, value: Any) -> Any:
    """Turn command-line text into the declared type; values that are not text pass through."""
    if spec.type == "array":
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                try:
                    return json.loads(value)
                except ValueError as exc:
                    raise _Invalid(f"is not a valid JSON array ({exc})") from None
            return [value]
        return value
    if not isinstance(value, str):
        return value
    if spec.type == "integer":
        try:
            return int(value.strip())
        except ValueError:
            raise _Invalid("is not a whole number") from None
    if spec.type == "boolean":
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise _Invalid("is not a boolean (use true or false)")
    return value


def _check(spec: InputSpec, value: Any, *, allow_local_paths: bool) -> Any:
    """The value to send, or ``_Invalid`` saying what the catalog allows instead."""
    if spec.type == "integer":
        value = _integer(value)
        if spec.minimum is not None and spec.maximum is not None and not spec.minimum <= value <= spec.maximum:
            raise _Invalid(f"is outside {spec.allowed()}")
    elif spec.type == "boolean":
        if not isinstance(value, bool):
            raise _Invalid("is not a boolean (true or false)")
    elif spec.type == "string":
        _string(spec, value, allow_local_paths=allow_local_paths)
    else:
        _array(spec, value, allow_local_paths=allow_local_paths)
    if spec.choices and value not in spec.choices:
        allowed = f"must be {spec.choices[0]}" if len(spec.choices) == 1 else f"is not one of {spec.allowed()}"
        raise _Invalid(allowed)
    return value


def _integer(value: Any) -> int:
    # bool is an int in Python, but true is not a duration.
    if isinstance(value, bool):
        raise _Invalid("is not a whole number")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, int):
        raise _Invalid("is not a whole number")
    return value


def _string(spec: InputSpec, value: Any, *, allow_local_paths: bool) -> None:
    if not isinstance(value, str):
        raise _Invalid("is not a string")
    if not value.strip():
        raise _Invalid("is empty")
    if spec.media and not allow_local_paths and not is_url(value):
        raise _Invalid("is not an image URL (https://…)")


def _array(spec: InputSpec, value: Any, *, allow_local_paths: bool) -> None:
    if not isinstance(value, list):
        raise _Invalid("is not a list")
    if spec.min_items is not None and spec.max_items is not None and not spec.min_items <= len(value) <= spec.max_items:
        raise _Invalid(f"has {len(value)} items, outside {spec.allowed()}")
    for index, item in enumerate(value):
        try:
            _string(spec, item, allow_local_paths=allow_local_paths)
        except _Invalid as exc:
            raise _Invalid(f"item {index + 1} {exc}") from None


__all__ = ["ValidationError", "unknown_inputs", "validate"]
