"""Batches: jobs read and checked up front, sent with bounded concurrency, and never sent twice on a re-run."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from submitter.batch import Job, check_jobs, read_jobs
from submitter.errors import BatchError
from submitter.outcomes import Submission
from submitter.service import AsyncSubmitter
from tests.submitter.fake_provider import FakeProvider

# Runs on every ledger backend (SQLite, PostgreSQL): see ``settings_factory``.
pytestmark = pytest.mark.usefixtures("backend")

T2V = "bytedance/seedance-v1-lite-t2v-480p"
PRO = "bytedance/dreamina-v3.0-pro/text-to-video"
WAVER = "bytedance/waver-1.0"
Opener = Callable[..., contextlib.AbstractAsyncContextManager[AsyncSubmitter]]


def line(model: str, **inputs: object) -> str:
    return json.dumps({"model": model, "input": inputs})


def test_keys_are_stable_and_repeats_numbered() -> None:
    """A job's key is its digest, numbered for repeats, or its own key; blank and comment lines are skipped."""
    lines = [line(T2V, prompt="a"), "", "# a comment", line(T2V, prompt="a"), '{"model": "m", "input": {}, "key": 7}']
    jobs = read_jobs(lines)
    assert [job.line for job in jobs] == [1, 4, 5]
    assert jobs[0].key.endswith("-1")
    assert jobs[1].key == jobs[0].key[:-1] + "2"
    assert jobs[2].key == "7"
    assert read_jobs(lines)[0].key == jobs[0].key
    assert read_jobs([json.dumps({"input": {"prompt": "a"}, "model": T2V})])[0].key == jobs[0].key


def test_malformed_lines_all_reported() -> None:
    """Every malformed line is reported at once, by number."""
    with pytest.raises(BatchError) as info:
        read_jobs(
            [
                "{not json",
                '["list"]',
                '{"model": "m", "input": 3}',
                '{"model": "m", "key": "k"}',
                '{"model": "x", "key": "k"}',
            ]
        )
    assert [p.split(":")[0] for p in info.value.problems] == ["line 1", "line 2", "line 3", "line 5"]
    assert "key 'k' is also the key of line 4" in info.value.problems[-1]


def test_every_invalid_job_reported_before_sending(tmp_path: Path) -> None:
    """Validation and local files are checked for all jobs first; each problem names its line."""
    jobs = [
        Job(1, "a", T2V, {"prompt": "ok"}),
        Job(2, "b", T2V, {"prompt": "x", "duration": 14}),
        Job(3, "c", "bytedance/waver-1.0", {"prompt": "x", "image": str(tmp_path / "missing.png")}),
    ]
    with pytest.raises(BatchError) as info:
        check_jobs(jobs, max_upload_bytes=1000)
    assert info.value.problems[0] == f"line 2: duration=14 is outside 5…10 for {T2V}"
    assert info.value.problems[1].startswith("line 3: image=")
    assert "nothing was sent" in str(info.value)
    assert check_jobs(jobs[:1], max_upload_bytes=1000)[0].input["duration"] == 5


@pytest.mark.anyio
async def test_concurrency_limits_and_rerun_sends_nothing(open_submitter: Opener, provider: FakeProvider) -> None:
    """40 jobs over two models, 6 at a time and 2 per model for one of them; a second run skips every job."""
    provider.latency = 0.01
    lines = [line(T2V, prompt=f"fox {i}") for i in range(20)] + [line(PRO, prompt=f"owl {i}") for i in range(20)]
    seen: list[Submission] = []
    async with open_submitter() as sub:
        summary = await sub.batch(
            lines, concurrency=6, model_limits={PRO: 2}, on_result=lambda _job, result: seen.append(result)
        )
        assert (summary.total, summary.submitted, summary.failed) == (40, 40, 0)
        assert provider.max_in_flight[PRO] <= 2
        assert provider.max_in_flight[T2V] <= 6
        assert sum(provider.max_in_flight.values()) > 2
        again = await sub.batch(lines, concurrency=6)
    assert (again.total, again.skipped, again.submitted) == (40, 40, 0)
    assert len(provider.submits) == 40
    assert len(seen) == 40
    assert len({result.prediction_id for result in seen}) == 40


@pytest.mark.anyio
async def test_rerun_sends_only_what_failed_with_the_same_reference(
    open_submitter: Opener, provider: FakeProvider
) -> None:
    """A job the provider refused is sent again on the next run, under its first reference; others are skipped."""
    lines = [line(T2V, prompt="a"), line(T2V, prompt="b"), line(T2V, prompt="c")]
    provider.submit_faults = ["", "400"]
    results: list[Submission] = []
    async with open_submitter() as sub:
        first = await sub.batch(lines, concurrency=1, on_result=lambda _j, r: results.append(r))
        assert (first.submitted, first.failed) == (2, 1)
        assert first.problems == [
            "line 2: submit to bytedance/seedance-v1-lite-t2v-480p: the provider answered "
            "HTTP 400: Invalid inputs: duration out of range"
        ]
        second = await sub.batch(lines, concurrency=1, on_result=lambda _j, r: results.append(r))
    assert (second.submitted, second.skipped) == (1, 2)
    assert len(provider.submits) == 4
    failed, resent = results[1], next(r for r in results[3:] if r.outcome == "submitted")
    assert failed.outcome == "failed"
    assert resent.reference == failed.reference


@pytest.mark.anyio
async def test_doubtful_job_not_resent_while_unknown(open_submitter: Opener, provider: FakeProvider) -> None:
    """A job whose answer was lost and could not be found stays unknown on a re-run: it is not sent again."""
    provider.submit_faults = ["lose-request"]
    lines = [line(T2V, prompt="a")]
    async with open_submitter() as sub:
        first = await sub.batch(lines)
        second = await sub.batch(lines)
    assert (first.unknown, second.unknown, second.submitted) == (1, 1, 0)
    assert len(provider.submits) == 1
    assert "not sent again until resolved" in second.problems[0]


@pytest.mark.anyio
async def test_doubtful_job_found_on_rerun_is_skipped(open_submitter: Opener, provider: FakeProvider) -> None:
    """A job left in doubt whose task the provider lists is tied to that task on the re-run, not re-sent."""
    provider.show_inputs = False
    provider.create(T2V, {"prompt": "not ours"})
    provider.submit_faults = ["lose-answer"]
    lines = [line(T2V, prompt="a")]
    async with open_submitter() as sub:
        assert (await sub.batch(lines)).unknown == 1
        provider.tasks.pop("task0001")  # the other candidate is gone: ours is the only one left
        second = await sub.batch(lines)
    assert (second.skipped, second.submitted) == (1, 0)
    assert len(provider.submits) == 1


@pytest.mark.anyio
async def test_a_file_removed_after_the_check_fails_its_job_alone(
    open_submitter: Opener, provider: FakeProvider, tmp_path: Path
) -> None:
    """Files are checked once, up front; one removed while the batch runs fails its own job with a clear error."""
    cat, dog = tmp_path / "cat.png", tmp_path / "dog.png"
    for image in (cat, dog):
        image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x01" * 100)
    lines = [line(WAVER, prompt="a", image=str(cat)), line(WAVER, prompt="b", image=str(dog))]
    async with open_submitter() as sub:
        summary = await sub.batch(lines, concurrency=1, on_result=lambda _job, _result: dog.unlink(missing_ok=True))
    assert (summary.submitted, summary.failed) == (1, 1)
    assert summary.problems == [f"line 2: {dog}: can no longer be read (No such file or directory)"]
    assert list(provider.uploads.values()) == [cat.read_bytes()]
    assert len(provider.submits) == 1
