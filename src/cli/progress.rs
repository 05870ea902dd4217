//! Live progress bars on stderr for headless runs in a terminal: one bar
//! per running task with bytes done of total, rate and ETA (from the same
//! estimator and in the same words as the console); "counting…" until
//! the totals are known.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::console::format;
use crate::engine::Engine;
use crate::run::event::EngineEvent;
use crate::run::rate::RateEstimator;
use crate::run::{RunCounters, RunId};

/// How often a bar's rate is brought up to date when no progress came
/// (a stalled transfer slows down instead of showing its last speed).
const REFRESH: Duration = Duration::from_secs(1);

/// A running task's bar and what its rate is measured from.
struct RunBar {
    bar: ProgressBar,
    rate: RateEstimator,
    counters: RunCounters,
    /// The terminal's columns once the totals are known (and the bar
    /// drawn): the message keeps the parts of it that fit whole. Narrower
    /// than [`BAR_FROM_COLUMNS`], it keeps to speed, time left and
    /// failures.
    columns: Option<u16>,
}

impl RunBar {
    /// The text after the bar for `counters`: the parts of it that fit the
    /// terminal whole, what the run waits for first.
    fn message(&self, counters: &RunCounters) -> String {
        let narrow = self
            .columns
            .is_some_and(|columns| columns < BAR_FROM_COLUMNS);
        let text = message(counters, &self.rate, narrow);
        match self.columns {
            Some(columns) if counters.totals_known => {
                let fitted = fit_parts(&text, room(counters, columns));
                // The styles leave the separator to the message.
                if fitted.is_empty() {
                    fitted
                } else {
                    format!(" · {fitted}")
                }
            }
            _ => text,
        }
    }
}

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
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::term_like_with_hz(
        Box::new(Narrower(console::Term::buffered_stderr())),
        10,
    ));
    let shown = multi.clone();
    let handle = tokio::spawn(async move {
        let multi = shown;
        let mut bars: HashMap<RunId, RunBar> = HashMap::new();
        let mut refresh = tokio::time::interval(REFRESH);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let event = tokio::select! {
                biased;
                event = events.recv() => event,
                _ = stopped.cancelled() => match events.try_recv() {
                    Ok(event) => Ok(event),
                    Err(_) => break,
                },
                _ = refresh.tick() => {
                    let now = chrono::Utc::now();
                    for run in bars.values_mut() {
                        run.rate.observe_counters(now, &run.counters);
                        run.bar.set_message(run.message(&run.counters));
                    }
                    continue;
                }
            };
            match event {
                Ok(event) => show(&multi, &mut bars, event),
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            }
        }
        // The summaries say how each run ended; a bar left on screen would
        // only repeat a stale state.
        for run in bars.values() {
            run.bar.finish_and_clear();
        }
        let _ = multi.clear();
    });
    Watcher {
        stop,
        handle,
        multi,
    }
}

/// Columns the bars leave free at the right edge. A bar line as wide as the
/// terminal leaves the cursor past its end, so the `^C` the terminal echoes
/// wraps onto a line of its own, and clearing the bars then clears that
/// line instead of the bar.
const RIGHT_MARGIN: u16 = 3;

/// Standard error, as wide as the terminal less [`RIGHT_MARGIN`].
#[derive(Debug)]
struct Narrower(console::Term);

impl TermLike for Narrower {
    fn width(&self) -> u16 {
        self.0.size().1.saturating_sub(RIGHT_MARGIN)
    }

    fn height(&self) -> u16 {
        self.0.size().0
    }

    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_up(n)
    }

    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_down(n)
    }

    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_right(n)
    }

    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_left(n)
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.0.write_line(s)
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.0.write_str(s)
    }

    fn clear_line(&self) -> std::io::Result<()> {
        self.0.clear_line()
    }

    fn flush(&self) -> std::io::Result<()> {
        self.0.flush()
    }
}

fn counting_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix:24} counting… {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// Terminals narrower than this get no bar: the percentage, the counts
/// and, first in the message, speed and time left still fit in 80 columns.
const BAR_FROM_COLUMNS: u16 = 110;

/// The style of a run whose totals are known: bytes or `rows`, with a bar
/// when the terminal is `columns` wide enough.
fn total_style(rows: bool, columns: u16) -> ProgressStyle {
    let done = if rows {
        "{human_pos}/{human_len} rows"
    } else {
        "{binary_bytes}/{binary_total_bytes}"
    };
    // The message is fitted by `room`, between its parts.
    let template = if columns >= BAR_FROM_COLUMNS {
        format!("{{prefix:24}} [{{bar:30}}] {{percent:>3}}% {done}{{msg}}")
    } else {
        format!("{{prefix:16!}} {{percent:>3}}% {done}{{msg}}")
    };
    ProgressStyle::with_template(&template)
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// Columns left for the message: the terminal's, less the task, the bar,
/// the percentage and the counts before it (as [`total_style`] lays them
/// out).
fn room(counters: &RunCounters, columns: u16) -> usize {
    let done = match counters.rows_total {
        Some(total) => format!(
            "{}/{} rows",
            indicatif::HumanCount(counters.rows_extracted),
            indicatif::HumanCount(total)
        ),
        None => format!(
            "{}/{}",
            indicatif::BinaryBytes(counters.bytes_done),
            indicatif::BinaryBytes(counters.bytes_total)
        ),
    };
    let before = if columns >= BAR_FROM_COLUMNS {
        24 + 1 + 32 + 1 + 4 + 1 + done.chars().count() + 3
    } else {
        16 + 1 + 4 + 1 + done.chars().count() + 3
    };
    usize::from(columns).saturating_sub(before)
}

/// The first parts of `text` (parted by ` · `) that fit `width` whole: a
/// narrow terminal shows fewer of them, never one cut in the middle. A
/// first part too long loses its last `(…)` first (`waiting for a lock
/// held by pid 7 (psql)` keeps the pid).
fn fit_parts(text: &str, width: usize) -> String {
    let fits = |text: &str| text.chars().count() <= width;
    let mut fitted = String::new();
    for part in text.split(" · ") {
        let longer = if fitted.is_empty() {
            part.to_string()
        } else {
            format!("{fitted} · {part}")
        };
        if fits(&longer) {
            fitted = longer;
            continue;
        }
        if fitted.is_empty()
            && let Some((shorter, _)) = part.rsplit_once(" (")
            && fits(shorter)
        {
            fitted = shorter.to_string();
        }
        break;
    }
    fitted
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

/// Speed and ETA, or what the run waits for, then its speed: first, so a
/// narrow terminal keeps it.
fn waiting_first(counters: &RunCounters, rate: &RateEstimator) -> String {
    match format::waiting(counters) {
        Some(waiting) => {
            let speed = format::rate_only(counters, rate).unwrap_or_else(|| "measuring…".into());
            format!("{waiting} · {speed}")
        }
        None => format::speed(counters, rate),
    }
}

/// What follows the bar: speed and ETA, then the run's counts (in a
/// narrow terminal only what failed; the summary has the rest).
fn message(counters: &RunCounters, rate: &RateEstimator, narrow: bool) -> String {
    // Nothing yet: a table run counts no files.
    if !counters.totals_known && !counters.counts_rows() && counters.files_listed == 0 {
        return String::new();
    }
    if narrow && counters.totals_known {
        let failed = if counters.counts_rows() {
            vec![
                (counters.rows_skipped, "skipped"),
                (counters.batches_failed, "batches failed"),
            ]
        } else {
            vec![(counters.files_failed, "files failed")]
        };
        let mut text = waiting_first(counters, rate);
        for (count, what) in failed.into_iter().filter(|(count, _)| *count > 0) {
            text.push_str(&format!(" · {count} {what}"));
        }
        return text;
    }
    let counts = if counters.counts_rows() {
        format!(
            "upserted {} unchanged {} skipped {} batches failed {}",
            counters.rows_upserted,
            counters.rows_unchanged,
            counters.rows_skipped,
            counters.batches_failed
        )
    } else {
        file_message(counters)
    };
    if counters.totals_known && counters.rows_total_estimated {
        format!(
            "{} · total estimated, counting · {counts}",
            waiting_first(counters, rate)
        )
    } else if counters.totals_known {
        format!("{} · {counts}", waiting_first(counters, rate))
    } else {
        counts
    }
}

/// Prints a line above the bars, fitted between words as the summaries
/// are (the terminal would break it anywhere), with the bars cleared and
/// then redrawn below (printing over them left pieces of a bar at the end
/// of lines).
fn print_above(multi: &MultiProgress, line: &str) {
    let columns = console::Term::stderr()
        .size()
        .1
        .saturating_sub(RIGHT_MARGIN);
    let text = super::report::fit(line, Some(usize::from(columns.max(20))));
    multi.suspend(|| eprintln!("{text}"));
}

fn show(multi: &MultiProgress, bars: &mut HashMap<RunId, RunBar>, event: EngineEvent) {
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
            bars.insert(
                run_id,
                RunBar {
                    bar,
                    rate: RateEstimator::new(),
                    counters: RunCounters::default(),
                    columns: None,
                },
            );
        }
        EngineEvent::RunProgress {
            run_id,
            counters,
            at,
            ..
        } => {
            let Some(run) = bars.get_mut(&run_id) else {
                return;
            };
            let bar = &run.bar;
            // Table runs count rows; file runs count bytes.
            let rows = counters.counts_rows();
            if counters.totals_known && bar.length().is_none() {
                bar.disable_steady_tick();
                let columns = console::Term::stderr()
                    .size()
                    .1
                    .saturating_sub(RIGHT_MARGIN);
                bar.set_style(total_style(rows, columns));
                run.columns = Some(columns);
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
            run.rate.observe_counters(at, &counters);
            bar.set_message(run.message(&counters));
            run.counters = *counters;
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
            let how = match retry_in {
                Some(wait) => format!(
                    "attempt {attempt}/{max_attempts}, retrying in {}",
                    humantime::format_duration(wait)
                ),
                None if max_attempts == 1 => "not retried".to_string(),
                None => format!("attempt {attempt}/{max_attempts}"),
            };
            let line = format!("{task_id}: {path} failed ({how}): {error}");
            print_above(multi, &crate::config::redact(&line));
        }
        EngineEvent::ItemRecovered {
            task_id,
            path,
            attempt,
            ..
        } => {
            print_above(
                multi,
                &format!("{task_id}: {path} loaded on attempt {attempt}"),
            );
        }
        EngineEvent::RunFinished { record } => {
            if let Some(run) = bars.remove(&record.run_id) {
                run.bar.finish_and_clear();
                multi.remove(&run.bar);
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
    fn a_narrow_message_keeps_whole_parts_only() {
        let text = "1,002 rows/s · ETA 3:18 · 2 batches failed";
        assert_eq!(fit_parts(text, 60), text);
        assert_eq!(fit_parts(text, 30), "1,002 rows/s · ETA 3:18");
        assert_eq!(fit_parts(text, 20), "1,002 rows/s");
        assert_eq!(fit_parts(text, 5), "");
        let lock = "waiting for a lock held by pid 1366 (psql) · 0 rows/s";
        assert_eq!(fit_parts(lock, 40), "waiting for a lock held by pid 1366");
    }
    use crate::console::app::{App, Msg};
    use chrono::{TimeDelta, TimeZone, Utc};

    #[test]
    fn the_bar_and_the_console_show_the_same_speed_and_eta() {
        let config = crate::config::parse(
            std::path::Path::new("/etc/syncdeck/syncdeck.toml"),
            "[[tasks]]\nid = \"big\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out/\"\n",
            crate::config::Resolve::Everything,
        )
        .expect("config");
        let mut app = App::new(
            &config,
            crate::console::keymap::Keymap::new(&config.keys),
            crate::logging::LogBuffer::new(10),
            "sqlite",
            false,
        );
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::hidden());
        let mut bars = HashMap::new();
        let start = Utc
            .with_ymd_and_hms(2026, 11, 22, 15, 0, 0)
            .single()
            .expect("time");
        let started = EngineEvent::RunStarted {
            run_id: 3,
            task_id: "big".into(),
            trigger: crate::run::Trigger::Manual,
            started_at: start,
        };
        let mut events = vec![started];
        // A link at 2 KiB/s, with a file boundary (a second of nothing).
        let mut done = 0;
        for tenth in 0..120 {
            if !(50..60).contains(&tenth) {
                done += 205;
            }
            events.push(EngineEvent::RunProgress {
                run_id: 3,
                task_id: "big".into(),
                counters: Box::new(RunCounters {
                    totals_known: true,
                    files_to_copy: 2,
                    bytes_total: 48_300,
                    bytes_done: done,
                    ..Default::default()
                }),
                in_flight: Vec::new(),
                at: start + TimeDelta::milliseconds(tenth * 100),
            });
        }
        for event in events {
            app.set_now(start);
            app.update(Msg::Engine(event.clone()));
            show(&multi, &mut bars, event);
        }
        let console = app.tasks[0].active.as_ref().expect("running").speed();
        // The bar's message starts with its separator.
        let message = bars[&3].bar.message();
        let bar = message.trim_start_matches(" · ");
        assert!(
            console.starts_with("1.9K/s · ETA 0:") || console.starts_with("2.0K/s · ETA 0:"),
            "about 2 KiB/s, a second without bytes barely shows: {console}"
        );
        assert!(
            bar.starts_with(&console),
            "the CLI said `{bar}` where the console said `{console}`"
        );
    }

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
