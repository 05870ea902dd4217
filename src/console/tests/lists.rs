//! The data views: the runs view across tasks, sorting the task list,
//! positions in list titles, filters on the errors, history and runs
//! views, and cursors that stay on the row the operator chose.

use super::snapshots::{screen, snapshot_views};
use super::*;
use crate::console::lists::{TaskSort, position};

/// Runs of every task as the store returns them, newest first; 46 is
/// still running.
fn all_runs() -> Vec<RunRecord> {
    let mut running = record(46, "orders_to_s3", RunStatus::Running, 0, 700, 0, None);
    running.started_at = now() - TimeDelta::seconds(72);
    running.completed_at = None;
    running.duration_ms = None;
    let mut retried = record(39, "vendor_feed", RunStatus::Succeeded, 600, 4, 0, None);
    retried.trigger = Trigger::Retry;
    vec![
        running,
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
        record(41, "daily_backup", RunStatus::Succeeded, 300, 118, 0, None),
        retried,
    ]
}

fn with_runs_view() -> App {
    let mut app = fixture();
    assert_eq!(
        app.update(char_key('5')),
        vec![Command::LoadRunList],
        "5 opens the runs view and loads it"
    );
    app.update(Msg::RunListLoaded(all_runs()));
    app
}

fn run_ids(app: &App) -> Vec<i64> {
    app.visible_runs().iter().map(|run| run.run_id).collect()
}

fn task_ids(app: &App) -> Vec<&str> {
    app.visible_tasks().iter().map(|t| t.id.as_str()).collect()
}

fn typed_filter(app: &mut App, text: &str) {
    app.update(char_key('/'));
    press(app, text);
    app.update(key(KeyCode::Enter));
}

fn status_says(app: &App, part: &str) -> bool {
    app.status
        .as_ref()
        .is_some_and(|(message, _)| message.contains(part))
}

#[test]
fn the_runs_view_lists_every_tasks_runs_newest_first() {
    let app = with_runs_view();
    assert_eq!(app.view, View::Runs);
    assert_eq!(run_ids(&app), [46, 45, 44, 43, 42, 41, 39]);
    let text = screen(&app, 160, 48);
    assert!(
        text.contains("Runs 1/7 · every task, newest first"),
        "{text}"
    );
    assert!(text.contains("TASK"), "{text}");
    assert!(
        text.lines()
            .any(|line| line.contains("archive_logs") && line.contains("s3://archive")),
        "a failed run shows its error on its row:\n{text}"
    );
}

#[test]
fn the_runs_view_says_when_it_shows_only_the_newest_runs() {
    let mut app = with_runs_view();
    let many: Vec<RunRecord> = (0..crate::console::lists::RUNS_LISTED as i64)
        .map(|index| {
            record(
                1000 - index,
                "daily_backup",
                RunStatus::Succeeded,
                index,
                1,
                0,
                None,
            )
        })
        .collect();
    app.update(Msg::RunListLoaded(many));
    let text = screen(&app, 120, 30);
    assert!(
        text.contains("Runs 1/500 · newest 500 of every task"),
        "{text}"
    );
}

#[test]
fn the_runs_view_filters_like_the_task_list() {
    let mut app = with_runs_view();
    typed_filter(&mut app, "status:failed");
    assert_eq!(app.runs_filter, "status:failed");
    assert_eq!(run_ids(&app), [43]);
    assert_eq!(app.task_filter, "", "the task list's filter is its own");

    app.runs_filter = "status:failing".into();
    assert_eq!(run_ids(&app), [44, 43], "failed and partial runs");
    app.runs_filter = "status:ok".into();
    assert_eq!(run_ids(&app), [45, 41, 39], "ok is succeeded");
    app.runs_filter = "!status:ok !status:run".into();
    assert_eq!(run_ids(&app), [44, 43, 42]);
    app.runs_filter = "daily".into();
    assert_eq!(run_ids(&app), [45, 41], "text in the task id");
    app.runs_filter = "refused".into();
    assert_eq!(run_ids(&app), [43], "text in the error");
    app.runs_filter = "retry".into();
    assert_eq!(run_ids(&app), [39], "the trigger");
    app.runs_filter = "kind:sync status:can".into();
    assert_eq!(run_ids(&app), [42]);
    app.runs_filter = "kind:table".into();
    assert!(run_ids(&app).is_empty());
    let text = screen(&app, 80, 24);
    assert!(text.contains("Runs 0/0 · 7 total"), "{text}");
    assert!(text.contains("no run matches the filter"), "{text}");

    app.update(key(KeyCode::Esc));
    assert_eq!(app.runs_filter, "", "esc clears the filter first");
    assert_eq!(app.view, View::Runs);
    app.update(key(KeyCode::Esc));
    assert_eq!(app.view, View::Tasks, "then goes back");
}

#[test]
fn enter_on_a_run_opens_its_detail_and_esc_comes_back() {
    let mut app = with_runs_view();
    select(&mut app, "orders_to_s3");
    press(&mut app, "jjj");
    assert_eq!(app.visible_runs()[app.runs_selected].run_id, 43);
    assert_eq!(
        app.update(char_key('s')),
        vec![Command::Engine(EngineCommand::StartTask {
            task_id: "archive_logs".into()
        })],
        "s starts the selected run's task"
    );
    app.update(key(KeyCode::Enter));
    assert_eq!(app.view, View::Detail);
    assert_eq!(
        app.selected_task_id().as_deref(),
        Some("archive_logs"),
        "the detail, and s, r and c, are about the opened run's task"
    );
    let text = screen(&app, 120, 30);
    assert!(text.contains("archive_logs"), "{text}");
    assert!(text.contains("run 43"), "{text}");
    app.update(key(KeyCode::Esc));
    assert_eq!(app.view, View::Runs, "esc goes back to the runs");
    assert_eq!(app.visible_runs()[app.runs_selected].run_id, 43);
    app.update(char_key('1'));
    assert_eq!(
        app.selected_task_id().as_deref(),
        Some("orders_to_s3"),
        "the task list's cursor did not move"
    );
}

#[test]
fn the_header_shows_the_key_that_lists_failing_runs() {
    let mut app = fixture();
    let text = screen(&app, 80, 24);
    assert!(text.contains("2 failing (F)"), "{text}");
    assert_eq!(app.update(char_key('F')), vec![Command::LoadRunList]);
    app.update(Msg::RunListLoaded(all_runs()));
    assert_eq!(app.view, View::Runs);
    assert_eq!(app.runs_filter, "status:failing");
    assert_eq!(run_ids(&app), [44, 43]);

    // A failure its task has since recovered from no longer needs anyone:
    // `F` leaves it out, `status:failed` still finds it.
    let mut runs = all_runs();
    runs.push(record(
        30,
        "daily_backup",
        RunStatus::Failed,
        900,
        0,
        0,
        Some("disk full"),
    ));
    // A retry of some items that succeeded does not clear the failures.
    let mut retried = record(47, "archive_logs", RunStatus::Succeeded, 1, 3, 0, None);
    retried.trigger = Trigger::Retry;
    runs.insert(0, retried);
    app.update(Msg::RunListLoaded(runs));
    assert_eq!(run_ids(&app), [44, 43]);
    app.runs_filter = "status:failed".into();
    assert_eq!(run_ids(&app), [43, 30]);

    // `5` after `F` shows every run again.
    app.update(char_key('F'));
    app.update(char_key('5'));
    assert_eq!(app.runs_filter, "");
    // A filter typed in the view stays.
    app.runs_filter = "daily".into();
    app.update(char_key('1'));
    app.update(char_key('5'));
    assert_eq!(app.runs_filter, "daily");
}

#[test]
fn runs_starting_and_ending_reload_the_runs_view() {
    let mut app = with_runs_view();
    let commands = app.update(Msg::Engine(EngineEvent::RunFinished {
        record: Box::new(record(47, "new_task", RunStatus::Succeeded, 0, 1, 0, None)),
    }));
    assert!(commands.contains(&Command::LoadRunList), "{commands:?}");
    let commands = app.update(Msg::Engine(EngineEvent::RunStarted {
        run_id: 48,
        task_id: "new_task".into(),
        trigger: Trigger::Manual,
        started_at: now(),
    }));
    assert_eq!(commands, vec![Command::LoadRunList]);
    app.update(char_key('1'));
    let commands = app.update(Msg::Engine(EngineEvent::RunFinished {
        record: Box::new(record(48, "new_task", RunStatus::Succeeded, 0, 1, 0, None)),
    }));
    assert!(
        !commands.contains(&Command::LoadRunList),
        "no reload when the view is closed"
    );
}

#[test]
fn o_cycles_the_sort_and_the_cursor_stays_on_its_task() {
    let mut app = fixture();
    select(&mut app, "daily_backup");
    assert_eq!(app.task_sort, TaskSort::Config);
    press(&mut app, "o");
    assert_eq!(app.task_sort, TaskSort::Status);
    assert_eq!(
        task_ids(&app),
        [
            "archive_logs",
            "vendor_feed",
            "reports_nightly",
            "orders_to_s3",
            "daily_backup",
            "new_task"
        ],
        "worst first"
    );
    assert_eq!(app.selected_task_id().as_deref(), Some("daily_backup"));
    assert!(status_says(&app, "sorted by status"));
    let text = screen(&app, 80, 24);
    assert!(
        text.contains("Tasks 5/6 · by status, worst first"),
        "{text}"
    );

    press(&mut app, "o");
    assert_eq!(app.task_sort, TaskSort::LastRun);
    assert_eq!(
        task_ids(&app),
        [
            "orders_to_s3",
            "daily_backup",
            "vendor_feed",
            "archive_logs",
            "reports_nightly",
            "new_task"
        ],
        "newest first; running counts from its start; never run last"
    );
    press(&mut app, "o");
    assert_eq!(app.task_sort, TaskSort::NextRun);
    assert_eq!(
        task_ids(&app),
        TASKS,
        "nothing scheduled: stable, config order"
    );
    press(&mut app, "o");
    assert_eq!(app.task_sort, TaskSort::Duration);
    press(&mut app, "o");
    assert_eq!(app.task_sort, TaskSort::Config, "and around");
    assert_eq!(app.selected_task_id().as_deref(), Some("daily_backup"));
}

#[test]
fn sorting_by_next_run_puts_the_soonest_first_and_unscheduled_last() {
    let mut app = fixture();
    for (task, minutes) in [("new_task", 5), ("vendor_feed", 1), ("archive_logs", 60)] {
        app.update(Msg::Engine(EngineEvent::ScheduleChanged {
            task_id: task.into(),
            next_run: Some(now() + TimeDelta::minutes(minutes)),
            paused: false,
        }));
    }
    press(&mut app, ":sort next");
    app.update(key(KeyCode::Enter));
    assert_eq!(
        task_ids(&app),
        [
            "vendor_feed",
            "new_task",
            "archive_logs",
            "orders_to_s3",
            "daily_backup",
            "reports_nightly"
        ]
    );
}

#[test]
fn sorting_by_duration_puts_the_longest_last_run_first() {
    let mut app = fixture();
    let mut slow = record(50, "reports_nightly", RunStatus::Succeeded, 1, 1, 0, None);
    slow.duration_ms = Some(600_000);
    app.update(Msg::Engine(EngineEvent::RunFinished {
        record: Box::new(slow),
    }));
    press(&mut app, ":sort duration");
    app.update(key(KeyCode::Enter));
    let ids = task_ids(&app);
    assert_eq!(ids[0], "reports_nightly");
    assert_eq!(
        &ids[1..4],
        ["daily_backup", "vendor_feed", "archive_logs"],
        "equal durations keep config order"
    );
    assert_eq!(
        &ids[4..],
        ["orders_to_s3", "new_task"],
        "no finished run: last"
    );
}

#[test]
fn a_task_changing_status_under_the_status_sort_keeps_the_cursor_on_the_chosen_task() {
    let mut app = fixture();
    press(&mut app, ":sort status");
    app.update(key(KeyCode::Enter));
    select(&mut app, "vendor_feed");
    // archive_logs, above it, succeeds and moves down.
    app.update(Msg::Engine(EngineEvent::RunFinished {
        record: Box::new(record(
            47,
            "archive_logs",
            RunStatus::Succeeded,
            0,
            3,
            0,
            None,
        )),
    }));
    assert_eq!(task_ids(&app)[0], "vendor_feed");
    assert_eq!(
        app.selected_task_id().as_deref(),
        Some("vendor_feed"),
        "s would otherwise start the task that moved under the cursor"
    );
}

#[test]
fn clearing_a_filter_keeps_the_cursor_on_the_selected_task() {
    let mut app = fixture();
    select(&mut app, "reports_nightly");
    app.update(char_key('/'));
    press(&mut app, "status:f");
    assert_eq!(
        app.selected_task_id().as_deref(),
        Some("archive_logs"),
        "the chosen task is hidden: the first match"
    );
    for _ in 0.."status:f".len() {
        app.update(key(KeyCode::Backspace));
    }
    assert_eq!(
        app.selected_task_id().as_deref(),
        Some("reports_nightly"),
        "back on the task chosen before filtering"
    );
    press(&mut app, "status:failing");
    app.update(key(KeyCode::Enter));
    press(&mut app, "j");
    assert_eq!(app.selected_task_id().as_deref(), Some("archive_logs"));
    app.update(key(KeyCode::Esc));
    assert_eq!(app.task_filter, "");
    assert_eq!(
        app.selected_task_id().as_deref(),
        Some("archive_logs"),
        "esc clears the filter and stays on the task picked in it"
    );
    assert_eq!(app.selected, 3, "not the top");
    app.update(char_key('/'));
    press(&mut app, "arch");
    app.update(key(KeyCode::Esc));
    assert_eq!(app.selected_task_id().as_deref(), Some("archive_logs"));
}

#[test]
fn lists_say_where_the_cursor_is() {
    assert_eq!(position(11, 200, 200), "12/200");
    assert_eq!(position(11, 20, 200), "12/20 · 200 total");
    assert_eq!(position(0, 0, 200), "0/0 · 200 total");
    let mut app = fixture();
    select(&mut app, "vendor_feed");
    app.update(Msg::Tick);
    assert!(screen(&app, 80, 24).contains("Tasks 3/6 "));
    typed_filter(&mut app, "status:failing");
    let text = screen(&app, 160, 48);
    assert!(
        text.contains("Tasks 1/2 · 6 total · filter \"status:failing\""),
        "{text}"
    );
    assert!(text.contains("Logs 5/5 · following"), "{text}");
    app.update(char_key('2'));
    app.update(char_key('j'));
    assert!(screen(&app, 80, 24).contains("Errors · pending 2/2"));
}

#[test]
fn the_errors_view_filters_its_items_and_retries_the_one_selected() {
    let mut app = fixture();
    let mut gone = failed_item(9, "archive_logs", "old.csv", "permission denied");
    gone.status = ItemStatus::Gone;
    let mut items = app.failed_items.clone();
    items.push(gone);
    app.update(Msg::FailedItemsLoaded(items));
    app.update(char_key('2'));
    typed_filter(&mut app, "stock");
    assert_eq!(app.errors_filter, "stock");
    let shown: Vec<i64> = app.visible_pending_items().iter().map(|i| i.id).collect();
    assert_eq!(shown, [8]);
    assert!(app.visible_gone_items().is_empty());
    let text = screen(&app, 160, 48);
    assert!(
        text.contains("Errors · pending 1/1 · 2 total · filter \"stock\""),
        "{text}"
    );
    app.update(char_key('r'));
    assert!(
        matches!(&app.overlay, Some(Overlay::Confirm(Confirm::Retry { items, .. })) if items[0].0 == 8),
        "r retries the item on screen: {:?}",
        app.overlay
    );
    app.overlay = None;
    app.errors_filter = "status:gone".into();
    assert!(app.visible_pending_items().is_empty());
    assert_eq!(app.visible_gone_items().len(), 1);
    app.errors_filter = "!403".into();
    assert!(app.visible_pending_items().is_empty(), "! leaves them out");
    app.errors_filter = "kind:file kind:sync".into();
    assert_eq!(
        app.visible_pending_items().len(),
        2,
        "item kind and task type"
    );
}

#[test]
fn the_history_view_filters_its_runs() {
    let mut app = fixture();
    select(&mut app, "daily_backup");
    app.update(char_key('3'));
    app.update(Msg::HistoryLoaded(vec![
        record(45, "daily_backup", RunStatus::Succeeded, 2, 120, 0, None),
        record(
            40,
            "daily_backup",
            RunStatus::Failed,
            90,
            0,
            0,
            Some("disk full"),
        ),
        record(35, "daily_backup", RunStatus::Succeeded, 200, 110, 0, None),
    ]));
    typed_filter(&mut app, "!status:ok");
    let shown: Vec<i64> = app.visible_history().iter().map(|r| r.run_id).collect();
    assert_eq!(shown, [40]);
    let text = screen(&app, 80, 24);
    assert!(
        text.contains("History · daily_backup · runs 1/1 · 3 total"),
        "{text}"
    );
    app.update(key(KeyCode::Enter));
    assert_eq!(app.view, View::Detail);
    assert_eq!(app.opened_run.as_ref().map(|r| r.run_id), Some(40));
    app.update(key(KeyCode::Esc));
    assert_eq!(app.view, View::History);
}

#[test]
fn clearing_a_list_filter_keeps_the_cursor_on_the_selected_row() {
    let mut app = with_runs_view();
    typed_filter(&mut app, "daily");
    app.update(char_key('j'));
    assert_eq!(app.visible_runs()[app.runs_selected].run_id, 41);
    app.update(key(KeyCode::Esc));
    assert_eq!(app.runs_filter, "");
    assert_eq!(
        app.visible_runs()[app.runs_selected].run_id,
        41,
        "still on run 41, now sixth"
    );
    // A reload that adds a newer run keeps the cursor on its run too.
    let mut runs = all_runs();
    runs.insert(
        0,
        record(47, "new_task", RunStatus::Succeeded, 0, 1, 0, None),
    );
    app.update(Msg::RunListLoaded(runs));
    assert_eq!(app.visible_runs()[app.runs_selected].run_id, 41);
}

#[test]
fn the_palette_opens_the_runs_view_and_sorts() {
    let mut app = fixture();
    press(&mut app, ":ru");
    app.update(key(KeyCode::Tab));
    assert_eq!(app.input, Some(Input::Command("runs".into())));
    assert_eq!(app.update(key(KeyCode::Enter)), vec![Command::LoadRunList]);
    assert_eq!(app.view, View::Runs);

    press(&mut app, ":so");
    app.update(key(KeyCode::Tab));
    assert_eq!(app.input, Some(Input::Command("sort ".into())));
    assert!(status_says(
        &app,
        "sort config  sort status  sort last  sort next  sort duration"
    ));
    press(&mut app, "st");
    app.update(key(KeyCode::Tab));
    assert_eq!(app.input, Some(Input::Command("sort status".into())));
    app.update(key(KeyCode::Enter));
    assert_eq!(app.task_sort, TaskSort::Status);
    assert_eq!(app.view, View::Tasks, ":sort shows the sorted list");

    press(&mut app, ":sort size");
    app.update(key(KeyCode::Enter));
    assert!(status_says(&app, "unknown sort `size`"));
    assert_eq!(app.task_sort, TaskSort::Status);
}

#[test]
fn snapshot_runs_view() {
    let mut app = fixture();
    snapshot_views(
        "runs",
        &mut app,
        &[
            char_key('5'),
            Msg::RunListLoaded(all_runs()),
            char_key('j'),
            char_key('j'),
        ],
    );
}

#[test]
fn snapshot_runs_view_filtered() {
    let mut app = fixture();
    snapshot_views(
        "runs_failing",
        &mut app,
        &[char_key('F'), Msg::RunListLoaded(all_runs())],
    );
}
