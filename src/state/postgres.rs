//! The shared state store on PostgreSQL (`state = "postgres://…"`): the
//! same tables as SQLite in a `syncdeck` schema, so several daemons and
//! consoles share one view. Leases (`leases`, expiring rows) keep a task
//! from running twice across workers; `slots` lets exactly one worker take
//! each scheduled slot.
//!
//! Times are `timestamptz`, so operators can query the history in SQL
//! (`WHERE started_at > now() - interval '1 day'`).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::Mutex;
use tokio_postgres::Client;
use tokio_postgres::types::FromSql;

use super::{
    BadRow, FailedItem, ItemKind, ItemStatus, NewFailedItem, StateError, StateStore, StoredRow,
    Watermark, owner, to_millis,
};
use crate::config::redact;
use crate::run::{FileInFlight, RunCounters, RunId, RunRecord, Trigger};

const MIGRATIONS: &[&str] = &["
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
", "
CREATE TABLE syncdeck.cancel_requests (run_id BIGINT PRIMARY KEY, requested_at TIMESTAMPTZ NOT NULL DEFAULT now());
", "
ALTER TABLE syncdeck.sync_logs RENAME COLUMN sync_job_id TO task_id;
ALTER TABLE syncdeck.sync_logs
    ALTER COLUMN started_at TYPE TIMESTAMPTZ USING started_at::timestamptz,
    ALTER COLUMN completed_at TYPE TIMESTAMPTZ USING completed_at::timestamptz;
ALTER TABLE syncdeck.failed_items
    ALTER COLUMN created_at TYPE TIMESTAMPTZ USING created_at::timestamptz,
    ALTER COLUMN updated_at TYPE TIMESTAMPTZ USING updated_at::timestamptz;
ALTER TABLE syncdeck.watermarks
    ALTER COLUMN updated_at TYPE TIMESTAMPTZ USING updated_at::timestamptz;
", "
ALTER TABLE syncdeck.sync_logs ADD COLUMN execution_date DATE;
", "
CREATE TABLE syncdeck.paused_schedules (task_id TEXT PRIMARY KEY, paused_by TEXT NOT NULL, paused_at TIMESTAMPTZ NOT NULL DEFAULT now());
", "
ALTER TABLE syncdeck.sync_logs ADD COLUMN in_flight TEXT;
", "
ALTER TABLE syncdeck.watermarks ADD COLUMN scope TEXT;
"];

pub struct PostgresStateStore {
    url: String,
    name: String,
    /// One connection, reopened when it breaks; calls take turns on it.
    client: Mutex<Option<Client>>,
}

impl PostgresStateStore {
    pub async fn open(url: &str) -> Result<Self, StateError> {
        let store = Self {
            url: url.to_string(),
            name: String::new(),
            client: Mutex::new(None),
        };
        let (client, name) = store.connect().await?;
        let store = Self {
            name,
            client: Mutex::new(Some(client)),
            ..store
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn connect(&self) -> Result<(Client, String), StateError> {
        crate::postgres::connect(&self.url, "state")
            .await
            .map_err(|error| StateError::Store {
                location: "postgres state store".into(),
                message: error.to_string(),
            })
    }

    fn error(&self, error: tokio_postgres::Error) -> StateError {
        StateError::Store {
            location: self.name.clone(),
            message: describe(&error),
        }
    }

    /// The connection, reopened if it broke.
    async fn client(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Client>>, StateError> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = Some(self.connect().await?.0);
        }
        Ok(guard)
    }

    async fn migrate(&self) -> Result<(), StateError> {
        let mut guard = self.client().await?;
        let Some(client) = guard.as_mut() else {
            return Ok(());
        };
        let transaction = client
            .transaction()
            .await
            .map_err(|error| self.error(error))?;
        // Workers starting together take turns. The server's notices that
        // the schema and tables already exist are no news on every open.
        transaction
            .batch_execute(
                "SET LOCAL client_min_messages TO warning;
                 SELECT pg_advisory_xact_lock(7312002); CREATE SCHEMA IF NOT EXISTS syncdeck;
                 CREATE TABLE IF NOT EXISTS syncdeck.schema_version (version INT NOT NULL);",
            )
            .await
            .map_err(|error| self.error(error))?;
        let applied: Option<i32> = transaction
            .query_one("SELECT max(version) FROM syncdeck.schema_version", &[])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(|error| self.error(error))?;
        let applied = usize::try_from(applied.unwrap_or(0)).unwrap_or(0);
        if applied > MIGRATIONS.len() {
            return Err(StateError::Store {
                location: self.name.clone(),
                message: format!(
                    "the schema is at version {applied}, newer than this syncdeck knows ({}); upgrade syncdeck",
                    MIGRATIONS.len()
                ),
            });
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
            transaction
                .batch_execute(migration)
                .await
                .map_err(|error| StateError::Store {
                    location: self.name.clone(),
                    message: format!(
                        "upgrading the schema to version {} failed, so the store was left as it was: {}; \
                         correct or delete the row holding that value, then retry",
                        index + 1,
                        describe(&error)
                    ),
                })?;
            transaction
                .execute(
                    "INSERT INTO syncdeck.schema_version (version) VALUES ($1)",
                    &[&(index as i32 + 1)],
                )
                .await
                .map_err(|error| self.error(error))?;
        }
        transaction
            .commit()
            .await
            .map_err(|error| self.error(error))
    }

    async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StateError> {
        let guard = self.client().await?;
        let Some(client) = guard.as_ref() else {
            return Ok(0);
        };
        client
            .execute(sql, params)
            .await
            .map_err(|error| self.error(error))
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StateError> {
        let guard = self.client().await?;
        let Some(client) = guard.as_ref() else {
            return Ok(Vec::new());
        };
        client
            .query(sql, params)
            .await
            .map_err(|error| self.error(error))
    }
}

/// A PostgreSQL error as the operator reads it: the server's code and
/// message when it sent one.
fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => error.to_string(),
    }
}

/// Column `index` of a row, an error naming the row if it cannot be read
/// as a `T` (another type, or a time beyond what syncdeck can hold).
fn column<'a, T: FromSql<'a>>(
    stored: &StoredRow,
    row: &'a tokio_postgres::Row,
    index: usize,
) -> Result<T, BadRow> {
    row.try_get(index).map_err(|error| {
        let name = row.columns().get(index).map_or("?", |column| column.name());
        // The cause says what is wrong with the value ("value too large").
        match std::error::Error::source(&error) {
            Some(cause) => stored.bad(format!("{name} cannot be read: {cause}")),
            None => stored.bad(format!("{name} cannot be read: {error}")),
        }
    })
}

/// The first column of the one row a statement returned.
fn returned_id(rows: &[tokio_postgres::Row], table: &'static str) -> Result<i64, BadRow> {
    let stored = StoredRow::new(table, "just written");
    match rows.first() {
        Some(row) => column(&stored, row, 0),
        None => Err(stored.bad("the insert returned no id")),
    }
}

const RUN_COLUMNS: &str = "run_id, task_id, trigger, status, started_at, completed_at, duration_ms, counters, error, warning, execution_date";

fn run_from_row(row: &tokio_postgres::Row) -> Result<RunRecord, BadRow> {
    let run_id: RunId = column(&StoredRow::new("sync_logs", "a row"), row, 0)?;
    let stored = StoredRow::run(run_id);
    let trigger: String = column(&stored, row, 2)?;
    let status: String = column(&stored, row, 3)?;
    let counters: String = column(&stored, row, 7)?;
    Ok(RunRecord {
        run_id,
        task_id: column(&stored, row, 1)?,
        trigger: stored.word("trigger", &trigger, |text| text.parse().ok())?,
        status: stored.word("status", &status, |text| text.parse().ok())?,
        started_at: column(&stored, row, 4)?,
        completed_at: column(&stored, row, 5)?,
        duration_ms: column(&stored, row, 6)?,
        counters: stored.counters(&counters)?,
        error: column(&stored, row, 8)?,
        warning: column(&stored, row, 9)?,
        execution_date: column(&stored, row, 10)?,
    })
}

fn item_from_row(row: &tokio_postgres::Row) -> Result<FailedItem, BadRow> {
    let id: i64 = column(&StoredRow::new("failed_items", "a row"), row, 0)?;
    let stored = StoredRow::item(id);
    let kind: String = column(&stored, row, 3)?;
    let status: String = column(&stored, row, 7)?;
    let attempts: i32 = column(&stored, row, 6)?;
    Ok(FailedItem {
        id,
        run_id: column(&stored, row, 1)?,
        task_id: column(&stored, row, 2)?,
        kind: stored.word("kind", &kind, ItemKind::parse)?,
        key: column(&stored, row, 4)?,
        error: column(&stored, row, 5)?,
        attempts: stored.count("attempts", i64::from(attempts))?,
        status: stored.word("status", &status, ItemStatus::parse)?,
        created_at: column(&stored, row, 8)?,
        updated_at: column(&stored, row, 9)?,
    })
}

#[async_trait]
impl StateStore for PostgresStateStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    async fn begin_run_for(
        &self,
        task_id: &str,
        trigger: Trigger,
        started_at: DateTime<Utc>,
        execution_date: NaiveDate,
    ) -> Result<RunId, StateError> {
        let rows = self
            .query(
                "INSERT INTO syncdeck.sync_logs (task_id, trigger, status, started_at, owner, execution_date) VALUES ($1, $2, 'running', $3, $4, $5) RETURNING run_id",
                &[&task_id, &trigger.as_str(), &to_millis(started_at), &owner(), &execution_date],
            )
            .await?;
        returned_id(&rows, "sync_logs").map_err(|bad| bad.at(&self.name))
    }

    async fn execution_date(&self, run_id: RunId) -> Result<Option<NaiveDate>, StateError> {
        let rows = self
            .query(
                "SELECT execution_date FROM syncdeck.sync_logs WHERE run_id = $1",
                &[&run_id],
            )
            .await?;
        match rows.first() {
            None => Ok(None),
            Some(row) => column(&StoredRow::run(run_id), row, 0).map_err(|bad| bad.at(&self.name)),
        }
    }

    async fn update_run(&self, run_id: RunId, counters: &RunCounters) -> Result<(), StateError> {
        let counters = serde_json::to_string(counters).unwrap_or_default();
        self.execute(
            "UPDATE syncdeck.sync_logs SET counters = $2 WHERE run_id = $1 AND status = 'running'",
            &[&run_id, &counters],
        )
        .await
        .map(|_| ())
    }

    async fn set_files_in_flight(
        &self,
        run_id: RunId,
        files: &[FileInFlight],
    ) -> Result<(), StateError> {
        let files = &files[..files.len().min(super::FILES_IN_FLIGHT_STORED)];
        let json = serde_json::to_string(files).unwrap_or_default();
        self.execute(
            "UPDATE syncdeck.sync_logs SET in_flight = $2 WHERE run_id = $1 AND status = 'running'",
            &[&run_id, &json],
        )
        .await
        .map(|_| ())
    }

    async fn files_in_flight(&self, run_id: RunId) -> Result<Vec<FileInFlight>, StateError> {
        let rows = self
            .query(
                "SELECT in_flight FROM syncdeck.sync_logs WHERE run_id = $1 AND status = 'running'",
                &[&run_id],
            )
            .await?;
        let stored = StoredRow::run(run_id);
        let text: Option<String> = match rows.first() {
            None => None,
            Some(row) => column(&stored, row, 0).map_err(|bad| bad.at(&self.name))?,
        };
        match text {
            None => Ok(Vec::new()),
            Some(text) => stored
                .files_in_flight(&text)
                .map_err(|bad| bad.at(&self.name)),
        }
    }

    async fn finish_run(&self, record: &RunRecord) -> Result<(), StateError> {
        let counters = &record.counters;
        self.execute(
            "UPDATE syncdeck.sync_logs SET status = $2, completed_at = $3, duration_ms = $4, rows_extracted = $5, rows_upserted = $6,
             rows_skipped = $7, files_synced = $8, files_skipped = $9, files_failed = $10, bytes = $11, counters = $12,
             error = $13, warning = $14 WHERE run_id = $1",
            &[
                &record.run_id,
                &record.status.as_str(),
                &record.completed_at.map(to_millis),
                &record.duration_ms,
                &(counters.rows_extracted as i64),
                &(counters.rows_upserted as i64),
                &(counters.rows_skipped as i64),
                &(counters.files_synced as i64),
                &(counters.files_skipped() as i64),
                &(counters.files_failed as i64),
                &(counters.bytes_done as i64),
                &serde_json::to_string(counters).unwrap_or_default(),
                &record.error.as_deref().map(|error| redact(error).into_owned()),
                &record.warning.as_deref().map(|warning| redact(warning).into_owned()),
            ],
        )
        .await
        .map(|_| ())
    }

    async fn runs(
        &self,
        task_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RunRecord>, StateError> {
        let rows = self
            .query(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM syncdeck.sync_logs
                     WHERE ($1::text IS NULL OR task_id = $1) ORDER BY run_id DESC LIMIT $2"
                ),
                &[&task_id, &(limit as i64)],
            )
            .await?;
        rows.iter()
            .map(|row| run_from_row(row).map_err(|bad| bad.at(&self.name)))
            .collect()
    }

    async fn record_failed_item(&self, item: &NewFailedItem) -> Result<i64, StateError> {
        let now = to_millis(Utc::now());
        let error = redact(&item.error).into_owned();
        let attempts = i32::try_from(item.attempts).unwrap_or(i32::MAX);
        let updated = self
            .query(
                "UPDATE syncdeck.failed_items SET run_id = $4, error = $5, attempts = attempts + $6, updated_at = $7
                 WHERE task_id = $1 AND kind = $2 AND item_key = $3 AND status = 'pending'
                   AND (SELECT execution_date FROM syncdeck.sync_logs r WHERE r.run_id = failed_items.run_id)
                       IS NOT DISTINCT FROM (SELECT execution_date FROM syncdeck.sync_logs WHERE run_id = $4)
                 RETURNING id",
                &[&item.task_id, &item.kind.as_str(), &item.key, &item.run_id, &error, &attempts, &now],
            )
            .await?;
        if !updated.is_empty() {
            return returned_id(&updated, "failed_items").map_err(|bad| bad.at(&self.name));
        }
        let inserted = self
            .query(
                "INSERT INTO syncdeck.failed_items (run_id, task_id, kind, item_key, error, attempts, status, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7) RETURNING id",
                &[&item.run_id, &item.task_id, &item.kind.as_str(), &item.key, &error, &attempts, &now],
            )
            .await?;
        returned_id(&inserted, "failed_items").map_err(|bad| bad.at(&self.name))
    }

    async fn failed_items(
        &self,
        task_id: Option<&str>,
        pending_only: bool,
    ) -> Result<Vec<FailedItem>, StateError> {
        let rows = self
            .query(
                "SELECT id, run_id, task_id, kind, item_key, error, attempts, status, created_at, updated_at FROM syncdeck.failed_items
                 WHERE ($1::text IS NULL OR task_id = $1) AND (NOT $2 OR status = 'pending') ORDER BY id",
                &[&task_id, &pending_only],
            )
            .await?;
        rows.iter()
            .map(|row| item_from_row(row).map_err(|bad| bad.at(&self.name)))
            .collect()
    }

    async fn set_item_status(&self, id: i64, status: ItemStatus) -> Result<(), StateError> {
        self.execute(
            "UPDATE syncdeck.failed_items SET status = $2, updated_at = $3 WHERE id = $1",
            &[&id, &status.as_str(), &to_millis(Utc::now())],
        )
        .await
        .map(|_| ())
    }

    async fn stored_watermark(&self, task_id: &str) -> Result<Option<Watermark>, StateError> {
        let rows = self
            .query(
                "SELECT value, scope FROM syncdeck.watermarks WHERE task_id = $1",
                &[&task_id],
            )
            .await?;
        let stored = StoredRow::new("watermarks", format!("task {task_id:?}"));
        rows.first()
            .map(|row| {
                Ok(Watermark {
                    value: column(&stored, row, 0)?,
                    scope: column(&stored, row, 1)?,
                })
            })
            .transpose()
            .map_err(|bad: BadRow| bad.at(&self.name))
    }

    async fn delete_watermark(&self, task_id: &str) -> Result<Option<String>, StateError> {
        let rows = self
            .query(
                "DELETE FROM syncdeck.watermarks WHERE task_id = $1 RETURNING value",
                &[&task_id],
            )
            .await?;
        let stored = StoredRow::new("watermarks", format!("task {task_id:?}"));
        rows.first()
            .map(|row| column(&stored, row, 0))
            .transpose()
            .map_err(|bad| bad.at(&self.name))
    }

    async fn set_watermark(
        &self,
        task_id: &str,
        value: &str,
        scope: Option<&str>,
    ) -> Result<(), StateError> {
        self.execute(
            "INSERT INTO syncdeck.watermarks (task_id, value, scope, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (task_id) DO UPDATE SET value = excluded.value, scope = excluded.scope,
                 updated_at = excluded.updated_at",
            &[&task_id, &value, &scope, &to_millis(Utc::now())],
        )
        .await
        .map(|_| ())
    }

    /// A running run whose owner holds no live lease on its task is over:
    /// its worker died (or lost the lease) without recording the end.
    async fn mark_interrupted(&self) -> Result<u64, StateError> {
        self.execute(
            "UPDATE syncdeck.sync_logs s SET status = 'interrupted', completed_at = $1,
             error = 'the worker running it stopped before the run finished (its lease expired)'
             WHERE s.status = 'running' AND NOT EXISTS (
                 SELECT 1 FROM syncdeck.leases l WHERE l.task_id = s.task_id AND l.owner = s.owner AND l.expires_at > now())",
            &[&to_millis(Utc::now())],
        )
        .await
    }

    async fn acquire_lease(
        &self,
        task_id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StateError> {
        let seconds = ttl.as_secs_f64();
        let changed = self
            .execute(
                "INSERT INTO syncdeck.leases (task_id, owner, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))
                 ON CONFLICT (task_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
                 WHERE syncdeck.leases.owner = excluded.owner OR syncdeck.leases.expires_at < now()",
                &[&task_id, &owner, &seconds],
            )
            .await?;
        Ok(changed > 0)
    }

    async fn renew_lease(
        &self,
        task_id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StateError> {
        let changed = self
            .execute(
                "UPDATE syncdeck.leases SET expires_at = now() + make_interval(secs => $3) WHERE task_id = $1 AND owner = $2",
                &[&task_id, &owner, &ttl.as_secs_f64()],
            )
            .await?;
        Ok(changed > 0)
    }

    async fn release_lease(&self, task_id: &str, owner: &str) -> Result<(), StateError> {
        self.execute(
            "DELETE FROM syncdeck.leases WHERE task_id = $1 AND owner = $2",
            &[&task_id, &owner],
        )
        .await
        .map(|_| ())
    }

    async fn request_cancel(&self, run_id: RunId) -> Result<(), StateError> {
        self.execute(
            "INSERT INTO syncdeck.cancel_requests (run_id) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&run_id],
        )
        .await
        .map(|_| ())
    }

    async fn paused_schedules(&self) -> Result<Vec<String>, StateError> {
        Ok(self
            .query(
                "SELECT task_id FROM syncdeck.paused_schedules ORDER BY task_id",
                &[],
            )
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect())
    }

    async fn set_schedule_paused(&self, task_id: &str, paused: bool) -> Result<(), StateError> {
        if paused {
            self.execute(
                "INSERT INTO syncdeck.paused_schedules (task_id, paused_by) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&task_id, &owner()],
            )
            .await?;
        } else {
            self.execute(
                "DELETE FROM syncdeck.paused_schedules WHERE task_id = $1",
                &[&task_id],
            )
            .await?;
        }
        Ok(())
    }

    async fn cancel_requested(&self, run_id: RunId) -> Result<bool, StateError> {
        Ok(!self
            .query(
                "SELECT 1 FROM syncdeck.cancel_requests WHERE run_id = $1",
                &[&run_id],
            )
            .await?
            .is_empty())
    }

    async fn claim_slot(&self, task_id: &str, slot: i64, owner: &str) -> Result<bool, StateError> {
        let changed = self
            .execute(
                "INSERT INTO syncdeck.slots (task_id, slot, owner) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&task_id, &slot, &owner],
            )
            .await?;
        self.execute(
            "DELETE FROM syncdeck.slots WHERE task_id = $1 AND slot < $2",
            &[&task_id, &(slot - 100)],
        )
        .await?;
        Ok(changed > 0)
    }
}
