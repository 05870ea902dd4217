//! The state store: run history (`sync_logs`), failed items, watermarks.
//! One trait, with an embedded SQLite implementation and a shared
//! PostgreSQL one; the engine and the CLI only see the trait.
//!
//! Depends on `run` (the records it keeps), `config` (redaction) and
//! `postgres` (connections for the shared store).

mod postgres;
mod sqlite;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::run::{RunCounters, RunId, RunRecord, Trigger};

pub use postgres::PostgresStateStore;
pub use sqlite::SqliteStateStore;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state store {location}: {message}")]
    Store { location: String, message: String },
    #[error(
        "unsupported state store `{0}`; use sqlite:PATH (postgres:// comes with the shared store)"
    )]
    Unsupported(String),
}

/// What kind of thing failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    File,
    Batch,
    Row,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Batch => "batch",
            Self::Row => "row",
        }
    }

    pub(crate) fn parse(text: &str) -> Self {
        match text {
            "batch" => Self::Batch,
            "row" => Self::Row,
            _ => Self::File,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Pending,
    Resolved,
    Abandoned,
}

impl ItemStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Resolved => "resolved",
            Self::Abandoned => "abandoned",
        }
    }

    pub(crate) fn parse(text: &str) -> Self {
        match text {
            "resolved" => Self::Resolved,
            "abandoned" => Self::Abandoned,
            _ => Self::Pending,
        }
    }
}

/// A failed file or batch (a `failed_items` row).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedItem {
    pub id: i64,
    pub run_id: RunId,
    pub task_id: String,
    pub kind: ItemKind,
    /// The file's path relative to the source, or a batch's bounds.
    pub key: String,
    pub error: String,
    pub attempts: u32,
    pub status: ItemStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewFailedItem {
    pub run_id: RunId,
    pub task_id: String,
    pub kind: ItemKind,
    pub key: String,
    pub error: String,
    pub attempts: u32,
}

#[async_trait]
pub trait StateStore: Send + Sync {
    /// `sqlite` or `postgres`, for the console's title bar.
    fn kind(&self) -> &'static str;
    /// Records a run as running and returns its id.
    async fn begin_run(
        &self,
        task_id: &str,
        trigger: Trigger,
        started_at: DateTime<Utc>,
    ) -> Result<RunId, StateError>;
    /// Stores the latest counters of a running run.
    async fn update_run(&self, run_id: RunId, counters: &RunCounters) -> Result<(), StateError>;
    /// Records a run's final status, counters and error.
    async fn finish_run(&self, record: &RunRecord) -> Result<(), StateError>;
    /// Runs, newest first.
    async fn runs(&self, task_id: Option<&str>, limit: usize)
    -> Result<Vec<RunRecord>, StateError>;
    /// Records a failure; a pending failure of the same item is updated
    /// (attempts added, error replaced) rather than duplicated.
    async fn record_failed_item(&self, item: &NewFailedItem) -> Result<i64, StateError>;
    async fn failed_items(
        &self,
        task_id: Option<&str>,
        pending_only: bool,
    ) -> Result<Vec<FailedItem>, StateError>;
    async fn set_item_status(&self, id: i64, status: ItemStatus) -> Result<(), StateError>;
    async fn watermark(&self, task_id: &str) -> Result<Option<String>, StateError>;
    async fn set_watermark(&self, task_id: &str, value: &str) -> Result<(), StateError>;
    /// Marks runs left `running` by processes that are gone (or, in a
    /// shared store, whose lease expired) as `interrupted`.
    async fn mark_interrupted(&self) -> Result<u64, StateError>;
    /// Takes the lease on a task for `ttl` unless another owner holds a
    /// live one. A task runs only under its lease, so never twice at once
    /// across the workers sharing this store.
    async fn acquire_lease(
        &self,
        task_id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StateError>;
    /// Extends an owned lease; false when it was lost (expired and taken).
    async fn renew_lease(
        &self,
        task_id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StateError>;
    async fn release_lease(&self, task_id: &str, owner: &str) -> Result<(), StateError>;
    /// Claims one scheduled slot of a task (slots are numbered from the
    /// epoch); false when another worker claimed it first.
    async fn claim_slot(&self, task_id: &str, slot: i64, owner: &str) -> Result<bool, StateError>;
    /// Asks whichever worker runs `run_id` to cancel it.
    async fn request_cancel(&self, run_id: RunId) -> Result<(), StateError>;
    /// Whether a cancel of `run_id` was asked for.
    async fn cancel_requested(&self, run_id: RunId) -> Result<bool, StateError>;
}

/// Who this process is, in `running` rows and leases: `host:pid`.
pub fn owner() -> String {
    format!("{}:{}", hostname(), std::process::id())
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// How the stores write times: RFC 3339 in UTC, to the millisecond.
pub(crate) fn timestamp(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A time written by [`timestamp`].
pub(crate) fn parse_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .unwrap_or_default()
}

/// Opens the store named by `[engine] state`, creating it if needed.
pub async fn open(url: &str, base_dir: &Path) -> Result<Arc<dyn StateStore>, StateError> {
    if let Some(path) = url.strip_prefix("sqlite:") {
        let path = path.trim_start_matches("//");
        let path = if Path::new(path).is_absolute() {
            path.into()
        } else {
            base_dir.join(path)
        };
        let store = SqliteStateStore::open(&path).await?;
        return Ok(Arc::new(store));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(PostgresStateStore::open(url).await?));
    }
    let scheme = url.split(':').next().unwrap_or(url);
    Err(StateError::Unsupported(format!("{scheme}:")))
}
