//! A `--read-only` console beside a daemon on a shared PostgreSQL store,
//! in a real terminal: it shows the daemon's log lines (and keeps
//! following them), a pause stored by someone else, and the files the
//! daemon's run has in flight; it refuses to pause.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::tmux::Tmux;

#[test]
fn a_read_only_console_shows_a_daemons_logs_pauses_and_files_in_flight() {
    let state = common::TestDatabase::create("watching");
    let workspace = common::Workspace::new();
    common::sparse_file(&workspace.path().join("big/big.bin"), 64 * 1024 * 1024);
    workspace.file("in/a.csv", b"a");
    std::fs::write(
        workspace.config_path(),
        format!(
            "[engine]\nstate = \"{}\"\nlog_dir = \"logs\"\nlease_ttl = \"2s\"\n\n\
             [[tasks]]\nid = \"slow\"\ntype = \"sync\"\nschedule = \"5s\"\n[tasks.properties]\nsource_path = \"big/\"\ndestination_path = \"big-out/\"\nbwlimit = \"2MiB\"\ncompare = \"always\"\n\n\
             [[tasks]]\nid = \"often\"\ntype = \"sync\"\nschedule = \"2s\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out/\"\ncompare = \"always\"\n",
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
    let daemon_pid = daemon.id();
    // Ends the daemon however the test ends.
    struct Stop(u32);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0 as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    let _stop = Stop(daemon_pid);

    let tmux = Tmux::start(workspace.path(), 120, 36);
    tmux.wait_for("shell$", "the shell prompt");
    tmux.type_line(&format!(
        "{} -c syncdeck.toml --read-only",
        env!("CARGO_BIN_EXE_syncdeck")
    ));
    tmux.wait_for(
        "slow · run",
        "the daemon's slow run, seen through the store",
    );

    // The daemon's own log lines, marked with its process id.
    tmux.keys(&["4"]);
    tmux.wait_for(
        &format!("pid {daemon_pid} slow#"),
        "the daemon's log lines in the read-only console's log view",
    );

    // A pause stored by someone else: the daemon logs that it honours it,
    // and the console, still open, shows that line and the pause.
    state.execute(
        "INSERT INTO syncdeck.paused_schedules (task_id, paused_by) VALUES ('often', 'another console')",
    );
    tmux.wait_for(
        "schedule paused in the state store task_id=\"often\"",
        "a line the daemon logged after the console opened",
    );
    tmux.keys(&["1"]);
    // `paused` ends the task's status (`ok 31s ago · paused`, or `paused`
    // alone before its first run); the log line goes on after the word.
    tmux.wait_for("paused    ", "the stored pause in the task list");
    tmux.keys(&["j", "p"]);
    tmux.wait_for(
        "read-only console: start, retry, abandon, cancel and pause are disabled",
        "p refused in a read-only console",
    );

    // The daemon's run's files in flight, each with its percent.
    tmux.keys(&["k", "Enter"]);
    let screen = tmux.wait_for("In flight", "the files in flight of the daemon's run");
    assert!(
        screen.lines().any(|line| line.contains('%')
            && line.contains("big.bin")
            && line.contains("of 64.0M")),
        "{screen}"
    );
    tmux.keys(&["Escape", "q"]);
    let screen = tmux.wait_for("shell$\n", "the console quits at once");
    assert!(!screen.contains("Cancel"), "{screen}");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon_pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    let output = daemon.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(0));
    // The console started nothing: every run is the daemon's.
    let foreign = state.count(&format!(
        "SELECT count(*) FROM syncdeck.sync_logs WHERE owner NOT LIKE '%:{daemon_pid}'"
    ));
    assert_eq!(foreign, 0, "a run not started by the daemon");
}
