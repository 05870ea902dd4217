//! Live progress bars on stderr for headless runs in a terminal: one bar
//! per running task with bytes done of total, rate and ETA; "counting…"
//! until the totals are known.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;
use crate::run::RunId;
use crate::run::event::EngineEvent;

pub(super) struct Watcher {
    stop: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
    /// Shared with whoever prints while the bars are drawn, so lines go
    /// above the bars instead of through them.
    multi: MultiProgress,
}

impl Watcher {
    /// The bars, to print above them or clear them.
    pub(super) fn bars(&self) -> MultiProgress {
        self.multi.clone()
    }

    /// Stops watching after the events already sent have been shown.
    pub(super) async fn finish(self) {
        self.stop.cancel();
        let _ = self.handle.await;
    }
}

pub(super) fn spawn(engine: &Arc<Engine>) -> Watcher {
    let mut events = engine.subscribe();
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
    let shown = multi.clone();
    let handle = tokio::spawn(async move {
        let multi = shown;
        let mut bars: HashMap<RunId, ProgressBar> = HashMap::new();
        loop {
            let event = tokio::select! {
                biased;
                event = events.recv() => event,
                _ = stopped.cancelled() => match events.try_recv() {
                    Ok(event) => Ok(event),
                    Err(_) => break,
                },
            };
            match event {
                Ok(event) => show(&multi, &mut bars, event),
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            }
        }
        // The summaries say how each run ended; a bar left on screen would
        // only repeat a stale state.
        for bar in bars.values() {
            bar.finish_and_clear();
        }
        let _ = multi.clear();
    });
    Watcher {
        stop,
        handle,
        multi,
    }
}

fn counting_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix:24} counting… {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:24} [{bar:30}] {percent:>3}% {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}")
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn row_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix:24} [{bar:30}] {percent:>3}% {human_pos}/{human_len} rows ETA {eta} {msg}",
    )
    .map(|style| style.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// A file run's counts; while it is still listing, copies already run, so
/// what is known so far.
fn file_message(counters: &crate::run::RunCounters) -> String {
    let counts = format!(
        "files {}/{} skipped {} failed {}",
        counters.files_synced,
        counters.files_to_copy,
        counters.files_skipped(),
        counters.files_failed
    );
    if counters.totals_known {
        counts
    } else {
        format!("{} listed, {counts} so far", counters.files_listed)
    }
}

fn show(multi: &MultiProgress, bars: &mut HashMap<RunId, ProgressBar>, event: EngineEvent) {
    match event {
        EngineEvent::RunStarted {
            run_id, task_id, ..
        } => {
            let bar = multi.add(
                ProgressBar::new_spinner()
                    .with_style(counting_style())
                    .with_prefix(task_id),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bars.insert(run_id, bar);
        }
        EngineEvent::RunProgress {
            run_id, counters, ..
        } => {
            let Some(bar) = bars.get(&run_id) else { return };
            // Table runs count rows; file runs count bytes.
            let rows = counters.rows_total.is_some() || counters.rows_extracted > 0;
            if counters.totals_known && bar.length().is_none() {
                bar.disable_steady_tick();
                bar.set_style(if rows { row_style() } else { bar_style() });
            }
            if counters.totals_known {
                match counters.rows_total {
                    Some(total) => {
                        bar.set_length(total);
                        bar.set_position(counters.rows_extracted);
                    }
                    None => {
                        bar.set_length(counters.bytes_total);
                        bar.set_position(counters.bytes_done);
                    }
                }
            }
            bar.set_message(if rows {
                format!(
                    "upserted {} unchanged {} skipped {} batches failed {}",
                    counters.rows_upserted,
                    counters.rows_unchanged,
                    counters.rows_skipped,
                    counters.batches_failed
                )
            } else {
                file_message(&counters)
            });
        }
        EngineEvent::ItemFailed {
            task_id,
            path,
            error,
            attempt,
            max_attempts,
            retry_in,
            ..
        } => {
            let next = retry_in
                .map(|wait| format!(", retrying in {}", humantime::format_duration(wait)))
                .unwrap_or_default();
            let _ = multi.println(crate::config::redact(&format!(
                "{task_id}: {path} failed (attempt {attempt}/{max_attempts}{next}): {error}"
            )));
        }
        EngineEvent::RunFinished { record } => {
            if let Some(bar) = bars.remove(&record.run_id) {
                bar.finish_and_clear();
                multi.remove(&bar);
            }
        }
        EngineEvent::TaskBlocked {
            task_id,
            dependency,
        } => {
            let _ = multi.println(format!(
                "{task_id}: blocked, dependency `{dependency}` did not succeed"
            ));
        }
        EngineEvent::ItemSynced { .. }
        | EngineEvent::ItemSkipped { .. }
        | EngineEvent::ScheduleChanged { .. }
        | EngineEvent::SlotSkipped { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_run_still_listing_shows_what_is_known_so_far() {
        let mut counters = crate::run::RunCounters {
            files_listed: 5000,
            files_to_copy: 40,
            files_synced: 12,
            files_skipped_unchanged: 4900,
            ..Default::default()
        };
        assert_eq!(
            file_message(&counters),
            "5000 listed, files 12/40 skipped 4900 failed 0 so far"
        );
        counters.totals_known = true;
        assert_eq!(file_message(&counters), "files 12/40 skipped 4900 failed 0");
    }
}
