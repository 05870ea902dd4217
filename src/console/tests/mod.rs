//! Model and rendering tests. The fixture has one task in each state
//! (running, succeeded, partial, failed, cancelled, never run) and a fixed
//! clock, so screens are reproducible. `model` sends messages and checks
//! the state and commands; `snapshots` draws whole screens.

mod chrome;
mod fulltext;
mod lists;
mod model;
mod progress;
mod snapshots;
mod triage;
mod truth;
mod watching;

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
use crate::logging::{LogBuffer, LogLine};
use crate::run::event::{CopyMethod, EngineCommand, EngineEvent, SkipReason};
use crate::run::{RunCounters, RunRecord, RunStatus, Trigger};
use crate::state::{FailedItem, ItemKind, ItemStatus};

pub(super) const TASKS: [&str; 6] = [
    "orders_to_s3",
    "daily_backup",
    "vendor_feed",
    "archive_logs",
    "reports_nightly",
    "new_task",
];

pub(super) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 15, 32, 0)
        .single()
        .expect("valid time")
}

pub(super) fn config(keys: &str) -> crate::config::Config {
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

pub(super) fn record(
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
        execution_date: None,
    }
}

pub(super) fn failed_item(id: i64, task: &str, key: &str, error: &str) -> FailedItem {
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
pub(super) fn fixture_with(read_only: bool, keys: &str) -> App {
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
        in_flight: Vec::new(),
        at: app.now,
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
            in_flight: Vec::new(),
            at: app.now,
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
            origin: None,
        });
    }
    app.set_now(now());
    app
}

pub(super) fn fixture() -> App {
    fixture_with(false, "")
}

pub(super) fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

pub(super) fn char_key(c: char) -> Msg {
    key(KeyCode::Char(c))
}

pub(super) fn press(app: &mut App, keys: &str) -> Vec<Command> {
    keys.chars().flat_map(|c| app.update(char_key(c))).collect()
}

pub(super) fn select(app: &mut App, task: &str) {
    app.selected = app
        .visible_tasks()
        .iter()
        .position(|t| t.id == task)
        .expect("task in fixture");
}

// ----- keys to actions to state -----
