//! What the engine tells its watchers (past tense) and what it can be told
//! (imperative).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{FileInFlight, RunCounters, RunId, RunRecord, Trigger};

/// Why a file was not copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// It exists at the destination and `overwrite = false`.
    Exists,
    /// Same size and not newer (or same checksum) at the destination.
    Unchanged,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exists => "exists",
            Self::Unchanged => "unchanged",
        }
    }
}

/// How a file's bytes moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CopyMethod {
    /// Within one store, without passing through syncdeck.
    ServerSide,
    /// Read from the source and written to the destination.
    Streamed,
}

/// Why a scheduled slot started no run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotSkipReason {
    /// The previous run of the task was still going.
    Overlap,
    /// The slot was missed by more than `misfire_grace`.
    Misfire,
    /// A dependency's last run did not succeed.
    Blocked,
}

impl SlotSkipReason {
    /// Every reason, in declaration order.
    pub const ALL: &'static [Self] = &[Self::Overlap, Self::Misfire, Self::Blocked];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Overlap => "overlap",
            Self::Misfire => "misfire",
            Self::Blocked => "blocked",
        }
    }
}

#[derive(Debug, Clone)]
pub enum EngineEvent {
    RunStarted {
        run_id: RunId,
        task_id: String,
        trigger: Trigger,
        started_at: DateTime<Utc>,
    },
    /// A snapshot of a running run's counters, at most about ten a second.
    RunProgress {
        run_id: RunId,
        task_id: String,
        counters: Box<RunCounters>,
        /// Files being copied, with the bytes each has moved so far.
        in_flight: Vec<FileInFlight>,
        /// When the snapshot was taken: rates and ETAs are measured
        /// against it, not against when a watcher got round to it.
        at: DateTime<Utc>,
    },
    ItemSynced {
        run_id: RunId,
        task_id: String,
        path: String,
        bytes: u64,
        method: CopyMethod,
    },
    ItemSkipped {
        run_id: RunId,
        task_id: String,
        path: String,
        reason: SkipReason,
    },
    /// A file or batch failed an attempt; `retry_in` is set when another
    /// attempt follows after that wait.
    ItemFailed {
        run_id: RunId,
        task_id: String,
        path: String,
        error: String,
        attempt: u32,
        max_attempts: u32,
        retry_in: Option<Duration>,
    },
    /// A batch or page loaded on attempt `attempt`, after failing the
    /// attempts before it.
    ItemRecovered {
        run_id: RunId,
        task_id: String,
        path: String,
        attempt: u32,
    },
    RunFinished {
        record: Box<RunRecord>,
    },
    /// A scheduled task's next run changed (or it was paused).
    ScheduleChanged {
        task_id: String,
        next_run: Option<DateTime<Utc>>,
        paused: bool,
    },
    /// A task was not started because a dependency did not succeed.
    TaskBlocked {
        task_id: String,
        dependency: String,
    },
    /// A scheduled slot of a task came and started no run.
    SlotSkipped {
        task_id: String,
        reason: SlotSkipReason,
    },
}

/// What can be asked of the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineCommand {
    StartTask {
        task_id: String,
    },
    CancelRun {
        run_id: RunId,
    },
    /// Retry failed items of a task: the given ids, or all pending ones.
    RetryItems {
        task_id: String,
        item_ids: Option<Vec<i64>>,
    },
}
