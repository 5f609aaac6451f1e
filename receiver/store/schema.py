"""Versioned schema. Append new migrations at the end; never edit one that has shipped.

A migration's function is numbered by its position (the next one is ``m005_...``); the name a ledger records
is the function's, except for two that shipped as ``m002_...`` both: they keep the names ledgers have already
recorded (``name=``), or those ledgers would run them again. ``connection.SCHEMA_VERSION`` counts them all.
"""

from __future__ import annotations

import secrets

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("wavehook")


def _execute_all(db: Database, script: str) -> None:
    # executescript() would COMMIT the migration's transaction early: run statement by statement instead.
    for statement in script.split(";\n"):
        if statement.strip():
            db.execute(statement)


@migrations()
def m001_ledger(db: Database) -> None:
    _execute_all(
        db,
        """
        CREATE TABLE predictions (
            id TEXT PRIMARY KEY,
            model TEXT,
            status TEXT,
            status_rank INTEGER NOT NULL DEFAULT -1,
            input TEXT,
            outputs TEXT,
            error TEXT,
            has_nsfw_contents TEXT,
            timings TEXT,
            provider_created_at TEXT,
            reference TEXT,
            webhook_url TEXT,
            submitted_at REAL,
            first_seen_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            completed_at REAL,
            last_event_id INTEGER
        );
        CREATE INDEX predictions_status ON predictions (status, updated_at);
        CREATE INDEX predictions_model ON predictions (model, updated_at);
        CREATE INDEX predictions_updated ON predictions (updated_at);

        -- Every accepted (signed, fresh) delivery, once per (webhook-id, body). A repeat of the same pair
        -- only bumps `duplicates`; the same webhook-id with another body is a new row flagged `conflict`.
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            webhook_id TEXT NOT NULL,
            body_sha256 TEXT NOT NULL,
            prediction_id TEXT NOT NULL,
            status TEXT,
            source TEXT NOT NULL,
            applied INTEGER NOT NULL,
            conflict INTEGER NOT NULL DEFAULT 0,
            duplicates INTEGER NOT NULL DEFAULT 0,
            webhook_timestamp INTEGER,
            reference TEXT,
            received_at REAL NOT NULL,
            last_duplicate_at REAL,
            body BLOB NOT NULL,
            UNIQUE (webhook_id, body_sha256)
        );
        CREATE INDEX events_prediction ON events (prediction_id, id);

        -- Authentic or signed deliveries that cannot become events: unusable bodies, stale or future
        -- timestamps. Kept for inspection; never dispatched.
        CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY,
            webhook_id TEXT NOT NULL,
            body_sha256 TEXT NOT NULL,
            reason TEXT NOT NULL,
            detail TEXT NOT NULL,
            prediction_id TEXT,
            webhook_timestamp INTEGER,
            received_at REAL NOT NULL,
            last_seen_at REAL NOT NULL,
            count INTEGER NOT NULL DEFAULT 1,
            body BLOB NOT NULL,
            UNIQUE (webhook_id, body_sha256, reason)
        );
        CREATE INDEX quarantine_prediction ON quarantine (prediction_id);

        -- The outbox: one run per (prediction, terminal status, handler), written in the delivery's
        -- transaction. state: pending | running | succeeded | dead.
        CREATE TABLE handler_runs (
            id INTEGER PRIMARY KEY,
            prediction_id TEXT NOT NULL,
            status TEXT NOT NULL,
            handler TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at REAL NOT NULL,
            lease_owner TEXT,
            lease_until REAL,
            last_error TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            finished_at REAL,
            UNIQUE (prediction_id, status, handler)
        );
        CREATE INDEX handler_runs_due ON handler_runs (state, next_at);

        CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        """,
    )
    # The local secret behind correlation tokens: made once per ledger, shared by every process using it.
    db.execute("INSERT INTO meta (key, value) VALUES ('correlation_secret', ?)", [secrets.token_urlsafe(32)])


@migrations()
def m002_dispatch_runs(db: Database) -> None:
    _execute_all(
        db,
        """
        ALTER TABLE handler_runs ADD COLUMN started_at REAL;
        ALTER TABLE handler_runs ADD COLUMN replays INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX handler_runs_lease ON handler_runs (state, lease_until);
        CREATE INDEX handler_runs_finished ON handler_runs (state, finished_at);

        -- One row per attempt of a run: who ran it, when, for how long, and how it ended
        -- (succeeded | failed | retry | timeout | lost | released; NULL while it runs).
        CREATE TABLE run_attempts (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES handler_runs (id),
            attempt INTEGER NOT NULL,
            owner TEXT NOT NULL,
            started_at REAL NOT NULL,
            finished_at REAL,
            duration_ms REAL,
            outcome TEXT,
            error TEXT,
            traceback TEXT
        );
        CREATE INDEX run_attempts_run ON run_attempts (run_id, id)
        """,
    )


@migrations(name="m002_dispatch_downloads")
def m003_dispatch_downloads(db: Database) -> None:
    _execute_all(
        db,
        """
        -- Outputs copied to the media directory by the download_outputs handler (the provider deletes
        -- its copies after 7 days).
        CREATE TABLE downloads (
            id INTEGER PRIMARY KEY,
            prediction_id TEXT NOT NULL,
            url TEXT NOT NULL,
            path TEXT NOT NULL,
            size INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            content_type TEXT,
            downloaded_at REAL NOT NULL,
            UNIQUE (prediction_id, url)
        )
        """,
    )


@migrations(name="m003_submitter_submissions")
def m004_submitter_submissions(db: Database) -> None:
    _execute_all(
        db,
        """
        -- One row per job the submitter sends, written before the submit request leaves, so that a request
        -- whose answer is lost (or a crash in mid-request) leaves something to resolve by lookup.
        -- state: sending | submitted | unknown (the task may exist) | failed (no task was created).
        CREATE TABLE submissions (
            reference TEXT PRIMARY KEY,
            job_key TEXT UNIQUE,
            model TEXT NOT NULL,
            input TEXT NOT NULL,
            webhook_url TEXT,
            state TEXT NOT NULL,
            prediction_id TEXT,
            resolved_by TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            created_at REAL NOT NULL,
            sent_at REAL,
            updated_at REAL NOT NULL
        );
        CREATE INDEX submissions_state ON submissions (state, sent_at);
        CREATE INDEX submissions_prediction ON submissions (prediction_id);
        CREATE INDEX predictions_reference ON predictions (reference)
        """,
    )


@migrations()
def m005_revoked_sessions(db: Database) -> None:
    _execute_all(
        db,
        """
        -- Dashboard sessions ended by logout before their cookie expires: every process refuses them.
        -- A row outlives the longest session and is then pruned.
        CREATE TABLE revoked_sessions (
            session_id TEXT PRIMARY KEY,
            forget_after REAL NOT NULL
        )
        """,
    )
