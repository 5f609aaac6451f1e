"""The values a delivery sends to PostgreSQL never hold NUL (its text type cannot), whatever the signed body
carries, though only bodies that can carry one pay for the replacement."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from receiver.delivery import parse
from receiver.store.postgres.ingest import RecordDelivery, _may_hold_nul

texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
with_nul = st.one_of(texts, texts.map(lambda text: f"{text}\x00{text}"))


def _strings(params: dict[str, Any]) -> list[str]:
    return [value for value in params.values() if isinstance(value, str)]


@given(
    prediction_id=with_nul.filter(str.strip),
    model=with_nul,
    status=with_nul,
    error=with_nul,
    prompt=with_nul,
    created_at=with_nul,
    reference=st.none() | with_nul,
)
def test_no_parameter_holds_nul(
    prediction_id: str, model: str, status: str, error: str, prompt: str, created_at: str, reference: str | None
) -> None:
    data = {
        "id": prediction_id,
        "model": model,
        "status": status,
        "error": error,
        "created_at": created_at,
        "input": {"prompt": prompt, prompt: prompt},
    }
    body = json.dumps(data, ensure_ascii=bool(len(prompt) % 2)).encode()
    delivery = parse(body, webhook_id="w1", reference=reference)
    job = RecordDelivery(delivery, now=1.0, terminal_statuses=("completed", "failed"), handlers=["h"])
    assert not any("\x00" in text for text in _strings(job.params))
    carried = "\x00" in "".join([prediction_id, model, status, error, created_at, reference or ""])
    if carried:
        assert _may_hold_nul(delivery)  # the replacement ran where it was needed


def test_an_escaped_backslash_before_u0000_is_not_nul_but_takes_the_careful_path() -> None:
    body = json.dumps({"id": "p1", "error": "\\u0000"}).encode()  # the text \u0000, not the character
    delivery = parse(body, webhook_id="w1")
    assert _may_hold_nul(delivery)
    job = RecordDelivery(delivery, now=1.0, terminal_statuses=("completed",), handlers=[])
    assert job.params["error"] == "\\u0000"
