//! Upgrading state stores written by earlier versions in place: the runs,
//! failed items and watermarks they hold come back, with typed times that
//! operators can query in SQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::{TimeZone, Utc};
use common::TestDatabase;
use syncdeck::run::{RunStatus, Trigger};
use syncdeck::state::{ItemKind, ItemStatus, PostgresStateStore, SqliteStateStore, StateStore};

/// The PostgreSQL schema as the first two migrations made it: times as
/// text, the task column of `sync_logs` named `sync_job_id`.
const PREVIOUS_POSTGRES: &str = "
CREATE SCHEMA syncdeck;
CREATE TABLE syncdeck.schema_version (version INT NOT NULL);
CREATE TABLE syncdeck.sync_logs (
    run_id BIGSERIAL PRIMARY KEY,
    sync_job_id TEXT NOT NULL,
    trigger TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    completed_at TEXT,
    duration_ms BIGINT,
    rows_extracted BIGINT NOT NULL DEFAULT 0,
    rows_upserted BIGINT NOT NULL DEFAULT 0,
    rows_skipped BIGINT NOT NULL DEFAULT 0,
    files_synced BIGINT NOT NULL DEFAULT 0,
    files_skipped BIGINT NOT NULL DEFAULT 0,
    files_failed BIGINT NOT NULL DEFAULT 0,
    bytes BIGINT NOT NULL DEFAULT 0,
    counters TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    warning TEXT,
    owner TEXT NOT NULL
);
CREATE INDEX sync_logs_by_task ON syncdeck.sync_logs (sync_job_id, run_id);
CREATE TABLE syncdeck.failed_items (
    id BIGSERIAL PRIMARY KEY,
    run_id BIGINT NOT NULL,
    task_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    item_key TEXT NOT NULL,
    error TEXT NOT NULL,
    attempts INT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX failed_items_by_task ON syncdeck.failed_items (task_id, status);
CREATE TABLE syncdeck.watermarks (task_id TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE syncdeck.leases (task_id TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at TIMESTAMPTZ NOT NULL);
CREATE TABLE syncdeck.slots (task_id TEXT NOT NULL, slot BIGINT NOT NULL, owner TEXT NOT NULL, PRIMARY KEY (task_id, slot));
CREATE TABLE syncdeck.cancel_requests (run_id BIGINT PRIMARY KEY, requested_at TIMESTAMPTZ NOT NULL DEFAULT now());
INSERT INTO syncdeck.schema_version (version) VALUES (1), (2);
";

/// Rows as the previous version wrote them (times as `timestamp()` in
/// src/state/mod.rs made them: RFC 3339, UTC, milliseconds).
const PREVIOUS_ROWS: &str = "
INSERT INTO syncdeck.sync_logs (sync_job_id, trigger, status, started_at, completed_at, duration_ms, files_synced, counters, error, owner)
VALUES ('copy', 'schedule', 'partial', '2024-05-01T12:00:00.250Z', '2024-05-01T12:01:01.500Z', 61250, 9,
        '{\"files_synced\":9,\"files_failed\":1}', '1 file failed', 'host-a:10'),
       ('load', 'manual', 'running', '2024-05-02T08:30:00.000Z', NULL, NULL, 0, '{}', NULL, 'host-a:11');
INSERT INTO syncdeck.failed_items (run_id, task_id, kind, item_key, error, attempts, status, created_at, updated_at)
VALUES (1, 'copy', 'file', 'in/b.csv', 'timeout', 2, 'pending', '2024-05-01T12:00:30.000Z', '2024-05-01T12:00:45.125Z'),
       (2, 'load', 'batch', 'id 1..=1000', 'deadlock', 1, 'resolved', '2024-05-02T08:31:00.000Z', '2024-05-02T09:00:00.000Z');
INSERT INTO syncdeck.watermarks (task_id, value, updated_at) VALUES ('load', '2024-05-01T00:00:00Z', '2024-05-02T08:35:00.000Z');
";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn time(text: &str) -> chrono::DateTime<Utc> {
    chrono::DateTime::parse_from_rfc3339(text)
        .expect("time")
        .with_timezone(&Utc)
}

#[test]
fn a_postgres_store_of_the_previous_schema_is_upgraded_in_place() {
    let database = TestDatabase::create("upgrade");
    database.execute(PREVIOUS_POSTGRES);
    database.execute(PREVIOUS_ROWS);

    runtime().block_on(async {
        let store = PostgresStateStore::open(&database.url)
            .await
            .expect("open the previous store");
        let runs = store.runs(None, 10).await.expect("runs");
        assert_eq!(runs.len(), 2);
        let (load, copy) = (&runs[0], &runs[1]);
        assert_eq!(
            (copy.task_id.as_str(), copy.trigger),
            ("copy", Trigger::Schedule)
        );
        assert_eq!(copy.status, RunStatus::Partial);
        assert_eq!(copy.started_at, time("2024-05-01T12:00:00.250Z"));
        assert_eq!(copy.completed_at, Some(time("2024-05-01T12:01:01.500Z")));
        assert_eq!(copy.duration_ms, Some(61_250));
        assert_eq!(
            (copy.counters.files_synced, copy.counters.files_failed),
            (9, 1)
        );
        assert_eq!(copy.error.as_deref(), Some("1 file failed"));
        assert_eq!(
            (load.task_id.as_str(), load.status),
            ("load", RunStatus::Running)
        );
        assert_eq!(load.completed_at, None);

        let items = store.failed_items(None, false).await.expect("items");
        assert_eq!(items.len(), 2);
        assert_eq!(
            (items[0].kind, items[0].key.as_str(), items[0].attempts),
            (ItemKind::File, "in/b.csv", 2)
        );
        assert_eq!(items[0].status, ItemStatus::Pending);
        assert_eq!(items[0].created_at, time("2024-05-01T12:00:30.000Z"));
        assert_eq!(items[0].updated_at, time("2024-05-01T12:00:45.125Z"));
        assert_eq!(
            (items[1].kind, items[1].status),
            (ItemKind::Batch, ItemStatus::Resolved)
        );
        assert_eq!(
            store.watermark("load").await.expect("watermark").as_deref(),
            Some("2024-05-01T00:00:00Z")
        );

        // The upgraded store goes on recording runs.
        let started = Utc
            .with_ymd_and_hms(2024, 5, 3, 0, 0, 0)
            .single()
            .expect("time");
        let run_id = store
            .begin_run("copy", Trigger::Manual, started)
            .await
            .expect("begin");
        assert_eq!(run_id, 3);
        assert_eq!(store.runs(Some("copy"), 10).await.expect("runs").len(), 2);
    });

    // Operators query the history with time arithmetic.
    assert_eq!(
        database.count(
            "SELECT count(*) FROM syncdeck.sync_logs WHERE started_at > now() - interval '100 years'"
        ),
        3
    );
    assert_eq!(
        database.count(
            "SELECT count(*) FROM syncdeck.sync_logs
             WHERE task_id = 'copy' AND completed_at - started_at = interval '61.25 seconds'"
        ),
        1
    );
    assert_eq!(
        database.count(
            "SELECT count(*) FROM syncdeck.failed_items WHERE updated_at < timestamptz '2024-05-02 00:00Z'"
        ),
        1
    );
    assert_eq!(
        database.scalar(
            "SELECT data_type FROM information_schema.columns
             WHERE table_schema = 'syncdeck' AND table_name = 'watermarks' AND column_name = 'updated_at'"
        ),
        "timestamp with time zone"
    );
}

#[test]
fn an_upgrade_that_meets_an_unreadable_time_changes_nothing() {
    let database = TestDatabase::create("upgrade_bad");
    database.execute(PREVIOUS_POSTGRES);
    database.execute(PREVIOUS_ROWS);
    database.execute("UPDATE syncdeck.sync_logs SET started_at = 'last tuesday' WHERE run_id = 2");

    let error = runtime().block_on(async {
        match PostgresStateStore::open(&database.url).await {
            Ok(_) => panic!("a store holding 'last tuesday' as a time was upgraded"),
            Err(error) => error.to_string(),
        }
    });
    assert!(
        error.contains("upgrading the schema to version 3 failed")
            && error.contains("last tuesday"),
        "{error}"
    );
    assert_eq!(
        database.scalar("SELECT max(version) FROM syncdeck.schema_version"),
        "2"
    );
    assert_eq!(
        database.count("SELECT count(*) FROM syncdeck.sync_logs WHERE sync_job_id = 'copy'"),
        1
    );
}

/// The SQLite schema as the first three migrations made it.
const PREVIOUS_SQLITE: &str = "
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE sync_logs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    sync_job_id TEXT NOT NULL,
    trigger TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    completed_at TEXT,
    duration_ms INTEGER,
    rows_extracted INTEGER NOT NULL DEFAULT 0,
    rows_upserted INTEGER NOT NULL DEFAULT 0,
    rows_skipped INTEGER NOT NULL DEFAULT 0,
    files_synced INTEGER NOT NULL DEFAULT 0,
    files_skipped INTEGER NOT NULL DEFAULT 0,
    files_failed INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    counters TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    warning TEXT,
    owner TEXT NOT NULL
);
CREATE INDEX sync_logs_by_task ON sync_logs (sync_job_id, run_id);
CREATE TABLE failed_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL,
    task_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    item_key TEXT NOT NULL,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX failed_items_by_task ON failed_items (task_id, status);
CREATE TABLE watermarks (task_id TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE leases (task_id TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE slots (task_id TEXT NOT NULL, slot INTEGER NOT NULL, owner TEXT NOT NULL, PRIMARY KEY (task_id, slot));
CREATE TABLE cancel_requests (run_id INTEGER PRIMARY KEY, requested_at REAL NOT NULL);
INSERT INTO schema_version (version) VALUES (1), (2), (3);
";

#[test]
fn a_sqlite_store_of_the_previous_schema_keeps_its_history() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.db");
    let previous_rows = PREVIOUS_ROWS.replace("syncdeck.", "");
    rusqlite::Connection::open(&path)
        .and_then(|connection| {
            connection.execute_batch(PREVIOUS_SQLITE)?;
            connection.execute_batch(&previous_rows)
        })
        .expect("write the previous store");

    runtime().block_on(async {
        let store = SqliteStateStore::open(&path)
            .await
            .expect("open the previous store");
        let copy = store.runs(Some("copy"), 10).await.expect("runs");
        assert_eq!(copy.len(), 1);
        assert_eq!(copy[0].status, RunStatus::Partial);
        assert_eq!(copy[0].started_at, time("2024-05-01T12:00:00.250Z"));
        assert_eq!(copy[0].completed_at, Some(time("2024-05-01T12:01:01.500Z")));
        let items = store.failed_items(Some("copy"), true).await.expect("items");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].updated_at, time("2024-05-01T12:00:45.125Z"));
        assert_eq!(
            store.watermark("load").await.expect("watermark").as_deref(),
            Some("2024-05-01T00:00:00Z")
        );
    });
}
