"""The write path of a delivery on PostgreSQL: event, prediction transition and outbox rows in one statement.

The statement's parts are data-modifying CTEs: the event is inserted (or its duplicate counted); the
prediction is upserted only for a new event, and only if the state machine lets it move (the ``ON CONFLICT
… WHERE`` is evaluated on the latest committed row, under its row lock, so concurrent transactions of other
instances cannot move it backwards); the handler runs are added only if that move happened and is final.
``applied`` comes from the upsert itself, never from a snapshot another transaction may have overtaken.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from receiver.delivery import Delivery
from receiver.statuses import TERMINAL, rank
from receiver.store.events import refuse_reference
from receiver.store.postgres.connection import RUNS_CHANNEL, Conn
from receiver.store.postgres.writer import Pipelined
from receiver.store.records import IngestResult, Quarantined


def _moves_forward(new: str, old: str) -> str:
    return f"({new} > {old} OR ({new} = {old} AND {new} < {TERMINAL}))"


# The event is stored as applied; the rare delivery the state machine refuses is marked afterwards.
_RECORD = f"""
WITH ev AS (
    INSERT INTO events (webhook_id, body_sha256, prediction_id, status, source, applied, conflict,
                        webhook_timestamp, reference, received_at, body)
    VALUES (%(webhook_id)s, %(body_sha256)s, %(prediction_id)s, %(status)s, %(source)s, 1,
            (SELECT count(*) FROM (SELECT 1 FROM events WHERE webhook_id = %(webhook_id)s LIMIT 1) AS c)::int,
            %(webhook_timestamp)s, %(reference)s, %(now)s, %(body)s)
    ON CONFLICT (webhook_id, body_sha256) DO UPDATE
        SET duplicates = events.duplicates + 1, last_duplicate_at = excluded.received_at
    RETURNING id, duplicates, applied, conflict
), moved AS (
    INSERT INTO predictions AS p (id, model, status, status_rank, input, outputs, error, has_nsfw_contents,
                                  timings, provider_created_at, reference, first_seen_at, updated_at,
                                  completed_at, last_event_id)
    SELECT %(prediction_id)s, %(model)s, %(status)s, %(rank)s, %(input)s, %(outputs)s, %(error)s,
           %(has_nsfw_contents)s, %(timings)s, %(provider_created_at)s, %(reference)s, %(now)s, %(now)s,
           %(completed_at)s, ev.id
    FROM ev WHERE ev.duplicates = 0
    ON CONFLICT (id) DO UPDATE SET
        model = coalesce(excluded.model, p.model),
        status = excluded.status,
        status_rank = excluded.status_rank,
        input = coalesce(excluded.input, p.input),
        outputs = coalesce(excluded.outputs, p.outputs),
        error = excluded.error,
        has_nsfw_contents = coalesce(excluded.has_nsfw_contents, p.has_nsfw_contents),
        timings = coalesce(excluded.timings, p.timings),
        provider_created_at = coalesce(p.provider_created_at, excluded.provider_created_at),
        reference = coalesce(p.reference, excluded.reference),
        updated_at = excluded.updated_at,
        completed_at = excluded.completed_at,
        last_event_id = excluded.last_event_id
    WHERE {_moves_forward("excluded.status_rank", "p.status_rank")}
    RETURNING 1
), runs AS (
    INSERT INTO handler_runs (prediction_id, status, handler, state, next_at, created_at, updated_at)
    SELECT %(prediction_id)s, %(status)s, name, 'pending', %(now)s, %(now)s, %(now)s
    FROM unnest(%(handlers)s::text[]) AS name
    WHERE EXISTS (SELECT 1 FROM moved)
    ON CONFLICT (prediction_id, status, handler) DO NOTHING
    RETURNING 1
)
SELECT ev.id, ev.duplicates, ev.conflict, EXISTS (SELECT 1 FROM moved) AS moved,
       (SELECT count(*) FROM runs) AS enqueued,
       -- Dispatchers of every instance LISTEN: told at commit (never before) that runs are due.
       (SELECT pg_notify('{RUNS_CHANNEL}', '') WHERE EXISTS (SELECT 1 FROM runs)) AS notified
FROM ev
"""  # noqa: S608 (interpolates constants, never input)


# Which job (if any) owns this prediction, and whether the delivery's ref belongs to another prediction.
_OWNER = """
SELECT (SELECT reference FROM submissions WHERE prediction_id = %(id)s
        UNION ALL SELECT reference FROM predictions WHERE id = %(id)s AND reference IS NOT NULL LIMIT 1) AS owner,
       EXISTS (SELECT 1 FROM submissions WHERE reference = %(reference)s AND prediction_id IS NOT NULL
                                          AND prediction_id <> %(id)s
               UNION ALL SELECT 1 FROM predictions WHERE reference = %(reference)s AND id <> %(id)s) AS elsewhere
"""


def _storable(params: dict[str, Any]) -> dict[str, Any]:
    """PostgreSQL text cannot hold NUL, which a signed JSON body may carry (``"\\u0000"``) in a field stored
    as text: there it becomes U+FFFD, as an undecodable byte would. The body itself is kept byte for byte."""
    return {k: v.replace("\x00", "\ufffd") if isinstance(v, str) and "\x00" in v else v for k, v in params.items()}


class RecordDelivery(Pipelined):
    """Store one delivery and apply it; a final status enqueues a run per name in ``handlers``. Runs in the
    caller's transaction (the group commit), its statements pipelined with the rest of the group."""

    def __init__(
        self, delivery: Delivery, *, now: float, terminal_statuses: tuple[str, ...], handlers: Sequence[str]
    ) -> None:
        self.delivery = delivery
        self.rank = rank(delivery.status, terminal_statuses)
        final = self.rank == TERMINAL and delivery.status is not None
        self.params = _storable(
            {
                **delivery.fields,
                "webhook_id": delivery.webhook_id,
                "body_sha256": delivery.body_sha256,
                "prediction_id": delivery.prediction_id,
                "status": delivery.status,
                "source": delivery.source,
                "model": delivery.model,
                "rank": self.rank,
                "webhook_timestamp": delivery.webhook_timestamp,
                "reference": delivery.reference,
                "now": now,
                "completed_at": now if self.rank == TERMINAL else None,
                "body": delivery.body,
                "handlers": list(handlers) if final else [],
            }
        )

    async def send(self, conn: Conn) -> Any:
        # Deliveries under one webhook-id take turns, so the second body of an id is flagged ``conflict``
        # even when the first is being stored by another instance at this very moment.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (self.delivery.webhook_id,))
        owner = None
        if self.delivery.source == "webhook":
            # Read before the delivery's own statement (which may record its reference): what it is checked against.
            owner = await conn.execute(
                _OWNER, {"id": self.params["prediction_id"], "reference": self.params["reference"]}, prepare=True
            )
        return owner, await conn.execute(_RECORD, self.params, prepare=True)

    async def receive(self, conn: Conn, sent: Any) -> IngestResult:
        owner, record = sent
        if owner is not None:
            # Refused: raising makes the writer roll the group back and run the others again without it.
            found = await owner.fetchone()
            assert found is not None
            refuse_reference(
                self.delivery.prediction_id,
                self.delivery.reference,
                owner=found["owner"],
                claimed_elsewhere=lambda: bool(found["elsewhere"]),
            )
        row = await record.fetchone()
        assert row is not None
        event_id, duplicates, conflict, moved = row["id"], row["duplicates"], row["conflict"], row["moved"]
        if duplicates:
            return IngestResult(event_id=event_id, duplicate=True)
        if not moved:
            # A late or repeated status: stored, not applied (the prediction keeps what it has).
            await conn.execute("UPDATE events SET applied = 0 WHERE id = %s", (event_id,))
        return IngestResult(
            event_id=event_id,
            duplicate=False,
            conflict=bool(conflict),
            applied=bool(moved),
            runs_enqueued=int(row["enqueued"]),
        )


async def record_quarantine(conn: Conn, item: Quarantined, *, now: float) -> int:
    """Keep a signed delivery that cannot become an event; repeats only bump its count."""
    cur = await conn.execute(
        """
        INSERT INTO quarantine (webhook_id, body_sha256, reason, detail, prediction_id, webhook_timestamp,
                                received_at, last_seen_at, body)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (webhook_id, body_sha256, reason) DO UPDATE
            SET count = quarantine.count + 1, last_seen_at = excluded.last_seen_at
        RETURNING id
        """,
        tuple(
            _storable(
                {
                    "webhook_id": item.webhook_id,
                    "body_sha256": item.body_sha256,
                    "reason": item.reason,
                    "detail": item.detail,
                    "prediction_id": item.prediction_id,
                    "webhook_timestamp": item.webhook_timestamp,
                    "received_at": now,
                    "last_seen_at": now,
                    "body": item.body,
                }
            ).values()
        ),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row["id"])
