"""The catalog against the provider's model pages (kept verbatim in tests/submitter/pages/), field by field."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from submitter.catalog import MODELS, InputSpec, get_model

PAGES = Path(__file__).parent / "pages"
TYPES = {"string", "integer", "boolean", "array"}


def _cells(page: str) -> list[str]:
    """The non-empty cells of the "Request Parameters" table, in order, whichever way the page lays it out."""
    found = re.search(r"^(?:#### )?Request Parameters[^\n]*$(.*?)^(?:#### )?Response Parameters", page, re.M | re.S)
    assert found, "no Request Parameters table"
    section = found[1]
    cells: list[str] = []
    for line in section.splitlines():
        line = line.strip()
        if line.startswith("|"):
            if set(line) <= {"|", "-", " "}:
                continue
            cells.extend(cell.strip() for cell in line.strip("|").split("|"))
        else:
            cells.append(line)
    cells = [cell.replace("\\", "") for cell in cells if cell.strip() and not cell.startswith("[")]
    header = ["Parameter", "Type", "Required", "Default", "Range", "Description"]
    assert cells[:6] == header, cells[:6]
    return cells[6:]


def _rows(page: str) -> list[dict[str, str]]:
    """Rows of the table; a row whose Range cell is empty has one cell fewer (the pages drop empty cells)."""
    cells = _cells(page)
    starts = [i for i in range(len(cells) - 1) if cells[i + 1] in TYPES]
    rows = []
    for start, end in zip(starts, [*starts[1:], len(cells)], strict=True):
        name, kind, required, default, *rest = cells[start:end]
        range_, description = rest if len(rest) == 2 else ("", rest[0])
        rows.append(
            {
                "name": name,
                "type": kind,
                "required": required,
                "default": default,
                "range": range_,
                "description": description,
            }
        )
    return rows


def _parse_default(spec: InputSpec, raw: str) -> Any:
    if raw == "-":
        return None
    if spec.type == "integer":
        return int(raw)
    if spec.type == "boolean":
        return {"true": True, "false": False}[raw]
    return raw


def _parse_range(raw: str) -> dict[str, Any]:
    if raw in {"", "-"}:
        return {}
    items = re.fullmatch(r"(\d+) ~ (\d+) items", raw)
    if items:
        return {"min_items": int(items[1]), "max_items": int(items[2])}
    span = re.fullmatch(r"(-?\d+) ~ (-?\d+)", raw)
    if span:
        return {"minimum": int(span[1]), "maximum": int(span[2])}
    choices = tuple(part.strip() for part in raw.split(","))
    return {"choices": tuple(int(c) if re.fullmatch(r"-?\d+", c) else c for c in choices)}


def _page(model_id: str) -> str:
    return (PAGES / (model_id.replace("/", "__") + ".txt")).read_text(encoding="utf-8")


def test_every_page_is_catalogued() -> None:
    """Each model page we keep has a catalog entry, and each entry has its page."""
    ids = {path.stem.replace("__", "/") for path in PAGES.glob("*.txt")}
    assert ids == set(MODELS)


@pytest.mark.parametrize("model_id", sorted(MODELS))
def test_inputs_match_the_page(model_id: str) -> None:
    """Name, order, type, required flag, default, range and description of every input equal the page's table."""
    model = get_model(model_id)
    assert model is not None
    rows = _rows(_page(model_id))
    assert [row["name"] for row in rows] == list(model.input_names)
    for row, spec in zip(rows, model.inputs, strict=True):
        assert spec.type == row["type"], spec.name
        assert spec.required == (row["required"] == "Yes"), spec.name
        assert spec.default == _parse_default(spec, row["default"]), spec.name
        documented = _parse_range(row["range"])
        catalogued = {
            key: getattr(spec, key)
            for key in ("minimum", "maximum", "min_items", "max_items", "choices")
            if getattr(spec, key) not in (None, ())
        }
        assert catalogued == documented, spec.name
        assert spec.description == row["description"], spec.name


@pytest.mark.parametrize("model_id", sorted(MODELS))
def test_identity_matches_the_page(model_id: str) -> None:
    """The display name is the page's title, the id is the one its submit example posts to, the output a video."""
    model = get_model(model_id)
    assert model is not None
    page = _page(model_id)
    assert f'/api/v3/{model_id}"' in page
    assert model.name in {line.removeprefix("# ").strip() for line in page.splitlines()}
    assert model.output == "video"
    assert model.description in page


@pytest.mark.parametrize("model_id", sorted(MODELS))
def test_kind_follows_the_inputs(model_id: str) -> None:
    """The kind says which media input the model requires: reference images, one image, or text only."""
    model = get_model(model_id)
    assert model is not None
    required = {spec.name for spec in model.inputs if spec.required}
    expected = (
        "reference-to-video"
        if "reference_images" in required
        else "image-to-video"
        if "image" in required
        else "text-to-video"
    )
    assert model.kind == expected


def test_image_inputs_are_media() -> None:
    """Exactly the image inputs are marked as media, so local files given for them are uploaded."""
    media = {(model.id, spec.name) for model in MODELS.values() for spec in model.inputs if spec.media}
    assert media == {
        ("bytedance/waver-1.0", "image"),
        ("bytedance/seedance-v1-lite/reference-to-video", "reference_images"),
        ("bytedance/dreamina-v3.0/image-to-video-1080p", "image"),
    }


def test_unknown_model_is_none() -> None:
    """A model without a page in the catalog is reported as unknown, not guessed."""
    assert get_model("bytedance/seedance-v1-lite-t2v-720p") is None
