//! A running run's progress: published to watchers ten times a second,
//! saved to the state store every second (with the files in flight, for
//! consoles of other processes), and logged every 30 s.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::Engine;
use crate::run::event::EngineEvent;
use crate::run::{FileInFlight, RunId};
use crate::state::FILES_IN_FLIGHT_STORED;
use crate::task::SharedCounters;

/// How often a running run's counters are published.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);
/// How often a running run's counters are saved to the state store.
const SAVE_INTERVAL: Duration = Duration::from_secs(1);
/// How often a running run's progress goes to the log, for logs read
/// without a console or bars (a daemon's, a run piped to a file).
/// `SYNCDECK_PROGRESS_LOG_EVERY` (a duration) changes it.
const PROGRESS_LOG_INTERVAL: Duration = Duration::from_secs(30);

impl Engine {
    pub(super) fn spawn_progress_ticker(
        &self,
        run_id: RunId,
        task_id: &str,
        counters: SharedCounters,
    ) -> tokio::task::JoinHandle<()> {
        let events = self.events.clone();
        let state = Arc::clone(&self.state);
        let task_id = task_id.to_string();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(PROGRESS_INTERVAL);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut last_sent = None;
            let mut last_saved_snapshot = None;
            let mut last_saved = tokio::time::Instant::now();
            let log_every = crate::config::duration_from_env(
                "SYNCDECK_PROGRESS_LOG_EVERY",
                PROGRESS_LOG_INTERVAL,
            );
            let mut last_logged = tokio::time::Instant::now();
            // What consoles of other processes were last shown in flight.
            let mut published: Vec<FileInFlight> = Vec::new();
            loop {
                interval.tick().await;
                let (snapshot, in_flight) = counters.snapshot_with_files();
                // Saved once the interval passed, also when nothing moved
                // since it was sent: a run stalled on a retry keeps its last
                // counters in the store, not the ones of a second earlier.
                if last_saved_snapshot.as_ref() != Some(&snapshot)
                    && last_saved.elapsed() >= SAVE_INTERVAL
                {
                    last_saved = tokio::time::Instant::now();
                    if let Err(error) = state.update_run(run_id, &snapshot).await {
                        tracing::warn!(%error, "could not save progress");
                    }
                    last_saved_snapshot = Some(snapshot.clone());
                    let shown = &in_flight[..in_flight.len().min(FILES_IN_FLIGHT_STORED)];
                    if shown != published.as_slice() {
                        match state.set_files_in_flight(run_id, shown).await {
                            Ok(()) => published = shown.to_vec(),
                            Err(error) => {
                                tracing::warn!(%error, "could not save the files in flight")
                            }
                        }
                    }
                }
                // Logged also while nothing moves: a log read without a
                // console shows a stalled run is alive and where it stands.
                if last_logged.elapsed() >= log_every {
                    last_logged = tokio::time::Instant::now();
                    tracing::info!(task_id = %task_id, run_id, "progress: {}", snapshot.progress_line());
                }
                if last_sent.as_ref() == Some(&snapshot) {
                    continue;
                }
                let _ = events.send(EngineEvent::RunProgress {
                    run_id,
                    task_id: task_id.clone(),
                    counters: Box::new(snapshot.clone()),
                    in_flight,
                    at: Utc::now(),
                });
                last_sent = Some(snapshot);
            }
        })
    }
}
