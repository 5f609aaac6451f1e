"""Every catalog constraint against a real sandbox: each value at a bound is accepted (and the sandbox, which
refuses what the provider refuses, takes it); each value past a bound is refused locally, with its sentence,
before any request."""

from __future__ import annotations

from typing import Any

import pytest

from submitter import MODELS, Submitter, ValidationError
from submitter.catalog import InputSpec, ModelSpec
from submitter.validation import show
from tests.integration.submitter_support import Loop

pytestmark = pytest.mark.integration
IMAGE = "https://example.com/cat.png"


def base(model: ModelSpec) -> dict[str, Any]:
    values = {"prompt": "a fox", "image": IMAGE, "reference_images": [IMAGE]}
    return {s.name: values[s.name] for s in model.inputs if s.required and s.name in values}


def bounds(spec: InputSpec) -> tuple[list[Any], list[tuple[Any, str]]]:
    """Values at the bounds, and values past them with the end of the sentence that refuses each."""
    if spec.minimum is not None and spec.maximum is not None:
        past = [spec.minimum - 1, spec.maximum + 1]
        return [spec.minimum, spec.maximum], [(v, f"is outside {spec.allowed()}") for v in past]
    if spec.choices:
        wrong: Any = 6 if spec.type == "integer" else "2:1"
        says = "must be 5" if len(spec.choices) == 1 else f"is not one of {spec.allowed()}"
        return list(spec.choices), [(wrong, says)]
    if spec.min_items is not None and spec.max_items is not None:
        lengths = (spec.min_items - 1, spec.max_items + 1)
        return [[IMAGE] * spec.min_items, [IMAGE] * spec.max_items], [
            ([IMAGE] * n, f"has {n} items, outside {spec.allowed()}") for n in lengths
        ]
    return [], []


def test_every_constraint_accepted_at_its_bounds_and_refused_past_them(loop: Loop) -> None:
    """Bound values go through the sandbox and complete; past-bound values never leave, each refused by name."""
    accepted: list[tuple[str, dict[str, Any]]] = []
    refused: list[tuple[str, dict[str, Any], str]] = []
    for model in MODELS.values():
        for spec in model.inputs:
            good, bad = bounds(spec)
            accepted += [(model.id, {**base(model), spec.name: value}) for value in good]
            refused += [
                (model.id, {**base(model), spec.name: value}, f"{spec.name}={show(value)} {says} for {model.id}")
                for value, says in bad
            ]
    assert len(accepted) >= 30
    assert len(refused) >= 17
    with Submitter(loop.settings) as sub:
        for model_id, inputs, sentence in refused:
            with pytest.raises(ValidationError) as info:
                sub.submit(model_id, inputs)
            assert info.value.problems == [sentence]
        assert loop.sandbox_status()["tasks"] == 0
        results = [sub.submit(model_id, inputs) for model_id, inputs in accepted]
    assert {r.outcome for r in results} == {"submitted"}
    assert loop.sandbox_status()["tasks"] == len(accepted)
    final = loop.wait_final(len(accepted))
    assert {row["status"] for row in final} == {"completed"}
