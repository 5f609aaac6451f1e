"""The write path of deliveries on PostgreSQL: a group of deliveries in one statement.

``wavehook_record_deliveries`` (a function the schema's migration 3 creates) takes the group as one JSON
array, the bodies as one ``bytea[]`` and the group's ids as two arrays, and stores the deliveries in their
order: the event is inserted (or its duplicate counted); the prediction is upserted only for a new event, and
only if the state machine lets it move (the ``ON CONFLICT … WHERE`` is evaluated on the latest committed row,
under its row lock, so concurrent transactions of other instances cannot move it backwards); the handler
runs are added only if that move happened and is final. ``applied`` comes from the upsert itself, never from
a snapshot another transaction may have overtaken. A delivery that carries the wrong job reference is
refused with nothing written, and its group goes on. The client's work per delivery is its values in the
group's parameters, not statements of its own; the server's is one set-wise statement for the usual group.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson

from receiver.delivery import Delivery
from receiver.errors import TokenMismatch
from receiver.statuses import TERMINAL, rank
from receiver.store.events import prediction_moves, refuse_reference
from receiver.store.postgres.connection import RUNS_CHANNEL, Conn
from receiver.store.postgres.writer import Batched
from receiver.store.records import IngestResult, Quarantined

# The group as rows: one per delivery, ``i`` its place in the group (and in ``bodies``).
_ROWS = """json_to_recordset(batch) AS x(
    i integer, webhook_id text, body_sha256 text, prediction_id text, status text, source text,
    model text, rank integer, webhook_timestamp bigint, reference text, now double precision,
    completed_at double precision, handlers json, input text, outputs text, error text,
    has_nsfw_contents text, timings text, provider_created_at text)"""


def _owner(d: str) -> str:
    """Which job (if any) owns delivery ``d``'s prediction: read before the delivery is stored (which may
    record its reference)."""
    return f"""(SELECT s.reference FROM submissions s WHERE s.prediction_id = {d}.prediction_id
        UNION ALL SELECT p.reference FROM predictions p WHERE p.id = {d}.prediction_id AND p.reference IS NOT NULL
        LIMIT 1)"""  # noqa: S608 (interpolates constants, never input)


def _elsewhere(d: str, owner: str) -> str:
    """Whether ``d`` carries the ref of another prediction (only asked when nobody owns its own)."""
    return f"""({owner} IS NULL AND {d}.reference IS NOT NULL AND EXISTS (
        SELECT 1 FROM submissions s WHERE s.reference = {d}.reference AND s.prediction_id IS NOT NULL
                                      AND s.prediction_id <> {d}.prediction_id
        UNION ALL SELECT 1 FROM predictions p WHERE p.reference = {d}.reference AND p.id <> {d}.prediction_id))"""  # noqa: S608 (interpolates constants, never input)


def _refused(d: str, owner: str, elsewhere: str) -> str:
    """The rule of ``refuse_reference`` (which words the refusal): not the ref of the job that owns it, or
    the ref of another prediction."""
    return f"(({owner} IS NOT NULL AND {d}.reference IS DISTINCT FROM {owner}) OR {elsewhere})"


# The event is stored as applied (the rare delivery the state machine refuses is marked afterwards), flagged
# ``conflict`` when another body already came under its webhook-id; a repeat only bumps ``duplicates``.
def _insert_events(d: str, source: str) -> str:
    return f"""INSERT INTO events (webhook_id, body_sha256, prediction_id, status, source, applied, conflict,
                        webhook_timestamp, reference, received_at, body)
    SELECT {d}.webhook_id, {d}.body_sha256, {d}.prediction_id, {d}.status, {d}.source, 1,
           (SELECT count(*) FROM (SELECT 1 FROM events e WHERE e.webhook_id = {d}.webhook_id LIMIT 1) AS c)::int,
           {d}.webhook_timestamp, {d}.reference, {d}.now, bodies[{d}.i]
    {source}
    ON CONFLICT (webhook_id, body_sha256) DO UPDATE
        SET duplicates = events.duplicates + 1, last_duplicate_at = excluded.received_at
    RETURNING id, webhook_id, duplicates, conflict"""  # noqa: S608 (interpolates constants, never input)


# The prediction moves only for a new event, and only if the state machine lets it (the ``ON CONFLICT …
# WHERE`` is evaluated on the latest committed row, under its row lock, so concurrent transactions of other
# instances cannot move it backwards); ``moved`` comes from the upsert itself, never from a snapshot.
def _upsert_predictions(d: str, source: str) -> str:
    return f"""INSERT INTO predictions AS p (id, model, status, status_rank, input, outputs, error,
                                  has_nsfw_contents, timings, provider_created_at, reference,
                                  first_seen_at, updated_at, completed_at, last_event_id)
    SELECT {d}.prediction_id, {d}.model, {d}.status, {d}.rank, {d}.input, {d}.outputs, {d}.error,
           {d}.has_nsfw_contents, {d}.timings, {d}.provider_created_at, {d}.reference, {d}.now, {d}.now,
           {d}.completed_at, ev.id
    {source}
    {prediction_moves("p")}
    RETURNING p.id"""


_NEW_EVENTS = "FROM ok JOIN ev ON ev.webhook_id = ok.webhook_id WHERE ev.duplicates = 0"


# A final status that moved the prediction enqueues its handlers' runs (a JSON list of names per delivery).
_HANDLERS = "json_array_elements_text({}.handlers) AS name"


def _enqueue_runs(d: str, source: str) -> str:
    return f"""INSERT INTO handler_runs (prediction_id, status, handler, state, next_at, created_at, updated_at)
    SELECT {d}.prediction_id, {d}.status, name, 'pending', {d}.now, {d}.now, {d}.now
    {source}
    ON CONFLICT (prediction_id, status, handler) DO NOTHING
    RETURNING prediction_id"""


# Created by migration 3; a change to it is a new migration (``CREATE OR REPLACE FUNCTION``), never an edit.
#
# Two ways through, the same answers. A group whose deliveries all name different webhook-ids and different
# predictions (the usual group) is stored set-wise: one statement for the group. A group where one id comes
# twice (a duplicate, a conflict, two statuses of one prediction) is stored delivery after delivery, each
# seeing the ones before it, as the deliveries would be if they came one by one.
RECORD_DELIVERIES = f"""
CREATE FUNCTION wavehook_record_deliveries(batch json, bodies bytea[], webhook_ids text[], prediction_ids text[])
RETURNS TABLE (r_index integer, r_event_id bigint, r_duplicate boolean, r_conflict boolean, r_moved boolean,
               r_enqueued integer, r_owner text, r_elsewhere boolean)
LANGUAGE plpgsql AS $fn$
DECLARE
    d record;
    any_runs boolean := false;
    unapplied bigint[] := '{{}}';
BEGIN
    -- Deliveries under one webhook-id take turns across instances, so the second body of an id is flagged
    -- ``conflict`` even when the first is being stored by another instance at this very moment. The locks
    -- are taken in one order, so two groups never wait on each other. (The statements below start after
    -- the locks are held: they see what the other instance committed.)
    PERFORM pg_advisory_xact_lock(h)
    FROM (SELECT DISTINCT hashtextextended(w, 0) AS h FROM unnest(webhook_ids) AS w ORDER BY 1) AS ids;
    IF (SELECT count(DISTINCT w) FROM unnest(webhook_ids) AS w) = cardinality(webhook_ids)
       AND (SELECT count(DISTINCT p) FROM unnest(prediction_ids) AS p) = cardinality(prediction_ids) THEN
        FOR d IN
            WITH rows AS (
                SELECT x.*, o.owner FROM {_ROWS}
                LEFT JOIN LATERAL (SELECT {_owner("x")} AS owner) AS o ON x.source = 'webhook'
            ), checked AS (
                SELECT rows.*, {_elsewhere("rows", "rows.owner")} AS elsewhere FROM rows
            ), ok AS (
                SELECT * FROM checked c WHERE NOT {_refused("c", "c.owner", "c.elsewhere")}
            ), ev AS (
                {_insert_events("ok", "FROM ok ORDER BY ok.i")}
            ), moved AS (
                -- Rows locked in one order (by id): two instances' groups do not wait on each other in a cycle.
                {_upsert_predictions("ok", _NEW_EVENTS + " ORDER BY ok.prediction_id")}
            ), runs AS (
                {_enqueue_runs("ok", "FROM ok JOIN moved ON moved.id = ok.prediction_id, " + _HANDLERS.format("ok"))}
            )
            SELECT c.i, ev.id, ev.duplicates > 0 AS duplicate, ev.conflict > 0 AS conflict,
                   moved.id IS NOT NULL AS moved,
                   coalesce(enqueued.n, 0)::int AS enqueued, c.owner, c.elsewhere
            FROM checked c
            LEFT JOIN ev ON ev.webhook_id = c.webhook_id
            LEFT JOIN moved ON moved.id = c.prediction_id
            LEFT JOIN (SELECT prediction_id, count(*) AS n FROM runs GROUP BY 1) AS enqueued
                   ON enqueued.prediction_id = c.prediction_id
            ORDER BY c.i
        LOOP
            r_index := d.i; r_event_id := d.id; r_duplicate := coalesce(d.duplicate, false);
            r_conflict := coalesce(d.conflict, false); r_moved := d.moved; r_enqueued := d.enqueued;
            r_owner := d.owner; r_elsewhere := d.elsewhere;
            IF r_event_id IS NOT NULL AND NOT r_duplicate AND NOT r_moved THEN
                unapplied := unapplied || r_event_id;
            END IF;
            any_runs := any_runs OR r_enqueued > 0;
            RETURN NEXT;
        END LOOP;
    ELSE
        FOR d IN SELECT * FROM {_ROWS} ORDER BY x.i LOOP
            r_index := d.i;
            r_event_id := NULL; r_duplicate := false; r_conflict := false; r_moved := false; r_enqueued := 0;
            r_owner := NULL; r_elsewhere := false;
            IF d.source = 'webhook' THEN
                r_owner := {_owner("d")};
                r_elsewhere := {_elsewhere("d", "r_owner")};
                IF {_refused("d", "r_owner", "r_elsewhere")} THEN
                    RETURN NEXT;  -- refused: nothing of it is written; the caller raises
                    CONTINUE;
                END IF;
            END IF;
            WITH ev AS (
                {_insert_events("d", "")}
            ), moved AS (
                {_upsert_predictions("d", "FROM ev WHERE ev.duplicates = 0")}
            ), runs AS (
                {_enqueue_runs("d", "FROM " + _HANDLERS.format("d") + " WHERE EXISTS (SELECT 1 FROM moved)")}
            )
            SELECT ev.id, ev.duplicates > 0, ev.conflict > 0, EXISTS (SELECT 1 FROM moved),
                   (SELECT count(*) FROM runs)::int
            INTO r_event_id, r_duplicate, r_conflict, r_moved, r_enqueued
            FROM ev;
            IF NOT r_duplicate AND NOT r_moved THEN
                unapplied := unapplied || r_event_id;
            END IF;
            any_runs := any_runs OR r_enqueued > 0;
            RETURN NEXT;
        END LOOP;
    END IF;
    -- A late or repeated status: stored, not applied (the prediction keeps what it has).
    IF cardinality(unapplied) > 0 THEN
        UPDATE events SET applied = 0 WHERE id = ANY(unapplied);
    END IF;
    IF any_runs THEN
        -- Dispatchers of every instance LISTEN: told at commit (never before) that runs are due.
        PERFORM pg_notify('{RUNS_CHANNEL}', '');
    END IF;
END
$fn$
"""  # noqa: S608 (interpolates constants, never input)


def _storable(params: dict[str, Any]) -> dict[str, Any]:
    """PostgreSQL text cannot hold NUL, which a signed JSON body may carry (``"\\u0000"``) in a field stored
    as text: there it becomes U+FFFD, as an undecodable byte would. The body itself is kept byte for byte."""
    return {k: v.replace("\x00", "\ufffd") if isinstance(v, str) and "\x00" in v else v for k, v in params.items()}


def _may_hold_nul(delivery: Delivery) -> bool:
    """Whether a text field of ``delivery`` can hold NUL. The body's fields only through the JSON escape
    ``\\u0000`` (JSON has no raw control characters in strings, and the JSON columns are re-encoded as ASCII);
    the webhook-id is printable (the verifier refuses anything else); the reference comes from the URL."""
    return b"\\u0000" in delivery.body or (delivery.reference is not None and "\x00" in delivery.reference)


class RecordDelivery(Batched):
    """Store one delivery and apply it; a final status enqueues a run per name in ``handlers``. Runs in the
    caller's transaction (the group commit), in one statement with the deliveries grouped with it."""

    def __init__(
        self, delivery: Delivery, *, now: float, terminal_statuses: tuple[str, ...], handlers: Sequence[str]
    ) -> None:
        self.delivery = delivery
        status_rank = rank(delivery.status, terminal_statuses)
        final = status_rank == TERMINAL and delivery.status is not None
        params = {
            **delivery.fields,
            "webhook_id": delivery.webhook_id,
            "body_sha256": delivery.body_sha256,
            "prediction_id": delivery.prediction_id,
            "status": delivery.status,
            "source": delivery.source,
            "model": delivery.model,
            "rank": status_rank,
            "webhook_timestamp": delivery.webhook_timestamp,
            "reference": delivery.reference,
            "now": now,
            "completed_at": now if status_rank == TERMINAL else None,
            "handlers": list(handlers) if final else [],
        }
        self.params = _storable(params) if _may_hold_nul(delivery) else params

    @classmethod
    async def run_batch(cls, conn: Conn, jobs: Sequence[RecordDelivery]) -> list[IngestResult | TokenMismatch]:
        rows = [{**job.params, "i": i} for i, job in enumerate(jobs, start=1)]
        try:  # orjson: a sixth of json.dumps' time; what it refuses (an integer beyond 64 bits) falls back
            group = orjson.dumps(rows).decode()
        except TypeError:
            group = json.dumps(rows)
        cur = await conn.execute(
            # The bodies in binary: no hex text for the server to parse.
            "SELECT * FROM wavehook_record_deliveries(%s::json, %b::bytea[], %s::text[], %s::text[])",
            (
                group,
                [job.delivery.body for job in jobs],
                [job.params["webhook_id"] for job in jobs],  # as stored (NUL made U+FFFD)
                [job.params["prediction_id"] for job in jobs],
            ),
            prepare=True,
        )
        answers = await cur.fetchall()
        assert [row["r_index"] for row in answers] == list(range(1, len(jobs) + 1))
        return [job._result(row) for job, row in zip(jobs, answers, strict=True)]

    def _result(self, row: dict[str, Any]) -> IngestResult | TokenMismatch:
        if row["r_event_id"] is None:  # refused before anything was written
            try:
                refuse_reference(
                    self.delivery.prediction_id,
                    self.delivery.reference,
                    owner=row["r_owner"],
                    claimed_elsewhere=lambda: bool(row["r_elsewhere"]),
                )
            except TokenMismatch as exc:
                return exc
            raise AssertionError("the ledger refused a delivery that refuse_reference accepts")
        if row["r_duplicate"]:
            return IngestResult(event_id=row["r_event_id"], duplicate=True)
        return IngestResult(
            event_id=row["r_event_id"],
            duplicate=False,
            conflict=row["r_conflict"],
            applied=row["r_moved"],
            runs_enqueued=row["r_enqueued"],
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
