//! A run as the console follows it: its live counters, files in flight,
//! recent items, throughput samples, rate and ETA. Kept after the run
//! ends, so its detail stays readable.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};

use crate::run::event::{CopyMethod, SkipReason};
use crate::run::rate::RateEstimator;
use crate::run::{FileInFlight, RunCounters, RunId, Trigger};

/// Recent items kept per run for the detail view.
const RECENT_ITEMS: usize = 200;
/// Seconds of throughput history for the sparkline.
const THROUGHPUT_SECONDS: usize = 60;

/// What happened to a file or batch in a run, newest last.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemOutcome {
    Synced {
        bytes: u64,
        method: CopyMethod,
    },
    Skipped(SkipReason),
    /// Loaded on this attempt, after failing the ones before it.
    Recovered {
        attempt: u32,
    },
    Failed {
        error: String,
        attempt: u32,
        max_attempts: u32,
        retry_at: Option<DateTime<Utc>>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecentItem {
    pub path: String,
    pub outcome: ItemOutcome,
}

/// A run in progress, as the console follows it.
#[derive(Debug, Clone)]
pub struct ActiveRun {
    pub run_id: RunId,
    pub trigger: Trigger,
    pub started_at: DateTime<Utc>,
    pub counters: RunCounters,
    pub recent: VecDeque<RecentItem>,
    /// Items failing right now, by path: the newest attempt.
    pub retrying: HashMap<String, RecentItem>,
    /// Files being copied, with their own progress (runs of this process).
    pub in_flight: Vec<FileInFlight>,
    /// Rate and ETA, the same estimator as the CLI's progress bar.
    pub(super) estimator: RateEstimator,
    /// Bytes per second, one value per second, newest last.
    pub throughput: VecDeque<u64>,
    pub(super) last_second: Option<(DateTime<Utc>, u64)>,
    pub cancel_requested: bool,
    /// Started by another process (a daemon, another console); followed
    /// by polling the state store instead of through engine events.
    pub remote: bool,
}

impl ActiveRun {
    pub(super) fn new(run_id: RunId, trigger: Trigger, started_at: DateTime<Utc>) -> Self {
        Self {
            run_id,
            trigger,
            started_at,
            counters: RunCounters::default(),
            recent: VecDeque::new(),
            retrying: HashMap::new(),
            in_flight: Vec::new(),
            estimator: RateEstimator::new(),
            throughput: VecDeque::new(),
            last_second: None,
            cancel_requested: false,
            remote: false,
        }
    }

    /// Bytes (or, for table runs, rows) per second, smoothed over the
    /// last seconds; `None` until half a second was measured.
    pub fn rate(&self) -> Option<f64> {
        self.estimator.rate()
    }

    /// Time left at the current rate, when totals and a rate are known.
    pub fn eta(&self) -> Option<TimeDelta> {
        self.estimator.eta_for(&self.counters)
    }

    /// The rate and ETA, as the CLI's progress bar words them.
    pub fn speed(&self) -> String {
        super::format::speed(&self.counters, &self.estimator)
    }

    /// Share of the work done, weighted by bytes (files) or rows (tables);
    /// `None` while counting.
    pub fn fraction(&self) -> Option<f64> {
        let counters = &self.counters;
        if !counters.totals_known {
            return None;
        }
        if let Some(total) = counters.rows_total {
            return Some(if total == 0 {
                1.0
            } else {
                (counters.rows_extracted as f64 / total as f64).min(1.0)
            });
        }
        if counters.bytes_total > 0 {
            Some((counters.bytes_done as f64 / counters.bytes_total as f64).min(1.0))
        } else if counters.files_to_copy > 0 {
            Some(
                (counters.files_synced + counters.files_failed) as f64
                    / counters.files_to_copy as f64,
            )
        } else {
            Some(1.0)
        }
    }

    pub(super) fn sample(&mut self, now: DateTime<Utc>) {
        self.estimator.observe_counters(now, &self.counters);
    }

    pub(super) fn tick(&mut self, now: DateTime<Utc>) {
        let bytes = self.counters.done();
        match self.last_second {
            // A run followed from its start counts from zero: its first
            // second's rows or bytes are throughput too. One joined later
            // (another process's) counts from when it was first seen.
            None if now - self.started_at < TimeDelta::seconds(2) => {
                self.last_second = Some((self.started_at, 0));
                self.tick(now);
                return;
            }
            None => self.last_second = Some((now, bytes)),
            Some((time, before)) if now - time >= TimeDelta::seconds(1) => {
                self.throughput.push_back(bytes.saturating_sub(before));
                if self.throughput.len() > THROUGHPUT_SECONDS {
                    self.throughput.pop_front();
                }
                self.last_second = Some((now, bytes));
            }
            Some(_) => {}
        }
        self.sample(now);
    }

    /// Drops the failed attempts at `path` from the recent items.
    pub(super) fn forget_failed_attempts(&mut self, path: &str) {
        self.recent
            .retain(|old| old.path != path || !matches!(old.outcome, ItemOutcome::Failed { .. }));
    }

    pub(super) fn push_recent(&mut self, item: RecentItem) {
        self.recent.push_back(item);
        if self.recent.len() > RECENT_ITEMS {
            self.recent.pop_front();
        }
    }
}
