"""The write path of deliveries on PostgreSQL: a group of deliveries in one statement.

``wavehook_record_group`` (a function the schema's migration 4 creates) takes the group as one JSON array,
the bodies as one ``bytea`` and the group's ids as a small JSON array, and stores the deliveries in their
order: the event is inserted (or its duplicate counted); the prediction is upserted only for a new event, and
only if the state machine lets it move (the ``ON CONFLICT … WHERE`` is evaluated on the latest committed row,
under its row lock, so concurrent transactions of other instances cannot move it backwards); the handler
runs are added only if that move happened and is final. ``applied`` comes from the upsert itself, never from
a snapshot another transaction may have overtaken. A delivery that carries the wrong job reference is
refused with nothing written, and its group goes on. The client's work per delivery is its values in the
group's parameters, not statements of its own; the server's is one set-wise statement for the usual group,
and its answer one JSON text. (``wavehook_record_deliveries``, migration 3's function, did the same with
arrays for parameters and a row per delivery for an answer.)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson
from psycopg.rows import tuple_row

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
def _insert_events(d: str, source: str, body: str) -> str:
    return f"""INSERT INTO events (webhook_id, body_sha256, prediction_id, status, source, applied, conflict,
                        webhook_timestamp, reference, received_at, body)
    SELECT {d}.webhook_id, {d}.body_sha256, {d}.prediction_id, {d}.status, {d}.source, 1,
           (SELECT count(*) FROM (SELECT 1 FROM events e WHERE e.webhook_id = {d}.webhook_id LIMIT 1) AS c)::int,
           {d}.webhook_timestamp, {d}.reference, {d}.now, {body.format(d=d)}
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


# The pieces both migrations' functions are made of. A change to any of them must leave the SQL of every
# migration that has shipped as it is (tests/receiver/store/postgres/test_schema.py pins it): a changed
# function is a new migration.
_ARRAY_BODY = "bodies[{d}.i]"  # migration 3: the bodies as bytea[]


def _set_wise(rows: str, body: str, pad: str) -> str:
    """The usual group (every webhook-id and prediction once) stored in one statement: its common table
    expressions, from ``rows`` to ``runs``; ``pad`` is the indentation of its first line."""
    return f"""WITH rows AS (
{pad}    SELECT x.*, o.owner FROM {rows}
{pad}    LEFT JOIN LATERAL (SELECT {_owner("x")} AS owner) AS o ON x.source = 'webhook'
{pad}), checked AS (
{pad}    SELECT rows.*, {_elsewhere("rows", "rows.owner")} AS elsewhere FROM rows
{pad}), ok AS (
{pad}    SELECT * FROM checked c WHERE NOT {_refused("c", "c.owner", "c.elsewhere")}
{pad}), ev AS (
{pad}    {_insert_events("ok", "FROM ok ORDER BY ok.i", body)}
{pad}), moved AS (
{pad}    -- Rows locked in one order (by id): two instances' groups do not wait on each other in a cycle.
{pad}    {_upsert_predictions("ok", _NEW_EVENTS + " ORDER BY ok.prediction_id")}
{pad}), runs AS (
{pad}    {_enqueue_runs("ok", "FROM ok JOIN moved ON moved.id = ok.prediction_id, " + _HANDLERS.format("ok"))}
{pad})"""  # noqa: S608 (interpolates constants, never input)


# What each delivery of a set-wise group came to.
_SET_WISE_ANSWERS = """FROM checked c
            LEFT JOIN ev ON ev.webhook_id = c.webhook_id
            LEFT JOIN moved ON moved.id = c.prediction_id
            LEFT JOIN (SELECT prediction_id, count(*) AS n FROM runs GROUP BY 1) AS enqueued
                   ON enqueued.prediction_id = c.prediction_id"""


def _one_by_one(body: str, on_refusal: str) -> str:
    """A delivery of a group where an id comes twice, stored on its own (``d``: its row): refused with
    ``on_refusal`` (then ``CONTINUE``), or stored with its answer in the ``r_`` variables."""
    return f"""r_event_id := NULL; r_duplicate := false; r_conflict := false; r_moved := false; r_enqueued := 0;
            r_owner := NULL; r_elsewhere := false;
            IF d.source = 'webhook' THEN
                r_owner := {_owner("d")};
                r_elsewhere := {_elsewhere("d", "r_owner")};
                IF {_refused("d", "r_owner", "r_elsewhere")} THEN
                    {on_refusal}
                    CONTINUE;
                END IF;
            END IF;
            WITH ev AS (
                {_insert_events("d", "", body)}
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
            any_runs := any_runs OR r_enqueued > 0;"""  # noqa: S608 (interpolates constants, never input)


_FINISH = f"""    -- A late or repeated status: stored, not applied (the prediction keeps what it has).
    IF cardinality(unapplied) > 0 THEN
        UPDATE events SET applied = 0 WHERE id = ANY(unapplied);
    END IF;
    IF any_runs THEN
        -- Dispatchers of every instance LISTEN: told at commit (never before) that runs are due.
        PERFORM pg_notify('{RUNS_CHANNEL}', '');
    END IF;"""  # noqa: S608 (interpolates constants, never input)


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
            {_set_wise(_ROWS, _ARRAY_BODY, " " * 12)}
            SELECT c.i, ev.id, ev.duplicates > 0 AS duplicate, ev.conflict > 0 AS conflict,
                   moved.id IS NOT NULL AS moved,
                   coalesce(enqueued.n, 0)::int AS enqueued, c.owner, c.elsewhere
            {_SET_WISE_ANSWERS}
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
            {_one_by_one(_ARRAY_BODY, "RETURN NEXT;  -- refused: nothing of it is written; the caller raises")}
            RETURN NEXT;
        END LOOP;
    END IF;
{_FINISH}
END
$fn$
"""  # noqa: S608 (interpolates constants, never input)


# The group as rows, as migration 4's function reads them: ``o`` and ``n`` place the delivery's body in ``bodies``.
_GROUP_ROWS = """json_to_recordset(batch) AS x(
    i integer, o integer, n integer, webhook_id text, body_sha256 text, prediction_id text, status text,
    source text, model text, rank integer, webhook_timestamp bigint, reference text, now double precision,
    completed_at double precision, handlers json, input text, outputs text, error text,
    has_nsfw_contents text, timings text, provider_created_at text)"""
_GROUP_BODY = "substring(bodies FROM {d}.o FOR {d}.n)"
_REFUSED_ANSWER = """-- refused: nothing of it is written; the caller raises
                    answers := answers || json_build_array(NULL, false, false, false, 0, r_owner, r_elsewhere);"""

# Created by migration 4; a change to it is a new migration, never an edit. The same two ways through and the
# same answers as ``wavehook_record_deliveries`` (migration 3, kept for instances of the previous version while
# a deployment rolls over), with less for the client to send and to read: the bodies as one ``bytea`` (each
# delivery's place in it in its row), the ids as a small JSON array of ``[webhook_id, prediction_id]`` pairs,
# and the answer as one JSON text: ``[event_id, duplicate, conflict, moved, enqueued, owner, elsewhere]`` per
# delivery, in order. (psycopg dumps arrays and turns rows into Python objects in Python; with these, its work
# per group is a few values: against migration 3's function, side by side on one 2-core machine at 32
# connections, ~10 µs less of the receiver's CPU per delivery and ~5% more deliveries a second.)
RECORD_GROUP = f"""
CREATE FUNCTION wavehook_record_group(batch json, bodies bytea, ids json) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    d record;
    webhook_ids text[];
    prediction_ids text[];
    answers json[] := '{{}}';
    result text;
    any_runs boolean := false;
    unapplied bigint[] := '{{}}';
    r_event_id bigint; r_duplicate boolean; r_conflict boolean; r_moved boolean; r_enqueued integer;
    r_owner text; r_elsewhere boolean;
BEGIN
    SELECT array_agg(e->>0 ORDER BY n), array_agg(e->>1 ORDER BY n) INTO webhook_ids, prediction_ids
    FROM json_array_elements(ids) WITH ORDINALITY AS t(e, n);
    -- Deliveries under one webhook-id take turns across instances (see wavehook_record_deliveries).
    PERFORM pg_advisory_xact_lock(h)
    FROM (SELECT DISTINCT hashtextextended(w, 0) AS h FROM unnest(webhook_ids) AS w ORDER BY 1) AS locks;
    IF (SELECT count(DISTINCT w) FROM unnest(webhook_ids) AS w) = cardinality(webhook_ids)
       AND (SELECT count(DISTINCT p) FROM unnest(prediction_ids) AS p) = cardinality(prediction_ids) THEN
        {_set_wise(_GROUP_ROWS, _GROUP_BODY, " " * 8)}, answered AS (
            SELECT c.i, ev.id, coalesce(ev.duplicates > 0, false) AS duplicate,
                   coalesce(ev.conflict > 0, false) AS conflict, moved.id IS NOT NULL AS moved,
                   coalesce(enqueued.n, 0)::int AS enqueued, c.owner, c.elsewhere
            {_SET_WISE_ANSWERS}
        )
        SELECT json_agg(json_build_array(a.id, a.duplicate, a.conflict, a.moved, a.enqueued, a.owner, a.elsewhere)
                        ORDER BY a.i)::text,
               coalesce(array_agg(a.id) FILTER (WHERE a.id IS NOT NULL AND NOT a.duplicate AND NOT a.moved), '{{}}'),
               coalesce(bool_or(a.enqueued > 0), false)
        INTO result, unapplied, any_runs
        FROM answered a;
    ELSE
        FOR d IN SELECT * FROM {_GROUP_ROWS} ORDER BY x.i LOOP
            {_one_by_one(_GROUP_BODY, _REFUSED_ANSWER)}
            answers := answers
                || json_build_array(r_event_id, r_duplicate, r_conflict, r_moved, r_enqueued, r_owner, r_elsewhere);
        END LOOP;
        result := array_to_json(answers)::text;
    END IF;
{_FINISH}
    RETURN result;
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


def _json(value: Any) -> str:
    try:  # orjson: a sixth of json.dumps' time; what it refuses (an integer beyond 64 bits) falls back
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


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
        offset = 1
        for i, job in enumerate(jobs, start=1):  # the job's place in this group, and its body's in ``bodies``
            params, size = job.params, len(job.delivery.body)
            params["i"], params["o"], params["n"] = i, offset, size
            offset += size
        group = _json([job.params for job in jobs])
        ids = _json([(job.params["webhook_id"], job.params["prediction_id"]) for job in jobs])
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(
            # The bodies in binary, as one value: no hex text for the server to parse, no array to build.
            "SELECT wavehook_record_group(%s::json, %b::bytea, %s::json)",
            (group, b"".join([job.delivery.body for job in jobs]), ids),
            prepare=True,
        )
        row = await cur.fetchone()
        assert row is not None
        answers = orjson.loads(row[0])
        assert len(answers) == len(jobs)
        return [job._result(*answer) for job, answer in zip(jobs, answers, strict=True)]

    def _result(
        self,
        event_id: int | None,
        duplicate: bool,
        conflict: bool,
        moved: bool,
        enqueued: int,
        owner: str | None,
        elsewhere: bool,
    ) -> IngestResult | TokenMismatch:
        if event_id is None:  # refused before anything was written
            try:
                refuse_reference(
                    self.delivery.prediction_id,
                    self.delivery.reference,
                    owner=owner,
                    claimed_elsewhere=lambda: bool(elsewhere),
                )
            except TokenMismatch as exc:
                return exc
            raise AssertionError("the ledger refused a delivery that refuse_reference accepts")
        if duplicate:
            return IngestResult(event_id=event_id, duplicate=True)
        return IngestResult(
            event_id=event_id, duplicate=False, conflict=conflict, applied=moved, runs_enqueued=enqueued
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
