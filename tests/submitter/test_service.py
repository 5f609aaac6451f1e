"""AsyncSubmitter on the fake provider and a real ledger file: what a submit sends, records and resolves."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
from structlog.testing import capture_logs

from receiver import correlation
from receiver.settings import Settings
from submitter.errors import AmbiguousSubmit, ProviderError, SubmitterError, ValidationError
from submitter.service import AsyncSubmitter
from tests.submitter.fake_provider import KEY, FakeProvider
from tests.support import direct

# Runs on every ledger backend (SQLite, PostgreSQL): see ``settings_factory``.
pytestmark = pytest.mark.usefixtures("backend")

T2V = "bytedance/seedance-v1-lite-t2v-480p"
Opener = Callable[..., contextlib.AbstractAsyncContextManager[AsyncSubmitter]]


def ledger(settings: Settings) -> Any:
    return direct(settings.db)


def submission(settings: Settings, reference: str) -> Any:
    return ledger(settings).execute("SELECT * FROM submissions WHERE reference = ?", (reference,)).fetchone()


def stored_bytes(db: str) -> bytes:
    """Everything the ledger holds: its files (SQLite), or every row of every table as text (PostgreSQL)."""
    if "://" not in db:
        return b"".join(path.read_bytes() for path in Path(db).parent.glob(Path(db).name + "*"))
    with direct(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        rows = [r[0] for t in tables for r in conn.execute(f"SELECT t::text FROM {t} AS t")]  # noqa: S608
        return "".join(rows).encode()


def webhook_of(provider: FakeProvider, index: int = -1) -> str:
    return parse_qs(provider.submits[index].url.query.decode())["webhook"][0]


@pytest.mark.anyio
async def test_submit_sends_with_webhook_and_records(open_submitter: Opener, provider: FakeProvider) -> None:
    """Defaults applied, the webhook carries a reference and its token, and the ledger has both records."""
    with capture_logs() as logs:
        async with open_submitter() as sub:
            result = await sub.submit(T2V, {"prompt": "a fox", "duration": "6"}, from_strings=True)
            secret = sub.correlation_secret
            settings = sub.settings
    assert result.outcome == "submitted"
    assert result.prediction_id == "task0001"
    assert result.input == {"prompt": "a fox", "aspect_ratio": "16:9", "duration": 6, "camera_fixed": False, "seed": -1}
    assert json.loads(provider.submits[0].content) == result.input
    url = webhook_of(provider)
    assert url == result.webhook_url
    assert url.startswith("https://hooks.example.com/base/webhooks/wavespeed?tenant=a&x=1&ref=wh_")
    query = dict(parse_qsl(urlsplit(url).query))
    assert correlation.check(secret, query["ref"], query["token"]) == result.reference
    conn = ledger(settings)
    row = conn.execute("SELECT * FROM predictions WHERE id = 'task0001'").fetchone()
    assert (row["status"], row["reference"], row["webhook_url"], row["model"]) == (
        "created",
        result.reference,
        url,
        T2V,
    )
    assert json.loads(row["input"]) == result.input
    assert row["submitted_at"] is not None
    assert submission(settings, result.reference)["state"] == "submitted"
    (line,) = [entry for entry in logs if entry["event"] == "submission_sent"]
    assert (line["outcome"], line["prediction_id"], line["model"]) == ("submitted", "task0001", T2V)
    assert "duration_ms" in line


@pytest.mark.anyio
async def test_invalid_inputs_send_and_record_nothing(open_submitter: Opener, provider: FakeProvider) -> None:
    """Every problem is reported before any network call and before any ledger row."""
    async with open_submitter() as sub:
        with pytest.raises(ValidationError) as info:
            await sub.submit(T2V, {"duration": 14, "aspect_ratio": "2:1"})
        settings = sub.settings
    assert len(info.value.problems) == 3
    assert provider.requests == []
    assert ledger(settings).execute("SELECT count(*) FROM submissions").fetchone()[0] == 0


@pytest.mark.anyio
async def test_uncatalogued_model_sent_unchecked_with_a_warning(open_submitter: Opener, provider: FakeProvider) -> None:
    """A model outside the catalog is sent as given, and the result carries a warning."""
    async with open_submitter() as sub:
        result = await sub.submit("bytedance/seedance-v1-lite-t2v-720p", {"prompt": "x", "anything": [1]})
    assert json.loads(provider.submits[0].content) == {"prompt": "x", "anything": [1]}
    assert result.warnings == (
        "bytedance/seedance-v1-lite-t2v-720p is not in the catalog "
        "(did you mean bytedance/seedance-v1-lite-t2v-480p?): its inputs are sent without local validation",
    )


@pytest.mark.anyio
async def test_lost_answer_resolved_by_lookup_without_second_task(
    open_submitter: Opener, provider: FakeProvider
) -> None:
    """The submit's answer is lost after the task was made: a lookup finds it, and no second POST is sent."""
    provider.create(T2V, {"prompt": "someone else's job"})
    provider.submit_faults = ["lose-answer"]
    async with open_submitter() as sub:
        # A task of the same model owned by an earlier job is never taken for this one.
        await sub.submit(T2V, {"prompt": "earlier"})
        provider.submit_faults = ["lose-answer"]
        result = await sub.submit(T2V, {"prompt": "a fox"})
        settings = sub.settings
    assert result.outcome == "resolved"
    assert result.prediction_id == "task0003"
    assert len(provider.submits) == 2
    assert len(provider.tasks) == 3
    state = submission(settings, result.reference)
    assert state is not None
    assert state["resolved_by"] == "lookup"


@pytest.mark.anyio
async def test_lost_answer_single_unverifiable_candidate(open_submitter: Opener, provider: FakeProvider) -> None:
    """When listed tasks do not show inputs, the one unowned task of the model in the window is ours."""
    provider.show_inputs = False
    provider.submit_faults = ["drop"]
    async with open_submitter() as sub:
        result = await sub.submit(T2V, {"prompt": "a fox"})
    assert (result.outcome, result.prediction_id) == ("resolved", "task0001")
    assert len(provider.submits) == 1


@pytest.mark.anyio
async def test_two_unverifiable_candidates_stay_unknown_until_the_webhook(
    open_submitter: Opener, provider: FakeProvider
) -> None:
    """Two unowned tasks without inputs: no guess; the webhook carrying our reference settles it."""
    provider.show_inputs = False
    provider.create(T2V, {"prompt": "another tool's job"})
    provider.submit_faults = ["lose-answer"]
    clock = [1_800_000_000.0]
    async with open_submitter() as sub:
        sub.clock = lambda: clock[0]
        with pytest.raises(AmbiguousSubmit) as info:
            await sub.submit(T2V, {"prompt": "a fox"})
        reference = info.value.reference
        assert reference is not None
        assert "wavehook reconcile" in str(info.value)
        assert (await sub.submission(reference))["state"] == "unknown"  # type: ignore[index]
        # The webhook arrives: it carries our reference in its URL.
        body = provider.finish("task0002")
        await sub.ingestor.ingest_result(body, reference=reference, source="webhook")
        clock[0] += 100.0  # past the time the request itself could still have been running
        counts = await sub.reconcile(older_than=3600)
        assert (counts.resolved, counts.still_unknown) == (1, 0)
        assert (await sub.submission(reference))["prediction_id"] == "task0002"  # type: ignore[index]
        assert (await sub.submission(reference))["resolved_by"] == "webhook"  # type: ignore[index]
    assert len(provider.submits) == 1


@pytest.mark.anyio
async def test_ambiguous_with_no_task_is_declared_not_created_after_grace(
    open_submitter: Opener, provider: FakeProvider
) -> None:
    """The request timed out before anything was made: unknown at first, not created once the grace is over."""
    provider.submit_faults = ["lose-request"]
    clock = [1_800_000_000.0]
    async with open_submitter(unknown_grace_seconds=120.0) as sub:
        sub.clock = lambda: clock[0]
        with pytest.raises(AmbiguousSubmit) as info:
            await sub.submit(T2V, {"prompt": "a fox"})
        assert len(sub.slept) == 2  # type: ignore[attr-defined]  # lookups are repeated, the POST is not
        reference = info.value.reference
        assert reference is not None
        clock[0] += 100.0
        assert (await sub.reconcile(older_than=3600)).still_unknown == 1
        clock[0] += 100.0
        assert (await sub.reconcile(older_than=3600)).not_created == 1
        state = await sub.submission(reference)
    assert state is not None
    assert state["state"] == "failed"
    assert "may be sent again" in state["error"]
    assert len(provider.submits) == 1
    assert provider.tasks == {}


@pytest.mark.anyio
async def test_refused_submit_is_recorded_failed(open_submitter: Opener, provider: FakeProvider) -> None:
    """A provider refusal raises its message and leaves the submission failed, with the reason."""
    provider.submit_faults = ["400"]
    async with open_submitter() as sub:
        with pytest.raises(ProviderError, match="HTTP 400: Invalid inputs") as info:
            await sub.submit(T2V, {"prompt": "a fox"})
        settings = sub.settings
    (row,) = ledger(settings).execute("SELECT state, error FROM submissions").fetchall()
    assert row["state"] == "failed"
    assert row["error"] == str(info.value)


@pytest.mark.anyio
async def test_local_image_uploaded_and_replaced(
    open_submitter: Opener, provider: FakeProvider, tmp_path: Path
) -> None:
    """A local path given for image is uploaded and the submit carries the returned URL instead."""
    image = tmp_path / "cat.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x01" * 100)
    async with open_submitter() as sub:
        result = await sub.submit("bytedance/waver-1.0", {"prompt": "p", "image": str(image)})
    assert result.input["image"] == "https://provider.test/media/uploads/up1/cat.png"
    assert json.loads(provider.submits[0].content)["image"] == result.input["image"]
    assert provider.uploads["up1"] == image.read_bytes()


@pytest.mark.anyio
async def test_missing_configuration_stops_before_the_ledger(
    open_submitter: Opener, submit_settings: Callable[..., Settings], provider: FakeProvider
) -> None:
    """Without a public URL or an API key nothing is recorded and nothing is sent."""
    settings = submit_settings()
    for broken in (settings.replace(public_url=None), settings.replace(api_key=None)):
        async with open_submitter(broken) as sub:
            with pytest.raises(SubmitterError, match=r"WAVEHOOK_PUBLIC_URL|WAVESPEED_API_KEY"):
                await sub.submit(T2V, {"prompt": "x"})
    assert provider.requests == []
    assert ledger(settings).execute("SELECT count(*) FROM submissions").fetchone()[0] == 0


@pytest.mark.anyio
async def test_api_key_never_in_ledger_or_logs(open_submitter: Opener, provider: FakeProvider) -> None:
    """Neither the ledger file nor any log line contains the API key, whatever happens."""
    provider.submit_faults = ["400", "lose-answer"]
    with capture_logs() as logs:
        async with open_submitter() as sub:
            for _ in range(2):
                with contextlib.suppress(SubmitterError):
                    await sub.submit(T2V, {"prompt": "x"})
            await sub.submit(T2V, {"prompt": "y"})
            await sub.reconcile(older_than=0)
            settings = sub.settings
    assert KEY not in repr(logs)
    raw = stored_bytes(settings.db)
    assert KEY.encode() not in raw
    assert b"wh_" in raw  # the file was read, and holds the submissions


@pytest.mark.anyio
async def test_listing_not_read_to_its_end_proves_nothing(
    open_submitter: Opener, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the lookup stops at its page limit, finding nothing does not mean nothing was created: the
    submission stays unknown past the grace period; read to its end, the same listing settles it."""
    from submitter import resolve

    for n in range(resolve.PAGE_SIZE):
        provider.create(T2V, {"prompt": f"another tool's job {n}"})
    provider.submit_faults = ["lose-request"]
    monkeypatch.setattr(resolve, "MAX_PAGES", 1)
    clock = [1_800_000_000.0]
    async with open_submitter(unknown_grace_seconds=10.0) as sub:
        sub.clock = lambda: clock[0]
        with pytest.raises(AmbiguousSubmit):
            await sub.submit(T2V, {"prompt": "a fox"})
        clock[0] += 1000.0
        assert (await sub.reconcile(older_than=3600)).still_unknown == 1
        monkeypatch.setattr(resolve, "MAX_PAGES", 2)
        assert (await sub.reconcile(older_than=3600)).not_created == 1
    assert len(provider.submits) == 1
