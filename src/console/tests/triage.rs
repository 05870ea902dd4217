//! Finding trouble: filters, health, jump-to-failure, paging and the `:`
//! palette, on the fixture (running, ok, partial, failed, cancelled,
//! never run).

use super::*;
use crate::console::triage::TaskHealth;

fn visible(app: &App) -> Vec<&str> {
    app.visible_tasks().iter().map(|t| t.id.as_str()).collect()
}

fn filter(app: &mut App, text: &str) {
    app.task_filter = text.into();
    app.selected = 0;
}

fn status_says(app: &App, part: &str) -> bool {
    app.status
        .as_ref()
        .is_some_and(|(message, _)| message.contains(part))
}

#[test]
fn status_filters_by_health_and_bang_turns_a_word_around() {
    let mut app = fixture();
    filter(&mut app, "status:failed");
    assert_eq!(visible(&app), ["archive_logs"]);
    filter(&mut app, "status:partial");
    assert_eq!(visible(&app), ["vendor_feed"]);
    filter(&mut app, "status:failing");
    assert_eq!(visible(&app), ["vendor_feed", "archive_logs"]);
    filter(&mut app, "!status:failing");
    assert_eq!(
        visible(&app),
        [
            "orders_to_s3",
            "daily_backup",
            "reports_nightly",
            "new_task"
        ]
    );
    filter(&mut app, "!nightly !new");
    assert_eq!(
        visible(&app),
        [
            "orders_to_s3",
            "daily_backup",
            "vendor_feed",
            "archive_logs"
        ]
    );
    filter(&mut app, "kind:table");
    assert!(visible(&app).is_empty(), "the fixture has only file syncs");
    filter(&mut app, "kind:sync status:run");
    assert_eq!(visible(&app), ["orders_to_s3"]);
}

#[test]
fn a_failed_retry_leaves_a_task_with_pending_items_partial() {
    let mut app = fixture();
    let task = app
        .tasks
        .iter_mut()
        .find(|t| t.id == "vendor_feed")
        .expect("fixture task");
    let last = task.last.as_mut().expect("a last run");
    last.status = RunStatus::Failed;
    last.trigger = Trigger::Retry;
    task.pending_failures = 2;
    assert_eq!(TaskHealth::of(task), TaskHealth::Partial);
    task.pending_failures = 0;
    assert_eq!(TaskHealth::of(task), TaskHealth::Failed);
    let last = task.last.as_mut().expect("a last run");
    last.status = RunStatus::Succeeded;
    task.pending_failures = 1;
    assert_eq!(
        TaskHealth::of(task),
        TaskHealth::Partial,
        "an ok run with items still pending is not ok"
    );
    let last = task.last.as_mut().expect("a last run");
    last.status = RunStatus::Cancelled;
    task.pending_failures = 2;
    assert_eq!(
        TaskHealth::of(task),
        TaskHealth::Partial,
        "a cancelled retry leaves its items pending: still failing"
    );
    assert!(TaskHealth::of(task).is_failing());
}

#[test]
fn brackets_cycle_through_failing_tasks_and_wrap() {
    let mut app = fixture();
    select(&mut app, "orders_to_s3");
    press(&mut app, "]");
    assert_eq!(app.selected_task_id().as_deref(), Some("vendor_feed"));
    assert!(status_says(&app, "failing task 1 of 2"));
    press(&mut app, "]");
    assert_eq!(app.selected_task_id().as_deref(), Some("archive_logs"));
    press(&mut app, "]");
    assert_eq!(
        app.selected_task_id().as_deref(),
        Some("vendor_feed"),
        "wraps"
    );
    press(&mut app, "[");
    assert_eq!(
        app.selected_task_id().as_deref(),
        Some("archive_logs"),
        "wraps back"
    );
    filter(&mut app, "!status:failing");
    press(&mut app, "]");
    assert!(status_says(&app, "no failing task"));
}

#[test]
fn page_keys_move_a_whole_page() {
    let mut app = fixture();
    app.page_rows = 4;
    app.selected = 0;
    app.update(key(KeyCode::PageDown));
    assert_eq!(app.selected, 4);
    app.update(key(KeyCode::PageDown));
    assert_eq!(app.selected, 5, "stops at the last task");
    app.update(key(KeyCode::PageUp));
    assert_eq!(app.selected, 1);
    assert_eq!(crate::console::views::task_rows(24), 13);
}

#[test]
fn the_palette_completes_and_reaches_a_task_by_id() {
    let mut app = fixture();
    filter(&mut app, "nightly");
    press(&mut app, ":arch");
    assert_eq!(app.input, Some(Input::Command("arch".into())));
    app.update(key(KeyCode::Tab));
    assert_eq!(app.input, Some(Input::Command("archive_logs".into())));
    app.update(key(KeyCode::Enter));
    assert_eq!(app.input, None);
    assert_eq!(app.task_filter, "", "a filter hiding the task is cleared");
    assert_eq!(app.selected_task_id().as_deref(), Some("archive_logs"));
}

#[test]
fn the_palette_lists_choices_when_several_match() {
    let mut app = fixture();
    press(&mut app, ":re");
    app.update(key(KeyCode::Tab));
    // `reports_nightly` and `retry-all …` share only "re".
    assert_eq!(app.input, Some(Input::Command("re".into())));
    assert!(status_says(&app, "reports_nightly  retry-all orders_to_s3"));
}

#[test]
fn the_palette_opens_views_and_runs_actions() {
    let mut app = fixture();
    let commands = press(&mut app, ":errors");
    assert!(commands.is_empty());
    assert_eq!(
        app.update(key(KeyCode::Enter)),
        vec![Command::LoadFailedItems]
    );
    assert_eq!(app.view, View::Errors);

    press(&mut app, ":logs");
    app.update(key(KeyCode::Enter));
    assert_eq!(app.view, View::Logs);

    press(&mut app, ":retry-all vendor_feed");
    app.update(key(KeyCode::Enter));
    assert!(
        matches!(&app.overlay, Some(Overlay::Confirm(Confirm::Retry { task_id, .. })) if task_id == "vendor_feed"),
        "retry-all asks first, like r: {:?}",
        app.overlay
    );
    app.overlay = None;

    press(&mut app, ":nonsense");
    app.update(key(KeyCode::Enter));
    assert!(status_says(&app, "unknown command `nonsense`"));

    press(&mut app, ":pause new_task");
    app.update(key(KeyCode::Enter));
    assert!(status_says(&app, "new_task has no schedule"));
    press(&mut app, ":");
    app.update(key(KeyCode::Esc));
    assert_eq!(app.input, None, "esc closes the palette");
}
