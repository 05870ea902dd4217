//! What a run is: its identity, trigger, status and counters; and the
//! events and commands about runs ([`event`]). Depends on nothing else of
//! syncdeck, so the state store, the engine and the console share it.

pub mod event;
pub mod rate;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A run's id, unique within one state store.
pub type RunId = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Manual,
    Schedule,
    Retry,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    /// Finished with some files or batches failed.
    Partial,
    Failed,
    Cancelled,
    /// The process died while the run was running.
    Interrupted,
    /// Handed to a remote system that runs it (an asynchronous Airbyte
    /// job); the final status is recorded on the same run later.
    Submitted,
    /// Not started because a dependency's last run did not succeed; the
    /// run's error names the dependency.
    Blocked,
}

impl RunStatus {
    pub fn is_finished(self) -> bool {
        !matches!(self, Self::Queued | Self::Running | Self::Submitted)
    }

    pub fn is_success(self) -> bool {
        self == Self::Succeeded
    }
}

macro_rules! text_enum {
    ($type:ty { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $type {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }
        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }
        impl FromStr for $type {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                match text {
                    $($text => Ok(Self::$variant),)+
                    other => Err(format!("unknown {}: {other}", stringify!($type))),
                }
            }
        }
    };
}

text_enum!(Trigger { Manual => "manual", Schedule => "schedule", Retry => "retry" });
text_enum!(RunStatus {
    Queued => "queued",
    Running => "running",
    Succeeded => "succeeded",
    Partial => "partial",
    Failed => "failed",
    Cancelled => "cancelled",
    Interrupted => "interrupted",
    Submitted => "submitted",
    Blocked => "blocked",
});

/// Counters of a run. File tasks fill the `files_*` and `bytes_*` fields,
/// table tasks the `rows_*` and `batches_*` ones.
// Missing fields read as zero: runs stored before a counter existed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunCounters {
    /// Files seen at the source (before the pattern).
    pub files_listed: u64,
    /// Files the pattern selected.
    pub files_matched: u64,
    /// Files decided so far; equals files_matched once planning is done.
    pub files_planned: u64,
    /// Whether listing and deciding are complete, so totals are final.
    pub totals_known: bool,
    pub files_to_copy: u64,
    pub files_synced: u64,
    /// Of files_synced, those copied within the store without passing
    /// through syncdeck.
    pub files_server_side: u64,
    pub files_skipped_exists: u64,
    pub files_skipped_unchanged: u64,
    pub files_failed: u64,
    /// Files being copied right now.
    pub files_active: u64,
    /// Bytes of the files to copy.
    pub bytes_total: u64,
    pub bytes_done: u64,
    pub rows_extracted: u64,
    pub rows_upserted: u64,
    pub rows_skipped: u64,
    /// Items a task's `filter` dropped on purpose (not errors).
    #[serde(default)]
    pub rows_filtered: u64,
    /// Rows loaded that were already identical in the target (not rewritten).
    pub rows_unchanged: u64,
    /// Target rows deleted because the source no longer has their key
    /// (full mode with `delete_missing`).
    pub rows_deleted: u64,
    /// Source rows the run will read, once counted.
    pub rows_total: Option<u64>,
    /// `rows_total` is the planner's estimate, until the count replaces it.
    #[serde(default)]
    pub rows_total_estimated: bool,
    pub batches_done: u64,
    pub batches_failed: u64,
    pub batches_total: Option<u64>,
    /// The remote job a run started (Airbyte), so whoever outlives the
    /// process that submitted it can keep watching it.
    pub remote_job_id: Option<i64>,
    /// Items (files, batches, pages) waiting out a retry's backoff right
    /// now: the progress says so instead of an ETA that only grows.
    #[serde(skip_serializing_if = "is_zero")]
    pub retry_waits: u64,
    /// What a load has been waiting for on the target, when it is a lock
    /// (`a lock held by pid 1007 (index_builder)`), while it waits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_wait: Option<String>,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl RunCounters {
    pub fn files_skipped(&self) -> u64 {
        self.files_skipped_exists + self.files_skipped_unchanged
    }

    /// Files waiting to be copied.
    pub fn files_queued(&self) -> u64 {
        self.files_to_copy
            .saturating_sub(self.files_synced + self.files_failed + self.files_active)
    }

    /// Whether the run moves rows (table sync) rather than files.
    pub fn counts_rows(&self) -> bool {
        self.rows_total.is_some() || self.rows_extracted > 0 || self.batches_done > 0
    }

    /// Whether any row or batch counter moved: wider than
    /// [`Self::counts_rows`], as an Airbyte run reports only the rows it
    /// synced. For telling a run of unknown kind in rows or files.
    pub fn counted_any_rows(&self) -> bool {
        self.rows_extracted
            + self.rows_upserted
            + self.rows_skipped
            + self.rows_filtered
            + self.batches_done
            + self.batches_failed
            > 0
            || self.rows_total.is_some()
    }

    /// A run's progress in one line, for logs (where no bar is drawn):
    /// `read 12000 of ~1000000 rows, upserted 11000, unchanged 1000, 12
    /// batches done, 0 failed`, or `synced 300 of 310 files so far, skipped
    /// 90, failed 0, 3.0 MiB so far, 120000 listed, listing`; then what it
    /// waits for, if anything (`, 1 waiting to retry`).
    pub fn progress_line(&self) -> String {
        let mut line = self.counts_line();
        for wait in self.waits() {
            line.push_str(&format!(", {wait}"));
        }
        line
    }

    /// What the run waits for instead of working, the most telling first:
    /// `waiting for a lock held by pid 1007 (index_builder)`, `2 waiting
    /// to retry`.
    pub fn waits(&self) -> Vec<String> {
        let mut waits = Vec::new();
        if let Some(lock) = &self.lock_wait {
            waits.push(format!("waiting for {lock}"));
        }
        if self.retry_waits > 0 {
            waits.push(format!("{} waiting to retry", self.retry_waits));
        }
        waits
    }

    fn counts_line(&self) -> String {
        let size = |bytes: u64| bytesize::ByteSize(bytes).display().iec().to_string();
        if self.counts_rows() {
            let total = match (self.rows_total, self.rows_total_estimated) {
                (Some(total), false) => total.to_string(),
                (Some(total), true) => format!("~{total}"),
                (None, _) => "an uncounted total".into(),
            };
            return format!(
                "read {} of {total} rows, upserted {}, unchanged {}, {} batches done, {} failed",
                self.rows_extracted,
                self.rows_upserted,
                self.rows_unchanged,
                self.batches_done,
                self.batches_failed
            );
        }
        if self.totals_known {
            format!(
                "synced {} of {} files, skipped {}, failed {}, {} of {}",
                self.files_synced,
                self.files_to_copy,
                self.files_skipped(),
                self.files_failed,
                size(self.bytes_done),
                size(self.bytes_total)
            )
        } else {
            format!(
                "synced {} of {} files so far, skipped {}, failed {}, {} so far, {} listed, listing",
                self.files_synced,
                self.files_to_copy,
                self.files_skipped(),
                self.files_failed,
                size(self.bytes_done),
                self.files_listed
            )
        }
    }

    /// What progress is measured in: rows read, or bytes copied.
    pub fn done(&self) -> u64 {
        if self.counts_rows() {
            self.rows_extracted
        } else {
            self.bytes_done
        }
    }

    /// Rows or bytes still to go; `None` while the totals are counted.
    pub fn remaining(&self) -> Option<u64> {
        if !self.totals_known {
            return None;
        }
        Some(match self.rows_total {
            Some(total) => total.saturating_sub(self.rows_extracted),
            None => self.bytes_total.saturating_sub(self.bytes_done),
        })
    }
}

/// A file being copied right now, and how far it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInFlight {
    pub path: String,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

impl FileInFlight {
    /// Share of the file copied, 0.0 to 1.0 (an empty file counts as done).
    pub fn fraction(&self) -> f64 {
        if self.bytes_total == 0 {
            1.0
        } else {
            (self.bytes_done as f64 / self.bytes_total as f64).min(1.0)
        }
    }
}

/// A run as the state store keeps it (one `sync_logs` row).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: RunId,
    pub task_id: String,
    pub trigger: Trigger,
    pub status: RunStatus,
    pub started_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    pub counters: RunCounters,
    /// Why the run failed, or what went wrong in a partial run.
    pub error: Option<String>,
    /// Something the operator should know about a successful run
    /// (for example that no file matched the pattern).
    pub warning: Option<String>,
    /// The logical date the run was for (what `{{ execution_date }}`
    /// rendered to): the day it started, or an older day for a retry of
    /// items that failed then. Unknown for runs recorded before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_date: Option<chrono::NaiveDate>,
}
