//! What a console shows of other processes on the same store and log
//! folder: their log lines among its own, pauses stored by another
//! console, and the files in flight of a daemon's run.

use super::snapshots::screen;
use super::*;
use crate::run::FileInFlight;

/// A read-only console whose `daily_backup` has a schedule.
fn watching_console() -> App {
    let mut app = fixture_with(true, "");
    app.tasks[1].has_schedule = true;
    app
}

#[test]
fn a_read_only_console_reads_pauses_from_the_store_at_start_and_while_open() {
    let mut app = watching_console();
    assert!(app.init().contains(&Command::LoadPauses));
    let polls: Vec<Command> = (0..4).flat_map(|_| app.update(Msg::Tick)).collect();
    assert!(polls.contains(&Command::LoadPauses), "{polls:?}");

    app.update(Msg::PausesLoaded(vec!["daily_backup".into()]));
    assert!(app.tasks[1].paused);
    assert!(
        screen(&app, 160, 48).contains("paused"),
        "the pause made elsewhere shows"
    );
    // Resumed elsewhere: it shows as running its schedule again.
    app.update(Msg::PausesLoaded(Vec::new()));
    assert!(!app.tasks[1].paused);
}

#[test]
fn a_console_with_its_own_scheduler_takes_pauses_from_it() {
    let mut app = fixture();
    assert!(!app.init().contains(&Command::LoadPauses));
    let polls: Vec<Command> = (0..4).flat_map(|_| app.update(Msg::Tick)).collect();
    assert!(!polls.contains(&Command::LoadPauses), "{polls:?}");
}

#[test]
fn a_read_only_console_cannot_pause_and_says_so() {
    let mut app = watching_console();
    select(&mut app, "daily_backup");
    assert!(press(&mut app, "p").is_empty(), "nothing is paused");
    assert!(!app.tasks[1].paused);
    let status = app.status.as_ref().map(|(text, _)| text.as_str());
    assert_eq!(
        status,
        Some("read-only console: start, retry, abandon, cancel and pause are disabled")
    );
}

#[test]
fn a_daemons_run_shows_its_files_in_flight_read_from_the_store() {
    let mut app = watching_console();
    app.tasks[0].active = None;
    let mut daemons = record(60, "daily_backup", RunStatus::Running, 0, 1, 0, None);
    daemons.completed_at = None;
    let loads = app.update(Msg::RunsLoaded(vec![daemons]));
    assert_eq!(
        loads,
        vec![Command::LoadFilesInFlight {
            task_id: "daily_backup".into(),
            run_id: 60,
        }],
        "the followed run's files in flight are read"
    );
    let files = vec![
        FileInFlight {
            path: "db/dump.sql.gz".into(),
            bytes_done: 3 * 1024 * 1024,
            bytes_total: 4 * 1024 * 1024,
        },
        FileInFlight {
            path: "db/wal.tar".into(),
            bytes_done: 0,
            bytes_total: 1024,
        },
    ];
    app.update(Msg::FilesInFlightLoaded {
        task_id: "daily_backup".into(),
        run_id: 60,
        files: files.clone(),
    });
    assert_eq!(
        app.tasks[1].active.as_ref().map(|run| &run.in_flight),
        Some(&files)
    );
    select(&mut app, "daily_backup");
    app.update(key(KeyCode::Enter));
    let shown = screen(&app, 80, 24);
    assert!(
        shown.contains("In flight")
            && shown.contains(" 75% ")
            && shown.contains("db/dump.sql.gz (3.0M of 4.0M)"),
        "{shown}"
    );

    // Files of another run (an older one) are not taken for this one.
    app.update(Msg::FilesInFlightLoaded {
        task_id: "daily_backup".into(),
        run_id: 59,
        files: Vec::new(),
    });
    assert_eq!(
        app.tasks[1].active.as_ref().map(|run| &run.in_flight),
        Some(&files)
    );
}

#[test]
fn other_processes_lines_show_marked_and_are_searched_like_the_consoles_own() {
    let mut app = fixture();
    app.logs.merge(vec![LogLine {
        time: now() - TimeDelta::seconds(1),
        level: tracing::Level::ERROR,
        task_id: Some("nightly_export".into()),
        run_id: Some(812),
        message: "run failed status=failed".into(),
        origin: Some(4242),
    }]);
    app.update(Msg::LogsChanged);
    press(&mut app, "4/");
    press(&mut app, "nightly_export#812");
    app.update(key(KeyCode::Enter));
    let shown = screen(&app, 160, 48);
    assert!(shown.contains("\"nightly_export#812\" 1/1"), "{shown}");
    assert!(
        shown.contains("ERROR pid 4242 nightly_export#812 run failed status=failed"),
        "{shown}"
    );
}
