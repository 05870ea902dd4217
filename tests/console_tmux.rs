//! The real binary in a real terminal (tmux): open the demo, start a task
//! and see its counts, open its detail, search the logs, cancel a long run,
//! quit back to the shell; and a panic that still restores the terminal.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::tmux::Tmux;

#[test]
fn an_operator_session_in_a_real_terminal() {
    let scratch = common::demo_copy();
    let directory = scratch.path().to_path_buf();
    let tmux = Tmux::start(&directory, 100, 30);
    tmux.wait_for("shell$", "the shell prompt");
    let command = format!("{} -c config.example.toml", env!("CARGO_BIN_EXE_syncdeck"));
    tmux.type_line(&command);
    let screen = tmux.wait_for("Tasks 1/5", "the console opens on the task list");
    assert!(
        screen.contains("sync_csv_files") && screen.contains("never run"),
        "{screen}"
    );

    // Start the selected (first) task and see it finish with its counts.
    tmux.keys(&["s"]);
    let screen = tmux.wait_for("synced 7 skipped 0 failed 0", "the finished run's counts");
    assert!(
        screen.contains("sync_csv_files · run 1 · succeeded"),
        "{screen}"
    );
    assert!(screen.contains("✔ sync_csv_files"), "{screen}");

    // Its detail.
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("sync_csv_files · Sync CSV and JSON files", "the run detail");
    // Nothing was skipped, so no breakdown of why.
    assert!(screen.contains("listed 9"), "{screen}");
    assert!(!screen.contains("skipped: exists"), "{screen}");
    tmux.keys(&["Escape"]);

    // Search the logs with `/`: the match count and the marked line show.
    tmux.keys(&["4", "/"]);
    tmux.tmux(&["send-keys", "-t", "main", "-l", "run finished"]);
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("\"run finished\" 1/1", "the log search");
    assert!(
        screen
            .lines()
            .any(|line| line.contains("›") && line.contains("run finished status=succeeded")),
        "{screen}"
    );
    tmux.keys(&["1"]);

    // Start the long task and cancel it, confirming.
    tmux.keys(&["j", "j", "j"]);
    tmux.wait_for("›◌ mirror_slowly", "mirror_slowly selected");
    tmux.keys(&["s"]);
    tmux.wait_for(
        "mirror_slowly · run 2 · running",
        "the long run in progress",
    );
    tmux.keys(&["c"]);
    tmux.wait_for("Cancel run 2 of mirror_slowly?", "the cancel confirmation");
    tmux.keys(&["y"]);
    let screen = tmux.wait_for("mirror_slowly · run 2 · cancelled", "the cancelled run");
    assert!(screen.contains("■ mirror_slowly"), "{screen}");

    // Quit: back to the shell, normal screen, cursor visible.
    tmux.keys(&["q"]);
    let screen = tmux.wait_for(
        &format!("{command}\nshell$"),
        "the shell prompt after quitting, on the original screen",
    );
    assert!(
        !screen.contains("Tasks 1/5"),
        "no console left on screen: {screen}"
    );
    assert_eq!(
        tmux.alternate_screen_and_cursor(),
        ("0".into(), "1".into()),
        "alternate screen off, cursor visible"
    );

    // The runs the console started are in the state store.
    let output = Command::new(env!("CARGO_BIN_EXE_syncdeck"))
        .current_dir(&directory)
        .args(["-c", "config.example.toml", "history", "--json"])
        .output()
        .expect("history");
    let runs = common::json_lines(&output);
    let statuses: Vec<(&str, &str)> = runs
        .iter()
        .map(|run| {
            (
                run["task_id"].as_str().unwrap_or(""),
                run["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("mirror_slowly", "cancelled"),
            ("sync_csv_files", "succeeded")
        ]
    );
}

#[test]
fn a_panic_restores_the_terminal_and_prints_the_message() {
    let scratch = common::demo_copy();
    let directory = scratch.path().to_path_buf();
    let tmux = Tmux::start(&directory, 100, 30);
    tmux.wait_for("shell$", "the shell prompt");
    tmux.type_line(&format!(
        "RUST_BACKTRACE=0 SYNCDECK_DEBUG_PANIC=1 {} -c config.example.toml; echo \"status:\"$?",
        env!("CARGO_BIN_EXE_syncdeck")
    ));
    let screen = tmux.wait_for("status:101", "the console to stop with a panic's exit code");
    assert!(
        screen.contains("injected panic"),
        "the panic message is shown after the restore: {screen}"
    );
    assert_eq!(
        tmux.alternate_screen_and_cursor(),
        ("0".into(), "1".into()),
        "alternate screen off, cursor visible"
    );
}

#[test]
fn a_console_on_a_shared_store_shows_and_cancels_a_daemons_run() {
    let state = common::TestDatabase::create("console");
    let workspace = common::Workspace::new();
    common::sparse_file(&workspace.path().join("in/big.bin"), 48 * 1024 * 1024);
    std::fs::write(
        workspace.config_path(),
        format!(
            "[engine]\nstate = \"{}\"\nlog_dir = \"logs\"\nlease_ttl = \"2s\"\n\n\
             [[tasks]]\nid = \"slow\"\ntype = \"sync\"\nschedule = \"10s\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out/\"\nbwlimit = \"4MiB\"\ncompare = \"always\"\n",
            state.url
        ),
    )
    .expect("config");
    let daemon = workspace
        .command(&["daemon"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("daemon");

    let tmux = Tmux::start(workspace.path(), 100, 30);
    tmux.wait_for("shell$", "the shell prompt");
    tmux.type_line(&format!(
        "{} -c syncdeck.toml",
        env!("CARGO_BIN_EXE_syncdeck")
    ));
    let screen = tmux.wait_for(
        "slow · run 1 · running",
        "the daemon's run, seen through the shared store",
    );
    assert!(
        screen.contains("postgres"),
        "the title names the shared store: {screen}"
    );
    tmux.keys(&["c"]);
    tmux.wait_for("Cancel run 1 of slow?", "the cancel confirmation");
    tmux.keys(&["y"]);
    tmux.wait_for(
        "slow · run 1 · cancelled",
        "the run cancelled by the daemon that ran it",
    );
    tmux.keys(&["q"]);

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    let output = daemon.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(0));
    let runs = common::json_lines(&workspace.run(&["history", "--json", "slow", "--limit", "50"]));
    let first = runs.iter().find(|run| run["run_id"] == 1).expect("run 1");
    assert_eq!(first["status"], "cancelled");
    assert_eq!(first["trigger"], "schedule");
}

#[test]
fn cancelling_an_airbyte_run_in_the_console_cancels_the_remote_job() {
    let airbyte = common::FakeAirbyte::start();
    let workspace = common::Workspace::new();
    workspace.write_config(&airbyte.task("customers", "slow", ""));
    let tmux = Tmux::start(workspace.path(), 100, 30);
    tmux.wait_for("shell$", "the shell prompt");
    tmux.type_line(&format!(
        "SYNCDECK_CREDENTIAL_AIRBYTE_SECRET={} {} -c syncdeck.toml",
        common::AIRBYTE_CLIENT_SECRET,
        env!("CARGO_BIN_EXE_syncdeck")
    ));
    tmux.wait_for("Tasks 1/1", "the console");
    tmux.keys(&["s"]);
    tmux.wait_for(
        "customers · run 1 · running",
        "the Airbyte job being watched",
    );
    tmux.keys(&["c"]);
    tmux.wait_for("Cancel run 1 of customers?", "the cancel confirmation");
    tmux.keys(&["y"]);
    tmux.wait_for(
        "customers · run 1 · cancelled",
        "the run cancelled once Airbyte confirmed",
    );
    assert!(
        airbyte.calls().contains(&"DELETE /jobs/100".to_string()),
        "the remote job was cancelled"
    );
    tmux.keys(&["q"]);
}

#[test]
fn a_read_only_console_beside_a_daemon_starts_nothing_and_cancels_nothing() {
    // A shared SQLite store: the daemon and the console on one machine.
    let workspace = common::Workspace::new();
    common::sparse_file(&workspace.path().join("big/big.bin"), 32 * 1024 * 1024);
    workspace.file("in/a.csv", b"a");
    workspace.write_config(
        "[[tasks]]\nid = \"slow\"\ntype = \"sync\"\nschedule = \"1s\"\n[tasks.properties]\nsource_path = \"big/\"\ndestination_path = \"big-out/\"\nbwlimit = \"4MiB\"\ncompare = \"always\"\n\n\
         [[tasks]]\nid = \"tick\"\ntype = \"sync\"\nschedule = \"1s\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out/\"\ncompare = \"always\"\n",
    );
    let daemon = workspace
        .command(&["daemon"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("daemon");
    let daemon_owner = format!(":{}", daemon.id());
    let history = |task: &str| {
        common::json_lines(&workspace.run(&["history", "--json", task, "--limit", "100"]))
    };

    let tmux = Tmux::start(workspace.path(), 100, 30);
    tmux.wait_for("shell$", "the shell prompt");
    let command = format!(
        "{} -c syncdeck.toml --read-only",
        env!("CARGO_BIN_EXE_syncdeck")
    );
    tmux.type_line(&command);
    tmux.wait_for("· running", "the daemon's slow run, seen through the store");
    // Several slots pass with the console open: a console that scheduled
    // would take some of them.
    let deadline = Instant::now() + Duration::from_secs(30);
    while history("tick").len() < 4 {
        assert!(Instant::now() < deadline, "the daemon ran tick too rarely");
        std::thread::sleep(Duration::from_millis(200));
    }
    let slow_run = history("slow")[0]["run_id"].clone();
    assert_eq!(history("slow")[0]["status"], "running");

    // Quitting asks nothing (there is nothing of its own to cancel)...
    tmux.keys(&["q"]);
    tmux.wait_for(
        &format!("{command}\nshell$"),
        "the shell prompt at once after quitting",
    );
    // ...and the daemon's run goes on to the end.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let runs = history("slow");
        let run = runs
            .iter()
            .find(|run| run["run_id"] == slow_run)
            .expect("the slow run");
        if run["status"] != "running" {
            assert_eq!(run["status"], "succeeded", "{run}");
            break;
        }
        assert!(Instant::now() < deadline, "the slow run did not finish");
        std::thread::sleep(Duration::from_millis(200));
    }

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    let output = daemon.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(0));

    // Every run in the store is the daemon's: the console started none.
    let store = rusqlite::Connection::open(workspace.path().join("state/state.db")).expect("open");
    let mut statement = store
        .prepare("SELECT task_id, status, owner FROM sync_logs ORDER BY run_id")
        .expect("query");
    let runs: Vec<(String, String, String)> = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .expect("rows")
        .map(|row| row.expect("row"))
        .collect();
    assert!(runs.len() >= 5, "{runs:?}");
    for (task, status, owner) in &runs {
        assert!(
            owner.ends_with(&daemon_owner),
            "{task} run by {owner}: {runs:?}"
        );
        assert!(
            status != "cancelled" && status != "interrupted",
            "{task} {status}: {runs:?}"
        );
    }
}

/// The errors view's `a` gives up on a failed item for good, at 80x24:
/// after the confirmation the item leaves the list, `syncdeck errors` no
/// longer lists it and `errors --all` shows it abandoned.
#[test]
fn a_failed_row_is_abandoned_from_the_errors_view() {
    let database = common::TestDatabase::create("console_abandon");
    database.execute(
        "CREATE SCHEMA src; CREATE SCHEMA dst;
         CREATE TABLE src.t (id int PRIMARY KEY, n int);
         INSERT INTO src.t SELECT g, CASE WHEN g = 7 THEN NULL ELSE g END FROM generate_series(1, 20) g;
         CREATE TABLE dst.t (id int PRIMARY KEY, n int NOT NULL);",
    );
    let workspace = common::Workspace::new();
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"t\"\ntype = \"table_sync\"\n[tasks.properties]\nsource = \"{url}\"\n\
         target = \"{url}\"\nsource_table = \"src.t\"\ntarget_table = \"dst.t\"\nprimary_key = [\"id\"]\n",
        url = database.url
    ));
    let output = workspace.run(&["run"]);
    assert_eq!(output.status.code(), Some(1), "a partial run");
    assert_eq!(
        common::json_lines(&workspace.run(&["errors", "--json"])).len(),
        1
    );

    let tmux = Tmux::start(workspace.path(), 80, 24);
    tmux.wait_for("shell$", "the shell prompt");
    tmux.type_line(&format!(
        "{} -c syncdeck.toml",
        env!("CARGO_BIN_EXE_syncdeck")
    ));
    tmux.wait_for("Tasks 1/1", "the console opens");
    tmux.keys(&["2"]);
    tmux.wait_for("id=7", "the bad row in the errors view");
    tmux.keys(&["a"]);
    tmux.wait_for("Give up on 1 failed item(s) of t", "the confirmation");
    tmux.keys(&["y"]);
    let screen = tmux.wait_for("abandoned 1 item(s) of t", "the status line");
    assert!(screen.contains("pending 0"), "{screen}");
    tmux.keys(&["q"]);
    tmux.wait_for("syncdeck.toml\nshell$", "back at the shell");

    assert!(common::json_lines(&workspace.run(&["errors", "--json"])).is_empty());
    let all = common::json_lines(&workspace.run(&["errors", "--all", "--json"]));
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["status"], "abandoned");
    assert_eq!(all[0]["key"], "id=7");
}
