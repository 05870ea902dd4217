//! Model and rendering tests. The fixture has one task in each state
//! (running, succeeded, partial, failed, cancelled, never run) and a fixed
//! clock, so screens are reproducible.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::app::{App, Command, Confirm, Focus, Input, Msg, Overlay, View};
use super::keymap::Keymap;
use super::theme::Theme;
use super::views::Screen;
use crate::config::{self, Resolve};
use crate::run::event::{CopyMethod, EngineCommand, EngineEvent, SkipReason};
use crate::run::{RunCounters, RunRecord, RunStatus, Trigger};
use crate::logging::{LogBuffer, LogLine};
use crate::state::{FailedItem, ItemKind, ItemStatus};

const TASKS: [&str; 6] = [
    "orders_to_s3",
    "daily_backup",
    "vendor_feed",
    "archive_logs",
    "reports_nightly",
    "new_task",
];

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 15, 32, 0)
        .single()
        .expect("valid time")
}

fn config(keys: &str) -> crate::config::Config {
    let mut text = String::from(keys);
    for id in TASKS {
        text.push_str(&format!(
            "\n[[tasks]]\nid = \"{id}\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/{id}/\"\ndestination_path = \"out/{id}/\"\n"
        ));
    }
    config::parse(
        Path::new("/etc/syncdeck/syncdeck.toml"),
        &text,
        Resolve::Everything,
    )
    .expect("fixture config")
}

fn record(
    run_id: i64,
    task: &str,
    status: RunStatus,
    minutes_ago: i64,
    synced: u64,
    failed: u64,
    error: Option<&str>,
) -> RunRecord {
    let completed = now() - TimeDelta::minutes(minutes_ago);
    RunRecord {
        run_id,
        task_id: task.into(),
        trigger: Trigger::Manual,
        status,
        started_at: completed - TimeDelta::seconds(12),
        completed_at: Some(completed),
        duration_ms: Some(12_000),
        counters: RunCounters {
            files_listed: synced + failed + 5,
            files_matched: synced + failed + 5,
            files_synced: synced,
            files_skipped_unchanged: 5,
            files_failed: failed,
            bytes_done: synced * 1_048_576,
            totals_known: true,
            ..Default::default()
        },
        error: error.map(str::to_string),
        warning: None,
    }
}

fn failed_item(id: i64, task: &str, key: &str, error: &str) -> FailedItem {
    FailedItem {
        id,
        run_id: 40,
        task_id: task.into(),
        kind: ItemKind::File,
        key: key.into(),
        error: error.into(),
        attempts: 4,
        status: ItemStatus::Pending,
        created_at: now() - TimeDelta::minutes(20),
        updated_at: now() - TimeDelta::minutes(20),
    }
}

/// The fixture: every run state, failed items, a live run with a retry
/// countdown, and some log lines.
fn fixture_with(read_only: bool, keys: &str) -> App {
    let config = config(keys);
    let logs = LogBuffer::new(1000);
    let mut app = App::new(
        &config,
        Keymap::new(&config.keys),
        logs.clone(),
        "sqlite",
        read_only,
    );
    app.set_now(now() - TimeDelta::seconds(30));
    app.update(Msg::RunsLoaded(vec![
        record(45, "daily_backup", RunStatus::Succeeded, 2, 120, 0, None),
        record(
            44,
            "vendor_feed",
            RunStatus::Partial,
            20,
            30,
            2,
            Some("2 of 37 files failed; see `syncdeck errors vendor_feed`"),
        ),
        record(
            43,
            "archive_logs",
            RunStatus::Failed,
            65,
            0,
            0,
            Some("s3://archive: connection refused"),
        ),
        record(
            42,
            "reports_nightly",
            RunStatus::Cancelled,
            180,
            3,
            0,
            Some("cancelled by the operator"),
        ),
    ]));
    app.update(Msg::FailedItemsLoaded(vec![
        failed_item(
            7,
            "vendor_feed",
            "2026/11/prices.csv",
            "s3://vendor/2026/11/prices.csv: 403 Forbidden",
        ),
        failed_item(
            8,
            "vendor_feed",
            "2026/11/stock.csv",
            "s3://vendor/2026/11/stock.csv: 403 Forbidden",
        ),
    ]));
    app.update(Msg::Engine(EngineEvent::RunStarted {
        run_id: 46,
        task_id: "orders_to_s3".into(),
        trigger: Trigger::Manual,
        started_at: now() - TimeDelta::seconds(72),
    }));
    let counters = |bytes_done: u64, synced: u64| RunCounters {
        files_listed: 1600,
        files_matched: 1594,
        files_planned: 1594,
        totals_known: true,
        files_to_copy: 1214,
        files_synced: synced,
        files_skipped_unchanged: 388,
        files_active: 8,
        bytes_total: 1_825_361_100,
        bytes_done,
        ..Default::default()
    };
    app.update(Msg::Engine(EngineEvent::RunProgress {
        run_id: 46,
        task_id: "orders_to_s3".into(),
        counters: Box::new(counters(800_000_000, 700)),
    }));
    for step in 1..=10 {
        app.set_now(now() - TimeDelta::seconds(10 - step));
        app.update(Msg::Engine(EngineEvent::RunProgress {
            run_id: 46,
            task_id: "orders_to_s3".into(),
            counters: Box::new(counters(
                800_000_000 + step as u64 * 50_331_648,
                700 + step as u64 * 50,
            )),
        }));
        app.update(Msg::Tick);
    }
    app.update(Msg::Engine(EngineEvent::ItemSkipped {
        run_id: 46,
        task_id: "orders_to_s3".into(),
        path: "2026/11/21/a.csv".into(),
        reason: SkipReason::Unchanged,
    }));
    app.update(Msg::Engine(EngineEvent::ItemSynced {
        run_id: 46,
        task_id: "orders_to_s3".into(),
        path: "2026/11/22/b.csv".into(),
        bytes: 48_213,
        method: CopyMethod::Streamed,
    }));
    app.update(Msg::Engine(EngineEvent::ItemFailed {
        run_id: 46,
        task_id: "orders_to_s3".into(),
        path: "2026/11/22/c.csv".into(),
        error: "connection reset by peer".into(),
        attempt: 2,
        max_attempts: 4,
        retry_in: Some(Duration::from_secs(3)),
    }));
    for (second, level, task, message) in [
        (
            1,
            tracing::Level::INFO,
            Some("orders_to_s3"),
            "run started trigger=manual",
        ),
        (
            2,
            tracing::Level::WARN,
            Some("vendor_feed"),
            "file failed path=2026/11/prices.csv error=403 Forbidden",
        ),
        (
            3,
            tracing::Level::ERROR,
            Some("archive_logs"),
            "run finished status=failed error=connection refused",
        ),
        (
            4,
            tracing::Level::INFO,
            None,
            "runs of a stopped process marked interrupted count=0",
        ),
        (
            5,
            tracing::Level::WARN,
            Some("orders_to_s3"),
            "file failed path=2026/11/22/c.csv attempt=2 error=connection reset by peer",
        ),
    ] {
        logs.push(LogLine {
            time: now() - TimeDelta::seconds(10 - second),
            level,
            task_id: task.map(str::to_string),
            run_id: task.map(|task| if task == "orders_to_s3" { 46 } else { 44 }),
            message: message.into(),
        });
    }
    app.set_now(now());
    app
}

fn fixture() -> App {
    fixture_with(false, "")
}

fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn char_key(c: char) -> Msg {
    key(KeyCode::Char(c))
}

fn press(app: &mut App, keys: &str) -> Vec<Command> {
    keys.chars().flat_map(|c| app.update(char_key(c))).collect()
}

fn select(app: &mut App, task: &str) {
    app.selected = app
        .visible_tasks()
        .iter()
        .position(|t| t.id == task)
        .expect("task in fixture");
}

// ----- keys to actions to state -----

#[test]
fn s_starts_the_selected_task() {
    let mut app = fixture();
    select(&mut app, "daily_backup");
    let commands = press(&mut app, "s");
    assert_eq!(
        commands,
        vec![Command::Engine(EngineCommand::StartTask {
            task_id: "daily_backup".into()
        })]
    );
}

#[test]
fn s_on_a_running_task_says_so_instead_of_starting_twice() {
    let mut app = fixture();
    select(&mut app, "orders_to_s3");
    assert!(press(&mut app, "s").is_empty());
    assert!(
        app.status
            .as_ref()
            .is_some_and(|(message, _)| message.contains("already running"))
    );
}

#[test]
fn c_asks_before_cancelling_and_y_cancels() {
    let mut app = fixture();
    select(&mut app, "orders_to_s3");
    assert!(
        press(&mut app, "c").is_empty(),
        "nothing happens before the answer"
    );
    assert_eq!(
        app.overlay,
        Some(Overlay::Confirm(Confirm::CancelRun {
            task_id: "orders_to_s3".into(),
            run_id: 46
        }))
    );
    let commands = press(&mut app, "y");
    assert_eq!(
        commands,
        vec![Command::Engine(EngineCommand::CancelRun { run_id: 46 })]
    );
    assert_eq!(app.overlay, None);
    assert!(
        app.tasks[0]
            .active
            .as_ref()
            .is_some_and(|active| active.cancel_requested)
    );
}

#[test]
fn n_or_esc_keeps_the_run() {
    let mut app = fixture();
    select(&mut app, "orders_to_s3");
    press(&mut app, "c");
    assert!(press(&mut app, "n").is_empty());
    assert_eq!(app.overlay, None);
    press(&mut app, "c");
    assert!(app.update(key(KeyCode::Esc)).is_empty());
    assert_eq!(app.overlay, None);
}

#[test]
fn c_on_an_idle_task_explains() {
    let mut app = fixture();
    select(&mut app, "daily_backup");
    press(&mut app, "c");
    assert_eq!(app.overlay, None);
    assert!(
        app.status
            .as_ref()
            .is_some_and(|(message, _)| message.contains("not running"))
    );
}

#[test]
fn r_shows_what_a_retry_touches_then_retries() {
    let mut app = fixture();
    select(&mut app, "vendor_feed");
    assert!(press(&mut app, "r").is_empty());
    let expected = Confirm::Retry {
        task_id: "vendor_feed".into(),
        items: vec![
            (7, "2026/11/prices.csv".into()),
            (8, "2026/11/stock.csv".into()),
        ],
    };
    assert_eq!(app.overlay, Some(Overlay::Confirm(expected)));
    let commands = app.update(key(KeyCode::Enter));
    assert_eq!(
        commands,
        vec![Command::Engine(EngineCommand::RetryItems {
            task_id: "vendor_feed".into(),
            item_ids: Some(vec![7, 8])
        })]
    );
}

#[test]
fn r_in_the_errors_view_retries_the_selected_item_only() {
    let mut app = fixture();
    press(&mut app, "2");
    assert_eq!(app.view, View::Errors);
    press(&mut app, "j");
    press(&mut app, "r");
    assert_eq!(
        app.overlay,
        Some(Overlay::Confirm(Confirm::Retry {
            task_id: "vendor_feed".into(),
            items: vec![(8, "2026/11/stock.csv".into())]
        }))
    );
}

#[test]
fn r_without_failures_explains() {
    let mut app = fixture();
    select(&mut app, "daily_backup");
    press(&mut app, "r");
    assert_eq!(app.overlay, None);
    assert!(
        app.status
            .as_ref()
            .is_some_and(|(message, _)| message.contains("no failed items"))
    );
}

#[test]
fn p_is_honest_that_schedules_are_not_run_yet() {
    let mut app = fixture();
    press(&mut app, "p");
    assert!(
        app.status
            .as_ref()
            .is_some_and(|(message, _)| message.contains("no schedule"))
    );
}

#[test]
fn read_only_refuses_every_action_that_changes_something() {
    let mut app = fixture_with(true, "");
    for keys in ["s", "c", "r", "p"] {
        select(&mut app, "orders_to_s3");
        app.status = None;
        assert!(press(&mut app, keys).is_empty(), "{keys} must do nothing");
        assert_eq!(app.overlay, None, "{keys} must not ask anything");
        assert!(
            app.status
                .as_ref()
                .is_some_and(|(message, _)| message.contains("read-only")),
            "{keys} explains"
        );
    }
    press(&mut app, "2");
    press(&mut app, "r");
    assert_eq!(app.overlay, None, "no retry from the errors view either");
    // Watching still works.
    press(&mut app, "1");
    app.update(key(KeyCode::Enter));
    assert_eq!(app.view, View::Detail);
}

#[test]
fn enter_opens_details_and_esc_goes_back() {
    let mut app = fixture();
    app.update(key(KeyCode::Enter));
    assert_eq!(app.view, View::Detail);
    app.update(key(KeyCode::Esc));
    assert_eq!(app.view, View::Tasks);
}

#[test]
fn number_keys_switch_views_and_load_what_they_show() {
    let mut app = fixture();
    select(&mut app, "vendor_feed");
    assert_eq!(press(&mut app, "2"), vec![Command::LoadFailedItems]);
    assert_eq!(app.view, View::Errors);
    assert_eq!(
        press(&mut app, "3"),
        vec![Command::LoadHistory {
            task_id: "vendor_feed".into()
        }]
    );
    assert_eq!(app.view, View::History);
    press(&mut app, "4");
    assert_eq!(app.view, View::Logs);
    press(&mut app, "1");
    assert_eq!(app.view, View::Tasks);
}

#[test]
fn j_k_g_and_shift_g_move_the_selection() {
    let mut app = fixture();
    press(&mut app, "jj");
    assert_eq!(app.selected, 2);
    press(&mut app, "k");
    assert_eq!(app.selected, 1);
    press(&mut app, "G");
    assert_eq!(app.selected, TASKS.len() - 1);
    press(&mut app, "j");
    assert_eq!(app.selected, TASKS.len() - 1, "stops at the end");
    press(&mut app, "g");
    assert_eq!(app.selected, 0);
    app.update(key(KeyCode::Down));
    assert_eq!(app.selected, 1, "arrows work too");
    app.update(key(KeyCode::Up));
    assert_eq!(app.selected, 0);
}

#[test]
fn slash_filters_tasks_as_you_type_and_esc_clears() {
    let mut app = fixture();
    press(&mut app, "/");
    assert_eq!(app.input, Some(Input::TaskFilter(String::new())));
    press(&mut app, "arch");
    let ids: Vec<&str> = app
        .visible_tasks()
        .iter()
        .map(|task| task.id.as_str())
        .collect();
    assert_eq!(ids, vec!["archive_logs"]);
    app.update(key(KeyCode::Enter));
    assert_eq!(app.input, None);
    assert_eq!(app.task_filter, "arch", "enter keeps the filter");
    app.update(key(KeyCode::Esc));
    assert_eq!(app.visible_tasks().len(), TASKS.len());
}

#[test]
fn tab_moves_focus_to_the_logs_panel_and_back() {
    let mut app = fixture();
    app.update(key(KeyCode::Tab));
    assert_eq!(app.focus, Focus::Logs);
    press(&mut app, "k");
    assert_eq!(
        app.log_view.offset, 1,
        "k scrolls the logs while they have focus"
    );
    assert!(!app.log_view.follow);
    app.update(key(KeyCode::Tab));
    assert_eq!(app.focus, Focus::Tasks);
}

#[test]
fn log_search_jumps_between_matches_without_hiding_lines() {
    let mut app = fixture();
    press(&mut app, "4/");
    press(&mut app, "file failed");
    app.update(key(KeyCode::Enter));
    assert_eq!(app.log_view.search.as_deref(), Some("file failed"));
    assert_eq!(
        app.log_view.current_match,
        Some(4),
        "starts at the newest match"
    );
    press(&mut app, "n");
    assert_eq!(app.log_view.current_match, Some(1), "wraps to the first");
    press(&mut app, "N");
    assert_eq!(app.log_view.current_match, Some(4));
    let shown = app
        .logs
        .lock()
        .lines
        .iter()
        .filter(|line| app.log_view.shows(line))
        .count();
    assert_eq!(shown, 5, "search hides nothing");
}

#[test]
fn l_cycles_the_level_filter_and_t_limits_to_the_selected_task() {
    let mut app = fixture();
    press(&mut app, "ll");
    assert_eq!(app.log_view.min_level, Some(tracing::Level::WARN));
    let shown = |app: &App| {
        app.logs
            .lock()
            .lines
            .iter()
            .filter(|line| app.log_view.shows(line))
            .count()
    };
    assert_eq!(shown(&app), 3);
    press(&mut app, "t");
    assert_eq!(app.log_view.task.as_deref(), Some("orders_to_s3"));
    assert_eq!(shown(&app), 1);
    press(&mut app, "tll");
    assert_eq!(app.log_view.min_level, None);
    assert_eq!(shown(&app), 5);
}

#[test]
fn f_toggles_follow() {
    let mut app = fixture();
    assert!(app.log_view.follow);
    press(&mut app, "f");
    assert!(!app.log_view.follow);
    press(&mut app, "f");
    assert!(app.log_view.follow);
}

#[test]
fn question_mark_opens_help_and_any_key_closes_it() {
    let mut app = fixture();
    press(&mut app, "?");
    assert_eq!(app.overlay, Some(Overlay::Help));
    assert!(
        press(&mut app, "s").is_empty(),
        "the key closes help and does nothing else"
    );
    assert_eq!(app.overlay, None);
}

#[test]
fn q_quits_at_once_when_idle_and_asks_when_runs_are_active() {
    let mut app = fixture();
    assert!(press(&mut app, "q").is_empty());
    assert_eq!(
        app.overlay,
        Some(Overlay::Confirm(Confirm::Quit { active: 1 }))
    );
    assert_eq!(press(&mut app, "y"), vec![Command::Quit]);

    let mut idle = fixture();
    idle.tasks[0].active = None;
    assert_eq!(press(&mut idle, "q"), vec![Command::Quit]);
}

#[test]
fn remapped_keys_replace_the_defaults() {
    let mut app = fixture_with(false, "[keys]\nstart = \"S\"\nquit = \"ctrl-q\"\n");
    select(&mut app, "daily_backup");
    assert!(press(&mut app, "s").is_empty(), "s is no longer start");
    assert_eq!(
        press(&mut app, "S"),
        vec![Command::Engine(EngineCommand::StartTask {
            task_id: "daily_backup".into()
        })]
    );
    app.tasks[0].active = None;
    assert_eq!(
        app.update(Msg::Key(KeyEvent::new(
            KeyCode::Char('q'),
            KeyModifiers::CONTROL
        ))),
        vec![Command::Quit]
    );
}

// ----- engine events to state -----

#[test]
fn progress_is_weighted_by_bytes_with_a_rolling_rate_and_eta() {
    let app = fixture();
    let active = app.tasks[0].active.as_ref().expect("running");
    let fraction = active.fraction().expect("totals known");
    assert!((fraction - active.counters.bytes_done as f64 / 1_825_361_100.0).abs() < 1e-9);
    let rate = active.rate().expect("a rate after ten seconds");
    assert!((rate - 50_331_648.0).abs() < 1.0, "48 MiB/s, got {rate}");
    assert!(active.eta().is_some());
    assert_eq!(active.counters.files_queued(), 1214 - 1200 - 8);
}

#[test]
fn totals_unknown_shows_counting() {
    let mut app = fixture();
    app.update(Msg::Engine(EngineEvent::RunStarted {
        run_id: 50,
        task_id: "new_task".into(),
        trigger: Trigger::Manual,
        started_at: now(),
    }));
    let active = app.tasks[5].active.as_ref().expect("running");
    assert_eq!(active.fraction(), None);
    assert_eq!(active.eta(), None);
}

#[test]
fn a_finished_run_replaces_the_live_one_and_reloads_failures() {
    let mut app = fixture();
    let commands = app.update(Msg::Engine(EngineEvent::RunFinished {
        record: Box::new(record(
            46,
            "orders_to_s3",
            RunStatus::Partial,
            0,
            1205,
            1,
            Some("1 of 1594 files failed"),
        )),
    }));
    assert_eq!(commands, vec![Command::LoadFailedItems]);
    assert!(app.tasks[0].active.is_none());
    assert_eq!(
        app.tasks[0].last.as_ref().map(|run| run.status),
        Some(RunStatus::Partial)
    );
}

#[test]
fn a_successful_retry_clears_the_failing_item() {
    let mut app = fixture();
    app.update(Msg::Engine(EngineEvent::ItemSynced {
        run_id: 46,
        task_id: "orders_to_s3".into(),
        path: "2026/11/22/c.csv".into(),
        bytes: 10,
        method: CopyMethod::Streamed,
    }));
    assert!(
        app.tasks[0]
            .active
            .as_ref()
            .is_some_and(|active| active.retrying.is_empty())
    );
}

#[test]
fn an_idle_tick_does_not_redraw() {
    let mut app = fixture();
    app.tasks[0].active = None;
    app.status = None;
    app.dirty = false;
    app.set_now(now() + TimeDelta::seconds(1));
    app.update(Msg::Tick);
    assert!(!app.dirty, "nothing on screen changed");
}

// ----- whole screens -----

fn screen(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal
        .draw(|frame| {
            frame.render_widget(
                Screen {
                    app,
                    theme: Theme { color: false },
                },
                frame.area(),
            )
        })
        .expect("draw");
    terminal.backend().to_string()
}

fn snapshot_views(name: &str, app: &mut App, keys: &[Msg]) {
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
    assert!((rate - 20_000.0).abs() < 1.0, "rows per second, got {rate}");
    assert_eq!(active.eta(), Some(TimeDelta::milliseconds(39_500)));
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
        path: "batch 17 (16000]..(17000]".into(),
        error: "P0001: order 16042 is locked".into(),
        attempt: 2,
        max_attempts: 4,
        retry_in: Some(Duration::from_secs(2)),
    }));
    app.set_now(now());
    snapshot_views("detail_table_running", &mut app, &[key(KeyCode::Enter)]);
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
