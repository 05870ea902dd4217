//! Cancelling a run with large files in flight: the run ends `cancelled`,
//! nothing partial is visible at the destination, and a rerun completes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{
    S3Server, Workspace, counter, json_lines, run_of, sparse_file, stderr,
    wait_for_bytes_in_flight_of,
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const FILE_SIZE: u64 = 64 * 1024 * 1024;
const FILES: usize = 4;

/// Starts `syncdeck run --json TASK`, waits until bytes move, sends SIGINT
/// and returns the run's JSON summary.
fn cancel_mid_run(workspace: &Workspace, task: &str) -> serde_json::Value {
    let mut child = workspace
        .command(&["run", "--json", task])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start syncdeck");
    wait_for_bytes_in_flight_of(workspace, task, Some(&mut child));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).expect("send SIGINT");
    let output = child.wait_with_output().expect("wait");
    assert_eq!(
        output.status.code(),
        Some(130),
        "a run stopped by ctrl-c exits 130: {}",
        stderr(&output)
    );
    json_lines(&output)
        .into_iter()
        .next()
        .expect("a run summary")
}

fn seed(workspace: &Workspace) {
    for index in 0..FILES {
        sparse_file(
            &workspace.path().join(format!("in/big-{index}.bin")),
            FILE_SIZE,
        );
    }
}

#[test]
fn cancelling_a_local_copy_leaves_no_partial_file_and_a_rerun_completes() {
    let workspace = Workspace::new();
    seed(&workspace);
    // The limit keeps the copies in flight long enough to cancel them.
    workspace.write_config(
        "[[tasks]]\nid = \"big\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out/\"\nbwlimit = \"64MiB\"\ntransfers = 4\n",
    );
    let run = cancel_mid_run(&workspace, "big");
    assert_eq!(run["status"], "cancelled");
    for name in workspace.tree("out") {
        assert!(
            !name.contains(".syncdeck-partial-"),
            "partial file left behind: {name}"
        );
        let size = std::fs::metadata(workspace.path().join("out").join(&name))
            .expect("stat")
            .len();
        assert_eq!(size, FILE_SIZE, "{name} is visible but incomplete");
    }
    let history = json_lines(&workspace.run(&["history", "--json", "big"]));
    assert_eq!(
        history[0]["status"], "cancelled",
        "the state store records the cancel"
    );

    let (output, runs) = workspace.run_json(&["big"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(run_of(&runs, "big")["status"], "succeeded");
    assert_eq!(workspace.tree("out").len(), FILES);
}

#[test]
fn cancelling_an_upload_aborts_it_and_a_rerun_completes() {
    let server = S3Server::start();
    server.create_bucket("bucket");
    let workspace = Workspace::new();
    seed(&workspace);
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"upload\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"s3://bucket/up/\"\nbwlimit = \"64MiB\"\ntransfers = 4\n\
         [tasks.properties.sync_config]\ndestination_config = {}\n",
        server.options()
    ));
    let run = cancel_mid_run(&workspace, "upload");
    assert_eq!(run["status"], "cancelled");
    for (key, size) in server.list("bucket", "up") {
        assert_eq!(size, FILE_SIZE, "{key} is visible but incomplete");
    }
    // Aborts reach the server shortly after the process exits at the latest.
    let mut pending = server.pending_uploads("bucket");
    for _ in 0..50 {
        if pending == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        pending = server.pending_uploads("bucket");
    }
    assert_eq!(pending, 0, "multipart uploads left open on the server");

    let (output, runs) = workspace.run_json(&["upload"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let rerun = run_of(&runs, "upload");
    assert_eq!(rerun["status"], "succeeded");
    assert_eq!(
        counter(rerun, "files_synced") + counter(rerun, "files_skipped_unchanged"),
        FILES as u64
    );
    assert_eq!(server.list("bucket", "up").len(), FILES);
}
