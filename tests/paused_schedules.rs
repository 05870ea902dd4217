//! A paused schedule lives in the state store: a daemon honours a pause
//! or resume made by another process on the same store (a console, the
//! operator's tools), and keeps it across restarts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Workspace, json_lines, stderr};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use syncdeck::state::StateStore;

fn runs(workspace: &Workspace) -> usize {
    json_lines(&workspace.run(&["history", "--json", "--limit", "1000"])).len()
}

fn store(workspace: &Workspace, runtime: &tokio::runtime::Runtime) -> Arc<dyn StateStore> {
    runtime
        .block_on(syncdeck::state::open(
            "sqlite:state/state.db",
            workspace.path(),
        ))
        .expect("the state store")
}

#[test]
fn a_daemon_honours_pauses_stored_by_another_process() {
    let workspace = Workspace::new();
    workspace.file("in/a.csv", b"a");
    workspace.write_config(
        "[[tasks]]\nid = \"often\"\ntype = \"sync\"\nschedule = \"1s\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out/\"\ncompare = \"always\"\n",
    );
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let state = store(&workspace, &runtime);
    runtime
        .block_on(state.set_schedule_paused("often", true))
        .expect("pause");

    let daemon = workspace
        .command(&["daemon"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("daemon");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        runs(&workspace),
        0,
        "the daemon started a task whose schedule is paused in the store"
    );

    runtime
        .block_on(state.set_schedule_paused("often", false))
        .expect("resume");
    let deadline = Instant::now() + Duration::from_secs(30);
    while runs(&workspace) < 2 {
        assert!(
            Instant::now() < deadline,
            "the daemon never picked up the resume"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    runtime
        .block_on(state.set_schedule_paused("often", true))
        .expect("pause again");
    // The daemon reads pauses every two seconds; a run already started
    // may still finish.
    std::thread::sleep(Duration::from_secs(4));
    let before = runs(&workspace);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        runs(&workspace),
        before,
        "runs went on after the schedule was paused in the store"
    );

    kill(Pid::from_raw(daemon.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    let output = daemon.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let logs = workspace.logs();
    assert!(
        logs.contains("schedule paused in the state store")
            && logs.contains("schedule resumed in the state store"),
        "the daemon logs why it stopped and started: {logs}"
    );
}
