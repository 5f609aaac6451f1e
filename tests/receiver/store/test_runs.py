"""The run queries (``receiver/store/runs.py``) on every backend: claims that never share a run, dependencies
(``after=``) that hold a run back or end it dead, and a replay that gives runs stopped by a dead dependency
their turn again."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence

from receiver.delivery import parse
from receiver.store.ledger import Ledger
from receiver.store.records import NOT_RUN_PREFIX, RunEnd, RunSelection
from tests.conftest import LedgerFactory
from tests.receiver.store.test_ledger import claim as claim_runs
from tests.support import prediction_body

NOW = 1_800_000_000.0
HANDLERS = ("a", "b", "c")
# c runs after b, which runs after a: a chain.
CHAIN = {"b": ["a"], "c": ["b"]}


async def enqueue(ledger: Ledger, count: int, handlers: Sequence[str] = HANDLERS) -> None:
    for n in range(count):
        delivery = parse(prediction_body(f"p{n}"), webhook_id=f"p{n}-completed")
        await ledger.ingest(delivery, now=NOW, handlers=handlers)


# The contract tests' claim, over this module's handlers.
claim = functools.partial(claim_runs, handlers=HANDLERS)


def test_claimers_on_four_ledgers_share_no_run(ledger_factory: LedgerFactory) -> None:
    """Four ledgers (four processes' worth of connections) claiming in small batches until nothing is due end up
    with disjoint sets that cover every run, each run leased to the owner that got it."""

    async def scenario() -> None:
        async with (
            ledger_factory() as one,
            ledger_factory() as two,
            ledger_factory() as three,
            ledger_factory() as four,
        ):
            await enqueue(one, 20)

            async def claimer(ledger: Ledger, owner: str) -> list[int]:
                mine: list[int] = []
                while batch := await claim(ledger, owner, limit=3):
                    mine += [run.id for run in batch]
                return mine

            owners = [f"w{n}" for n in range(4)]
            claimed = await asyncio.gather(
                *(claimer(ledger, owner) for ledger, owner in zip((one, two, three, four), owners, strict=True))
            )
            every = [run_id for ids in claimed for run_id in ids]
            assert len(every) == len(set(every)) == 60
            rows = {row["id"]: row for row in await one.list_runs()}
            assert all(
                rows[run_id]["lease_owner"] == owner
                for owner, ids in zip(owners, claimed, strict=True)
                for run_id in ids
            )

    asyncio.run(scenario())


def test_a_run_waits_for_its_dependency_to_succeed(ledger_factory: LedgerFactory) -> None:
    """Only the head of the chain is claimed at first; each success lets the next one through."""

    async def scenario() -> None:
        async with ledger_factory() as ledger:
            await enqueue(ledger, 1)
            order: list[str] = []
            while batch := await claim(ledger, "w1", after=CHAIN):
                assert len(batch) == 1
                order.append(batch[0].handler)
                done = RunEnd(state="succeeded", outcome="succeeded")
                assert await ledger.finish_run(batch[0], done, owner="w1", now=NOW)
            assert order == ["a", "b", "c"]

    asyncio.run(scenario())


def test_a_dead_dependency_ends_the_whole_chain_in_one_claim_and_a_replay_revives_it(
    ledger_factory: LedgerFactory,
) -> None:
    """When the head dies, the next claim ends every run after it dead without running, naming the dependency;
    replaying the head makes it pending and gives the runs it stopped their turn again, still in order."""

    async def scenario() -> None:
        async with ledger_factory() as ledger:
            await enqueue(ledger, 1)
            (head,) = await claim(ledger, "w1", after=CHAIN)
            await ledger.finish_run(head, RunEnd(state="dead", outcome="failed", error="x"), owner="w1", now=NOW)
            assert await claim(ledger, "w1", after=CHAIN) == []
            runs = {row["handler"]: row for row in await ledger.list_runs(prediction_id="p0")}
            assert {handler: row["state"] for handler, row in runs.items()} == dict.fromkeys(HANDLERS, "dead")
            assert runs["b"]["last_error"].startswith(f"{NOT_RUN_PREFIX}a ended dead")
            assert runs["c"]["last_error"].startswith(f"{NOT_RUN_PREFIX}b ended dead")
            assert (runs["b"]["attempts"], runs["c"]["attempts"]) == (0, 0)

            replayed = await ledger.replay_runs(RunSelection(run_id=head.id), now=NOW)
            assert replayed.replayed == sorted(row["id"] for row in runs.values())
            assert [run.handler for run in await claim(ledger, "w2", after=CHAIN)] == ["a"]

    asyncio.run(scenario())
