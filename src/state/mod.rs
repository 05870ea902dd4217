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
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::run::{FileInFlight, RunCounters, RunId, RunRecord, Trigger};

pub use postgres::PostgresStateStore;
pub use sqlite::SqliteStateStore;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state store {location}: {message}")]
    Store { location: String, message: String },
    /// A stored value this version cannot read (a status it does not
    /// know, a time that is not one): reading on with a guess would show
    /// the operator a made-up history.
    #[error(
        "state store {location}: {table} {row}: {problem}; correct or delete that row, then retry"
    )]
    BadRow {
        location: String,
        table: &'static str,
        row: String,
        problem: String,
    },
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

    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "file" => Some(Self::File),
            "batch" => Some(Self::Batch),
            "row" => Some(Self::Row),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Pending,
    Resolved,
    Abandoned,
    /// The item no longer exists at the source (a failed file since
    /// deleted): nothing is left to retry.
    Gone,
}

impl ItemStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Resolved => "resolved",
            Self::Abandoned => "abandoned",
            Self::Gone => "gone",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "resolved" => Some(Self::Resolved),
            "abandoned" => Some(Self::Abandoned),
            "gone" => Some(Self::Gone),
            _ => None,
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

/// A stored watermark: the value, and what it was about (a table sync's
/// source, target and watermark column), so a task pointed elsewhere does
/// not trust it; no scope when it was stored without one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watermark {
    pub value: String,
    pub scope: Option<String>,
}

#[async_trait]
pub trait StateStore: Send + Sync {
    /// `sqlite` or `postgres`, for the console's title bar.
    fn kind(&self) -> &'static str;
    /// Records a run as running and returns its id; its execution date is
    /// the day it started (UTC).
    async fn begin_run(
        &self,
        task_id: &str,
        trigger: Trigger,
        started_at: DateTime<Utc>,
    ) -> Result<RunId, StateError> {
        self.begin_run_for(task_id, trigger, started_at, started_at.date_naive())
            .await
    }
    /// Records a run as running for the logical date `execution_date` (what
    /// `{{ execution_date }}` renders to) and returns its id.
    async fn begin_run_for(
        &self,
        task_id: &str,
        trigger: Trigger,
        started_at: DateTime<Utc>,
        execution_date: NaiveDate,
    ) -> Result<RunId, StateError>;
    /// The execution date a run was recorded with; `None` for an unknown
    /// run or one recorded before execution dates were kept.
    async fn execution_date(&self, run_id: RunId) -> Result<Option<NaiveDate>, StateError>;
    /// Stores the latest counters of a running run.
    async fn update_run(&self, run_id: RunId, counters: &RunCounters) -> Result<(), StateError>;
    /// Publishes the files a running run is copying now (at most
    /// [`FILES_IN_FLIGHT_STORED`]), for consoles watching it through the
    /// store; nothing once the run has ended.
    async fn set_files_in_flight(
        &self,
        run_id: RunId,
        files: &[FileInFlight],
    ) -> Result<(), StateError>;
    /// The files in flight a running run published last; none for a run
    /// that has ended.
    async fn files_in_flight(&self, run_id: RunId) -> Result<Vec<FileInFlight>, StateError>;
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
    /// A task's watermark, with what it is about.
    async fn stored_watermark(&self, task_id: &str) -> Result<Option<Watermark>, StateError>;
    /// A task's watermark value alone.
    async fn watermark(&self, task_id: &str) -> Result<Option<String>, StateError> {
        Ok(self.stored_watermark(task_id).await?.map(|mark| mark.value))
    }
    async fn set_watermark(
        &self,
        task_id: &str,
        value: &str,
        scope: Option<&str>,
    ) -> Result<(), StateError>;
    /// Forgets a task's watermark; returns the value it had, if any.
    async fn delete_watermark(&self, task_id: &str) -> Result<Option<String>, StateError>;
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
    /// Tasks whose schedule an operator paused: every console and daemon
    /// on this store skips their slots until they are resumed.
    async fn paused_schedules(&self) -> Result<Vec<String>, StateError>;
    /// Pauses or resumes a task's schedule for every process on the store.
    async fn set_schedule_paused(&self, task_id: &str, paused: bool) -> Result<(), StateError>;
}

/// Files in flight a run publishes to the store: what the detail view
/// lists, and a bound on the row's size however many files run at once.
pub const FILES_IN_FLIGHT_STORED: usize = 20;

/// Who this process is, in `running` rows and leases: `host:pid`.
pub fn owner() -> String {
    format!("{}:{}", hostname(), std::process::id())
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// How the SQLite store writes times: RFC 3339 in UTC, to the millisecond.
pub(crate) fn timestamp(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A time as the stores keep it: to the millisecond, so that both stores
/// give back the same times (and `history --json` the same text).
pub(crate) fn to_millis(time: DateTime<Utc>) -> DateTime<Utc> {
    chrono::SubsecRound::trunc_subsecs(time, 3)
}

/// Which stored row is being read, so that a value it holds that cannot
/// be read is reported with the table and the row it is in.
pub(crate) struct StoredRow {
    table: &'static str,
    row: String,
}

/// What is wrong with one stored row; the store adds where it is.
#[derive(Debug)]
pub(crate) struct BadRow {
    table: &'static str,
    row: String,
    problem: String,
}

impl BadRow {
    pub(crate) fn at(self, location: &str) -> StateError {
        StateError::BadRow {
            location: location.to_string(),
            table: self.table,
            row: self.row,
            problem: self.problem,
        }
    }
}

impl StoredRow {
    pub(crate) fn new(table: &'static str, row: impl Into<String>) -> Self {
        Self {
            table,
            row: row.into(),
        }
    }

    pub(crate) fn run(run_id: RunId) -> Self {
        Self::new("sync_logs", format!("run {run_id}"))
    }

    pub(crate) fn item(id: i64) -> Self {
        Self::new("failed_items", format!("item {id}"))
    }

    pub(crate) fn bad(&self, problem: impl std::fmt::Display) -> BadRow {
        BadRow {
            table: self.table,
            row: self.row.clone(),
            problem: problem.to_string(),
        }
    }

    /// A text column holding one of a fixed set of words.
    pub(crate) fn word<T>(
        &self,
        column: &str,
        text: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, BadRow> {
        parse(text).ok_or_else(|| self.bad(format!("unknown {column} {text:?}")))
    }

    /// A time written by [`timestamp`].
    pub(crate) fn time(&self, column: &str, text: &str) -> Result<DateTime<Utc>, BadRow> {
        DateTime::parse_from_rfc3339(text)
            .map(|time| time.with_timezone(&Utc))
            .map_err(|error| {
                self.bad(format!(
                    "{column} {text:?} is not a time (expected RFC 3339, like 2024-05-01T12:00:00.000Z): {error}"
                ))
            })
    }

    /// The files in flight of a run, stored as JSON.
    pub(crate) fn files_in_flight(&self, text: &str) -> Result<Vec<FileInFlight>, BadRow> {
        serde_json::from_str(text)
            .map_err(|error| self.bad(format!("in_flight is not a JSON list of files: {error}")))
    }

    /// The counters of a run, stored as JSON.
    pub(crate) fn counters(&self, text: &str) -> Result<RunCounters, BadRow> {
        serde_json::from_str(text)
            .map_err(|error| self.bad(format!("counters are not valid run counters JSON: {error}")))
    }

    /// A count that cannot be negative.
    pub(crate) fn count(&self, column: &str, value: i64) -> Result<u32, BadRow> {
        u32::try_from(value).map_err(|_| self.bad(format!("{column} {value} is out of range")))
    }
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
