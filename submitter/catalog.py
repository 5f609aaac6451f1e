"""The model catalog: every input of the models whose documentation pages we have, as data.

Transcribed from the provider's model pages (their "Request Parameters" tables); ``tests/submitter/
test_catalog.py`` compares each entry with those tables field by field. A model that is not here can still be
submitted, without local validation.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

InputType = Literal["string", "integer", "boolean", "array"]
Kind = Literal["text-to-video", "image-to-video", "reference-to-video"]
Scalar = str | int | bool

SEED_DESCRIPTION = "The random seed to use for the generation. -1 means a random seed will be used."
PROMPT_DESCRIPTION = "The positive prompt for the generation."
SEED_RANGE = (-1, 2147483647)


@dataclasses.dataclass(frozen=True, slots=True)
class InputSpec:
    """One documented input. ``default`` is ``None`` where the page documents none."""

    name: str
    type: InputType
    required: bool
    description: str
    default: Scalar | None = None
    minimum: int | None = None  # integers: the inclusive range
    maximum: int | None = None
    choices: tuple[Scalar, ...] = ()  # the only values allowed, in the page's order
    min_items: int | None = None  # arrays: how many items
    max_items: int | None = None
    media: bool = False  # an image URL (a local path is uploaded first)

    def allowed(self) -> str:
        """What the page allows, in its own terms: ``5…10``, ``16:9, 4:3``, ``1…4 items``, or ``""``."""
        if self.choices:
            return ", ".join(str(choice) for choice in self.choices)
        if self.minimum is not None and self.maximum is not None:
            return f"{self.minimum}…{self.maximum}"
        if self.min_items is not None and self.max_items is not None:
            return f"{self.min_items}…{self.max_items} items"
        return ""


@dataclasses.dataclass(frozen=True, slots=True)
class ModelSpec:
    id: str
    name: str  # the display name on the model's page
    kind: Kind
    output: Literal["video"]
    description: str
    inputs: tuple[InputSpec, ...]

    def input(self, name: str) -> InputSpec | None:
        return next((spec for spec in self.inputs if spec.name == name), None)

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.inputs)


def _prompt() -> InputSpec:
    return InputSpec("prompt", "string", True, PROMPT_DESCRIPTION)


def _seed(default: int | None) -> InputSpec:
    return InputSpec("seed", "integer", False, SEED_DESCRIPTION, default, *SEED_RANGE)


def _aspect_ratio(choices: tuple[str, ...]) -> InputSpec:
    return InputSpec(
        "aspect_ratio", "string", False, "The aspect ratio of the generated media.", "16:9", choices=choices
    )


def _camera_fixed() -> InputSpec:
    return InputSpec("camera_fixed", "boolean", False, "Whether to fix the camera position.", False)


_CATALOG = (
    ModelSpec(
        id="bytedance/waver-1.0",
        name="Bytedance Waver 1.0",
        kind="image-to-video",
        output="video",
        description="Waver1.0 is Bytedance’s all-in-one video generation model that excels in text-to-video (T2V), "
        "image-to-video (I2V), and text-to-image (T2I) generation.",
        inputs=(
            InputSpec("image", "string", True, "The image for generating the output.", media=True),
            _prompt(),
            _seed(None),
        ),
    ),
    ModelSpec(
        id="bytedance/seedance-v1-lite/reference-to-video",
        name="Bytedance Seedance V1 Lite Reference To Video",
        kind="reference-to-video",
        output="video",
        description="ByteDance Seedance lite reference-to-video allows the use of 1 to 4 images as reference to "
        "create a high-quality video.",
        inputs=(
            _prompt(),
            InputSpec(
                "reference_images",
                "array",
                True,
                "A list of images to use as style references. At least 1 image is required. max 4 images.",
                min_items=1,
                max_items=4,
                media=True,
            ),
            InputSpec("duration", "integer", False, "The duration of the generated media in seconds.", 5, 2, 12),
            _camera_fixed(),
            _seed(None),
        ),
    ),
    ModelSpec(
        id="bytedance/dreamina-v3.0/image-to-video-1080p",
        name="Bytedance Dreamina V3.0 Image To Video 1080p",
        kind="image-to-video",
        output="video",
        description="Dreamina V3.0 provides the ability to respond to text or image inputs with more accuracy and "
        "natural dynamic expression, generating 1080P high-quality videos with professional-level visual "
        "quality. It offers a diverse and expressive style, featuring multiple scenes in the narrative.",
        inputs=(
            _prompt(),
            InputSpec("image", "string", True, "The image to be used for the generation.", media=True),
            _seed(-1),
            InputSpec("duration", "integer", False, "The duration of the generated media.", 5, choices=(5,)),
        ),
    ),
    ModelSpec(
        id="bytedance/seedance-v1-lite-t2v-480p",
        name="Bytedance Seedance V1 Lite T2V 480p",
        kind="text-to-video",
        output="video",
        description="ByteDance Seedance is an advanced AI video model that excels in coherent multi-shot video "
        "generation. It can deliver smooth, stable motion, and accurately follow detailed prompts for complex "
        "video content.",
        inputs=(
            _prompt(),
            _aspect_ratio(("21:9", "16:9", "4:3", "1:1", "3:4", "9:16", "9:21")),
            # The page marks duration required *and* gives it a default: the default is sent when omitted.
            InputSpec("duration", "integer", True, "The duration of the generated media in seconds.", 5, 5, 10),
            _camera_fixed(),
            _seed(-1),
        ),
    ),
    ModelSpec(
        id="bytedance/dreamina-v3.0-pro/text-to-video",
        name="Bytedance Dreamina V3.0 Pro Text To Video",
        kind="text-to-video",
        output="video",
        description="Dreamina V3.0 Pro provides the ability to respond to text or image inputs with more accuracy "
        "and natural dynamic expression, generating 1080P high-quality videos with professional-level visual "
        "quality. It offers a diverse and expressive style, featuring multiple scenes in the narrative.",
        inputs=(
            _prompt(),
            _aspect_ratio(("16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "9:21")),
            _seed(-1),
        ),
    ),
)

MODELS: Mapping[str, ModelSpec] = MappingProxyType({model.id: model for model in _CATALOG})


def get_model(model_id: str) -> ModelSpec | None:
    """The catalog entry of ``model_id``, or ``None`` for a model without a documented input table."""
    return MODELS.get(model_id)


def not_catalogued(model_id: str) -> str:
    """What to say of a model id outside the catalog, with the catalogued id it is closest to (a typo?)."""
    close = difflib.get_close_matches(model_id, list(MODELS), n=1, cutoff=0.8)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"{model_id} is not in the catalog{hint}"


__all__ = ["MODELS", "InputSpec", "ModelSpec", "get_model", "not_catalogued"]
