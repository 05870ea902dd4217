//! The console tells the truth: a read-only console stops nothing, a start
//! whose dependency failed is questioned, blocked runs show as blocked, and
//! log search finds what the operator sees.

use super::snapshots::{screen, snapshot_views};
use super::*;

/// `load` feeds `report`; `load`'s last run failed.
fn dependency_fixture() -> App {
    let text = "[[tasks]]\nid = \"load\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out/\"\n\n\
                [[tasks]]\nid = \"report\"\ntype = \"sync\"\ndependencies = [\"load\"]\n[tasks.properties]\nsource_path = \"out/\"\ndestination_path = \"report/\"\n";
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
    app.update(Msg::RunsLoaded(vec![record(
        7,
        "load",
        RunStatus::Failed,
        5,
        0,
        0,
        Some("source folder /mnt/x does not exist"),
    )]));
    app
}

fn blocked_record(run_id: i64) -> RunRecord {
    RunRecord {
        status: RunStatus::Blocked,
        counters: RunCounters::default(),
        error: Some("blocked: dependency `load` did not succeed; not started".into()),
        ..record(run_id, "report", RunStatus::Blocked, 0, 0, 0, None)
    }
}

#[test]
fn s_on_a_task_whose_dependency_failed_asks_first_and_names_it() {
    let mut app = dependency_fixture();
    select(&mut app, "report");
    assert!(press(&mut app, "s").is_empty(), "nothing starts yet");
    assert_eq!(
        app.overlay,
        Some(Overlay::Confirm(Confirm::StartDespite {
            task_id: "report".into(),
            dependency: "load".into(),
            status: RunStatus::Failed,
        }))
    );
    let shown = screen(&app, 80, 24);
    assert!(shown.contains("report depends on load"), "{shown}");
    assert!(shown.contains("load's last run failed"), "{shown}");
    assert!(
        press(&mut app, "n").is_empty(),
        "n starts nothing: {:?}",
        app.overlay
    );
    assert_eq!(app.overlay, None);

    press(&mut app, "s");
    assert_eq!(
        press(&mut app, "y"),
        vec![Command::Engine(EngineCommand::StartTask {
            task_id: "report".into()
        })]
    );
}

#[test]
fn s_starts_at_once_when_the_dependencies_succeeded_or_never_ran() {
    let mut app = dependency_fixture();
    select(&mut app, "load");
    assert_eq!(
        press(&mut app, "s"),
        vec![Command::Engine(EngineCommand::StartTask {
            task_id: "load".into()
        })],
        "no dependencies"
    );
    app.update(Msg::Engine(EngineEvent::RunFinished {
        record: Box::new(record(8, "load", RunStatus::Succeeded, 0, 3, 0, None)),
    }));
    select(&mut app, "report");
    assert_eq!(
        press(&mut app, "s"),
        vec![Command::Engine(EngineCommand::StartTask {
            task_id: "report".into()
        })]
    );
    assert_eq!(app.overlay, None);
}

#[test]
fn snapshot_start_despite_a_failed_dependency() {
    let mut app = dependency_fixture();
    select(&mut app, "report");
    snapshot_views("confirm_start_despite", &mut app, &[char_key('s')]);
}

#[test]
fn a_blocked_run_shows_as_blocked_and_leaves_a_live_run_alone() {
    let mut app = dependency_fixture();
    app.update(Msg::Engine(EngineEvent::RunFinished {
        record: Box::new(blocked_record(9)),
    }));
    app.update(Msg::Engine(EngineEvent::TaskBlocked {
        task_id: "report".into(),
        dependency: "load".into(),
    }));
    let report = &app.tasks[1];
    assert_eq!(
        report.last.as_ref().map(|run| run.status),
        Some(RunStatus::Blocked)
    );
    assert_eq!(app.failing_tasks(), 2, "a blocked task did not succeed");
    assert!(
        app.status
            .as_ref()
            .is_some_and(|(message, _)| message.contains("report blocked: dependency load")),
        "{:?}",
        app.status
    );
    // Blocked runs recorded by another process show through the store.
    let mut other = dependency_fixture();
    other.update(Msg::RunsLoaded(vec![blocked_record(9)]));
    let shown = screen(&other, 80, 24);
    assert!(
        shown
            .lines()
            .any(|line| line.contains("report") && line.contains("blocked")),
        "{shown}"
    );

    // A run in progress is not ended by a blocked record of its task.
    let mut live = dependency_fixture();
    live.update(Msg::Engine(EngineEvent::RunStarted {
        run_id: 10,
        task_id: "report".into(),
        trigger: Trigger::Manual,
        started_at: now(),
    }));
    live.update(Msg::Engine(EngineEvent::RunFinished {
        record: Box::new(blocked_record(11)),
    }));
    assert!(live.tasks[1].active.is_some());
}

#[test]
fn read_only_quits_at_once_and_never_offers_to_cancel() {
    let mut app = fixture_with(true, "");
    assert_eq!(app.active_runs(), 1, "the fixture has a run in progress");
    assert_eq!(press(&mut app, "q"), vec![Command::Quit]);
    assert_eq!(app.overlay, None);
}

#[test]
fn quitting_asks_only_about_this_consoles_own_runs() {
    let mut app = fixture();
    // The fixture's live run came through this console's engine; a run
    // followed through the store (a daemon's) is not cancelled by quitting.
    app.tasks[0].active = None;
    let mut daemons = record(60, "daily_backup", RunStatus::Running, 0, 1, 0, None);
    daemons.completed_at = None;
    app.update(Msg::RunsLoaded(vec![daemons]));
    assert!(
        app.tasks[1].active.as_ref().is_some_and(|run| run.remote),
        "the daemon's run is followed"
    );
    assert_eq!(press(&mut app, "q"), vec![Command::Quit]);
}

#[test]
fn log_search_matches_task_run_and_level_not_only_the_message() {
    let mut app = fixture();
    press(&mut app, "4/");
    press(&mut app, "archive_logs");
    app.update(key(KeyCode::Enter));
    assert_eq!(
        app.log_view.current_match,
        Some(2),
        "the task id is searched"
    );
    let shown = screen(&app, 160, 48);
    assert!(shown.contains("\"archive_logs\" 1/1"), "{shown}");

    app.update(key(KeyCode::Char('/')));
    for _ in 0.."archive_logs".len() {
        app.update(key(KeyCode::Backspace));
    }
    press(&mut app, "#46");
    app.update(key(KeyCode::Enter));
    assert_eq!(
        app.log_view.current_match,
        Some(4),
        "the run id as shown (#46) is searched"
    );
    assert!(screen(&app, 160, 48).contains("\"#46\" 2/2"));
}
