//! Whole screens at 80x24 and 160x48, drawn from the fixture.

use super::*;

pub(super) fn screen(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal
        .draw(|frame| {
            frame.render_widget(
                Screen {
                    app,
                    theme: Theme::plain(),
                },
                frame.area(),
            )
        })
        .expect("draw");
    terminal.backend().to_string()
}

pub(super) fn snapshot_views(name: &str, app: &mut App, keys: &[Msg]) {
    for message in keys {
        app.update(message.clone());
    }
    for (width, height) in [(80, 24), (160, 48)] {
        insta::assert_snapshot!(
            format!("{name}_{width}x{height}"),
            screen(app, width, height)
        );
    }
}

#[test]
fn snapshot_task_list() {
    snapshot_views("tasks", &mut fixture(), &[]);
}

#[test]
fn snapshot_task_list_with_a_partial_run_selected() {
    snapshot_views(
        "tasks_partial",
        &mut fixture(),
        &[char_key('j'), char_key('j')],
    );
}

#[test]
fn snapshot_run_detail_running() {
    snapshot_views("detail_running", &mut fixture(), &[key(KeyCode::Enter)]);
}

#[test]
fn a_file_run_still_listing_shows_counts_so_far_and_counting() {
    let mut app = fixture();
    app.update(Msg::Engine(EngineEvent::RunProgress {
        run_id: 46,
        task_id: "orders_to_s3".into(),
        counters: Box::new(RunCounters {
            files_listed: 120_000,
            files_matched: 90_000,
            files_planned: 90_000,
            totals_known: false,
            files_to_copy: 310,
            files_synced: 300,
            files_skipped_unchanged: 89_690,
            files_active: 4,
            bytes_done: 3 * 1024 * 1024,
            ..Default::default()
        }),
        in_flight: Vec::new(),
        at: app.now,
    }));
    app.update(key(KeyCode::Enter));
    let screen = screen(&app, 160, 48);
    assert!(
        screen.contains("synced 300 skipped 89,690 failed 0"),
        "{screen}"
    );
    assert!(
        screen.contains("queued 6 active 4 of 310 to copy so far"),
        "{screen}"
    );
    // The bytes so far and the speed show while the listing goes on.
    assert!(
        screen.contains("bytes 3.0M so far · ")
            && screen.contains("/s · counting… (120,000 listed)"),
        "{screen}"
    );
}

#[test]
fn snapshot_run_detail_failed() {
    snapshot_views(
        "detail_failed",
        &mut fixture(),
        &[
            char_key('j'),
            char_key('j'),
            char_key('j'),
            key(KeyCode::Enter),
        ],
    );
}

#[test]
fn snapshot_errors() {
    snapshot_views("errors", &mut fixture(), &[char_key('2')]);
}

#[test]
fn a_failed_file_deleted_at_the_source_is_listed_as_gone_not_pending() {
    let mut app = fixture();
    let pending = failed_item(7, "vendor_feed", "2026/11/prices.csv", "403 Forbidden");
    let mut gone = failed_item(9, "vendor_feed", "2026/11/old.csv", "permission denied");
    gone.status = ItemStatus::Gone;
    app.update(Msg::FailedItemsLoaded(vec![pending, gone]));
    app.update(char_key('2'));
    let text = screen(&app, 160, 48);
    assert!(text.contains("Errors · pending 1/1 · 1 gone"), "{text}");
    let row = text
        .lines()
        .find(|line| line.contains("2026/11/old.csv"))
        .unwrap_or_else(|| panic!("the gone item is listed: {text}"));
    assert!(row.contains("gone: deleted at the source"), "{row}");
    assert_eq!(
        app.pending_items().len(),
        1,
        "only the pending one is retried"
    );
}

#[test]
fn snapshot_history() {
    let mut app = fixture();
    app.update(char_key('j'));
    app.update(char_key('j'));
    app.update(char_key('3'));
    app.update(Msg::HistoryLoaded(vec![
        record(
            44,
            "vendor_feed",
            RunStatus::Partial,
            20,
            30,
            2,
            Some("2 of 37 files failed"),
        ),
        record(41, "vendor_feed", RunStatus::Succeeded, 80, 35, 0, None),
        record(
            39,
            "vendor_feed",
            RunStatus::Cancelled,
            140,
            12,
            0,
            Some("cancelled by the operator"),
        ),
        record(
            37,
            "vendor_feed",
            RunStatus::Failed,
            200,
            0,
            0,
            Some("s3://vendor: 403 Forbidden"),
        ),
        record(35, "vendor_feed", RunStatus::Succeeded, 260, 36, 0, None),
    ]));
    snapshot_views("history", &mut app, &[]);
}

#[test]
fn snapshot_logs_with_search() {
    let mut app = fixture();
    let mut keys = vec![char_key('4'), char_key('/')];
    keys.extend("failed".chars().map(char_key));
    keys.push(key(KeyCode::Enter));
    snapshot_views("logs_search", &mut app, &keys);
}

#[test]
fn snapshot_help() {
    snapshot_views("help", &mut fixture(), &[char_key('?')]);
}

#[test]
fn snapshot_cancel_confirmation() {
    snapshot_views("confirm_cancel", &mut fixture(), &[char_key('c')]);
}

#[test]
fn snapshot_retry_preview() {
    snapshot_views(
        "retry_preview",
        &mut fixture(),
        &[char_key('j'), char_key('j'), char_key('r')],
    );
}

#[test]
fn snapshot_read_only() {
    snapshot_views("read_only", &mut fixture_with(true, ""), &[]);
}

fn table_fixture() -> App {
    let text = "[[tasks]]\nid = \"orders_table\"\ntype = \"table_sync\"\n[tasks.properties]\nsource = \"redshift://etl@warehouse:5439/prod\"\n\
                target = \"postgres://app@db:5432/app\"\nsource_table = \"sales.orders\"\ntarget_table = \"public.orders\"\nprimary_key = [\"id\"]\n";
    let config = config::parse(
        Path::new("/etc/syncdeck/syncdeck.toml"),
        text,
        Resolve::Everything,
    )
    .expect("config");
    let mut app = App::new(
        &config,
        Keymap::new(&config.keys),
        LogBuffer::new(10),
        "sqlite",
        false,
    );
    app.set_now(now() - TimeDelta::seconds(20));
    app.update(Msg::Engine(EngineEvent::RunStarted {
        run_id: 7,
        task_id: "orders_table".into(),
        trigger: Trigger::Manual,
        started_at: now() - TimeDelta::seconds(20),
    }));
    app
}

fn table_progress(app: &mut App, seconds_ago: i64, rows: u64, total: Option<u64>) {
    app.set_now(now() - TimeDelta::seconds(seconds_ago));
    app.update(Msg::Engine(EngineEvent::RunProgress {
        run_id: 7,
        task_id: "orders_table".into(),
        counters: Box::new(RunCounters {
            rows_extracted: rows,
            rows_upserted: rows - rows / 100,
            rows_unchanged: rows / 100,
            batches_done: rows / 1000,
            rows_total: total,
            batches_total: total.map(|total| total / 1000),
            totals_known: total.is_some(),
            ..Default::default()
        }),
        in_flight: Vec::new(),
        at: app.now,
    }));
}

#[test]
fn table_progress_counts_until_the_total_is_known_then_weighs_rows() {
    let mut app = table_fixture();
    table_progress(&mut app, 15, 5000, None);
    let active = app.tasks[0].active.as_ref().expect("running");
    assert_eq!(active.fraction(), None, "counting…");
    for step in 0..=10 {
        table_progress(
            &mut app,
            10 - step,
            10_000 + step as u64 * 20_000,
            Some(1_000_000),
        );
    }
    let active = app.tasks[0].active.as_ref().expect("running");
    assert!((active.fraction().expect("known") - 0.21).abs() < 1e-9);
    let rate = active.rate().expect("rate");
    // Ten seconds at 20,000 rows/s after 1,000 rows/s while counting:
    // the smoothed rate has come most of the way.
    assert!(
        (rate - 20_000.0).abs() < 20_000.0 * 0.15,
        "rows per second, got {rate}"
    );
    let eta = active.eta().expect("an ETA").num_milliseconds();
    assert_eq!(eta, (790_000.0 / rate * 1000.0) as i64);
}

#[test]
fn snapshot_table_run_detail() {
    let mut app = table_fixture();
    for step in 0..=10 {
        table_progress(
            &mut app,
            10 - step,
            10_000 + step as u64 * 20_000,
            Some(1_000_000),
        );
    }
    app.update(Msg::Engine(EngineEvent::ItemFailed {
        run_id: 7,
        task_id: "orders_table".into(),
        path: "batch 17 (16000..17000]".into(),
        error: "P0001: order 16042 is locked".into(),
        attempt: 2,
        max_attempts: 4,
        retry_in: Some(Duration::from_secs(2)),
    }));
    app.set_now(now());
    snapshot_views("detail_table_running", &mut app, &[key(KeyCode::Enter)]);
}

/// A table run reports batches only when they fail: its detail says so
/// while it runs and once it ended, instead of waiting for items.
#[test]
fn a_table_runs_detail_lists_failed_batches_and_says_when_none_failed() {
    let mut app = table_fixture();
    table_progress(&mut app, 5, 10_000, Some(20_000));
    app.set_now(now());
    app.update(key(KeyCode::Enter));
    let running = screen(&app, 80, 24);
    assert!(
        running.contains("Failed batches and rows (newest first)"),
        "{running}"
    );
    assert!(
        running.contains("no batch or row has failed so far"),
        "{running}"
    );
    assert!(!running.contains("nothing decided yet"), "{running}");

    let mut finished = record(7, "orders_table", RunStatus::Succeeded, 1, 0, 0, None);
    finished.counters = RunCounters {
        rows_extracted: 20_000,
        rows_upserted: 20_000,
        batches_done: 20,
        ..Default::default()
    };
    app.update(Msg::Engine(EngineEvent::RunFinished {
        record: Box::new(finished),
    }));
    let done = screen(&app, 80, 24);
    assert!(done.contains("no batch or row failed"), "{done}");
    assert!(!done.contains("so far"), "{done}");
    assert!(!done.contains("last 0s"), "{done}");
}

/// A table run that skipped one bad row is `partial` with `1 rows skipped`
/// in the list (not "0 failed"), and history counts its rows, also for a
/// run that failed before reading any.
#[test]
fn a_table_tasks_list_row_and_history_are_told_in_rows() {
    let mut app = table_fixture();
    let mut partial = record(7, "orders_table", RunStatus::Partial, 1, 0, 0, None);
    partial.counters = RunCounters {
        rows_extracted: 50,
        rows_upserted: 49,
        rows_skipped: 1,
        batches_done: 1,
        ..Default::default()
    };
    let mut failed = record(
        6,
        "orders_table",
        RunStatus::Failed,
        2,
        0,
        0,
        Some("no table"),
    );
    failed.counters = RunCounters::default();
    app.update(Msg::Engine(EngineEvent::RunFinished {
        record: Box::new(partial.clone()),
    }));
    app.set_now(now());
    let list = screen(&app, 80, 24);
    assert!(list.contains("1 rows skipped"), "{list}");
    assert!(!list.contains("0 failed 1m"), "{list}");
    assert!(list.contains("read 50 "), "{list}");
    assert!(
        !list.contains("counting"),
        "a finished run does not count: {list}"
    );

    app.history_task = Some("orders_table".into());
    app.update(Msg::HistoryLoaded(vec![partial, failed]));
    app.view = View::History;
    let history = screen(&app, 80, 24);
    assert!(
        history.contains("UPSERT") && history.contains("READ"),
        "{history}"
    );
    assert!(!history.contains("BYTES"), "{history}");
    let run7 = history
        .lines()
        .find(|line| line.contains("│7 "))
        .unwrap_or_default();
    assert!(run7.contains("49") && run7.contains("50"), "{history}");
}

fn scheduled_fixture() -> App {
    let text = "[[tasks]]\nid = \"hourly\"\ntype = \"sync\"\nschedule = \"1h\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out/\"\n";
    let config = config::parse(
        Path::new("/etc/syncdeck/syncdeck.toml"),
        text,
        Resolve::Everything,
    )
    .expect("config");
    let mut app = App::new(
        &config,
        Keymap::new(&config.keys),
        LogBuffer::new(10),
        "sqlite",
        false,
    );
    app.set_now(now());
    app.update(Msg::Engine(EngineEvent::ScheduleChanged {
        task_id: "hourly".into(),
        next_run: Some(now() + TimeDelta::minutes(42)),
        paused: false,
    }));
    app
}

#[test]
fn p_pauses_and_resumes_a_schedule() {
    let mut app = scheduled_fixture();
    assert_eq!(
        press(&mut app, "p"),
        vec![Command::PauseSchedule {
            task_id: "hourly".into(),
            paused: true
        }]
    );
    app.update(Msg::Engine(EngineEvent::ScheduleChanged {
        task_id: "hourly".into(),
        next_run: None,
        paused: true,
    }));
    assert!(app.tasks[0].paused);
    assert_eq!(
        press(&mut app, "p"),
        vec![Command::PauseSchedule {
            task_id: "hourly".into(),
            paused: false
        }]
    );
}

#[test]
fn the_next_run_and_a_paused_schedule_show() {
    let mut app = scheduled_fixture();
    let screen_text = screen(&app, 80, 24);
    assert!(
        screen_text.contains("◌ hourly") && screen_text.contains("next in 42m"),
        "{screen_text}"
    );
    assert!(
        screen_text.contains("every 1h · next run in 42:00"),
        "{screen_text}"
    );
    app.update(Msg::Engine(EngineEvent::ScheduleChanged {
        task_id: "hourly".into(),
        next_run: None,
        paused: true,
    }));
    let screen_text = screen(&app, 80, 24);
    assert!(
        screen_text
            .lines()
            .any(|line| line.contains("◌ hourly") && line.contains("paused")),
        "{screen_text}"
    );
    assert!(
        screen_text.contains("every 1h · paused (p resumes)"),
        "{screen_text}"
    );
}

#[test]
fn runs_of_other_processes_are_followed_through_the_store_and_cancelled_there() {
    let mut app = scheduled_fixture();
    let ticks: Vec<Vec<Command>> = (0..4).map(|_| app.update(Msg::Tick)).collect();
    assert_eq!(
        ticks.last(),
        Some(&vec![Command::PollRuns]),
        "the store is polled each second"
    );

    let mut running = record(90, "hourly", RunStatus::Running, 0, 5, 0, None);
    running.completed_at = None;
    running.trigger = Trigger::Schedule;
    app.update(Msg::RunsLoaded(vec![running.clone()]));
    let active = app.tasks[0]
        .active
        .as_ref()
        .expect("a daemon's run is followed");
    assert!(active.remote);
    assert_eq!(active.counters.files_synced, 5);

    press(&mut app, "c");
    assert_eq!(
        app.overlay,
        Some(Overlay::Confirm(Confirm::CancelRun {
            task_id: "hourly".into(),
            run_id: 90
        }))
    );
    assert_eq!(
        press(&mut app, "y"),
        vec![Command::Engine(EngineCommand::CancelRun { run_id: 90 })]
    );

    let mut cancelled = running;
    cancelled.status = RunStatus::Cancelled;
    cancelled.completed_at = Some(now());
    app.update(Msg::RunsLoaded(vec![cancelled]));
    assert!(app.tasks[0].active.is_none());
    assert_eq!(
        app.tasks[0].last.as_ref().map(|run| run.status),
        Some(RunStatus::Cancelled)
    );
}

#[test]
fn a_blocked_task_says_by_what_until_it_runs_again() {
    let mut app = scheduled_fixture();
    app.update(Msg::Engine(EngineEvent::TaskBlocked {
        task_id: "hourly".into(),
        dependency: "load".into(),
    }));
    assert!(
        screen(&app, 80, 24)
            .lines()
            .any(|line| line.contains("hourly") && line.contains("blocked by load"))
    );
    app.update(Msg::Engine(EngineEvent::RunStarted {
        run_id: 3,
        task_id: "hourly".into(),
        trigger: Trigger::Schedule,
        started_at: now(),
    }));
    assert_eq!(app.tasks[0].blocked_by, None);
}

/// A retry that fails while the task's items are still pending leaves the
/// task partial in the list (◐, "retry failed …, N pending"), not ✖.
#[test]
fn a_failed_retry_leaves_a_partial_task_partial_in_the_list() {
    let mut app = fixture();
    let pending = app
        .tasks
        .iter()
        .find(|task| task.id == "vendor_feed")
        .map(|task| task.pending_failures)
        .unwrap_or(0);
    assert!(pending > 0, "the fixture's vendor_feed has pending items");
    let mut retry = record(
        47,
        "vendor_feed",
        RunStatus::Failed,
        0,
        0,
        2,
        Some("2 of 2 files failed"),
    );
    retry.trigger = Trigger::Retry;
    app.update(Msg::Engine(EngineEvent::RunFinished {
        record: Box::new(retry),
    }));
    let list = screen(&app, 80, 24);
    let row = list
        .lines()
        .find(|line| line.contains("vendor_feed"))
        .unwrap_or_default()
        .to_string();
    assert!(row.contains("◐") && !row.contains("✖"), "{list}");
    assert!(row.contains("retry failed"), "{list}");
}

/// At 80 columns a task id, an item or an error longer than its column is
/// cut with `…`, never silently.
#[test]
fn errors_cut_at_a_columns_edge_end_with_an_ellipsis() {
    let mut app = fixture();
    app.update(Msg::FailedItemsLoaded(vec![failed_item(
        9,
        "reports_nightly",
        "2026/11/22/regional/north/warehouse-stock-levels-final.csv",
        "s3://vendor/2026/11/22/regional/north/warehouse-stock-levels-final.csv: 403 Forbidden",
    )]));
    app.update(char_key('2'));
    let errors = screen(&app, 80, 24);
    let row = errors
        .lines()
        .find(|line| line.contains("#9"))
        .unwrap_or_default()
        .to_string();
    assert!(row.matches('…').count() >= 2, "{errors}");
}

/// A table run that has not counted a row yet (its first batch still
/// reading, or a daemon's run seen through the store) is shown in rows,
/// as its task's kind says, and cancelling it speaks of batches.
#[test]
fn a_table_run_before_its_first_batch_is_shown_in_rows_not_files() {
    let mut app = table_fixture();
    app.update(key(KeyCode::Enter));
    let shown = screen(&app, 80, 24);
    assert!(!shown.contains("files "), "{shown}");
    assert!(!shown.contains("bytes "), "{shown}");
    assert!(shown.contains("rows"), "{shown}");
    press(&mut app, "c");
    let shown = screen(&app, 80, 24);
    assert!(
        shown.contains("Loaded batches stay, the one loading is rolled back."),
        "{shown}"
    );
    assert!(!shown.contains("copies"), "{shown}");
}

/// The help fits 80x24 whole, the read-only console's note included.
#[test]
fn the_help_fits_a_small_terminal_read_only_too() {
    for read_only in [false, true] {
        let mut app = fixture_with(read_only, "");
        press(&mut app, "?");
        let shown = screen(&app, 80, 24);
        assert!(shown.contains("G go to the last line"), "{shown}");
        assert!(shown.contains("✔ ok  ● running"), "{shown}");
        assert_eq!(
            shown.contains("read-only: start, retry, abandon, cancel and pause are off"),
            read_only,
            "{shown}"
        );
    }
}

/// A batch waiting out its retry's backoff: the detail says so instead of
/// an ETA (which would only grow), and once the batch loads on a later
/// attempt it is listed as loaded, no longer as retrying.
#[test]
fn a_batch_waiting_to_retry_is_said_and_its_later_load_clears_it() {
    let mut app = table_fixture();
    for step in 0..=4 {
        table_progress(
            &mut app,
            10 - step,
            2_000 + step as u64 * 1_000,
            Some(20_000),
        );
    }
    let label = "batch 7 (6000..7000]";
    app.update(Msg::Engine(EngineEvent::ItemFailed {
        run_id: 7,
        task_id: "orders_table".into(),
        path: label.into(),
        error: "P0001: order 6001 is locked".into(),
        attempt: 1,
        max_attempts: 3,
        retry_in: Some(std::time::Duration::from_secs(5)),
    }));
    app.update(Msg::Engine(EngineEvent::RunProgress {
        run_id: 7,
        task_id: "orders_table".into(),
        counters: Box::new(RunCounters {
            rows_extracted: 6_000,
            rows_upserted: 6_000,
            batches_done: 6,
            rows_total: Some(20_000),
            totals_known: true,
            retry_waits: 1,
            ..Default::default()
        }),
        in_flight: Vec::new(),
        at: app.now,
    }));
    app.update(key(KeyCode::Enter));
    let waiting = screen(&app, 80, 24);
    assert!(waiting.contains("1 waiting to retry"), "{waiting}");
    assert!(!waiting.contains("ETA"), "{waiting}");
    assert!(waiting.contains("retry in 5s"), "{waiting}");

    app.update(Msg::Engine(EngineEvent::ItemRecovered {
        run_id: 7,
        task_id: "orders_table".into(),
        path: label.into(),
        attempt: 2,
    }));
    let loaded = screen(&app, 80, 24);
    assert!(
        loaded.contains("loaded  batch 7 (6000..7000] on attempt 2"),
        "{loaded}"
    );
    assert!(!loaded.contains("retry in"), "{loaded}");
    let active = app.tasks[0].active.as_ref().expect("running");
    assert!(active.retrying.is_empty());
}

/// A run followed from its start counts its first second's rows as
/// throughput (the chart said `peak 0` when they all loaded before the
/// first sample).
#[test]
fn the_first_seconds_rows_are_throughput() {
    let mut app = table_fixture();
    let started = now() - TimeDelta::seconds(20);
    app.set_now(started + TimeDelta::milliseconds(500));
    app.update(Msg::Engine(EngineEvent::RunProgress {
        run_id: 7,
        task_id: "orders_table".into(),
        counters: Box::new(RunCounters {
            rows_extracted: 19_000,
            rows_upserted: 19_000,
            batches_done: 19,
            rows_total: Some(20_000),
            totals_known: true,
            ..Default::default()
        }),
        in_flight: Vec::new(),
        at: app.now,
    }));
    app.set_now(started + TimeDelta::milliseconds(1_100));
    app.update(Msg::Tick);
    let active = app.tasks[0].active.as_ref().expect("running");
    assert_eq!(
        active.throughput.iter().copied().collect::<Vec<_>>(),
        [19_000]
    );
}
