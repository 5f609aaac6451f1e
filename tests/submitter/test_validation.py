"""Local validation: every catalog constraint refused with a sentence naming field, value and range."""

from __future__ import annotations

from typing import Any

import pytest

from submitter.catalog import MODELS, InputSpec, ModelSpec
from submitter.errors import SubmitterError
from submitter.validation import ValidationError, unknown_inputs, validate

T2V = "bytedance/seedance-v1-lite-t2v-480p"
REF = "bytedance/seedance-v1-lite/reference-to-video"
IMAGE = "https://example.com/cat.png"


def minimal(model: ModelSpec) -> dict[str, Any]:
    """The required inputs of ``model`` with valid values."""
    values: dict[str, Any] = {"prompt": "a red fox in fresh snow", "image": IMAGE, "reference_images": [IMAGE]}
    return {spec.name: values[spec.name] for spec in model.inputs if spec.required and spec.name in values}


def problems(model_id: str, inputs: dict[str, Any], **kwargs: Any) -> list[str]:
    with pytest.raises(ValidationError) as info:
        validate(model_id, inputs, **kwargs)
    assert info.value.model_id == model_id
    return info.value.problems


def _cases(kind: str) -> list[tuple[str, InputSpec]]:
    return [
        (model.id, spec)
        for model in MODELS.values()
        for spec in model.inputs
        if (kind == "range" and spec.minimum is not None)
        or (kind == "choices" and spec.choices)
        or (kind == "items" and spec.min_items is not None)
        or (kind == "required" and spec.required and spec.default is None)
    ]


def _id(case: tuple[str, InputSpec]) -> str:
    return f"{case[0]}:{case[1].name}"


@pytest.mark.parametrize("case", _cases("range"), ids=_id)
def test_integer_range_accepted_at_bounds_refused_beyond(case: tuple[str, InputSpec]) -> None:
    """Both bounds of a documented range are accepted; one past either bound is refused, naming the range."""
    model_id, spec = case
    model = MODELS[model_id]
    assert spec.minimum is not None
    assert spec.maximum is not None
    for value in (spec.minimum, spec.maximum):
        assert validate(model_id, {**minimal(model), spec.name: value})[spec.name] == value
    for value in (spec.minimum - 1, spec.maximum + 1):
        assert problems(model_id, {**minimal(model), spec.name: value}) == [
            f"{spec.name}={value} is outside {spec.minimum}…{spec.maximum} for {model_id}"
        ]


@pytest.mark.parametrize("case", _cases("choices"), ids=_id)
def test_enum_accepts_each_choice_refuses_others(case: tuple[str, InputSpec]) -> None:
    """Every documented choice is accepted; any other value is refused with the list of choices."""
    model_id, spec = case
    model = MODELS[model_id]
    for choice in spec.choices:
        assert validate(model_id, {**minimal(model), spec.name: choice})[spec.name] == choice
    wrong: Any = 6 if spec.type == "integer" else "2:1"
    message = problems(model_id, {**minimal(model), spec.name: wrong})
    expected = "must be 5" if len(spec.choices) == 1 else f"is not one of {', '.join(map(str, spec.choices))}"
    shown = wrong if spec.type == "integer" else f'"{wrong}"'
    assert message == [f"{spec.name}={shown} {expected} for {model_id}"]


@pytest.mark.parametrize("case", _cases("items"), ids=_id)
def test_list_length_accepted_at_bounds_refused_beyond(case: tuple[str, InputSpec]) -> None:
    """A list of the fewest or most items allowed passes; one fewer or one more is refused."""
    model_id, spec = case
    model = MODELS[model_id]
    assert spec.min_items is not None
    assert spec.max_items is not None
    for count in (spec.min_items, spec.max_items):
        assert len(validate(model_id, {**minimal(model), spec.name: [IMAGE] * count})[spec.name]) == count
    for count in (spec.min_items - 1, spec.max_items + 1):
        (message,) = problems(model_id, {**minimal(model), spec.name: [IMAGE] * count})
        assert message.startswith(f"{spec.name}=[")
        assert message.endswith(f"has {count} items, outside {spec.min_items}…{spec.max_items} items for {model_id}")


@pytest.mark.parametrize("case", _cases("required"), ids=_id)
def test_required_input_missing_is_refused(case: tuple[str, InputSpec]) -> None:
    """Leaving out a required input without a default is refused, naming the input and what it is for."""
    model_id, spec = case
    inputs = minimal(MODELS[model_id])
    del inputs[spec.name]
    assert problems(model_id, inputs) == [f"{spec.name} is required for {model_id} ({spec.description})"]


@pytest.mark.parametrize("model_id", sorted(MODELS))
def test_defaults_applied(model_id: str) -> None:
    """Omitted inputs with a documented default are sent with it; inputs without one stay absent."""
    model = MODELS[model_id]
    sent = validate(model_id, minimal(model))
    for spec in model.inputs:
        if spec.default is not None:
            assert sent[spec.name] == spec.default
        elif not spec.required:
            assert spec.name not in sent


def test_required_with_default_is_filled() -> None:
    """duration is marked required on its page and has a default: the default is sent when it is omitted."""
    assert validate(T2V, {"prompt": "x"})["duration"] == 5


def test_every_problem_reported_at_once() -> None:
    """One error carries each problem of the inputs, not only the first."""
    found = problems(T2V, {"duration": 14, "aspect_ratio": "2:1", "camera_fixed": "yes", "seed": -2})
    assert found == [
        f"prompt is required for {T2V} (The positive prompt for the generation.)",
        f'aspect_ratio="2:1" is not one of 21:9, 16:9, 4:3, 1:1, 3:4, 9:16, 9:21 for {T2V}',
        f"duration=14 is outside 5…10 for {T2V}",
        f'camera_fixed="yes" is not a boolean (true or false) for {T2V}',
        f"seed=-2 is outside -1…2147483647 for {T2V}",
    ]


def test_error_is_a_submitter_error_and_lists_problems_in_its_message() -> None:
    """The error belongs to the submitter's tree and its text shows every problem on its own line."""
    with pytest.raises(SubmitterError) as info:
        validate(T2V, {"prompt": "x", "duration": 14, "seed": "1"})
    text = str(info.value)
    assert text.startswith(f"2 invalid input(s) for {T2V}:")
    assert f"\n  - duration=14 is outside 5…10 for {T2V}" in text
    assert f'\n  - seed="1" is not a whole number for {T2V}' in text


def test_unknown_input_refused_with_did_you_mean() -> None:
    """A misspelt input is refused with the closest real name and the list of inputs."""
    assert problems(T2V, {"prompt": "x", "durration": 6}) == [
        f"durration is not an input of {T2V}; did you mean duration? "
        "(its inputs: prompt, aspect_ratio, duration, camera_fixed, seed)"
    ]
    (message,) = problems(T2V, {"prompt": "x", "zzz": 1})
    assert "did you mean" not in message


@pytest.mark.parametrize(
    ("field", "value", "complaint"),
    [
        ("duration", True, "is not a whole number"),
        ("duration", 5.5, "is not a whole number"),
        ("duration", "5", "is not a whole number"),
        ("camera_fixed", 1, "is not a boolean (true or false)"),
        ("prompt", 3, "is not a string"),
        ("prompt", "   ", "is empty"),
    ],
)
def test_wrong_types_refused(field: str, value: Any, complaint: str) -> None:
    """A value of the wrong JSON type is refused, not converted, when it did not come from a command line."""
    (message,) = problems(T2V, {"prompt": "x", field: value})
    assert message.endswith(f"{complaint} for {T2V}")


def test_integral_float_accepted_as_integer() -> None:
    """5.0 (as some JSON writers emit) is the integer 5."""
    assert validate(T2V, {"prompt": "x", "duration": 6.0})["duration"] == 6


def test_strings_coerced_from_the_command_line() -> None:
    """With from_strings, numbers, booleans and JSON arrays typed as text become their declared types."""
    sent = validate(T2V, {"prompt": "x", "duration": "7", "camera_fixed": "true", "seed": "42"}, from_strings=True)
    assert sent == {"prompt": "x", "aspect_ratio": "16:9", "duration": 7, "camera_fixed": True, "seed": 42}
    ref = validate(REF, {"prompt": "x", "reference_images": f'["{IMAGE}", "{IMAGE}"]'}, from_strings=True)
    assert ref["reference_images"] == [IMAGE, IMAGE]
    single = validate(REF, {"prompt": "x", "reference_images": IMAGE}, from_strings=True)
    assert single["reference_images"] == [IMAGE]
    repeated = validate(REF, {"prompt": "x", "reference_images": [IMAGE, IMAGE]}, from_strings=True)
    assert repeated["reference_images"] == [IMAGE, IMAGE]


def test_uncoercible_strings_refused() -> None:
    """Command-line text that is not of the declared type is refused with what was expected."""
    found = problems(T2V, {"prompt": "x", "duration": "five", "camera_fixed": "maybe", "seed": "14"}, from_strings=True)
    assert found == [
        f'duration="five" is not a whole number for {T2V}',
        f'camera_fixed="maybe" is not a boolean (use true or false) for {T2V}',
    ]
    (bad_json,) = problems(REF, {"prompt": "x", "reference_images": '["a",'}, from_strings=True)
    assert bad_json.startswith('reference_images="[\\"a\\"," is not a valid JSON array')


def test_range_error_shows_the_converted_value() -> None:
    """A command-line value out of range is reported as the number it was read as."""
    assert problems(T2V, {"prompt": "x", "duration": "14"}, from_strings=True) == [
        f"duration=14 is outside 5…10 for {T2V}"
    ]


def test_image_inputs_must_be_urls_unless_local_paths_allowed() -> None:
    """Images must be URLs for the provider; the submitter may allow local paths, which it uploads."""
    waver = "bytedance/waver-1.0"
    assert problems(waver, {"prompt": "x", "image": "cat.png"}) == [
        f'image="cat.png" is not an image URL (https://…) for {waver}'
    ]
    assert validate(waver, {"prompt": "x", "image": "cat.png"}, allow_local_paths=True)["image"] == "cat.png"
    (message,) = problems(REF, {"prompt": "x", "reference_images": [IMAGE, "b.png"]})
    assert message.endswith(f"item 2 is not an image URL (https://…) for {REF}")


def test_long_values_are_cut_short_in_messages() -> None:
    """A long value is shortened in the sentence so one bad prompt does not flood the terminal."""
    (message,) = problems(T2V, {"prompt": 7 * 10**80})
    assert "…" in message
    assert len(message) < 160


def test_unknown_model_passes_unchanged() -> None:
    """A model outside the catalog is not validated: its inputs come back as given."""
    inputs = {"prompt": "x", "whatever": [1, 2]}
    assert validate("bytedance/seedance-v1-lite-t2v-720p", inputs) == inputs


def test_unknown_inputs_sent_as_given_with_allow_extra() -> None:
    """allow_extra keeps inputs the page does not list, unchanged, beside the checked ones; unknown_inputs
    names each with a did-you-mean; without it they are refused."""
    sent = {"prompt": "a fox", "negative_prompt": "blur", "durration": 6}
    assert validate(T2V, sent, allow_extra=True) == {
        "prompt": "a fox",
        "negative_prompt": "blur",
        "durration": 6,
        "aspect_ratio": "16:9",
        "duration": 5,
        "camera_fixed": False,
        "seed": -1,
    }
    first, second = unknown_inputs(T2V, sent)
    assert first.startswith(f"negative_prompt is not an input of {T2V}")
    assert "durration is not an input" in second
    assert "did you mean duration?" in second
    with pytest.raises(ValidationError, match="did you mean duration"):
        validate(T2V, sent)
    assert unknown_inputs("someone/else", sent) == []
