//! Setting up the SQLite file: WAL mode, waiting out other processes'
//! locks, and the schema migrations, applied in order at open.

use rusqlite::{Connection, params};

/// Schema changes in order; `schema_version` holds how many were applied.
const MIGRATIONS: &[&str] = &[
    r"
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
CREATE TABLE watermarks (
    task_id TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
",
    r"
CREATE TABLE leases (
    task_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE slots (
    task_id TEXT NOT NULL,
    slot INTEGER NOT NULL,
    owner TEXT NOT NULL,
    PRIMARY KEY (task_id, slot)
);
",
    r"
CREATE TABLE cancel_requests (run_id INTEGER PRIMARY KEY, requested_at REAL NOT NULL);
",
    // The same column name as in every other table and the shared store.
    r"
ALTER TABLE sync_logs RENAME COLUMN sync_job_id TO task_id;
",
    r"
ALTER TABLE sync_logs ADD COLUMN execution_date TEXT;
",
    r"
CREATE TABLE paused_schedules (task_id TEXT PRIMARY KEY, paused_by TEXT NOT NULL, paused_at REAL NOT NULL);
",
    // The files a running run is copying, for consoles of other processes.
    r"
ALTER TABLE sync_logs ADD COLUMN in_flight TEXT;
",
    // What a watermark is about (see `state::Watermark`).
    r"
ALTER TABLE watermarks ADD COLUMN scope TEXT;
",
];

/// How long a statement waits for another process's lock on the store.
pub(super) const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Puts the store in WAL mode (kept in the file, so only its creator
/// switches). SQLite answers a journal-mode change "database is locked" at
/// once, without waiting, while another process holds a lock, as when a
/// console, a daemon and a `history` open the store together: that answer
/// is retried until [`BUSY_TIMEOUT`].
pub(super) fn use_wal(connection: &Connection) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        let attempt = connection
            .query_row("PRAGMA journal_mode", [], |row| row.get::<_, String>(0))
            .and_then(|mode| {
                if mode.eq_ignore_ascii_case("wal") {
                    Ok(())
                } else {
                    connection.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
                }
            })
            .and_then(|()| connection.execute_batch("PRAGMA synchronous = NORMAL"));
        match attempt {
            Err(rusqlite::Error::SqliteFailure(failure, _))
                if failure.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Brings the schema up to date. A store that is current is only read:
/// processes opening the store (every `syncdeck history`) must not take
/// the write lock from a run that is writing.
pub(super) fn migrate(connection: &mut Connection) -> rusqlite::Result<()> {
    let current = |connection: &Connection| -> rusqlite::Result<usize> {
        let exists: bool = connection.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version')",
            [],
            |row| row.get(0),
        )?;
        if !exists {
            return Ok(0);
        }
        let applied: Option<i64> =
            connection.query_row("SELECT max(version) FROM schema_version", [], |row| {
                row.get(0)
            })?;
        Ok(applied.unwrap_or(0) as usize)
    };
    if current(connection)? >= MIGRATIONS.len() {
        return Ok(());
    }
    let transaction =
        connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    transaction
        .execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let applied = current(&transaction)?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        transaction.execute_batch(migration)?;
        transaction.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            params![index as i64 + 1],
        )?;
    }
    transaction.commit()
}
