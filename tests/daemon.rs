//! `syncdeck daemon`: runs tasks on their schedules, never two runs of a
//! task at once, and stops cleanly on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{Workspace, json_lines, sparse_file, stderr};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn history(workspace: &Workspace) -> Vec<serde_json::Value> {
    json_lines(&workspace.run(&["history", "--json", "--limit", "100"]))
}

fn terminate_and_wait(child: std::process::Child) -> std::process::Output {
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    child.wait_with_output().expect("wait")
}

#[test]
fn scheduled_runs_happen_each_interval_and_never_overlap() {
    let workspace = Workspace::new();
    workspace.file("in/a.csv", b"a");
    workspace.write_config(
        "[[tasks]]\nid = \"often\"\ntype = \"sync\"\nschedule = \"1s\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out/\"\ncompare = \"always\"\n",
    );
    let child = workspace
        .command(&["daemon"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("daemon");
    let deadline = Instant::now() + Duration::from_secs(30);
    while history(&workspace).len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the daemon did not run the task three times"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let output = terminate_and_wait(child);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let mut runs = history(&workspace);
    // SIGTERM may land while the newest run is still going: that one is
    // cancelled by the shutdown, and says so; every other one succeeded.
    if runs.first().is_some_and(|newest| {
        newest["status"] == "cancelled"
            && newest["error"]
                .as_str()
                .is_some_and(|error| error.contains("shutting down"))
    }) {
        runs.remove(0);
    }
    assert!(
        runs.len() >= 2
            && runs
                .iter()
                .all(|run| run["trigger"] == "schedule" && run["status"] == "succeeded"),
        "{runs:?}"
    );
    let mut spans: Vec<(String, String)> = runs
        .iter()
        .map(|run| {
            (
                run["started_at"].as_str().unwrap_or("").to_string(),
                run["completed_at"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    spans.sort();
    for pair in spans.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "runs overlap: {pair:?}");
    }
}

#[test]
fn sigterm_mid_run_cancels_cleanly_and_exits_zero() {
    let workspace = Workspace::new();
    for index in 0..2 {
        sparse_file(
            &workspace.path().join(format!("in/big-{index}.bin")),
            64 * 1024 * 1024,
        );
    }
    workspace.write_config(
        "[[tasks]]\nid = \"slow\"\ntype = \"sync\"\nschedule = \"1s\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out/\"\nbwlimit = \"16MiB\"\n",
    );
    let child = workspace
        .command(&["daemon"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("daemon");
    common::wait_for_bytes_in_flight(&workspace, "slow");
    let started = Instant::now();
    let output = terminate_and_wait(child);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "stopped within the daemon's bounded wait"
    );
    let runs = history(&workspace);
    assert_eq!(
        runs[0]["status"], "cancelled",
        "the run's end is recorded: {runs:?}"
    );
    for name in workspace.tree("out") {
        assert!(
            !name.contains(".syncdeck-partial-"),
            "partial file left: {name}"
        );
        assert_eq!(
            std::fs::metadata(workspace.path().join("out").join(&name))
                .expect("stat")
                .len(),
            64 * 1024 * 1024
        );
    }
}

#[test]
fn a_daemon_without_schedules_says_what_to_add() {
    let workspace = Workspace::new();
    workspace.write_config("[[tasks]]\nid = \"t\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out/\"\n");
    let output = workspace.run(&["daemon"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("has a schedule; add schedule = \"5m\""),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_scheduled_task_blocked_by_a_failed_dependency_is_recorded_as_blocked() {
    let workspace = Workspace::new();
    // `load`'s source folder does not exist, so each of its runs fails.
    workspace.write_config(
        "[[tasks]]\nid = \"load\"\ntype = \"sync\"\nschedule = \"1s\"\n[tasks.properties]\nsource_path = \"missing/\"\ndestination_path = \"out/\"\n\n\
         [[tasks]]\nid = \"report\"\ntype = \"sync\"\nschedule = \"1s\"\ndependencies = [\"load\"]\n[tasks.properties]\nsource_path = \"out/\"\ndestination_path = \"report/\"\n",
    );
    std::fs::create_dir_all(workspace.path().join("out")).expect("mkdir");
    let child = workspace
        .command(&["daemon"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("daemon");
    let blocked = || {
        json_lines(&workspace.run(&["history", "--json", "report"]))
            .into_iter()
            .filter(|run| run["status"] == "blocked")
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while blocked() == 0 {
        assert!(
            Instant::now() < deadline,
            "no blocked run of report was recorded: {:?}",
            history(&workspace)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let output = terminate_and_wait(child);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let runs = history(&workspace);
    let load = runs
        .iter()
        .find(|run| run["task_id"] == "load")
        .expect("load ran");
    assert_eq!(load["status"], "failed");
    assert!(
        load["error"]
            .as_str()
            .is_some_and(|error| error.contains("missing does not exist")),
        "{load}"
    );
    let blocked: Vec<_> = runs
        .iter()
        .filter(|run| run["task_id"] == "report" && run["status"] == "blocked")
        .collect();
    assert!(!blocked.is_empty());
    // Even in the daemon's first slot, `report` waited for that slot's run
    // of `load` instead of running beside it: it never ran.
    assert!(
        runs.iter()
            .filter(|run| run["task_id"] == "report")
            .all(|run| run["status"] == "blocked"),
        "{runs:?}"
    );
    for run in &blocked {
        assert_eq!(run["trigger"], "schedule", "{run}");
        assert!(
            run["error"]
                .as_str()
                .is_some_and(|error| error.contains("dependency `load` did not succeed")),
            "{run}"
        );
    }
}

#[test]
fn a_dependent_on_the_same_schedule_starts_after_its_dependency_ends() {
    let workspace = Workspace::new();
    sparse_file(&workspace.path().join("in/big.bin"), 3 * 1024 * 1024);
    // `load` takes about a second and a half; `report` copies what it loaded.
    workspace.write_config(
        "[[tasks]]\nid = \"load\"\ntype = \"sync\"\nschedule = \"4s\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out/\"\ncompare = \"always\"\nbwlimit = \"2MiB\"\n\n\
         [[tasks]]\nid = \"report\"\ntype = \"sync\"\nschedule = \"4s\"\ndependencies = [\"load\"]\n[tasks.properties]\nsource_path = \"out/\"\ndestination_path = \"report/\"\ncompare = \"always\"\n",
    );
    let child = workspace
        .command(&["daemon"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("daemon");
    let reports = || {
        history(&workspace)
            .into_iter()
            .filter(|run| run["task_id"] == "report" && run["status"] == "succeeded")
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(40);
    while reports() < 2 {
        assert!(
            Instant::now() < deadline,
            "report did not run twice: {:?}",
            history(&workspace)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let output = terminate_and_wait(child);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let runs = history(&workspace);
    let span = |run: &serde_json::Value| {
        (
            run["started_at"].as_str().unwrap_or("").to_string(),
            run["completed_at"].as_str().unwrap_or("~").to_string(),
        )
    };
    let loads: Vec<_> = runs
        .iter()
        .filter(|run| run["task_id"] == "load")
        .map(span)
        .collect();
    for report in runs.iter().filter(|run| run["task_id"] == "report") {
        assert_eq!(report["status"], "succeeded", "{runs:?}");
        let (started, _) = span(report);
        assert!(
            loads
                .iter()
                .all(|(load_start, load_end)| started >= *load_end || started < *load_start),
            "report started while load ran: {runs:?}"
        );
        assert!(
            loads.iter().any(|(_, load_end)| *load_end <= started),
            "report started before any load ended: {runs:?}"
        );
    }
    assert_eq!(
        std::fs::metadata(workspace.path().join("report/big.bin"))
            .expect("report copied what load loaded")
            .len(),
        3 * 1024 * 1024
    );
}
