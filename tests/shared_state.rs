//! Several `syncdeck daemon` workers on one PostgreSQL state store: each
//! scheduled slot runs once, a task never runs twice at once, and a killed
//! worker's run is recorded as `interrupted` and taken over.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{TestDatabase, Workspace, json_lines, sparse_file, stderr};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn daemon(workspace: &Workspace) -> Child {
    workspace
        .command(&["daemon"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("daemon")
}

fn stop(child: Child) {
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    let output = child.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

fn history(workspace: &Workspace) -> Vec<serde_json::Value> {
    json_lines(&workspace.run(&["history", "--json", "--limit", "200"]))
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(40);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn parse(time: &serde_json::Value) -> chrono::DateTime<chrono::Utc> {
    time.as_str()
        .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
        .map(|time| time.to_utc())
        .unwrap_or_default()
}

#[test]
fn two_daemons_run_each_slot_once_and_never_overlap() {
    let state = TestDatabase::create("shared");
    let workspace = Workspace::new();
    workspace.file("in/a.csv", b"a");
    std::fs::write(
        workspace.config_path(),
        format!(
            "[engine]\nstate = \"{}\"\nlog_dir = \"logs\"\nlease_ttl = \"2s\"\n\n\
             [[tasks]]\nid = \"tick\"\ntype = \"sync\"\nschedule = \"1s\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out1/\"\ncompare = \"always\"\n\n\
             [[tasks]]\nid = \"tock\"\ntype = \"sync\"\nschedule = \"2s\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out2/\"\ncompare = \"always\"\n",
            state.url
        ),
    )
    .expect("config");
    let first = daemon(&workspace);
    let second = daemon(&workspace);
    wait_until("several runs of each task", || {
        let runs = history(&workspace);
        runs.iter().filter(|run| run["task_id"] == "tick").count() >= 5
            && runs.iter().filter(|run| run["task_id"] == "tock").count() >= 3
    });
    stop(first);
    stop(second);
    // Every process opened the store: the server's notices that its
    // schema already exists are no news, and are not logged.
    let logs = workspace.logs();
    assert!(!logs.contains("already exists"), "{logs}");

    let runs = history(&workspace);
    let mut by_task: HashMap<String, Vec<&serde_json::Value>> = HashMap::new();
    for run in &runs {
        by_task
            .entry(run["task_id"].as_str().unwrap_or("").to_string())
            .or_default()
            .push(run);
    }
    for (task, runs) in &by_task {
        let every_ms = if task == "tick" { 1000 } else { 2000 };
        let mut spans: Vec<_> = runs
            .iter()
            .map(|run| (parse(&run["started_at"]), parse(&run["completed_at"])))
            .collect();
        spans.sort();
        for pair in spans.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "{task}: two runs at once: {pair:?}");
        }
        // One run per slot: no more runs than the slots their starts span
        // (plus one, as a start may be late); two workers each running
        // every slot would give about twice as many.
        let span_ms = (spans[spans.len() - 1].0 - spans[0].0).num_milliseconds();
        let slots_spanned = (span_ms / every_ms + 2) as usize;
        assert!(
            spans.len() <= slots_spanned,
            "{task}: {} runs in {slots_spanned} slots",
            spans.len()
        );
        assert!(
            runs.iter().all(|run| run["status"] == "succeeded"),
            "{task}: {runs:?}"
        );
    }
}

#[test]
fn a_killed_worker_is_taken_over_and_its_run_marked_interrupted() {
    let state = TestDatabase::create("takeover");
    let workspace = Workspace::new();
    sparse_file(&workspace.path().join("in/big.bin"), 48 * 1024 * 1024);
    std::fs::write(
        workspace.config_path(),
        format!(
            "[engine]\nstate = \"{}\"\nlog_dir = \"logs\"\nlease_ttl = \"2s\"\n\n\
             [[tasks]]\nid = \"slow\"\ntype = \"sync\"\nschedule = \"1s\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out/\"\nbwlimit = \"8MiB\"\ncompare = \"always\"\n",
            state.url
        ),
    )
    .expect("config");
    let mut first = daemon(&workspace);
    wait_until("the first worker's run", || {
        history(&workspace).first().is_some_and(|run| {
            run["status"] == "running" && run["counters"]["bytes_done"].as_u64().unwrap_or(0) > 0
        })
    });
    let killed_run = history(&workspace)[0]["run_id"].clone();
    let second = daemon(&workspace);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        history(&workspace)
            .iter()
            .all(|run| run["run_id"] == killed_run),
        "while the first worker holds the lease, the second does not start the task"
    );
    first.kill().expect("kill -9");
    let _ = first.wait();

    wait_until(
        "the killed run to be marked interrupted and the task taken over",
        || {
            let runs = history(&workspace);
            let killed = runs.iter().find(|run| run["run_id"] == killed_run);
            killed.is_some_and(|run| run["status"] == "interrupted")
                && runs.iter().any(|run| run["run_id"] != killed_run)
        },
    );
    stop(second);
    let runs = history(&workspace);
    let takeover = runs
        .iter()
        .find(|run| run["run_id"] != killed_run)
        .expect("a later run");
    assert_eq!(takeover["trigger"], "schedule");
    assert!(
        ["succeeded", "cancelled"].contains(&takeover["status"].as_str().unwrap_or("")),
        "{takeover}"
    );
}
