//! Model tests: keys and engine events in, state and commands out.

use super::snapshots::screen;
use super::*;

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
fn a_in_the_errors_view_asks_then_abandons_the_selected_item_only() {
    let mut app = fixture();
    press(&mut app, "a");
    assert_eq!(
        app.overlay, None,
        "abandon needs an item of the errors view"
    );
    assert!(
        app.status
            .as_ref()
            .is_some_and(|(message, _)| message.contains("errors view (2)")),
        "{:?}",
        app.status
    );
    press(&mut app, "2");
    press(&mut app, "j");
    press(&mut app, "a");
    assert_eq!(
        app.overlay,
        Some(Overlay::Confirm(Confirm::Abandon {
            task_id: "vendor_feed".into(),
            items: vec![(8, "2026/11/stock.csv".into())]
        }))
    );
    assert!(press(&mut app, "n").is_empty(), "n keeps the item");
    assert_eq!(app.overlay, None);
    press(&mut app, "a");
    assert_eq!(
        press(&mut app, "y"),
        vec![Command::AbandonItems {
            task_id: "vendor_feed".into(),
            item_ids: vec![8]
        }]
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
    // Ten seconds at 48 MiB/s after a slow start: the smoothed rate is
    // within a few percent of it, and the ETA follows from it.
    let rate = active.rate().expect("a rate after ten seconds");
    assert!(
        (rate - 50_331_648.0).abs() < 50_331_648.0 * 0.05,
        "about 48 MiB/s, got {rate}"
    );
    let remaining = 1_825_361_100 - active.counters.bytes_done;
    assert_eq!(
        active.eta(),
        Some(TimeDelta::milliseconds(
            (remaining as f64 / rate * 1000.0) as i64
        ))
    );
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

/// "partial 6s ago" counted on: an age under a minute moves each second
/// (it stayed put until the minute turned), and a tick within the same
/// second draws nothing.
#[test]
fn an_age_in_seconds_moves_each_second() {
    let mut app = fixture();
    for task in &mut app.tasks {
        task.active = None;
    }
    app.status = None;
    let ended = app.now - TimeDelta::seconds(6);
    let task = app
        .tasks
        .iter_mut()
        .find(|task| task.last.is_some())
        .expect("a task that ran");
    if let Some(last) = task.last.as_mut() {
        last.completed_at = Some(ended);
    }
    let task = task.id.clone();
    app.dirty = false;
    app.set_now(ended + TimeDelta::seconds(7));
    app.update(Msg::Tick);
    assert!(app.dirty, "the age on screen changed");
    let row = |app: &App| {
        screen(app, 160, 48)
            .lines()
            .find(|line| line.contains(&task))
            .unwrap_or_default()
            .to_string()
    };
    assert!(row(&app).contains("7s ago"), "{}", row(&app));
    app.dirty = false;
    app.set_now(ended + TimeDelta::milliseconds(7_250));
    app.update(Msg::Tick);
    assert!(!app.dirty, "same second: nothing to draw");
    app.set_now(ended + TimeDelta::seconds(8));
    app.update(Msg::Tick);
    assert!(app.dirty);
    assert!(row(&app).contains("8s ago"), "{}", row(&app));
}

// ----- whole screens -----
