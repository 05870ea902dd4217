//! A run as the console follows it: its live counters, recent items,
//! throughput samples, rate and ETA.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};

use crate::run::event::{CopyMethod, SkipReason};
use crate::run::{RunCounters, RunId, Trigger};

/// Recent items kept per run for the detail view.
const RECENT_ITEMS: usize = 200;
/// Seconds of throughput history for the sparkline.
const THROUGHPUT_SECONDS: usize = 60;
/// The window the rate and ETA are computed over.
const RATE_WINDOW: TimeDelta = TimeDelta::seconds(10);

/// What happened to a file or batch in a run, newest last.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemOutcome {
    Synced {
        bytes: u64,
        method: CopyMethod,
    },
    Skipped(SkipReason),
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
    /// (time, bytes done, rows read) samples over the last [`RATE_WINDOW`].
    pub(super) samples: VecDeque<(DateTime<Utc>, u64, u64)>,
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
            samples: VecDeque::new(),
            throughput: VecDeque::new(),
            last_second: None,
            cancel_requested: false,
            remote: false,
        }
    }

    /// Whether this run moves rows (table sync) rather than files.
    pub fn is_rows(&self) -> bool {
        self.counters.rows_total.is_some()
            || self.counters.rows_extracted > 0
            || self.counters.batches_done > 0
    }

    /// Bytes (or, for table runs, rows) per second over the rolling window,
    /// once it spans a second.
    pub fn rate(&self) -> Option<f64> {
        let (first_time, first_bytes, first_rows) = self.samples.front()?;
        let (last_time, last_bytes, last_rows) = self.samples.back()?;
        let seconds = (*last_time - *first_time).num_milliseconds() as f64 / 1000.0;
        let done = if self.is_rows() {
            last_rows.saturating_sub(*first_rows)
        } else {
            last_bytes.saturating_sub(*first_bytes)
        };
        (seconds >= 1.0).then(|| done as f64 / seconds)
    }

    /// Time left at the current rate, when totals and a rate are known.
    pub fn eta(&self) -> Option<TimeDelta> {
        if !self.counters.totals_known {
            return None;
        }
        let remaining = match self.counters.rows_total {
            Some(total) => total.saturating_sub(self.counters.rows_extracted),
            None => self
                .counters
                .bytes_total
                .saturating_sub(self.counters.bytes_done),
        };
        if remaining == 0 {
            return Some(TimeDelta::zero());
        }
        let rate = self.rate().filter(|rate| *rate > 0.0)?;
        Some(TimeDelta::milliseconds(
            (remaining as f64 / rate * 1000.0) as i64,
        ))
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
        self.samples
            .push_back((now, self.counters.bytes_done, self.counters.rows_extracted));
        while self
            .samples
            .front()
            .is_some_and(|(time, _, _)| now - *time > RATE_WINDOW)
        {
            self.samples.pop_front();
        }
    }

    pub(super) fn tick(&mut self, now: DateTime<Utc>) {
        let bytes = if self.is_rows() {
            self.counters.rows_extracted
        } else {
            self.counters.bytes_done
        };
        match self.last_second {
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

    pub(super) fn push_recent(&mut self, item: RecentItem) {
        self.recent.push_back(item);
        if self.recent.len() > RECENT_ITEMS {
            self.recent.pop_front();
        }
    }
}
