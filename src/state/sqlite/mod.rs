//! The embedded state store: one SQLite file, WAL mode, migrations at open.
//!
//! rusqlite is synchronous, so every call runs on tokio's blocking pool
//! holding the one connection behind a mutex; writes are small and rare
//! (a few per run and per failure), so one connection is enough.

mod rows;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    BadRow, FailedItem, ItemStatus, NewFailedItem, StateError, StateStore, StoredRow, Watermark,
    hostname, owner, timestamp,
};
use crate::config::redact;
use crate::run::{FileInFlight, RunCounters, RunId, RunRecord, Trigger};
use rows::{RUN_COLUMNS, collect, item_from_row, run_from_row};
use schema::{BUSY_TIMEOUT, migrate, use_wal};

pub struct SqliteStateStore {
    path: PathBuf,
    /// The one connection; calls hold it only on the blocking pool.
    connection: Arc<Mutex<Connection>>,
}

impl SqliteStateStore {
    pub async fn open(path: &Path) -> Result<Self, StateError> {
        let path = path.to_path_buf();
        let location = path.display().to_string();
        let error = move |message: String| StateError::Store {
            location: location.clone(),
            message,
        };
        let opened = tokio::task::spawn_blocking({
            let path = path.clone();
            move || -> Result<Connection, String> {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
                }
                let mut connection = Connection::open(&path).map_err(|e| e.to_string())?;
                connection
                    .busy_timeout(BUSY_TIMEOUT)
                    .map_err(|e| e.to_string())?;
                use_wal(&connection).map_err(|e| e.to_string())?;
                migrate(&mut connection).map_err(|e| format!("migration failed: {e}"))?;
                Ok(connection)
            }
        })
        .await
        .map_err(|e| error(e.to_string()))?
        .map_err(error)?;
        Ok(Self {
            path,
            connection: Arc::new(Mutex::new(opened)),
        })
    }

    /// Opens an existing store for reading only (`history`, `errors`), for
    /// a user who cannot write the file or its folder: nothing is migrated
    /// or written. When SQLite cannot set up its WAL index there (it needs
    /// to create `-shm` next to the file), the file is read as immutable.
    pub async fn open_read_only(path: &Path) -> Result<Self, StateError> {
        use rusqlite::OpenFlags;
        let path = path.to_path_buf();
        let location = path.display().to_string();
        let opened = tokio::task::spawn_blocking({
            let path = path.clone();
            move || -> Result<Connection, String> {
                let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI;
                let readable = |connection: &Connection| {
                    connection.query_row("SELECT count(*) FROM sqlite_master", [], |row| {
                        row.get::<_, i64>(0)
                    })
                };
                let connection =
                    Connection::open_with_flags(&path, flags).map_err(|e| e.to_string())?;
                connection
                    .busy_timeout(BUSY_TIMEOUT)
                    .map_err(|e| e.to_string())?;
                if readable(&connection).is_ok() {
                    return Ok(connection);
                }
                let uri = format!("file:{}?immutable=1", uri_path(&path));
                let connection =
                    Connection::open_with_flags(uri, flags).map_err(|e| e.to_string())?;
                readable(&connection).map_err(|e| e.to_string())?;
                Ok(connection)
            }
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|result| result)
        .map_err(|message| StateError::Store {
            location,
            message: format!("cannot read the store: {message}"),
        })?;
        Ok(Self {
            path,
            connection: Arc::new(Mutex::new(opened)),
        })
    }

    async fn call<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, Failure> + Send + 'static,
    ) -> Result<T, StateError> {
        let connection = Arc::clone(&self.connection);
        let location = self.path.display().to_string();
        let result = tokio::task::spawn_blocking(move || {
            let mut connection = match connection.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            work(&mut connection)
        })
        .await;
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(Failure::Row(bad))) => Err(bad.at(&location)),
            Ok(Err(Failure::Sql(error))) => Err(StateError::Store {
                location,
                message: error.to_string(),
            }),
            Err(error) => Err(StateError::Store {
                location,
                message: error.to_string(),
            }),
        }
    }
}

/// Why a call on the connection failed: SQLite refused, or a row holds a
/// value this version cannot read.
enum Failure {
    Sql(rusqlite::Error),
    Row(BadRow),
}

impl From<rusqlite::Error> for Failure {
    fn from(error: rusqlite::Error) -> Self {
        Self::Sql(error)
    }
}

impl From<BadRow> for Failure {
    fn from(bad: BadRow) -> Self {
        Self::Row(bad)
    }
}

/// A path as the path of a `file:` URI: the characters URIs give a meaning escaped.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' | '?' | '#' => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs_f64())
        .unwrap_or(0.0)
}

fn is_alive(owner: &str) -> bool {
    let Some((host, pid)) = owner.rsplit_once(':') else {
        return false;
    };
    if host != hostname() {
        // Another machine's run: only the shared store can judge it.
        return true;
    }
    Path::new(&format!("/proc/{pid}")).exists()
}

#[async_trait]
impl StateStore for SqliteStateStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    async fn begin_run_for(
        &self,
        task_id: &str,
        trigger: Trigger,
        started_at: DateTime<Utc>,
        execution_date: NaiveDate,
    ) -> Result<RunId, StateError> {
        let task_id = task_id.to_string();
        let started = timestamp(&started_at);
        let date = execution_date.format("%Y-%m-%d").to_string();
        self.call(move |connection| {
            connection.execute(
                "INSERT INTO sync_logs (task_id, trigger, status, started_at, owner, execution_date) VALUES (?1, ?2, 'running', ?3, ?4, ?5)",
                params![task_id, trigger.as_str(), started, owner(), date],
            )?;
            Ok(connection.last_insert_rowid())
        })
        .await
    }

    async fn execution_date(&self, run_id: RunId) -> Result<Option<NaiveDate>, StateError> {
        let stored: Option<Option<String>> = self
            .call(move |connection| {
                Ok(connection
                    .query_row(
                        "SELECT execution_date FROM sync_logs WHERE run_id = ?1",
                        params![run_id],
                        |row| row.get(0),
                    )
                    .optional()?)
            })
            .await?;
        match stored.flatten() {
            None => Ok(None),
            Some(text) => NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                .map(Some)
                .map_err(|_| {
                    StoredRow::run(run_id)
                        .bad(format!("execution_date {text:?} is not a date"))
                        .at(&self.path.display().to_string())
                }),
        }
    }

    async fn update_run(&self, run_id: RunId, counters: &RunCounters) -> Result<(), StateError> {
        let counters_json = serde_json::to_string(counters).unwrap_or_default();
        self.call(move |connection| {
            connection.execute(
                "UPDATE sync_logs SET counters = ?2 WHERE run_id = ?1 AND status = 'running'",
                params![run_id, counters_json],
            )?;
            Ok(())
        })
        .await
    }

    async fn set_files_in_flight(
        &self,
        run_id: RunId,
        files: &[FileInFlight],
    ) -> Result<(), StateError> {
        let files = &files[..files.len().min(super::FILES_IN_FLIGHT_STORED)];
        let json = serde_json::to_string(files).unwrap_or_default();
        self.call(move |connection| {
            connection.execute(
                "UPDATE sync_logs SET in_flight = ?2 WHERE run_id = ?1 AND status = 'running'",
                params![run_id, json],
            )?;
            Ok(())
        })
        .await
    }

    async fn files_in_flight(&self, run_id: RunId) -> Result<Vec<FileInFlight>, StateError> {
        self.call(move |connection| {
            let stored: Option<Option<String>> = connection
                .query_row(
                    "SELECT in_flight FROM sync_logs WHERE run_id = ?1 AND status = 'running'",
                    params![run_id],
                    |row| row.get(0),
                )
                .optional()?;
            match stored.flatten() {
                None => Ok(Vec::new()),
                Some(text) => Ok(StoredRow::run(run_id).files_in_flight(&text)?),
            }
        })
        .await
    }

    async fn finish_run(&self, record: &RunRecord) -> Result<(), StateError> {
        let record = record.clone();
        self.call(move |connection| {
            let counters = &record.counters;
            connection.execute(
                "UPDATE sync_logs SET status = ?2, completed_at = ?3, duration_ms = ?4, rows_extracted = ?5, rows_upserted = ?6,
                 rows_skipped = ?7, files_synced = ?8, files_skipped = ?9, files_failed = ?10, bytes = ?11, counters = ?12,
                 error = ?13, warning = ?14 WHERE run_id = ?1",
                params![
                    record.run_id,
                    record.status.as_str(),
                    record.completed_at.as_ref().map(timestamp),
                    record.duration_ms,
                    counters.rows_extracted as i64,
                    counters.rows_upserted as i64,
                    counters.rows_skipped as i64,
                    counters.files_synced as i64,
                    counters.files_skipped() as i64,
                    counters.files_failed as i64,
                    counters.bytes_done as i64,
                    serde_json::to_string(counters).unwrap_or_default(),
                    record.error.as_deref().map(|error| redact(error).into_owned()),
                    record.warning.as_deref().map(|warning| redact(warning).into_owned()),
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn runs(
        &self,
        task_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RunRecord>, StateError> {
        let task_id = task_id.map(str::to_string);
        self.call(move |connection| {
            let sql = format!(
                "SELECT {RUN_COLUMNS} FROM sync_logs WHERE (?1 IS NULL OR task_id = ?1) ORDER BY run_id DESC LIMIT ?2"
            );
            let mut statement = connection.prepare(&sql)?;
            collect(statement.query(params![task_id, limit as i64])?, run_from_row)
        })
        .await
    }

    async fn record_failed_item(&self, item: &NewFailedItem) -> Result<i64, StateError> {
        let item = item.clone();
        let now = timestamp(&Utc::now());
        let error = redact(&item.error).into_owned();
        self.call(move |connection| {
            // Immediate: a read upgraded to a write later fails at once
            // (without waiting) when another process wrote in between.
            let transaction =
                connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let existing: Option<i64> = transaction
                .query_row(
                    // The same key failed for another execution date is
                    // another item (another folder when paths use the date).
                    "SELECT f.id FROM failed_items f JOIN sync_logs r ON r.run_id = f.run_id
                     WHERE f.task_id = ?1 AND f.kind = ?2 AND f.item_key = ?3 AND f.status = 'pending'
                       AND r.execution_date IS (SELECT execution_date FROM sync_logs WHERE run_id = ?4)",
                    params![item.task_id, item.kind.as_str(), item.key, item.run_id],
                    |row| row.get(0),
                )
                .optional()?;
            let id = match existing {
                Some(id) => {
                    transaction.execute(
                        "UPDATE failed_items SET run_id = ?2, error = ?3, attempts = attempts + ?4, updated_at = ?5 WHERE id = ?1",
                        params![id, item.run_id, error, item.attempts, now],
                    )?;
                    id
                }
                None => {
                    transaction.execute(
                        "INSERT INTO failed_items (run_id, task_id, kind, item_key, error, attempts, status, created_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?7)",
                        params![item.run_id, item.task_id, item.kind.as_str(), item.key, error, item.attempts, now],
                    )?;
                    transaction.last_insert_rowid()
                }
            };
            transaction.commit()?;
            Ok(id)
        })
        .await
    }

    async fn failed_items(
        &self,
        task_id: Option<&str>,
        pending_only: bool,
    ) -> Result<Vec<FailedItem>, StateError> {
        let task_id = task_id.map(str::to_string);
        self.call(move |connection| {
            let mut statement = connection.prepare(
                "SELECT id, run_id, task_id, kind, item_key, error, attempts, status, created_at, updated_at FROM failed_items
                 WHERE (?1 IS NULL OR task_id = ?1) AND (?2 = 0 OR status = 'pending') ORDER BY id",
            )?;
            collect(statement.query(params![task_id, pending_only])?, item_from_row)
        })
        .await
    }

    async fn set_item_status(&self, id: i64, status: ItemStatus) -> Result<(), StateError> {
        let now = timestamp(&Utc::now());
        self.call(move |connection| {
            connection.execute(
                "UPDATE failed_items SET status = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, status.as_str(), now],
            )?;
            Ok(())
        })
        .await
    }

    async fn stored_watermark(&self, task_id: &str) -> Result<Option<Watermark>, StateError> {
        let task_id = task_id.to_string();
        self.call(move |connection| {
            Ok(connection
                .query_row(
                    "SELECT value, scope FROM watermarks WHERE task_id = ?1",
                    params![task_id],
                    |row| {
                        Ok(Watermark {
                            value: row.get(0)?,
                            scope: row.get(1)?,
                        })
                    },
                )
                .optional()?)
        })
        .await
    }

    async fn delete_watermark(&self, task_id: &str) -> Result<Option<String>, StateError> {
        let task_id = task_id.to_string();
        self.call(move |connection| {
            Ok(connection
                .query_row(
                    "DELETE FROM watermarks WHERE task_id = ?1 RETURNING value",
                    params![task_id],
                    |row| row.get(0),
                )
                .optional()?)
        })
        .await
    }

    async fn set_watermark(
        &self,
        task_id: &str,
        value: &str,
        scope: Option<&str>,
    ) -> Result<(), StateError> {
        let task_id = task_id.to_string();
        let value = value.to_string();
        let scope = scope.map(str::to_string);
        let now = timestamp(&Utc::now());
        self.call(move |connection| {
            connection.execute(
                "INSERT INTO watermarks (task_id, value, scope, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (task_id) DO UPDATE SET value = excluded.value, scope = excluded.scope,
                     updated_at = excluded.updated_at",
                params![task_id, value, scope, now],
            )?;
            Ok(())
        })
        .await
    }

    /// Like the shared store's, plus: a lease whose owner process on this
    /// machine is gone is taken over at once (a `kill -9` must not block
    /// the next run for the lease's time to live).
    async fn acquire_lease(
        &self,
        task_id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StateError> {
        let (task_id, owner) = (task_id.to_string(), owner.to_string());
        self.call(move |connection| {
            // One transaction, taken at once: processes sharing the file take turns.
            let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let now = unix_now();
            let holder: Option<(String, f64)> = transaction
                .query_row("SELECT owner, expires_at FROM leases WHERE task_id = ?1", params![task_id], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?;
            if let Some((holder, expires_at)) = holder
                && holder != owner
                && expires_at >= now
                && is_alive(&holder)
            {
                return Ok(false);
            }
            transaction.execute(
                "INSERT INTO leases (task_id, owner, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (task_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at",
                params![task_id, owner, now + ttl.as_secs_f64()],
            )?;
            transaction.commit()?;
            Ok(true)
        })
        .await
    }

    async fn renew_lease(
        &self,
        task_id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StateError> {
        let (task_id, owner) = (task_id.to_string(), owner.to_string());
        self.call(move |connection| {
            let changed = connection.execute(
                "UPDATE leases SET expires_at = ?3 WHERE task_id = ?1 AND owner = ?2",
                params![task_id, owner, unix_now() + ttl.as_secs_f64()],
            )?;
            Ok(changed > 0)
        })
        .await
    }

    async fn release_lease(&self, task_id: &str, owner: &str) -> Result<(), StateError> {
        let (task_id, owner) = (task_id.to_string(), owner.to_string());
        self.call(move |connection| {
            connection.execute(
                "DELETE FROM leases WHERE task_id = ?1 AND owner = ?2",
                params![task_id, owner],
            )?;
            Ok(())
        })
        .await
    }

    async fn claim_slot(&self, task_id: &str, slot: i64, owner: &str) -> Result<bool, StateError> {
        let (task_id, owner) = (task_id.to_string(), owner.to_string());
        self.call(move |connection| {
            let changed = connection.execute(
                "INSERT INTO slots (task_id, slot, owner) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                params![task_id, slot, owner],
            )?;
            connection.execute("DELETE FROM slots WHERE task_id = ?1 AND slot < ?2", params![task_id, slot - 100])?;
            Ok(changed > 0)
        })
        .await
    }

    async fn request_cancel(&self, run_id: RunId) -> Result<(), StateError> {
        self.call(move |connection| {
            connection.execute(
                "INSERT INTO cancel_requests (run_id, requested_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![run_id, unix_now()],
            )?;
            Ok(())
        })
        .await
    }

    async fn paused_schedules(&self) -> Result<Vec<String>, StateError> {
        self.call(move |connection| {
            let mut statement =
                connection.prepare("SELECT task_id FROM paused_schedules ORDER BY task_id")?;
            let tasks = statement
                .query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(tasks)
        })
        .await
    }

    async fn set_schedule_paused(&self, task_id: &str, paused: bool) -> Result<(), StateError> {
        let task_id = task_id.to_string();
        let owner = owner();
        self.call(move |connection| {
            if paused {
                connection.execute(
                    "INSERT INTO paused_schedules (task_id, paused_by, paused_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                    params![task_id, owner, unix_now()],
                )?;
            } else {
                connection.execute(
                    "DELETE FROM paused_schedules WHERE task_id = ?1",
                    params![task_id],
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn cancel_requested(&self, run_id: RunId) -> Result<bool, StateError> {
        self.call(move |connection| {
            Ok(connection
                .query_row(
                    "SELECT 1 FROM cancel_requests WHERE run_id = ?1",
                    params![run_id],
                    |_| Ok(()),
                )
                .optional()?
                .is_some())
        })
        .await
    }

    async fn mark_interrupted(&self) -> Result<u64, StateError> {
        let now = timestamp(&Utc::now());
        self.call(move |connection| {
            let running: Vec<(i64, String)> = {
                let mut statement = connection.prepare("SELECT run_id, owner FROM sync_logs WHERE status = 'running'")?;
                statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?.collect::<rusqlite::Result<_>>()?
            };
            let mut count = 0;
            for (run_id, owner) in running {
                if !is_alive(&owner) {
                    count += connection.execute(
                        "UPDATE sync_logs SET status = 'interrupted', completed_at = ?2,
                         error = 'the process running it stopped before the run finished' WHERE run_id = ?1",
                        params![run_id, now],
                    )? as u64;
                }
            }
            Ok(count)
        })
        .await
    }
}
