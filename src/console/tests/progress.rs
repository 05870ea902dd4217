//! Progress as the operator reads it: files in flight with their own
//! percent, a finished run that keeps its detail (items, throughput, the
//! files a cancelled run did not copy), and past runs opened from history.

use super::snapshots::{screen, snapshot_views};
use super::*;
use crate::run::FileInFlight;

fn in_flight(path: &str, done: u64, total: u64) -> FileInFlight {
    FileInFlight {
        path: path.into(),
        bytes_done: done,
        bytes_total: total,
    }
}

fn progress(app: &mut App, bytes_done: u64, files: Vec<FileInFlight>) {
    let counters = RunCounters {
        files_listed: 1600,
        files_matched: 1594,
        files_planned: 1594,
        totals_known: true,
        files_to_copy: 1214,
        files_synced: 1205,
        files_skipped_unchanged: 388,
        files_active: files.len() as u64,
        bytes_total: 1_825_361_100,
        bytes_done,
        ..Default::default()
    };
    app.update(Msg::Engine(EngineEvent::RunProgress {
        run_id: 46,
        task_id: "orders_to_s3".into(),
        counters: Box::new(counters),
        in_flight: files,
        at: app.now,
    }));
}

/// The fixture's live run with three large files streaming.
fn streaming() -> App {
    let mut app = fixture();
    progress(
        &mut app,
        1_400_000_000,
        vec![
            in_flight("2026/11/22/events-0007.parquet", 96_000_000, 128_000_000),
            in_flight("2026/11/22/events-0008.parquet", 12_500_000, 128_000_000),
            in_flight(
                "2026/11/22/very/long/partition/path/that/does/not/fit/events-0009.parquet",
                0,
                64_000_000,
            ),
        ],
    );
    app
}

/// The streaming run, cancelled by the operator with two files in flight.
fn cancelled() -> App {
    let mut app = streaming();
    app.update(Msg::Engine(EngineEvent::ItemSynced {
        run_id: 46,
        task_id: "orders_to_s3".into(),
        path: "2026/11/22/events-0007.parquet".into(),
        bytes: 128_000_000,
        method: CopyMethod::Streamed,
    }));
    let mut record = record(
        46,
        "orders_to_s3",
        RunStatus::Cancelled,
        0,
        1206,
        0,
        Some("cancelled by the operator"),
    );
    record.counters.files_to_copy = 1214;
    record.counters.bytes_total = 1_825_361_100;
    record.counters.bytes_done = 1_432_000_000;
    app.update(Msg::Engine(EngineEvent::RunFinished {
        record: Box::new(record),
    }));
    app
}

#[test]
fn the_detail_lists_files_in_flight_with_their_own_percent() {
    let mut app = streaming();
    app.update(key(KeyCode::Enter));
    let text = screen(&app, 160, 48);
    assert!(text.contains("In flight"), "{text}");
    assert!(
        text.contains(" 75% ") && text.contains("events-0007.parquet (91.6M of 122.1M)"),
        "each file shows how far it got: {text}"
    );
    assert!(text.contains("  10% "), "{text}");
    let narrow = screen(&app, 80, 24);
    assert!(
        narrow.contains('…'),
        "a path that does not fit is cut with an ellipsis: {narrow}"
    );
}

#[test]
fn a_file_that_landed_leaves_the_in_flight_list() {
    let app = cancelled();
    let kept = app.tasks[0].finished.as_ref().expect("the run is kept");
    let paths: Vec<_> = kept
        .in_flight
        .iter()
        .map(|file| file.path.as_str())
        .collect();
    assert_eq!(paths.len(), 2, "{paths:?}");
    assert!(!paths.contains(&"2026/11/22/events-0007.parquet"));
}

#[test]
fn a_finished_run_keeps_its_items_throughput_and_the_files_it_did_not_copy() {
    let mut app = cancelled();
    assert!(app.tasks[0].active.is_none(), "the run is over");
    app.update(key(KeyCode::Enter));
    let text = screen(&app, 160, 48);
    assert!(
        text.contains("Not copied: 8 file(s)"),
        "a cancelled run says how many files it did not copy: {text}"
    );
    assert!(
        text.contains("2026/11/22/events-0008.parquet (stopped at 10%"),
        "and which were in flight: {text}"
    );
    assert!(text.contains("+6 more: 6 never started"), "{text}");
    assert!(
        text.contains("2026/11/22/b.csv"),
        "the recent items stay: {text}"
    );
    assert!(
        !text.contains("last 0s") && text.contains("peak 48.0M/s"),
        "the throughput chart stays: {text}"
    );
}

#[test]
fn snapshot_a_cancelled_runs_kept_detail() {
    snapshot_views(
        "detail_cancelled_kept",
        &mut cancelled(),
        &[key(KeyCode::Enter)],
    );
}

#[test]
fn snapshot_the_live_detail_with_files_in_flight() {
    snapshot_views("detail_in_flight", &mut streaming(), &[key(KeyCode::Enter)]);
}

#[test]
fn enter_on_a_history_row_opens_that_run_and_esc_goes_back() {
    let mut app = fixture();
    select(&mut app, "vendor_feed");
    let commands = press(&mut app, "3");
    assert_eq!(
        commands,
        vec![Command::LoadHistory {
            task_id: "vendor_feed".into()
        }]
    );
    let older = record(
        39,
        "vendor_feed",
        RunStatus::Failed,
        300,
        0,
        0,
        Some("s3://vendor: 403 Forbidden for every file"),
    );
    app.update(Msg::HistoryLoaded(vec![
        record(
            44,
            "vendor_feed",
            RunStatus::Partial,
            20,
            30,
            2,
            Some("2 of 37 files failed; see `syncdeck errors vendor_feed`"),
        ),
        older,
    ]));
    app.update(char_key('j'));
    app.update(key(KeyCode::Enter));
    assert_eq!(app.view, View::Detail);
    assert_eq!(app.opened_run.as_ref().map(|run| run.run_id), Some(39));
    let text = screen(&app, 160, 48);
    assert!(
        text.contains("run 39"),
        "the opened run, not the newest: {text}"
    );
    assert!(
        text.contains("403 Forbidden for every file"),
        "with its own error: {text}"
    );
    app.update(key(KeyCode::Esc));
    assert_eq!(app.view, View::History, "esc goes back to the history");
    assert_eq!(app.opened_run, None);
}

#[test]
fn a_partial_run_opened_from_history_lists_its_failed_items_and_how_many_more() {
    let mut app = fixture();
    let mut items: Vec<_> = (1..=7)
        .map(|id| {
            failed_item(
                id,
                "vendor_feed",
                &format!("2026/11/file-{id}.csv"),
                "403 Forbidden",
            )
        })
        .collect();
    items[6].run_id = 41;
    app.update(Msg::FailedItemsLoaded(items));
    select(&mut app, "vendor_feed");
    press(&mut app, "3");
    let mut run = record(40, "vendor_feed", RunStatus::Partial, 30, 30, 6, None);
    run.counters.files_to_copy = 36;
    app.update(Msg::HistoryLoaded(vec![run]));
    app.update(key(KeyCode::Enter));
    let text = screen(&app, 160, 48);
    assert!(
        text.contains("6 failed item(s) of this run pending"),
        "{text}"
    );
    assert!(text.contains("+3 more"), "{text}");
    snapshot_views("history_opened_partial", &mut app, &[]);
}
